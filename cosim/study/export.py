"""The points a study's ``[export]`` table picks, the arrays behind them, and their tape-out.

``cosim export`` (tape-out) finds a stored point (:func:`find_point`) and writes its netlists
with :func:`export_point`:

- an ``ir_drop`` point defines one array: :func:`point_array` rebuilds the exact seeded
  conductances, wires and inputs the study measured, and the first input vector drives the
  bench;
- a ``train`` point stores only metrics, so its seeded training runs again (same seed → same
  device draws, pulses and conductances; the re-run's pulses and accuracy are checked against
  the stored metrics) and every tile of the trained network is exported by
  :func:`export_training`, the path ``cosim train --export-netlists`` takes too.

A trained network's bench inputs are the DAC voltages of the first test sample as each tile saw
them in a hardware forward pass; a tile that sample drives at 0 V on every row (blank pixels)
gets a unit read instead (every used row at v_read), so its currents are not all zero.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.errors import InputError
from cosim.study.config import ExportSpec
from cosim.study.grid import flatten
from cosim.study.store import PointRow, Store
from cosim.study.tasks import TASKS, get_task, resolve

if TYPE_CHECKING:  # the array layer (and scipy under it) loads only when something is exported
    from cosim.array.tapeout import TapeoutFiles, TileExport

log = logging.getLogger(__name__)


def exportable() -> tuple[str, ...]:
    """The task kinds whose points ``cosim export`` can write (they registered an ``export`` hook)."""
    return tuple(kind for kind, task in TASKS.items() if task.export is not None)
SIDES = {"+": "plus", "-": "minus"}


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


def find_point(store_path: str | Path, key: str) -> PointRow:
    """The finished, exportable point of a store whose key starts with ``key``."""
    with Store(store_path, create=False) as store:
        row = store.get(key)
    kind = row.config.get("task", {}).get("kind")
    if row.status == "failed":
        raise InputError(f"point {row.key[:12]} failed ({row.error or 'no error text'}); nothing to export")
    if row.status != "done":
        raise InputError(f"point {row.key[:12]} is {row.status}; finish the study (cosim sweep) before exporting it")
    if kind not in exportable():
        raise InputError(f"point {row.key[:12]} is a {kind!r} point; export knows {', '.join(exportable())} points")
    return row


# -- tiles of a trained network ------------------------------------------------------------------
def tile_voltages(layer, x: np.ndarray | None) -> tuple[list[np.ndarray], list[str]]:
    """Per tile pair of a :class:`~cosim.array.TiledLayer`, the row voltages (V) its forward read
    applies for one layer input ``x`` (n_in,) (:meth:`~cosim.array.TiledLayer.row_voltages`), and
    a note; a pair driven at 0 V everywhere (or ``x`` None) gets a unit read (used rows at v_read)."""
    conv = layer.converters
    x = np.zeros((1, layer.shape[0])) if x is None else np.asarray(x, dtype=float).reshape(1, -1)
    volts, notes = [], []
    for p, v in zip(layer.pairs, layer.row_voltages(x)):
        v, r = v[0], p.block.shape[0]
        note = "first test sample (the first vector this layer read for it), DAC voltages of the rows"
        if not v.any():
            v[:r] = conv.v_read
            note = f"unit read: used rows 0..{r - 1} at v_read = {conv.v_read:g} V (the first test sample drives 0 V)"
        volts.append(v)
        notes.append(note)
    return volts, notes


def layer_tiles(layer, index: int, x: np.ndarray | None, pulses: dict | None = None) -> list[TileExport]:
    """:class:`TileExport` of every tile of a trained layer (layer number ``index``) with its true
    conductances, bench input from ``x`` (:func:`tile_voltages`) and, per cell, device role,
    weight index, model state, fault and pulse counts (``pulses[side] = (set, reset, program)``,
    each (n_in, n_out), side "+"/"-")."""
    from cosim.array.tapeout import TileExport

    lname = layer.name or f"L{index}"
    volts, notes = tile_voltages(layer, x)
    out = []
    for p, v, note in zip(layer.pairs, volts, notes):
        b = p.block
        r, k = b.shape
        for side, tile in (("+", p.plus), ("-", p.minus)):
            if tile is None:
                continue
            n, m = tile.shape
            role = np.full((n, m), "unused", dtype=object)
            role[:r, :k] = SIDES[side]
            if layer.reference:
                role[:, layer.ref_col] = "ref"
            w_row = np.full((n, m), -1)
            w_col = np.full((n, m), -1)
            w_row[:r, :k] = np.arange(b.rows.start, b.rows.stop)[:, None]
            w_col[:r, :k] = np.arange(b.cols.start, b.cols.stop)[None, :]
            pop = tile.population
            fault = np.where(pop.stuck_on, "stuck_on", np.where(pop.stuck_off, "stuck_off",
                                                                 np.where(pop.dead, "dead", ""))).reshape(n, m)
            cols: dict[str, np.ndarray] = {"device": role, "weight_row": w_row, "weight_col": w_col,
                                           "state": pop.state.astype(float), "fault": fault}
            for name, arr in zip(("pulses_set", "pulses_reset", "program_pulses"), (pulses or {}).get(side, ())):
                a = np.zeros((n, m), dtype=np.int64)
                a[:r, :k] = np.asarray(arr)[b.rows, b.cols]
                cols[name] = a
            nets = tuple(f"{lname.lower()}_x{b.rows.start + i}" if i < r else None for i in range(n))
            out.append(TileExport(name=f"{lname.lower()}_b{b.bi}_{b.bj}_{SIDES[side]}",
                                  spec=tile.crossbar_spec(), inputs=v, row_nets=nets,
                                  layer=lname, input_note=note, devices=cols))
    return out


def training_tiles(result) -> list[TileExport]:
    """Every tile of a :class:`~cosim.train.TrainResult`, benches driven by the first test sample."""
    from cosim.train.networks.base import RecordingMatVec

    rec = [RecordingMatVec(layer) for layer in result.layers]
    ranges = [(p.fwd_range, p.bwd_range) for layer in result.layers for p in layer.pairs]
    result.network.predict(rec, result.data.x_test[:1])
    for p, (f, b) in zip((p for layer in result.layers for p in layer.pairs), ranges):
        p.fwd_range, p.bwd_range = f, b  # the probe read must not calibrate the ADCs
    plog = result.pulse_log
    tiles = []
    for li, (layer, r) in enumerate(zip(result.layers, rec)):
        pulses = {s: (plog.train_set[s][li], plog.train_reset[s][li], plog.program[s][li]) for s in SIDES}
        tiles += layer_tiles(layer, li, r.x[0], pulses)
    return tiles


def export_training(result, output: str | Path, *, force: bool = False, info: dict | None = None) -> TapeoutFiles:
    """Tape-out of a trained network (see the module docstring) into ``output``."""
    from cosim.array.tapeout import write_tapeout

    cfg = result.config
    m = result.metrics
    shapes = ", ".join(f"{a}×{b}" for a, b in (layer.shape for layer in result.layers))
    details = {"network": f"{cfg.network.kind}, weight layers {shapes} (bias row included)",
               "array": array_line(cfg.array.spec_fields()),
               "optimizer": cfg.optimizer.name,
               "seed": cfg.train.seed, "engine during training": cfg.solver.engine,
               "mapping": cfg.array.mapping, "final test accuracy": m.get("final_test_acc"),
               "training pulses": m.get("pulses_total"), **(info or {})}
    pop = result.layers[0].pairs[0].plus.population
    unit = pop.model.state_unit or "unitless"
    details["devices"] = f"card {pop.card.name}, model {pop.model.name}, state {pop.model.state_name} ({unit})"
    title = f"cosim tape-out: {cfg.network.kind} on {cfg.array.rows}x{cfg.array.cols} tiles"
    return write_tapeout(training_tiles(result), output, force=force, title=title, info=details)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0)
    return a == b


def export_point(store_path: str | Path, key: str, output: str | Path, *, force: bool = False
                 ) -> tuple[TapeoutFiles, list[str]]:
    """Tape-out of the stored point ``key`` (a unique prefix) into ``output``; returns the files and
    notes for the user (e.g. a re-run that did not reproduce the stored metrics)."""
    from cosim.array.tapeout import check_output

    row = find_point(store_path, key)
    check_output(output, force, hint="--force replaces it")  # before the (possibly long) re-run
    kind = row.config["task"]["kind"]
    info = {"store": str(store_path), "point": row.key, "task": kind, "seed": row.config.get("seed")}
    return resolve(get_task(kind).export)(row, output, force=force, info=info)


def export_ir_drop(row: PointRow, output: str | Path, *, force: bool, info: dict) -> tuple[TapeoutFiles, list[str]]:
    """The ``ir_drop`` task's export hook: the point's one seeded array and its first input."""
    from cosim.array.tapeout import TileExport, write_tapeout

    spec, inputs = point_array(row)
    n = spec.n_rows
    tile = TileExport(name="array", spec=spec, inputs=np.asarray(inputs[0], dtype=float),
                      row_nets=tuple(f"x{i}" for i in range(n)),
                      input_note="the study's first input vector of this point",
                      devices={"device": np.full(spec.shape, "cell", dtype=object)})
    title = f"cosim tape-out: ir_drop point {row.key[:12]} ({n}x{spec.n_cols})"
    info = {**info, "array": array_line(row.config["array"])}
    return write_tapeout([tile], output, force=force, title=title, info=info), []


def export_train(row: PointRow, output: str | Path, *, force: bool, info: dict) -> tuple[TapeoutFiles, list[str]]:
    """The ``train`` task's export hook: the point trained again from its seed, every tile of
    the network; notes say when the re-run did not reproduce the stored metrics."""
    from cosim.study.training import point_config
    from cosim.train.loop import run_training

    result = run_training(point_config(row.config), progress=False, output_dir=None)
    stored = row.metrics or {}
    notes = [f"re-run differs from the stored point: {k} {stored.get(k)!r} stored, {result.metrics.get(k)!r} now"
             for k in ("pulses_total", "final_test_acc") if k in stored and not _same(stored[k], result.metrics.get(k))]
    info["re-run reproduced the stored metrics"] = "no" if notes else "yes (pulses_total, final_test_acc)"
    for note in notes:
        log.warning("%s", note)
    return export_training(result, output, force=force, info=info), notes


def array_line(a: dict) -> str:
    """One line describing an ``[array]`` section: size, cell and the series resistances (Ω)."""
    res = ", ".join(f"{k} {a.get(k, 0.0):g} Ω" for k in ("r_row", "r_col", "r_driver", "r_sense"))
    extra = f", r_access {a.get('r_access', 0.0):g} Ω" if a.get("cell") == "1T1R" else ""
    return f"{a['rows']}x{a['cols']} {a.get('cell', '0T1R')}, drive {a.get('drive', 'left')}, " \
           f"sense {a.get('sense', 'bottom')}, {res}{extra}"


def describe_point(row: PointRow) -> str:
    """One line for ``cosim export --list``: key prefix, task, status and the defining fields."""
    c = row.config
    a = c.get("array", {})
    parts = [row.key[:12], c.get("task", {}).get("kind", "?"), row.status,
             f"{a.get('rows')}x{a.get('cols')}", f"r_row {a.get('r_row')} Ω", f"r_col {a.get('r_col')} Ω"]
    if "optimizer" in c:
        net = c.get("network", {})
        hidden = net.get("hidden")
        parts += [f"{net.get('kind')}" + (f" hidden {'-'.join(map(str, hidden))}" if hidden else ""),
                  f"optimizer {c['optimizer'].get('name')}", f"engine {c.get('solver', {}).get('engine')}"]
    parts.append(f"seed {c.get('seed')}")
    return "  ".join(str(p) for p in parts)
