"""Programming non-ohmic devices through the circuit: the chord fixed point and Newton, every cell kind.

- The chord iteration on Stanford–PKU SET pulses in a 16×16 array from random states (the case
  bench_program.py met): the plain fixed point (no mixing) does not settle within the default
  cap of 50 solves (measured 74 on the first pulse: the loop gain of a sinh device behind its
  IR drop is below −1 on some pulses), and the error names the cell and its residual; with the
  default Anderson mixing it settles in ≤ 15 solves per pulse (measured 8–10) and reaches
  Newton's delivered voltages, end states and half-select voltages to 1e-8 relative (measured
  2e-10: the chord stops at a 1e-9 change of its conductances; Newton is certified to 1e-10).
- 1T1R cells (access resistance, 0 Ω and 40 Ω) with Newton equal the chord iteration on the
  linear 1T1R circuit (access resistors at their mid nodes, open in unselected rows), every
  scheme: 1e-8 relative (measured 7e-11).
- A 1×1 array of each series cell kind (1S1R, 1T1R-mos, 1T1R) is a divider whose device voltage
  is the root of the scalar KCL, solved here by nested brentq (independent of the array solver):
  1e-8 relative. The chord iteration cannot carry a nonlinear access element and is refused.
- The spice engine (linear circuits, so the chord iteration) programs 0T1R and 1T1R arrays as
  the nodal Newton read does: 1e-8 (measured 2e-10).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import brentq

from cosim.array import chord_iv
from cosim.array.cells import access_card_for, population_law
from cosim.array.program import ProgramOptions, program_cells
from cosim.array.tile import ArraySpec
from cosim.circuit import CrossbarSpec
from cosim.circuit.cells import Ohmic
from cosim.devices import DevicePopulation, load_card
from cosim.devices.cards import VariationSpec
from cosim.devices.paths import models_dir
from cosim.errors import ConvergenceError, SpecError

CARD = load_card(models_dir() / "cards" / "stanford_pku_default.toml")


def random_population(shape, seed):
    pop = DevicePopulation.create(CARD, shape, seed=seed, backend="numpy")
    lo, hi = pop.window()
    pop.set_conductance(lo + np.random.default_rng(seed).random(shape) * (hi - lo))
    return pop


def sixteen():
    n = 16
    spec = CrossbarSpec(conductances=np.zeros((n, n)), r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0)
    targets = np.zeros((n, n), bool)
    targets[0, n - 1] = targets[n // 2, n // 2] = targets[n - 1, 0] = True
    return spec, targets


def test_plain_chord_iteration_stalls_and_names_the_cell(monkeypatch):
    spec, targets = sixteen()
    monkeypatch.setattr(chord_iv, "MEMORY", 0)  # no mixing: the plain fixed point g ← I(V(g))/V(g)
    with pytest.raises(ConvergenceError, match=r"^chord-conductance iteration of stanford_pku devices did not settle "
                                               r"in 50 circuit solves: cell \(\d+, \d+\) chord conductance still "
                                               r"changes by \S+ \(relative\) > program.chord_rtol 1.0e-09; "):
        program_cells(spec, random_population((16, 16), 16), targets, n_pulses=1,
                      options=ProgramOptions(iv_solver="chord", compare_direct=False))


def test_mixed_chord_iteration_settles_at_the_default_cap_and_equals_newton(monkeypatch):
    spec, targets = sixteen()
    counts = []
    solve = chord_iv.chord_fixed_point

    def counted(*args, **kwargs):
        v, k = solve(*args, **kwargs)
        counts.append(k)
        return v, k

    monkeypatch.setattr("cosim.array.program.chord_fixed_point", counted)
    reps = {how: program_cells(spec, random_population((16, 16), 16), targets, n_pulses=2,
                               options=ProgramOptions(iv_solver=how, compare_direct=False))
            for how in ("chord", "newton")}
    assert len(counts) == 6 and max(counts) <= 15
    new, old = reps["newton"], reps["chord"]
    np.testing.assert_allclose(old.v_delivered[targets], new.v_delivered[targets], rtol=1e-8)
    np.testing.assert_allclose(old.g_after, new.g_after, rtol=1e-8)
    np.testing.assert_allclose(old.v_half_max, new.v_half_max, rtol=1e-8)
    assert not np.allclose(new.g_after, new.g_before, rtol=1e-3)  # the pulses did real work


def test_chord_cap_reached_is_an_error_never_a_state():
    spec, targets = sixteen()
    pop = random_population((16, 16), 16)
    before = pop.state.copy()
    with pytest.raises(ConvergenceError, match=r"did not settle in 3 circuit solves: cell \(\d+, \d+\)"):
        program_cells(spec, pop, targets, options=ProgramOptions(iv_solver="chord", chord_maxiter=3))
    np.testing.assert_array_equal(pop.state, before)  # the first pulse never ran


@pytest.mark.parametrize("scheme,r_access", [("v/2", 40.0), ("v/3", 0.0), ("row-parallel", 40.0)])
def test_one_t_one_r_newton_equals_the_chord_iteration(scheme, r_access):
    shape = (6, 7)
    spec = CrossbarSpec(conductances=np.ones(shape), r_row=3.0, r_col=2.0, r_driver=5.0, r_sense=2.0,
                        cell="1T1R", r_access=r_access)
    targets = np.zeros(shape, np.int64)
    targets[0, 6], targets[4, 1], targets[2, 3] = 2, -1, 1
    reps = {how: program_cells(spec, random_population(shape, 3), targets, scheme=scheme,
                               options=ProgramOptions(iv_solver=how)) for how in ("newton", "chord")}
    new, old = reps["newton"], reps["chord"]
    assert new.solver == "nodal/newton" and "newton" not in old.solver
    mask = targets != 0
    np.testing.assert_allclose(new.v_delivered[mask], old.v_delivered[mask], rtol=1e-8)
    np.testing.assert_allclose(new.g_after, old.g_after, rtol=1e-8)
    np.testing.assert_allclose(new.v_half_max, old.v_half_max, rtol=1e-8, atol=1e-13)
    np.testing.assert_allclose(new.v_unselected_max, old.v_unselected_max, rtol=1e-8, atol=1e-13)


def series_root(dev, acc, v: float, r: float) -> float:
    """Device voltage of driver r + device + access element at total bias v (V), by nested brentq."""
    def cell_current(v_dev: float) -> float:  # the access element's drop carrying the device's current
        i = float(dev.branch(v_dev, 0.0)[0])
        if float(acc.branch(v, 0.0)[0]) < i:  # more than the access element carries at the full bias
            return v_dev + r * i
        u = brentq(lambda u: float(acc.branch(u, 0.0)[0]) - i, 0.0, v, xtol=1e-300, rtol=1e-15, maxiter=500)
        return v_dev + u + r * i - v
    return brentq(cell_current, 0.0, v, xtol=1e-300, rtol=1e-15, maxiter=500)


@pytest.mark.parametrize("cell", ["1S1R", "1T1R-mos", "1T1R"])
def test_series_cells_program_as_the_hand_solved_divider(cell):
    array = ArraySpec(rows=1, cols=1, r_driver=200.0, cell=cell, r_access=300.0 if cell == "1T1R" else 0.0)
    pop = DevicePopulation.create(CARD, (1, 1), seed=0, backend="numpy")
    pop.set_state(np.full((1, 1), 1.0e-9))
    dev = population_law(pop)
    acc = Ohmic(1 / 300.0) if cell == "1T1R" else access_card_for(cell).law(np.ones(1, bool), (1, 1))
    scalar = lambda law: type(law)(**{f.name: float(np.ravel(getattr(law, f.name))[0])  # noqa: E731
                                      for f in dataclasses.fields(law)})
    dev, acc = scalar(dev), scalar(acc)
    amp = 1.5
    rep = program_cells(array, pop, np.ones((1, 1), bool), amplitude=amp, options=ProgramOptions(compare_direct=False))
    assert rep.solver == "nodal/newton"
    np.testing.assert_allclose(rep.v_delivered[0, 0], series_root(dev, acc, amp, 200.0), rtol=1e-8)
    if cell != "1T1R":
        with pytest.raises(SpecError, match=f"programming {cell} cells needs iv_solver='newton' on the nodal engine"):
            program_cells(array, DevicePopulation.create(CARD, (1, 1), seed=0), np.ones((1, 1), bool),
                          options=ProgramOptions(iv_solver="chord"))


def test_faulty_devices_keep_their_conductance_in_one_t_one_r_newton():
    c = dataclasses.replace(CARD, variation=VariationSpec(stuck_on=0.1, stuck_off=0.1, dead=0.1))
    shape = (5, 5)
    spec = CrossbarSpec(conductances=np.ones(shape), r_row=2.0, r_col=2.0, cell="1T1R", r_access=50.0)
    targets = np.eye(5, dtype=bool)
    reps = {}
    for how in ("newton", "chord"):
        pop = DevicePopulation.create(c, shape, seed=4, backend="numpy")
        reps[how] = program_cells(spec, pop, targets, options=ProgramOptions(iv_solver=how))
    assert not pop.healthy.all()
    np.testing.assert_allclose(reps["newton"].g_after, reps["chord"].g_after, rtol=1e-8)
    np.testing.assert_allclose(reps["newton"].v_half_max, reps["chord"].v_half_max, rtol=1e-8, atol=1e-13)


@pytest.mark.ngspice
@pytest.mark.parametrize("cell", ["0T1R", "1T1R"])
def test_spice_engine_chord_programming_equals_nodal_newton(cell):
    # The spice engine solves linear circuits only, so it programs by the mixed chord iteration
    # (default cap); the nodal engine by Newton. Same pulses, same start: 1e-8 (measured 2e-10).
    from cosim.circuit import SolverOptions

    shape = (4, 4)
    spec = CrossbarSpec(conductances=np.ones(shape), r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0,
                        cell=cell, r_access=20.0)
    targets = np.zeros(shape, bool)
    targets[0, 3] = targets[3, 0] = True
    reps = {eng: program_cells(spec, random_population(shape, 16), targets,
                               options=ProgramOptions(solver=SolverOptions(engine=eng), compare_direct=False))
            for eng in ("spice", "nodal")}
    assert reps["spice"].solver.startswith("spice") and reps["nodal"].solver == "nodal/newton"
    np.testing.assert_allclose(reps["spice"].v_delivered[targets], reps["nodal"].v_delivered[targets], rtol=1e-8)
    np.testing.assert_allclose(reps["spice"].g_after, reps["nodal"].g_after, rtol=1e-8)
