"""The points a study's ``[export]`` table picks, and the arrays behind them.

``cosim export`` (tape-out) reads a store with :func:`selected_points` and rebuilds each picked
array with :func:`point_array` (for ``ir_drop`` points: the exact seeded conductances, wires
and inputs the study measured) before handing it to a netlist writer.
"""

from __future__ import annotations

from cosim.errors import InputError
from cosim.study.config import ExportSpec
from cosim.study.grid import flatten
from cosim.study.store import PointRow, Store


def export_spec(store: Store) -> ExportSpec:
    """The ``[export]`` selection the study was run with (defaults when it had none)."""
    meta = store.get_meta("export") or {}
    return ExportSpec(netlists=bool(meta.get("netlists", False)), dialect=meta.get("dialect", "ngspice"),
                      where=dict(meta.get("where") or {}))


def selected_points(store: Store, *, status: str = "done") -> list[PointRow]:
    """Stored points (``status``, done by default) that the study's ``export.where`` selects."""
    spec = export_spec(store)
    return [r for r in store.rows(status) if spec.matches(flatten(r.config))]


def point_array(row: PointRow):
    """(CrossbarSpec, inputs in V) of a stored point, for the tasks that define one."""
    kind = row.config.get("task", {}).get("kind")
    if kind != "ir_drop":
        raise InputError(f"point {row.key[:12]} is a {kind!r} point; only ir_drop points define one array")
    from cosim.study.irdrop import point_array as build

    return build(row.config)
