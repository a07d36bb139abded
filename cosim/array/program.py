"""Programming cells through the array's circuit: V/2, V/3 and row-parallel write schemes.

A write is a sequence of *steps*; a step is one pulse under one bias pattern:

- ``"v/2"`` / ``"v/3"``: one cell per step. Its row port is driven with the write voltage V, its
  column port held at 0 V (the sense side's virtual ground), and every other line biased: V/2 on
  all unselected rows and columns, or V/3 on unselected rows and 2V/3 on unselected columns
  (:attr:`CrossbarSpec.unselected`). Half-selected cells (one line selected) see V/2 or V/3;
  unselected cells see 0 or -V/3.
- ``"row-parallel"``: one row per step with all its target columns selected (one direction at a
  time); unselected lines biased by ``ProgramOptions.row_bias``.

Each step solves the circuit with the nodal engine (wire, driver and sense resistance; 1T1R
access transistors) to find the voltage every device really sees, row node minus column node
(mid node for 1T1R), and applies that voltage for one pulse to *every* device through the
population (:meth:`DevicePopulation.apply_voltage_pulses`), so IR drop weakens far writes and
half-selected cells are disturbed when their share of V crosses the model's threshold.

Choices, stated:

- By default one circuit solve per pulse, from the conductances before the pulse: within a
  pulse the voltages are frozen (``coupling="frozen"``, ``substeps=1``). That is accurate while
  a device's conductance is small against the wires' (the imprecise card's 1–100 µS devices on
  2.5 Ω segments, 32×32: 3e-4 of the travel off the converged answer) and overshoots when a device
  switches many-fold within one pulse through a large IR drop, because the frozen voltage is the
  high one of the pulse start: VTEAM's 50 Ω–1 kΩ defaults in a 3×3 array with 3–5 Ω wires end
  33 % of their travel off a fully coupled ngspice transient. Remedies, all tested against that
  transient: ``substeps=k`` re-solves k times per pulse (first order: 0.7 % at k = 8);
  ``coupling="heun"`` predicts the end-of-step voltages with a trial integration and applies the
  trapezoidal mean (second order: 6.6 % at k = 1, 0.07 % at k = 8; twice the solves);
  ``substeps="auto"`` with Heun sizes the sub-steps so the predicted voltage change of any moving
  device stays below ``v_rtol`` (0.02 % in that case). More than one sub-step needs flat-top
  pulses (rise = fall = 0) and a noise-free run, since c2c noise is defined per whole pulse;
  Heun's trial integration is noise-free, so Heun with one step works with noise.
- Devices with a non-ohmic I–V (Stanford–PKU's sinh) are solved exactly by the nonlinear Newton
  read (:func:`cosim.circuit.solvers.newton.read_nonlinear`: each step one line-block linear
  solve, certified to ``solver.rtol``) when the engine is nodal and the cells are 0T1R
  (``iv_solver="newton"``, the default); otherwise, or with ``iv_solver="chord"``, by the
  fixed-point iteration on their chord conductance at the voltage they see (``chord_rtol``), one
  full circuit solve per iteration, Anderson-mixed (:mod:`cosim.array.chord_iv`: the plain
  iteration oscillates when a device's conductance reacts strongly to its IR drop). Both reach the same voltages (tests/test_program.py, 1e-7);
  ``python benchmarks/bench_program.py --nonlinear`` counts the linear solves of each. Ohmic
  models converge at once either way. Stuck and dead devices keep their fixed read conductance.
- Fast path ``skip_inert``: a device whose state rate is exactly 0 at its flat-top voltage is
  not integrated. For every cosim model the rate at a fixed state is 0 at all smaller |V| of the
  same sign when it is 0 at the flat top (thresholds, field threshold, hard stops), so the
  device could not move; the tests prove equality with the path that integrates everyone.

Between pulses all lines return to 0 V, where every model is inert.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cosim.array.cells import population_law
from cosim.array.chord_iv import chord_fixed_point
from cosim.array.tile import ArraySpec
from cosim.catalog import NONLINEAR_CELLS
from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, prepare
from cosim.circuit.cells import Cell, Law, Ohmic, SeriesCell, Sinh
from cosim.circuit.solvers.newton import read_nonlinear
from cosim.devices import DevicePopulation
from cosim.errors import InputError, SpecError
from cosim.schema import check_fields, param

log = logging.getLogger(__name__)

Scheme = Literal["v/2", "v/3", "row-parallel"]
SCHEMES = ("v/2", "v/3", "row-parallel")
MOVED = 1e-3  # |ΔG| above this fraction of the nominal window counts as a disturbed cell


@dataclass(frozen=True, kw_only=True, slots=True)
class ProgramOptions:
    """Numerics and scheme details of :func:`program_cells`.

    Attributes:
        solver: circuit numerics; the engine must give node voltages ("nodal" or "spice").
        row_bias: unselected-line bias of the row-parallel scheme, "v/2" or "v/3".
        substeps: sub-steps per pulse: an integer ≥ 1 (equal) or "auto" (adaptive, see
            v_rtol); anything but 1 needs rise = fall = 0 and no noise.
        coupling: "frozen" (voltages of the sub-step start) or "heun" (trapezoidal mean of the
            start voltages and those predicted at the end by a noise-free trial step).
        v_rtol: "auto" sub-steps: largest relative change of a moving device's voltage over a
            sub-step (> 0): the predictor's change with Heun (steps above it are retried
            shorter), the change between successive solves when frozen; first sub-step 1/16.
        skip_inert: do not integrate devices whose state rate is 0 at their voltage.
        iv_solver: how non-ohmic devices are solved: "newton" (exact nonlinear read, nodal
            engine with method auto or pcg; other cases use the chord iteration) or "chord".
        chord_rtol: relative change of the chord conductances that ends the fixed-point
            iteration for non-ohmic devices (> 0); chord_maxiter caps it.
        compare_direct: also program a twin of the population directly (every target seeing
            exactly its intended voltage, nobody else touched, no noise) for the report.
    """

    solver: SolverOptions = field(default_factory=SolverOptions)
    row_bias: Literal["v/2", "v/3"] = param("v/2", type="str", choices=("v/2", "v/3"))
    substeps: int | Literal["auto"] = 1  # checked below: an integer or "auto"
    coupling: Literal["frozen", "heun"] = param("frozen", type="str", choices=("frozen", "heun"))
    v_rtol: float = param(0.005, type="float", minimum=0.0, exclusive_min=True)
    skip_inert: bool = param(True, type="bool")
    iv_solver: Literal["newton", "chord"] = param("newton", type="str", choices=("newton", "chord"))
    chord_rtol: float = param(1e-9, type="float", minimum=0.0, exclusive_min=True)
    chord_maxiter: int = param(50, type="int", minimum=1)
    compare_direct: bool = param(True, type="bool")

    def __post_init__(self) -> None:
        check_fields(self, "program")
        if self.substeps != "auto" and not (isinstance(self.substeps, int) and self.substeps >= 1):
            raise SpecError(f"program.substeps must be an integer ≥ 1 or 'auto', got {self.substeps!r}")


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class ProgramReport:
    """What a programming run did, cell by cell (arrays are (N, M); voltages signed, V).

    Attributes:
        scheme, bias: the scheme and the unselected-line bias it used.
        amplitude: (SET, RESET) write-voltage magnitudes, V. width: pulse width, s.
        plan: signed pulse counts (> 0 SET, < 0 RESET).
        g_before, g_after: read conductances, S. g_direct: after direct programming (or None).
        v_intended: the write voltage of each target (NaN elsewhere).
        v_delivered: mean voltage a target's device saw over its pulses (NaN elsewhere).
        half_selected: steps in which each cell had exactly one of its lines selected.
        v_half_max: largest pulse-averaged |V| a cell saw while half-selected (0 if never).
        v_unselected_max: the same while neither of its lines was selected.
        window: nominal conductance window of the card, S (normalises the statistics).
        path_resistance: wire + periphery resistance from the row driver and to the sense
            amplifier along each cell's row and column, Ω (orders cells near → far).
        n_steps, n_solves: pulses and circuit solves (chord iterations and Heun predictors
            included; a Newton read counts once). n_linear: linear-system solves behind them
            (a chord iteration is one, a Newton read its start plus one per step).
            solver: engine/method of the solves. time_solve, time_devices: s.
    """

    scheme: str
    bias: str
    amplitude: tuple[float, float]
    width: float
    plan: np.ndarray
    g_before: np.ndarray
    g_after: np.ndarray
    g_direct: np.ndarray | None
    v_intended: np.ndarray
    v_delivered: np.ndarray
    half_selected: np.ndarray
    v_half_max: np.ndarray
    v_unselected_max: np.ndarray
    window: float
    path_resistance: np.ndarray
    n_steps: int
    n_solves: int
    n_linear: int
    solver: str
    time_solve: float
    time_devices: float

    @property
    def delta_g(self) -> np.ndarray:
        """G after − G before, S."""
        return self.g_after - self.g_before

    @property
    def targets(self) -> np.ndarray:
        return self.plan != 0

    def disturb(self) -> dict[str, dict[str, float]]:
        """|ΔG| statistics of the non-target cells, half-selected ones and never-selected ones.

        Per group: ``cells``, ``mean_abs_dg`` and ``max_abs_dg`` (S), the same as fractions of
        the window (``mean_rel``, ``max_rel``), ``moved`` (cells with |ΔG| > 1e-3 window) and
        ``v_max`` (largest |V| seen, V).
        """
        dg = np.abs(self.delta_g)
        groups = {"half_selected": ~self.targets & (self.half_selected > 0),
                  "unselected": ~self.targets & (self.half_selected == 0)}
        out = {}
        for name, mask in groups.items():
            d = dg[mask]
            v = (self.v_half_max if name == "half_selected" else self.v_unselected_max)[mask]
            out[name] = {
                "cells": int(mask.sum()),
                "mean_abs_dg": float(d.mean()) if d.size else 0.0,
                "max_abs_dg": float(d.max()) if d.size else 0.0,
                "mean_rel": float(d.mean() / self.window) if d.size else 0.0,
                "max_rel": float(d.max() / self.window) if d.size else 0.0,
                "moved": int(np.count_nonzero(d > MOVED * self.window)),
                "v_max": float(np.max(v, initial=0.0)),
            }
        return out

    def delivery(self) -> dict[str, dict]:
        """Voltage delivered / intended at the nearest and farthest targets (by path resistance)."""
        t = np.argwhere(self.targets)
        if t.size == 0:
            return {}
        r = self.path_resistance[self.targets]
        out = {}
        for name, k in (("near", int(np.argmin(r))), ("far", int(np.argmax(r)))):
            i, j = (int(a) for a in t[k])
            out[name] = {"cell": (i, j), "path_resistance": float(r[k]),
                         "v_intended": float(self.v_intended[i, j]), "v_delivered": float(self.v_delivered[i, j]),
                         "ratio": float(self.v_delivered[i, j] / self.v_intended[i, j]),
                         "dg": float(self.delta_g[i, j]),
                         "dg_direct": None if self.g_direct is None else float(self.g_direct[i, j] - self.g_before[i, j])}
        return out

    def summary(self) -> str:
        """A few lines for people: scheme, steps, delivery near/far, disturb per group."""
        lines = [f"scheme {self.scheme} (unselected lines {self.bias}), {self.n_steps} pulses, "
                 f"{self.n_solves} circuit solves ({self.solver}, {self.time_solve:.3g} s) + devices ({self.time_devices:.3g} s)"]
        for name, d in self.delivery().items():
            direct = "" if d["dg_direct"] is None else f", direct {d['dg_direct']:.4g} S"
            lines.append(f"  {name} target {d['cell']}: {d['v_delivered']:.4g} of {d['v_intended']:.4g} V "
                         f"({100 * d['ratio']:.2f} %), dG {d['dg']:.4g} S{direct}")
        for name, d in self.disturb().items():
            lines.append(f"  {name}: {d['cells']} cells, |V| ≤ {d['v_max']:.3g} V, mean |dG| "
                         f"{100 * d['mean_rel']:.3g} % of window, max {100 * d['max_rel']:.3g} %, {d['moved']} moved")
        return "\n".join(lines)


# -- the steps -----------------------------------------------------------------------------------
def _as_plan(targets: np.ndarray, direction: int, n_pulses: int, shape: tuple[int, int]) -> np.ndarray:
    t = np.asarray(targets)
    if t.shape != shape:
        raise InputError(f"targets must have the array shape {shape}, got {t.shape}")
    if t.dtype == bool:
        if direction not in (1, -1):
            raise InputError(f"direction must be +1 (SET) or -1 (RESET), got {direction!r}")
        if not (isinstance(n_pulses, int | np.integer) and n_pulses >= 1):
            raise InputError(f"n_pulses must be an integer ≥ 1, got {n_pulses!r}")
        return np.where(t, direction * int(n_pulses), 0).astype(np.int64)
    if not np.issubdtype(t.dtype, np.number) or not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
        raise InputError("targets must be a boolean mask or whole signed pulse counts")
    return t.astype(np.int64)


def _steps(plan: np.ndarray, scheme: str) -> list[tuple[int, np.ndarray, int]]:
    """(row, selected columns, direction) of every pulse, in the order they are applied."""
    steps = []
    if scheme in ("v/2", "v/3"):
        for i, j in np.argwhere(plan != 0):  # raster order, all pulses of a cell together
            steps += [(int(i), np.array([j]), int(np.sign(plan[i, j])))] * int(abs(plan[i, j]))
        return steps
    for i in range(plan.shape[0]):
        for d in (1, -1):
            count = np.where(np.sign(plan[i]) == d, np.abs(plan[i]), 0)
            steps += [(i, np.flatnonzero(count > k), d) for k in range(int(count.max(initial=0)))]
    return steps


def _path_resistance(spec: CrossbarSpec) -> np.ndarray:
    n, m = spec.shape
    zero_c, zero_r = np.zeros((n, 1)), np.zeros((1, m))
    left = np.hstack([zero_c, np.cumsum(spec.r_row, axis=1)]) + spec.r_driver[:, None]
    right = np.hstack([np.cumsum(spec.r_row[:, ::-1], axis=1)[:, ::-1], zero_c]) + spec.r_driver[:, None]
    top = np.vstack([zero_r, np.cumsum(spec.r_col, axis=0)]) + spec.r_sense[None, :]
    bottom = np.vstack([np.cumsum(spec.r_col[::-1], axis=0)[::-1], zero_r]) + spec.r_sense[None, :]
    row = {"left": left, "right": right, "both": np.minimum(left, right)}[spec.drive]
    col = {"bottom": bottom, "top": top, "both": np.minimum(top, bottom)}[spec.sense]
    return row + col


class _Solver:
    """One bias pattern → the voltage across every device (with the chord iteration)."""

    def __init__(self, base: CrossbarSpec, pop: DevicePopulation, options: ProgramOptions):
        self.base, self.pop, self.options = base, pop, options
        self.solves = 0
        self.linear = 0
        self.elapsed = 0.0
        self.method = ""
        self._layout = None  # node numbering of the 0T1R read Newton solves: the same every pulse

    def device_voltages(self, rows: np.ndarray, cols: np.ndarray, v_sel: float, bias: str) -> np.ndarray:
        pop, opt = self.pop, self.options
        g_read = pop.conductance()
        law = self._newton_law(g_read)
        if law is not None:
            return self._solve_newton(law, rows, cols, v_sel, bias)
        v, _ = chord_fixed_point(lambda g: self._solve(g, rows, cols, v_sel, bias),
                                 lambda v: self._chord(v, g_read), g_read, rtol=opt.chord_rtol,
                                 maxiter=opt.chord_maxiter, label=f"{pop.model.name} devices")
        return v

    def _newton_law(self, g_read: np.ndarray) -> Law | None:
        """The devices' I–V law for the Newton read, or None where the chord iteration applies
        (ohmic devices in ohmic cells, iv_solver="chord", another engine or linear method)."""
        opt, pop, cell = self.options, self.pop, self.base.cell
        series = cell in NONLINEAR_CELLS
        # Newton reads on the line-block PCG: another method asked for keeps the chord iteration
        if opt.iv_solver != "newton" or opt.solver.engine != "nodal" or opt.solver.method not in ("auto", "pcg"):
            if series:
                raise SpecError(f"programming {cell} cells needs iv_solver='newton' on the nodal engine, method auto or "
                                f"pcg (the chord iteration treats only the device as nonlinear), got {opt.iv_solver!r} on "
                                f"{opt.solver.engine!r}/{opt.solver.method!r}")
            return None
        law = population_law(pop)
        if not isinstance(law, Sinh) and not series:
            return None
        # Unhealthy devices keep their fixed read conductance, as in the chord iteration.
        ok = pop.healthy.reshape(g_read.shape)
        shape = g_read.shape
        if isinstance(law, Ohmic):
            return Ohmic(np.where(ok, np.broadcast_to(law.g, shape), g_read))
        return Sinh(np.where(ok, np.broadcast_to(law.a, shape), 0.0), np.broadcast_to(law.v0, shape),
                    np.where(ok, np.broadcast_to(law.g_lin, shape), g_read))

    def _cell_law(self, dev: Law, rows) -> tuple[Cell, np.ndarray]:
        """The cell law of one bias pattern (access elements of unselected rows off) and the
        mask of cells whose access conducts (the others' devices see 0 V)."""
        base, shape = self.base, self.base.shape
        on = np.zeros(shape, dtype=bool)
        on[rows] = True
        if base.cell in ("0T1R", "device", "1S1R"):
            return (dev if base.cell in ("0T1R", "device") else SeriesCell(dev, base.law.access)), np.ones(shape, bool)
        if base.cell == "1T1R-mos":
            return SeriesCell(dev, base.law.access.gated(on)), on
        # 1T1R: the access resistor; a deselected row's device carries nothing (its transistor is open).
        off = dataclasses.replace(dev, **{f.name: np.where(on, getattr(dev, f.name), 0.0)
                                          for f in dataclasses.fields(dev) if f.name in ("g", "a", "g_lin")})
        return (off if base.r_access == 0 else SeriesCell(off, Ohmic(1.0 / base.r_access))), on

    def _spec(self, g, rows, cols, v_sel, bias) -> tuple[CrossbarSpec, np.ndarray]:
        n = self.base.shape[0]
        spec = self.base.replace(conductances=g, selected_rows=np.asarray(rows), selected_cols=np.asarray(cols),
                                 unselected=bias, v_select=v_sel)
        inputs = np.zeros(n)
        inputs[rows] = v_sel
        return spec, inputs

    def _cell_voltages(self, circuit, pot: np.ndarray) -> np.ndarray:
        n, m = self.base.shape
        lay = circuit.layout
        other = lay.mid_node0 if lay.mid_node0 >= 0 else lay.col_node0
        v = pot[lay.row_node0:lay.row_node0 + n * m] - pot[other:other + n * m]
        return np.nan_to_num(v).reshape(n, m)  # undefined (isolated) nodes carry no current

    def _solve_newton(self, dev: Law, rows, cols, v_sel, bias) -> np.ndarray:
        t0 = time.perf_counter()
        law, on = self._cell_law(dev, rows)
        base = self.base.replace(cell="0T1R", law=None) if self.base.cell != "0T1R" else self.base
        spec = base.replace(conductances=np.ones(base.shape), selected_rows=np.asarray(rows),
                            selected_cols=np.asarray(cols), unselected=bias, v_select=v_sel)
        inputs = np.zeros(base.shape[0])
        inputs[rows] = v_sel
        res = read_nonlinear(spec, law, inputs, self.options.solver, want_nodes=True)
        self.method = f"{res.engine}/newton"
        self.solves += 1
        self.linear += 1 + int(res.info["newton_steps"])  # the ohmic start, then one per step
        self.elapsed += time.perf_counter() - t0
        n, m = base.shape
        if self._layout is None:
            self._layout = build_circuit(spec).layout
        lay = self._layout
        pot = res.node_voltages[0]
        u_r = pot[lay.row_node0:lay.row_node0 + n * m].reshape(n, m)
        u_c = pot[lay.col_node0:lay.col_node0 + n * m].reshape(n, m)
        # The device's share: row node to the series cell's internal node (solved as Newton did).
        v = u_r - (law.mid(u_r, u_c) if isinstance(law, SeriesCell) else u_c)
        return np.where(on, np.nan_to_num(v), 0.0)

    def _solve(self, g, rows, cols, v_sel, bias) -> np.ndarray:
        t0 = time.perf_counter()
        spec, inputs = self._spec(g, rows, cols, v_sel, bias)
        circuit = build_circuit(spec)
        res = prepare(circuit, self.options.solver).solve(inputs, want_nodes=True)
        self.method = f"{res.engine}/{res.info.get('method', '')}"
        self.solves += 1
        self.linear += 1
        self.elapsed += time.perf_counter() - t0
        return self._cell_voltages(circuit, res.node_voltages[0])

    def _chord(self, v: np.ndarray, g_read: np.ndarray) -> np.ndarray:
        """Chord conductance I(V)/V of healthy devices at their voltage (small-signal near 0 V)."""
        pop = self.pop
        x = pop.state.reshape(-1)
        vv = v.reshape(-1)
        v_eff = np.where(np.abs(vv) < 1e-9, 1e-9, vv)
        g = np.broadcast_to(pop.model.current(x, v_eff, pop.params) / v_eff, x.shape)
        return np.where(pop.healthy, g, g_read.reshape(-1)).reshape(v.shape)


def _twin(pop: DevicePopulation) -> DevicePopulation:
    """A population with the same devices (parameters, faults) and states, separately mutable."""
    twin = DevicePopulation(card=pop.card, shape=pop.shape, model=pop.model, params=pop.params,
                            stuck_on=pop.stuck_on, stuck_off=pop.stuck_off, dead=pop.dead,
                            integrator=pop.integrator)
    twin.set_state(pop.state)
    return twin


@dataclass(frozen=True, slots=True)
class _Write:
    """What a programming run applies, checked (step 1 of :func:`program_cells`)."""

    base: CrossbarSpec
    plan: np.ndarray
    amps: tuple[float, float]
    width: float
    bias: str
    polarity: int

    def voltage(self, d: int) -> float:
        """The signed write voltage of direction ``d`` (+1 SET, -1 RESET), V."""
        return self.polarity * d * (self.amps[0] if d > 0 else self.amps[1])


@dataclass(slots=True)
class _Tally:
    """What the pulses delivered, accumulated over the steps (step 2 of :func:`program_cells`)."""

    v_sum: np.ndarray
    v_cnt: np.ndarray
    half: np.ndarray
    v_half: np.ndarray
    v_unsel: np.ndarray
    t_dev: float = 0.0
    n_steps: int = 0

    @classmethod
    def zeros(cls, shape: tuple[int, int]) -> _Tally:
        return cls(np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=np.int64), np.zeros(shape), np.zeros(shape))


