"""The ``ir_drop`` study task: how far a parasitic read strays from the ideal product.

For one point: draw an N×M conductance matrix (seeded) in the device window, read a batch of
random input vectors through the nodal engine (wires, drivers, sense amplifiers) and through the
ideal engine (I = V·G), and report

- ``ir_err_max`` / ``ir_err_mean``: worst and mean relative error of the output currents,
  |I_parasitic − I_ideal| / |I_ideal| over every column and input vector (unitless; outputs with
  |I_ideal| below 1e-9 of the largest are left out, since a relative error of ~0 A is noise);
- with a nonlinear ``array.cell`` (device, 1S1R, 1T1R-mos: ``device.card`` required, the drawn
  conductances being the devices' read conductances at the card's v_read), both reads follow
  the cells' I–V: the parasitic one by Newton, the ideal one with each cell at its applied
  voltage (selector or transistor included), so the error is the wires' alone;
- ``v_cell_min`` / ``v_cell_mean``: in the worst-case read (every row driven at ``v_read``, the
  pattern that draws the most current), the voltage across each cell (row node − column node;
  for 1T1R the device and its access transistor together) as a fraction of the applied
  v_read − v_sense (unitless, 1 = no loss);
- ``loss_map``: that read's cell-voltage loss 1 − fraction, block-averaged down to at most
  64×64, for the report's heat map;
- ``i_ideal_max`` (A), ``solve_time`` (s, assembly + factorisation + batch solve) and
  ``kcl_residual`` (relative, unitless).
"""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache

import numpy as np

from cosim.array.cells import access_card_for, check_cell_fields
from cosim.array.tile import ArraySpec
from cosim.catalog import METHODS, NONLINEAR_CELLS
from cosim.errors import InputError, SpecError
from cosim.schema import Field, Section, fields_of

log = logging.getLogger(__name__)

MAP_MAX = 64  # the loss map is block-averaged down to at most MAP_MAX × MAP_MAX
METRICS = ("ir_err_max", "ir_err_mean", "v_cell_min", "v_cell_mean", "i_ideal_max", "solve_time",
           "kcl_residual", "loss_map")


def _array(values: dict, name: str) -> dict:
    size, rows, cols = values.pop("size"), values["rows"], values["cols"]
    if size is not None:
        if rows is not None or cols is not None:
            raise SpecError(f"{name}.size sets rows and cols together; give either size or rows/cols")
        values["rows"] = values["cols"] = size
    elif rows is None or cols is None:
        raise SpecError(f"{name}.size (or both {name}.rows and {name}.cols) is required")
    r_wire = values.pop("r_wire")
    if r_wire is not None:
        if values["r_row"] is not None or values["r_col"] is not None:
            raise SpecError(f"{name}.r_wire sets r_row and r_col together; give either r_wire or r_row/r_col")
        values["r_row"] = values["r_col"] = r_wire
    values["r_row"] = values["r_row"] or 0.0
    values["r_col"] = values["r_col"] or 0.0
    check_cell_fields(values["cell"], values["access_card"], values["v_gate"], name)
    if values["cell"] in NONLINEAR_CELLS:
        access_card_for(values["cell"], values["access_card"], values["v_gate"])  # the card exists and fits
    return values


def card_window(path: str) -> tuple[float, float]:
    """(g_min, g_max) in S of a device card, from the device layer's nominal pulse table.

    The hook for ``device.card``: it needs ``cosim.devices.load_card`` and ``PulseTable``.
    Cached per file version, since every grid point of a study resolves the same card.
    """
    st = os.stat(path)
    return _card_window(path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=32)
def _card_window(path: str, mtime_ns: int, size: int) -> tuple[float, float]:
    try:
        from cosim.devices import PulseTable, load_card
    except ImportError:
        raise SpecError(f"device.card {path!r}: reading device cards needs cosim.devices.load_card "
                        "and PulseTable, which this build does not have yet; give device.g_min and "
                        "device.g_max instead") from None
    table = PulseTable.from_card(load_card(path))
    return float(table.g_min), float(table.g_max)


