"""Grid expansion: a study config → the list of resolved points, each with its key and cost.

Any leaf given as a list is an axis, and so is a section given as an array of tables
(``[[optimizer]]`` twice: two whole optimizer setups, each with its own options); axes cross (Cartesian product) except those named together
in a ``study.zip`` group, which advance in step; the result is crossed with the seeds (seeds
vary fastest). Each point is then run through its task's section validators, so a point is the
*resolved* config: defaults filled in, shorthands expanded, numbers normalised. Its key is the
sha256 of the point's canonical JSON plus a code-version salt, so equal configs share a key
however they were written, and a change of task version gives new keys. Null (off) fields are
left out of the key: a field added later with a null default keeps the keys of stored points
(:func:`renamed_keys` moves points stored under the earlier rule).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cosim
from cosim.errors import CosimError, SpecError
from cosim.guards import check_memory, check_points, read_bytes
from cosim.schema import did_you_mean
from cosim.study.config import StudyConfig
from cosim.study.tasks import Task, get_task

log = logging.getLogger(__name__)


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, shortest round-trip floats; NaN is refused."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise SpecError(f"a point holds a value JSON cannot store ({exc})") from None


def salt(task: Task) -> str:
    """The code version that salts point keys."""
    return f"cosim {cosim.__version__}; task {task.kind} v{task.version}"


def _without_nulls(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _without_nulls(v) for k, v in obj.items() if v is not None}
    return obj


def point_key(point: Mapping[str, Any], task: Task | None = None) -> str:
    """sha256 (hex) of the resolved point's canonical JSON without its null fields, and the
    code-version salt."""
    task = task or get_task(point["task"]["kind"])
    return _hash(_without_nulls(point), task)


def _hash(point: Mapping[str, Any], task: Task) -> str:
    return hashlib.sha256(f"{canonical_json(point)}\n{salt(task)}".encode()).hexdigest()


def renamed_keys(rows: Iterator[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, str]]:
    """(stored key, key today) of the stored points whose key was made by the earlier rule (null
    fields hashed too) under this code version: the same run, which must not run again because
    a field with a null default was added since. Points of other versions are left alone."""
    out = []
    for key, config in rows:
        try:
            task = get_task(config["task"]["kind"])
            now = point_key(config, task)
            if now != key and key == _hash(config, task):
                out.append((key, now))
        except (CosimError, KeyError, TypeError):
            continue  # a point of a task this version does not know keeps its key
    return out


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables → ``{"array.rows": 64, …}`` (lists are leaves)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _axes(config: StudyConfig, task: Task) -> dict[str, list]:
    """Dotted field → list of values, in the order the config lists them."""
    validators = task.validators()
    axes: dict[str, list] = {}
    for section, table in config.sections.items():
        if isinstance(table, list):  # [[section]]: each table is one value of the axis
            axes[section] = table
            continue
        vector = getattr(validators[section], "vector_fields", frozenset())
        for dotted, value in flatten(table).items():
            if not isinstance(value, list):
                continue
            inner = dotted.split(".", 1)[1] if "." in dotted else dotted
            if inner in vector and not (value and all(isinstance(v, list) for v in value)):
                continue  # a list-valued field given one value
            if not value:
                raise SpecError(f"{section}.{inner} is an empty list; a grid axis needs at least one value")
            axes[f"{section}.{inner}"] = value
    return axes


def _factors(config: StudyConfig, axes: dict[str, list]) -> list[list[dict[str, Any]]]:
    """The grid as factors to cross; a zip group is one factor of equal-length axes."""
    zipped: set[str] = set()
    factors = []
    for k, group in enumerate(config.zip):
        for name in group:
            if name not in axes:
                raise SpecError(f"study.zip[{k}] names {name!r}, which is not a list in the config"
                                f"{did_you_mean(name, axes)}")
            if name in zipped:
                raise SpecError(f"study.zip names {name!r} in two groups")
            zipped.add(name)
        lengths = {name: len(axes[name]) for name in group}
        if len(set(lengths.values())) > 1:
            raise SpecError(f"study.zip[{k}] needs lists of equal length, got "
                            + ", ".join(f"{n} ({n_})" for n, n_ in lengths.items()))
        factors.append([dict(zip(group, values)) for values in zip(*(axes[n] for n in group))])
    for name, values in axes.items():
        if name not in zipped:
            factors.append([{name: v} for v in values])
    return factors


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree[p]
    tree[leaf] = value


@dataclass(frozen=True, slots=True)
class Point:
    """One resolved grid point: its store key, config, and estimated single-core seconds."""

    key: str
    config: dict
    cost: float | None
    label: str  # the grid values that made it, for messages


@dataclass(frozen=True, slots=True)
class StudyPlan:
    """What a study will run, before anything runs."""

    config: StudyConfig
    task: Task
    points: list[Point]
    grid_size: int  # distinct grid points before seeds
    axes: dict[str, list]

    @property
    def cost(self) -> float | None:
        """Estimated single-core seconds of the whole study (None without a cost model)."""
        costs = [p.cost for p in self.points]
        return None if any(c is None for c in costs) else float(sum(costs))

    def summary(self, workers: int | None = None) -> str:
        """One line: point count and rough cost, e.g. for ``cosim sweep --dry-run``."""
        n_seeds = len(self.config.seeds)
        text = (f"study {self.config.name!r} (task {self.task.kind}): {len(self.points)} points = "
                f"{self.grid_size} grid point{'s' * (self.grid_size != 1)} × {n_seeds} seed{'s' * (n_seeds != 1)}")
        cost = self.cost
        if cost is None:
            return text + "; no cost model for this task"
        text += f"; estimated ≈ {_duration(cost)} of single-core compute"
        if workers and workers > 1:
            text += f" (≈ {_duration(cost / workers)} on {workers} workers)"
        return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def iter_grid(config: StudyConfig, task: Task) -> Iterator[tuple[str, dict]]:
    """(label, unresolved point) for every grid combination × seed."""
    factors = _factors(config, _axes(config, task))
    for combo in itertools.product(*factors):
        values = {k: v for part in combo for k, v in part.items()}
        label = ", ".join(f"{k}={v!r}" for k, v in values.items())
        for seed in config.seeds:
            point = copy.deepcopy(dict(config.sections))
            for dotted, v in values.items():
                _set(point, dotted, v)
            yield label, {**point, "task": {"kind": config.kind}, "seed": seed}


def resolve_point(raw: dict, task: Task, config: StudyConfig) -> dict:
    """``raw`` with every section run through its validator (missing sections get defaults)."""
    out = {"task": {"kind": task.kind}, "seed": raw["seed"]}
    for section, validate in task.validators().items():
        out[section] = validate(raw.get(section, {}), config.context)
    return out


def plan(config: StudyConfig) -> StudyPlan:
    """Expand and validate the whole grid; errors name the file, the field and the grid values."""
    task = get_task(config.kind)
    prefix = f"{config.source}: " if config.source != "<dict>" else ""
    try:
        axes = _axes(config, task)
        # Count before expanding: a million-point grid is refused in microseconds, not minutes.
        n_points = math.prod(len(f) for f in _factors(config, axes)) * len(config.seeds)
        check_points(n_points, f"study {config.name!r}")
        points: list[Point] = []
        seen: set[str] = set()
        labels: set[str] = set()
        for label, raw in iter_grid(config, task):
            try:
                resolved = resolve_point(raw, task, config)
            except SpecError as exc:
                raise SpecError(f"{exc}" + (f" (grid point {label})" if label else "")) from None
            labels.add(label)
            _check_point_memory(resolved, label)
            key = point_key(resolved, task)
            if key in seen:
                log.info("grid point %s duplicates an earlier one after resolution; run once", label)
                continue
            seen.add(key)
            points.append(Point(key=key, config=resolved, cost=task.estimate_seconds(resolved), label=label))
        _check_export(config, points)
    except SpecError as exc:
        raise SpecError(f"{prefix}{exc}") from None
    except CosimError as exc:  # a size guard's refusal
        raise type(exc)(f"{prefix}{exc}") from None
    return StudyPlan(config=config, task=task, points=points, grid_size=len(labels), axes=axes)


def _check_point_memory(point: dict, label: str) -> None:
    """Refuse a point whose array cannot fit in memory (a lower bound: one nodal read)."""
    array = point.get("array")
    if not isinstance(array, dict) or "rows" not in array or "cols" not in array:
        return
    batch = point.get("read", {}).get("batch", 1) if isinstance(point.get("read"), dict) else 1
    where = f" (grid point {label})" if label else ""
    check_memory(read_bytes(array["rows"], array["cols"], batch),
                 f"array.rows × array.cols = {array['rows']} × {array['cols']}{where}")


def _check_export(config: StudyConfig, points: list[Point]) -> None:
    where = config.export.where or {}
    if not where or not points:
        return
    fields = flatten(points[0].config)
    for key in where:
        if key not in fields:
            raise SpecError(f"export.where: {key!r} is not a field of the resolved points"
                            f"{did_you_mean(key, fields)}")
    if not any(config.export.matches(flatten(p.config)) for p in points):
        raise SpecError(f"export.where selects none of the {len(points)} points: {dict(where)!r}")