def _check_write(array, population: DevicePopulation, targets, scheme: str, direction: int, n_pulses: int,
                 amplitude: float | None, width: float | None, options: ProgramOptions, rng) -> _Write:
    if scheme not in SCHEMES:
        raise SpecError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    card = population.card
    if isinstance(array, ArraySpec):
        base = array.crossbar(population.conductance(), population_law(population) if array.nonlinear else None)
    elif isinstance(array, CrossbarSpec):
        base = array
    else:
        raise SpecError(f"array must be a CrossbarSpec or an ArraySpec, got {type(array).__name__}")
    if tuple(population.shape) != base.shape:
        raise InputError(f"population shape {tuple(population.shape)} differs from the array {base.shape}")
    plan = _as_plan(targets, direction, n_pulses, base.shape)
    prog = card.programming
    if amplitude is not None and not (np.isfinite(amplitude) and amplitude > 0):
        raise SpecError(f"amplitude is a magnitude and must be > 0 V (the polarity follows the model), got {amplitude!r}")
    amps = (abs(prog.amplitude_set), abs(prog.amplitude_reset)) if amplitude is None else (amplitude, amplitude)
    width = prog.width if width is None else float(width)
    if not width > 0:
        raise SpecError(f"width must be > 0 s, got {width!r}")
    if options.substeps != 1:
        if prog.rise or prog.fall:
            raise SpecError("program.substeps other than 1 needs rectangular pulses (card programming.rise = fall = 0)")
        if rng is not None and card.variation.c2c > 0:
            raise SpecError("program.substeps other than 1 needs a noise-free run (rng=None): c2c noise is per whole pulse")
    bias = options.row_bias if scheme == "row-parallel" else scheme
    return _Write(base=base, plan=plan, amps=amps, width=width, bias=bias, polarity=population.model.set_polarity)