def _device(values: dict, name: str) -> dict:
    if values["card"] is not None:
        if values["g_min"] is not None or values["g_max"] is not None:
            raise SpecError(f"{name}.card sets the conductance window; drop {name}.g_min/{name}.g_max")
        values["g_min"], values["g_max"] = card_window(values["card"])
    values["g_min"] = 1e-6 if values["g_min"] is None else values["g_min"]
    values["g_max"] = 1e-5 if values["g_max"] is None else values["g_max"]
    if not values["g_max"] > values["g_min"]:
        raise SpecError(f"{name}.g_max must exceed {name}.g_min, got {values['g_max']!r} ≤ {values['g_min']!r} S")
    if values["distribution"] == "loguniform" and values["g_min"] <= 0:
        raise SpecError(f"{name}.g_min must be > 0 S for a loguniform distribution, got {values['g_min']!r}")
    return values


def _solver(values: dict, name: str) -> dict:
    from cosim.circuit import SolverOptions

    SolverOptions(engine="nodal", method=values["method"], rtol=values["rtol"])  # validates
    return values


def _array_fields() -> dict[str, Field]:
    """The tile's array fields (one declaration, :data:`cosim.catalog.ARRAY_FIELDS`), with the
    size and the wires given as shorthands: ``size`` for rows = cols, ``r_wire`` for both wires."""
    fields = fields_of(ArraySpec)
    size = fields["rows"].replace(default=None, doc="rows = cols of a square array")
    return {"size": size, "rows": fields["rows"].replace(default=None), "cols": fields["cols"].replace(default=None),
            "r_wire": fields["r_row"].replace(default=None, doc="row and column wire resistance per segment"),
            **{k: f.replace(default=None) if k in ("r_row", "r_col") else f
               for k, f in fields.items() if k not in ("rows", "cols")}}


SECTIONS = {
    "array": Section("array", _array_fields(), normalize=_array),
    "device": Section("device", {
        "g_min": Field(type="float", default=None, minimum=0.0, unit="S", doc="lowest conductance"),
        "g_max": Field(type="float", default=None, minimum=0.0, unit="S", doc="highest conductance"),
        "distribution": Field(type="str", default="uniform", choices=("uniform", "loguniform")),
        "card": Field(type="path", default=None, doc="device card whose window sets g_min/g_max"),
    }, normalize=_device),
    "read": Section("read", {
        "batch": Field(type="int", default=16, minimum=1, doc="input vectors per point"),
        "v_read": Field(type="float", default=0.2, minimum=0.0, exclusive_min=True, unit="V",
                        doc="largest row input voltage"),
        "inputs": Field(type="str", default="uniform", choices=("uniform", "binary", "full"),
                        doc="uniform in [0, v_read], 0/v_read at random, or every row at v_read"),
    }),
    "solver": Section("solver", {
        "method": Field(type="str", default="auto", choices=METHODS),
        "rtol": Field(type="float", default=1e-10, minimum=0.0, exclusive_min=True),
    }, normalize=_solver),
}


def estimate_seconds(point: dict) -> float:
    """Rough single-core seconds: sparse LU grows ~cells^1.5, each solve ~cells^1.2.

    Fitted to scipy ``splu`` (DESIGN.md §5; benchmarks/bench_scale.py part "ir" measures it);
    the estimate only has to tell a one-minute study from a one-day one.
    """
    cells = point["array"]["rows"] * point["array"]["cols"]
    return 0.05 + 3.5e-8 * cells ** 1.55 + point["read"]["batch"] * 4e-8 * cells ** 1.2


def draw_conductances(rng: np.random.Generator, shape: tuple[int, int], device: dict) -> np.ndarray:
    """Conductances in S drawn uniformly (or log-uniformly) in [g_min, g_max]."""
    lo, hi = device["g_min"], device["g_max"]
    if device["distribution"] == "loguniform":
        return np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))
    return rng.uniform(lo, hi, size=shape)


