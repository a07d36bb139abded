"""The task registry: what one grid point computes, keyed by ``task.kind``.

A task is a function ``run(point: dict) -> dict[str, float | list | str]`` (metrics) plus one
validator per config section it reads (see :mod:`cosim.schema`), an optional cost model
``cost(point) -> seconds`` for the estimate printed before a study starts, the names of the
metrics it returns, and a version string that salts the point keys (bump it when the task's
results change, so old results are not mistaken for new ones). Two optional hooks let a task
own its output beyond the store:

- ``report(ctx: cosim.study.report.ReportContext) -> str``: the task's HTML section(s) of
  ``cosim report``; ``ctx`` holds the points (``ctx.done``, ``ctx.records``), the varied fields
  (``ctx.grid``) and the picked ``--point``, and writes figures (``ctx.figure``) and CSV tables
  (``ctx.csv``) into the report folder. Every registered hook runs for every report, in
  registration order, and draws from whatever points carry its metrics: return ``""`` to add
  nothing when none do. Examples: :func:`cosim.study.irdrop.report`,
  :func:`cosim.study.training.report`.
- ``export(row, output, *, force, info) -> (TapeoutFiles, notes)``: ``cosim export`` of one
  stored point (``row``, a :class:`~cosim.study.store.PointRow`) as ngspice netlists into the
  folder ``output`` (:func:`cosim.array.tapeout.write_tapeout` does the writing; ``info`` is the
  provenance to record). Examples: :func:`cosim.study.export.export_ir_drop`, ``export_train``.

A new task is one new module (run, sections, metrics, and the hooks it wants) plus one
``register_task`` line at the end of this file.

Every reference may be a ``"module:attribute"`` string, imported on first use, so registering
costs nothing and workers import only what they run (see the two registrations at the end).

The report draws training figures from the metrics ``accuracy_ideal``, ``accuracy_parasitic``
(fractions 0–1), ``pulses`` (count) and ``convergence`` (per-epoch accuracy, fractions 0–1);
see :mod:`cosim.study.figures`.

:func:`execute_point` is what runs on a Dask worker: it never raises for a point's own failure
but returns the error text, so one bad point does not stop a study; it never touches the store.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import platform
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from cosim.errors import SpecError
from cosim.schema import did_you_mean

log = logging.getLogger(__name__)

Ref = str | Callable[..., Any] | Mapping[str, Any]


def resolve(ref: Any) -> Any:
    """The object behind ``"module:attribute"`` (other values are returned unchanged)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    if not attr:
        raise SpecError(f"task reference {ref!r} must look like 'package.module:attribute'")
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise SpecError(f"task reference {ref!r}: module {exc.name!r} is not available") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SpecError(f"task reference {ref!r}: {module} has no attribute {attr!r}") from None
    return obj


def ref_of(fn: Callable[..., Any] | str) -> str:
    """A ``module:qualname`` reference a worker process can import."""
    if isinstance(fn, str):
        return fn
    qual = getattr(fn, "__qualname__", "")
    if "<" in qual or not getattr(fn, "__module__", None):
        raise SpecError(f"task function {fn!r} must be a module-level function (workers import it)")
    return f"{fn.__module__}:{qual}"


@dataclass(frozen=True, slots=True)
class Task:
    """A registered task (see the module docstring for the meaning of each part)."""

    kind: str
    run: str
    sections: Ref
    cost: Ref | None = None
    metrics: tuple[str, ...] | str | None = None
    version: str = "1"
    doc: str = ""
    report: Ref | None = None
    export: Ref | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def validators(self) -> dict[str, Callable[..., dict]]:
        """Section name → validator, imported on first use."""
        if "sections" not in self._cache:
            secs = resolve(self.sections)
            if not isinstance(secs, Mapping):
                raise SpecError(f"task {self.kind!r}: sections must be a mapping of section → validator")
            self._cache["sections"] = dict(secs)
        return self._cache["sections"]

    def metric_names(self) -> tuple[str, ...] | None:
        """Names of the metrics ``run`` returns, or None when the task does not declare them."""
        return None if self.metrics is None else tuple(resolve(self.metrics))

    def estimate_seconds(self, point: dict) -> float | None:
        """Rough single-core seconds for one point, or None without a cost model."""
        if self.cost is None:
            return None
        return float(resolve(self.cost)(point))


TASKS: dict[str, Task] = {}