def _pulse_steps(w: _Write, scheme: str, solver: _Solver, options: ProgramOptions, rng) -> _Tally:
    """Every bias pattern of the plan, one pulse each, through the circuit; what cells saw."""
    n, m = w.base.shape
    tally = _Tally.zeros((n, m))
    steps = _steps(w.plan, scheme)
    for i, cols, d in steps:
        rows_on = np.zeros(n, dtype=bool)
        rows_on[i] = True
        cols_on = np.zeros(m, dtype=bool)
        cols_on[cols] = True
        sel = rows_on[:, None] & cols_on[None, :]
        is_half = rows_on[:, None] ^ cols_on[None, :]
        unsel = ~rows_on[:, None] & ~cols_on[None, :]
        v_mean, t_step = _one_pulse(solver, i, cols, w.voltage(d), w.bias, w.width, options, rng)
        tally.t_dev += t_step
        tally.v_sum[sel] += v_mean[sel]
        np.maximum(tally.v_half, np.where(is_half, np.abs(v_mean), 0.0), out=tally.v_half)
        np.maximum(tally.v_unsel, np.where(unsel, np.abs(v_mean), 0.0), out=tally.v_unsel)
        tally.v_cnt[sel] += 1
        tally.half += is_half
    tally.n_steps = len(steps)
    return tally


