"""Study configs (TOML): the grid, the seeds, the metrics to keep and what to export.

A study file has three reserved tables and one table per section its task reads::

    [study]                 # name, seeds (a count or a list), metrics to keep, zip groups
    [task]                  # kind = "ir_drop" | "train" | … (the registry in tasks.py)
    [export]                # netlists of chosen points, for `cosim export`
    [array] [device] …      # the task's sections; any leaf given as a list is a grid axis
    [[optimizer]] …         # an array of tables: whole alternative sections, one grid axis

This module checks the reserved tables and the section names; :func:`cosim.study.grid.plan`
expands the grid and runs every section through the validator its task registered, so every
mistake surfaces, with the file and the dotted field, before any work starts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosim.circuit.netlist_write import WRITERS
from cosim.errors import SpecError
from cosim.guards import MAX_POINTS
from cosim.schema import SEED_MAX, Context, Field, Section, check_field, check_keys, did_you_mean, read_toml
from cosim.study.tasks import get_task

RESERVED = ("study", "task", "export")

_EXPORT = Section("export", {
    "netlists": Field(type="bool", default=False, doc="write SPICE netlists of the selected points"),
    "dialect": Field(type="str", default="ngspice", choices=tuple(WRITERS)),  # only what can be written
})  # export.where is a free table of dotted fields, checked against the points in grid.plan


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportSpec:
    """Which points' netlists to hand over, read by ``cosim export``.

    Attributes:
        netlists: write a netlist per selected point.
        dialect: SPICE dialect of the netlists.
        where: dotted field → value or list of values; a point is selected when every field
            matches (an empty mapping selects every point).
    """

    netlists: bool = False
    dialect: str = "ngspice"
    where: Mapping[str, Any] = None  # type: ignore[assignment]

    def matches(self, flat_point: Mapping[str, Any]) -> bool:
        """Whether a point, flattened to dotted keys, is selected."""
        for key, want in (self.where or {}).items():
            allowed = want if isinstance(want, list) else [want]
            if flat_point.get(key) not in allowed:
                return False
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class StudyConfig:
    """A parsed study file; ``sections`` still holds the grid axes as lists.

    Attributes:
        name: the study's name (defaults to the file's stem).
        kind: the task every point runs.
        sections: the task's sections as written (lists are grid axes).
        seeds: seeds every grid point is run with.
        zip: groups of dotted fields whose lists vary together instead of crossing.
        metrics: the metrics to keep in the store (None keeps all).
        export: netlist export selection.
        source: the file read (or "<dict>").
        base_dir: folder relative paths in the config are resolved from.
    """

    name: str
    kind: str
    sections: Mapping[str, Any]
    seeds: tuple[int, ...]
    zip: tuple[tuple[str, ...], ...] = ()
    metrics: tuple[str, ...] | None = None
    export: ExportSpec = ExportSpec()
    source: str = "<dict>"
    base_dir: Path = Path(".")

    @property
    def context(self) -> Context:
        return Context(base_dir=self.base_dir)


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # a count: at most a study's point limit (more could not be planned), checked before range()
        count = check_field("study.seeds", Field(type="int", minimum=1, maximum=MAX_POINTS), value)
        return tuple(range(count))
    if isinstance(value, list) and value:
        seeds = check_field("study.seeds", Field(type="list[int]", minimum=0, maximum=SEED_MAX), value)
        if len(set(seeds)) != len(seeds):
            raise SpecError(f"study.seeds lists a seed twice: {value!r}")
        return tuple(seeds)
    raise SpecError(f"study.seeds must be a count ≥ 1 or a non-empty list of integers, got {value!r}")


def _study_table(table: Any, default_name: str) -> dict:
    if not isinstance(table, Mapping):
        raise SpecError(f"[study] must be a table, got {table!r}")
    check_keys("study", table, ("name", "seeds", "metrics", "zip"))
    ctx = Context()
    out = {"name": check_field("study.name", Field(type="str"), table.get("name", default_name), ctx),
           "seeds": _seeds(table.get("seeds", 1)), "metrics": None, "zip": ()}
    if "metrics" in table:
        metrics = check_field("study.metrics", Field(type="list[str]"), table["metrics"], ctx)
        if not metrics:
            raise SpecError("study.metrics is empty; leave it out to keep every metric")
        out["metrics"] = tuple(metrics)
    if "zip" in table:
        groups = table["zip"]
        if not isinstance(groups, list) or not all(isinstance(g, list) and g for g in groups):
            raise SpecError(f"study.zip must be a list of lists of dotted fields, got {groups!r}")
        out["zip"] = tuple(tuple(check_field(f"study.zip[{k}]", Field(type="list[str]"), g, ctx))
                           for k, g in enumerate(groups))
    return out


def _export(table: Any) -> ExportSpec:
    if not isinstance(table, Mapping):
        raise SpecError(f"[export] must be a table, got {table!r}")
    check_keys("export", table, ("netlists", "dialect", "where"))
    where = table.get("where", {})
    if not isinstance(where, Mapping):
        raise SpecError(f"export.where must be a table of dotted field = value(s), got {where!r}")
    vals = _EXPORT({k: v for k, v in table.items() if k != "where"})
    return ExportSpec(netlists=vals["netlists"], dialect=vals["dialect"], where=dict(where))


def parse_study(doc: Mapping[str, Any], *, source: str = "<dict>", base_dir: Path | None = None) -> StudyConfig:
    """A :class:`StudyConfig` from a parsed TOML document; :class:`SpecError` on the first mistake."""
    if "task" not in doc or not isinstance(doc["task"], Mapping) or "kind" not in doc["task"]:
        raise SpecError("[task] kind is required (e.g. kind = \"ir_drop\")")
    check_keys("task", doc["task"], ("kind",))
    kind = doc["task"]["kind"]
    task = get_task(kind)
    validators = task.validators()
    for name, table in doc.items():
        if name in RESERVED:
            continue
        if name not in validators:
            raise SpecError(f"[{name}] is not a section of task {kind!r}"
                            f"{did_you_mean(name, [*validators, *RESERVED])}")
        if isinstance(table, list) and table and all(isinstance(t, Mapping) for t in table):
            continue  # [[name]] array of tables: whole alternative sections, one grid axis
        if not isinstance(table, Mapping):
            raise SpecError(f"{name} must be a table ([{name}]) or an array of tables ([[{name}]]), got {table!r}")
    study = _study_table(doc.get("study", {}), Path(source).stem if source != "<dict>" else "study")
    if study["metrics"] is not None and task.metric_names() is not None:
        known = task.metric_names()
        for metric in study["metrics"]:
            if metric not in known:
                raise SpecError(f"study.metrics: {metric!r} is not a metric of task {kind!r}"
                                f"{did_you_mean(metric, known)}")
    return StudyConfig(
        name=study["name"], kind=kind,
        sections={k: copy.deepcopy(v) for k, v in doc.items() if k not in RESERVED},
        seeds=study["seeds"], zip=study["zip"], metrics=study["metrics"],
        export=_export(doc.get("export", {})), source=source,
        base_dir=base_dir if base_dir is not None else Path.cwd(),
    )


def load_study(path: str | Path) -> StudyConfig:
    """Read and check a study TOML file; every error message starts with the file name."""
    path = Path(path)
    doc = read_toml(path, "study config")
    try:
        return parse_study(doc, source=str(path), base_dir=path.resolve().parent)
    except SpecError as exc:
        raise exc.prefixed(str(path)) from None