def draw_inputs(rng: np.random.Generator, batch: int, rows: int, read: dict) -> np.ndarray:
    """(batch, rows) row voltages in V for the chosen input pattern."""
    v = read["v_read"]
    if read["inputs"] == "full":
        return np.full((batch, rows), v)
    if read["inputs"] == "binary":
        return v * (rng.random((batch, rows)) < 0.5)
    return rng.uniform(0.0, v, size=(batch, rows))


def block_mean(a: np.ndarray, max_shape: tuple[int, int]) -> np.ndarray:
    """``a`` averaged over near-equal blocks so that it is at most ``max_shape``."""
    out = a
    for axis, limit in enumerate(max_shape):
        n = out.shape[axis]
        if n > limit:
            edges = np.linspace(0, n, limit + 1).round().astype(int)
            sums = np.add.reduceat(out, edges[:-1], axis=axis)
            counts = np.diff(edges).reshape([-1 if k == axis else 1 for k in range(out.ndim)])
            out = sums / counts
    return out


def ir_drop_metrics(spec, inputs: np.ndarray, v_full: float, *, method: str = "auto",
                    rtol: float = 1e-10) -> dict:
    """The metrics of the module docstring for one spec, a (B, N) batch of inputs in V and the
    worst-case read voltage ``v_full`` in V (every row driven at it)."""
    from cosim.circuit import SolverOptions, build_circuit, prepare

    options = SolverOptions(engine="nodal", method=method, rtol=rtol)
    t0 = time.perf_counter()
    circuit = build_circuit(spec)
    prepared = prepare(circuit, options)
    res = prepared.solve(inputs)
    solve_time = time.perf_counter() - t0
    ideal = prepare(circuit, options.replace(engine="ideal")).solve(inputs).currents

    scale = np.abs(ideal).max()
    keep = np.abs(ideal) > 1e-9 * scale if scale > 0 else np.zeros(ideal.shape, dtype=bool)
    rel = np.abs(res.currents - ideal)[keep] / np.abs(ideal)[keep]

    n, m = spec.shape
    lay = circuit.layout
    full = prepared.solve(np.full((1, n), v_full), want_nodes=True)
    nodes = full.node_voltages[0]
    v_cell = nodes[lay.row_node0:lay.row_node0 + n * m] - nodes[lay.col_node0:lay.col_node0 + n * m]
    frac = v_cell.reshape(n, m) / (v_full - spec.v_sense)
    return {
        "ir_err_max": float(rel.max()) if rel.size else float("nan"),
        "ir_err_mean": float(rel.mean()) if rel.size else float("nan"),
        "v_cell_min": float(frac.min()),
        "v_cell_mean": float(frac.mean()),
        "i_ideal_max": float(scale),
        "solve_time": solve_time,
        "kcl_residual": float(max(res.residual, full.residual)),
        "loss_map": block_mean(1.0 - frac, (MAP_MAX, MAP_MAX)),
    }


def point_array(point: dict):
    """The exact array and inputs of a resolved ``ir_drop`` point: (CrossbarSpec, (B, N) volts).

    Seeded, so the array a study measured can be rebuilt later, e.g. to write its netlist.
    """
    a, dev, rd = point["array"], point["device"], point["read"]
    rng = np.random.default_rng(point["seed"])
    g = draw_conductances(rng, (a["rows"], a["cols"]), dev)
    inputs = draw_inputs(rng, rd["batch"], a["rows"], rd)
    array = ArraySpec(**{k: a[k] for k in fields_of(ArraySpec)})
    law = None
    if array.nonlinear:
        if dev["card"] is None:
            raise SpecError(f"array.cell {array.cell!r} reads the devices' own I-V: give device.card "
                            "(the device whose window the conductances are drawn in)")
        from cosim.array.cells import law_from_conductances
        from cosim.devices import load_card

        law = law_from_conductances(g, load_card(dev["card"]))
    return array.crossbar(g, law), inputs