def program_cells(array: CrossbarSpec | ArraySpec, population: DevicePopulation, targets: np.ndarray, *,
                  scheme: Scheme = "v/2", direction: int = 1, n_pulses: int = 1,
                  amplitude: float | None = None, width: float | None = None,
                  options: ProgramOptions | None = None, rng: np.random.Generator | None = None) -> ProgramReport:
    """Program ``targets`` of ``population`` through the circuit of ``array``; see the module doc.

    Named steps: check the write (:func:`_check_write`), pulse every bias pattern
    (:func:`_pulse_steps`), the direct-write twin for comparison, then the report.

    Args:
        array: the physical array (its conductances, selections and bias fields are replaced).
        population: the devices, shape (N, M); programmed in place.
        targets: a boolean mask (programmed with ``n_pulses`` pulses in ``direction``: +1 SET,
            -1 RESET) or signed integer pulse counts per cell (> 0 SET, < 0 RESET).
        scheme: "v/2", "v/3" or "row-parallel".
        amplitude: write-voltage magnitude, V (> 0); the sign follows the model's polarity and
            the direction. Default: the card's amplitude_set / amplitude_reset.
        width: pulse width, s (default the card's); ramps are the card's.
        rng: cycle-to-cycle noise per pulse (None: nominal).
    """
    options = options or ProgramOptions()
    w = _check_write(array, population, targets, scheme, direction, n_pulses, amplitude, width, options, rng)
    card, model, plan = population.card, population.model, w.plan
    g_before = population.conductance()
    twin = _twin(population) if options.compare_direct else None
    solver = _Solver(w.base, population, options)
    tally = _pulse_steps(w, scheme, solver, options, rng)
    g_direct = None
    if twin is not None:
        v_int = np.where(plan > 0, w.voltage(1), w.voltage(-1))
        twin.apply_pulses(plan, voltage=v_int, width=w.width, rng=None)
        g_direct = twin.conductance()
    targets_mask = plan != 0
    v_intended = np.where(targets_mask, np.where(plan > 0, w.voltage(1), w.voltage(-1)), np.nan)
    with np.errstate(invalid="ignore"):
        v_delivered = np.where(targets_mask, tally.v_sum / tally.v_cnt, np.nan)
    g_lo, g_hi = model.g_window(card.programming.v_read, dict(card.params))
    report = ProgramReport(
        scheme=scheme, bias=w.bias, amplitude=(float(w.amps[0]), float(w.amps[1])), width=w.width, plan=plan,
        g_before=g_before, g_after=population.conductance(), g_direct=g_direct, v_intended=v_intended,
        v_delivered=v_delivered, half_selected=tally.half, v_half_max=tally.v_half,
        v_unselected_max=tally.v_unsel, window=float(g_hi - g_lo), path_resistance=_path_resistance(w.base),
        n_steps=tally.n_steps, n_solves=solver.solves, n_linear=solver.linear, solver=solver.method, time_solve=solver.elapsed,
        time_devices=tally.t_dev)
    log.info("programmed %d cells with %s: %d pulses", int(targets_mask.sum()), scheme, tally.n_steps)
    return report