def register_task(kind: str, run: Callable[..., Any] | str, *, sections: Ref,
                  cost: Ref | None = None, metrics: tuple[str, ...] | list[str] | str | None = None,
                  version: str = "1", doc: str = "", report: Ref | None = None,
                  export: Ref | None = None) -> Task:
    """Register (or replace) the task ``kind``; returns it.

    ``run`` is a module-level function or a ``"module:function"`` reference; the reference is
    what a worker imports, so the function must be importable where the study runs.
    """
    if not kind or not isinstance(kind, str):
        raise SpecError(f"task kind must be a non-empty string, got {kind!r}")
    task = Task(kind=kind, run=ref_of(run), sections=sections, cost=cost,
                metrics=metrics if metrics is None or isinstance(metrics, str) else tuple(metrics),
                version=str(version), doc=doc, report=report, export=export)
    TASKS[kind] = task
    return task


def get_task(kind: str) -> Task:
    """The task registered as ``kind``; :class:`SpecError` with a did-you-mean otherwise."""
    if not isinstance(kind, str):
        raise SpecError(f"task.kind must be one task name (a string such as \"ir_drop\"), got {kind!r}; "
                        f"registered: {', '.join(TASKS)}")
    try:
        return TASKS[kind]
    except KeyError:
        raise SpecError(f"task.kind {kind!r} is not a registered task{did_you_mean(kind, TASKS)}") from None


def _jsonable(name: str, value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None  # NaN/inf have no JSON spelling: stored as null
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        return _jsonable(name, value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(name, v) for v in value]
    raise SpecError(f"metric {name!r} must be a number, a string or a (nested) list, got {type(value).__name__}")


def run_point(point: dict, run: str | None = None) -> dict[str, Any]:
    """Metrics of one resolved point: the task's ``run`` (or the ``run`` reference given)."""
    fn = resolve(run or get_task(point["task"]["kind"]).run)
    metrics = fn(point)
    if not isinstance(metrics, Mapping):
        raise SpecError(f"task {point['task']['kind']!r} returned {type(metrics).__name__}, expected a dict of metrics")
    return {str(k): _jsonable(str(k), v) for k, v in metrics.items()}


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of what computes a point, recorded with each result."""
    import scipy

    import cosim

    out = {"cosim": cosim.__version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__}
    try:
        import distributed

        out["distributed"] = distributed.__version__
    except ImportError:  # the in-process loop needs no Dask
        pass
    return out


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, with the innermost frame, for the store's error column."""
    msg = " ".join(str(exc).split()) or "(no message)"
    tb = traceback.extract_tb(getattr(exc, "__traceback__", None))
    where = f" [{os.path.basename(tb[-1].filename)}:{tb[-1].lineno}]" if tb else ""
    return f"{type(exc).__name__}: {msg}{where}"


def execute_point(point: dict, run: str | None = None) -> dict[str, Any]:
    """Run one point and report how it went; a point's own exception becomes ``status=failed``.

    Returns ``{"status", "metrics", "error", "started", "finished", "seconds", "host",
    "versions"}`` (times in Unix seconds and seconds). Worker deaths are not caught here: Dask
    reschedules such a point on another worker.
    """
    started = time.time()
    t0 = time.perf_counter()
    try:
        metrics, error, status = run_point(point, run), None, "done"
    except Exception as exc:  # a point's failure is data, not a crash of the study
        log.debug("point failed", exc_info=True)
        metrics, error, status = None, one_line(exc), "failed"
    return {"status": status, "metrics": metrics, "error": error, "started": started,
            "finished": time.time(), "seconds": time.perf_counter() - t0,
            "host": f"{socket.gethostname()}:{os.getpid()}", "versions": versions()}


register_task("ir_drop", run="cosim.study.irdrop:run_ir_drop", sections="cosim.study.irdrop:SECTIONS",
              cost="cosim.study.irdrop:estimate_seconds", metrics="cosim.study.irdrop:METRICS",
              report="cosim.study.irdrop:report", export="cosim.study.export:export_ir_drop",
              doc="worst/mean IR-drop error and cell-voltage loss of a parasitic read")
register_task("train", run="cosim.study.training:run_training_point", sections="cosim.train.config:STUDY_SECTIONS",
              cost="cosim.study.training:estimate_seconds", metrics="cosim.study.training:METRICS",
              report="cosim.study.training:report", export="cosim.study.export:export_train",
              doc="in-situ training of a network on tiles: accuracy (ideal and parasitic reads), pulses, convergence")
register_task("inference", run="cosim.study.inference:run_inference_point", sections="cosim.study.inference:SECTIONS",
              cost="cosim.study.inference:estimate_seconds", metrics="cosim.study.inference:METRICS",
              report="cosim.study.inference_report:report", export="cosim.study.inference:export_inference",
              doc="ex-situ deployment of a trained (ONNX) network onto tiles: accuracy, programming cost, IR drop per tile")