def run_ir_drop(point: dict) -> dict:
    """Metrics of one resolved ``ir_drop`` point (see the module docstring)."""
    spec, inputs = point_array(point)
    a, rd, sol = point["array"], point["read"], point["solver"]
    log.debug("ir_drop %d×%d r_row=%g r_col=%g", a["rows"], a["cols"], a["r_row"], a["r_col"])
    return ir_drop_metrics(spec, inputs, rd["v_read"], method=sol["method"], rtol=sol["rtol"])


# -- the report's section and the export of one point -------------------------------------------
NO_IR_DROP = "no IR-drop points in this study"
_IR_REPORT = ("ir_err_max", "ir_err_mean", "v_cell_min", "v_cell_mean", "solve_time")


def _heatmap_record(ctx):
    if ctx.point is not None:
        rec = next((r for r in ctx.done if r["key"] == ctx.point), None)
        if rec is None or not isinstance(rec.get("loss_map"), list):
            status = next((r["status"] for r in ctx.records if r["key"] == ctx.point), "?")
            raise InputError(f"point {ctx.point!r} has no cell-voltage loss map (status {status}); "
                             "pick a finished ir_drop point")
        return rec
    with_map = [r for r in ctx.done if isinstance(r.get("loss_map"), list)]
    if not with_map:
        return None
    return max(with_map, key=lambda r: (r.get("ir_err_max") or 0.0, r["key"]))


def report(ctx) -> str:
    """The report's IR-drop sections (a :class:`~cosim.study.report.ReportContext` hook): error
    figures and table (tables/ir_drop.csv), and the cell-voltage loss map of one point."""
    from cosim.study import figures as F
    from cosim.study.tables import is_number, seed_stats

    parts = ["<h2>IR drop</h2>"]
    ir_pts = [r for r in ctx.done if is_number(r.get("ir_err_max"))]
    if ir_pts:
        grid = ctx.grid
        ir_metrics = [m for m in _IR_REPORT if any(is_number(r.get(m)) for r in ir_pts)]
        stats = seed_stats(ir_pts, grid, ir_metrics)
        ctx.csv("ir_drop", stats, [*grid, *(f"{m}_{s}" for m in ir_metrics for s in ("mean", "std")),
                                   f"n_{ir_metrics[0]}"])
        parts.append("<p>Relative error of the output currents of a parasitic read against the ideal "
                     "product I = V·G over a batch of random inputs, and the voltage left across each cell "
                     "when every row is driven. Error bars: one standard deviation over seeds.</p>")
        for fname, fn, alt in (("ir_vs_size", F.ir_vs_size, "IR-drop error vs array size"),
                               ("ir_vs_wire", F.ir_vs_wire, "IR-drop error and lowest cell voltage vs wire resistance")):
            fig = fn(ir_pts)
            if fig is not None:
                parts.append(ctx.figure(fig, fname, alt))
        shown = [{**s, **{f"{m}_pct": 100 * s[f"{m}_mean"] for m in ir_metrics if m != "solve_time"}} for s in stats]
        pct = [m for m in ir_metrics if m != "solve_time"]
        parts.append(ctx.table(shown, [*grid, *(f"{m}_pct" for m in pct), "solve_time_mean", f"n_{ir_metrics[0]}"],
                               [*grid, *(f"{m} (%)" for m in pct), "solve time (s)", "seeds"]))
    else:
        parts.append(ctx.note(NO_IR_DROP))

    parts.append("<h2>Cell-voltage loss map</h2>")
    heat = _heatmap_record(ctx)
    if heat is not None:
        ctx.files.heatmap_point = heat["key"]
        parts.append(ctx.figure(F.loss_heatmap(heat), "loss_map", "cell-voltage loss across the array"))
        parts.append(f"<p>Point <code>{heat['key']}</code> (choose another with <code>--point KEY</code>); "
                     "each pixel is the mean over a block of cells when the array is larger than 64×64.</p>")
    else:
        parts.append(ctx.note("no point of this study carries a cell-voltage loss map"))
    return "".join(parts)