def _one_pulse(solver: _Solver, row: int, cols: np.ndarray, v_sel: float, bias: str, width: float,
               options: ProgramOptions, rng) -> tuple[np.ndarray, float]:
    """Apply one pulse under one bias pattern; returns (time-averaged device voltages, device time)."""
    pop = solver.pop
    auto = options.substeps == "auto"
    heun = options.coupling == "heun"
    dt = width / (16 if auto else options.substeps)
    done, t_dev = 0.0, 0.0
    v_mean = np.zeros(pop.shape)
    v_prev = None
    while done < width * (1 - 1e-12):
        change = None
        dt = min(dt, width - done)
        if width - done - dt < 1e-9 * width:
            dt = width - done
        v = solver.device_voltages(np.array([row]), cols, v_sel, bias)
        t0 = time.perf_counter()
        if heun:  # predictor: the end-of-step voltages, then the trapezoidal mean
            x0 = pop.state
            pop.apply_voltage_pulses(_active(pop, v, options.skip_inert), v, width=dt, rng=None)
            v_end = solver.device_voltages(np.array([row]), cols, v_sel, bias)
            pop.set_state(x0)
            change = _change(v, v_end, pop, options.skip_inert)
            if auto and change > options.v_rtol and dt > width / 4096:
                dt *= max(0.25, 0.9 * options.v_rtol / change)
                t_dev += time.perf_counter() - t0
                continue
            v = 0.5 * (v + v_end)
        elif auto and v_prev is not None:
            change = _change(v_prev, v, pop, options.skip_inert)
        pop.apply_voltage_pulses(_active(pop, v, options.skip_inert), v, width=dt, rng=rng)
        t_dev += time.perf_counter() - t0
        v_mean += v * (dt / width)
        done += dt
        v_prev = v
        if auto and change is not None:
            dt *= float(np.clip(0.9 * options.v_rtol / change, 0.25, 4.0)) if change > 0 else 4.0
    return v_mean, t_dev


def _change(v_a: np.ndarray, v_b: np.ndarray, pop: DevicePopulation, skip_inert: bool) -> float:
    """Largest relative voltage change between two solves among the devices that move."""
    moving = _active(pop, v_a, skip_inert).astype(bool) | _active(pop, v_b, skip_inert).astype(bool)
    if not moving.any():
        return 0.0
    return float(np.max(np.abs(v_b - v_a)[moving] / np.maximum(np.abs(v_a), np.abs(v_b))[moving]))


def _active(pop: DevicePopulation, v: np.ndarray, skip_inert: bool) -> np.ndarray:
    """Pulse counts (0/1) of the devices to integrate for one pulse at voltages ``v``."""
    active = (v != 0) & pop.healthy.reshape(v.shape)
    if skip_inert:
        rate = pop.model.state_rate(pop.state.reshape(-1), v.reshape(-1), pop.params)
        active &= np.broadcast_to(rate, active.size).reshape(v.shape) != 0
    return active.astype(np.int64)


def compare_schemes(array: CrossbarSpec | ArraySpec, population: DevicePopulation, targets: np.ndarray, *,
                    schemes: tuple[str, ...] = SCHEMES, **kwargs) -> dict[str, ProgramReport]:
    """Program the same targets from the same start with each scheme (on twins of ``population``,
    which is left untouched); kwargs go to :func:`program_cells`."""
    return {s: program_cells(array, _twin(population), targets, scheme=s, **kwargs) for s in schemes}
