"""The compiled multi-right-hand-side read (multirhs: eight input vectors per pass, per-vector CG)
against the direct factorisation, and its guarantees.

Truth: SuperLU on the assembled nodal matrix (method "direct"), for every circuit option of
tests/test_solvers.py's cases (drive left/right/both, sense bottom/top/both, driver and sense
resistors, 1T1R with and without access resistance, unselected lines floating, grounded, V/2 and
V/3 biased, pinned 0 Ω segments, single lines), forward and transposed.

The arrays here are small (11×8), below the size where the lanes pay (multirhs.MIN_CELLS), so
every test forces them on and checks with a spy that they ran. Tolerances as in
tests/test_solvers.py: reads at rtol = 1e-10 must match the direct answer to 1e-9 relative (ℓ1
of the output currents) and stay within their certified bound (plus the direct path's own
round-off). Bit-identity claims (a vector's result does not depend on its batch or the thread
count) are exact comparisons: each lane's arithmetic uses only its own data.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_kernels import mixed_inputs
from test_solvers import DIRECT_ROUNDOFF, TOL, direct, rel_l1, spec_cases

from cosim.circuit import CrossbarSpec, SolverOptions
from cosim.circuit.engines.nodal import prepare_spec
from cosim.circuit.solvers import kernels, multirhs, pcg

pytestmark = pytest.mark.skipif(not kernels.ENABLED, reason="numba not installed or COSIM_NUMBA=0")

CASES = spec_cases(np.random.default_rng(0))


@pytest.fixture
def lanes(monkeypatch):
    """Force every cold batch through the lanes; returns the list of stages run (B per call)."""
    monkeypatch.setattr(multirhs, "MIN_CELLS", 0)
    monkeypatch.setattr(multirhs, "MIN_BATCH", 2)
    calls, real = [], multirhs.solve_lanes
    monkeypatch.setattr(multirhs, "solve_lanes", lambda *a: calls.append(a[14].shape[0]) or real(*a))
    return calls


def batch(rng, n_inputs: int) -> np.ndarray:
    """Mixed inputs over three lane blocks (8 + 8 + 3): random, zero, tiny, large, repeated,
    scaled copies (exactly dependent right-hand sides) and negative."""
    v = np.concatenate([mixed_inputs(rng, n_inputs), rng.uniform(-0.5, 0.5, (12, n_inputs))])
    v[9] = 3.0 * v[0]
    v[10] = -v[2]
    v[12] = 0.0
    return v


def check(got, exp) -> None:
    err = rel_l1(got.currents, exp.currents)
    assert err <= TOL
    assert err <= got.info["error_bound"] + DIRECT_ROUNDOFF


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("refine", [False, True])
def test_lanes_equal_direct_for_every_circuit_option(case, transpose, refine, lanes, rng, monkeypatch):
    """One stage (small arrays) and two (the refinement stage that large arrays use)."""
    if refine:
        monkeypatch.setattr(pcg, "NO_REBASE_MAX_CELLS", 0)
    spec = CASES[case]
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10), transpose=transpose)
    v = batch(rng, prep.circuit.n_inputs)
    got = prep.solve(v)
    assert lanes == ([v.shape[0]] * (2 if refine else 1))  # the lanes ran, once per stage
    check(got, direct(spec, transpose).solve(v))


@pytest.mark.parametrize("method", ["pcg", "transfer"])
def test_transfer_and_nodes_through_the_lanes(method, lanes, rng):
    # The transfer's port response is a batch of unit excitations: solved through the lanes too.
    spec = CASES["both_ends"]
    prep = prepare_spec(spec, SolverOptions(method=method, rtol=1e-10), transpose=True)
    v = batch(rng, prep.circuit.n_inputs)
    check(prep.solve(v), direct(spec, True).solve(v))
    assert lanes  # the excitations (transfer) or the read (pcg) went through the lanes
    if method == "pcg":  # node voltages and cell currents come from the lanes' drops
        full, exp = prep.solve(v, want_nodes=True, want_cells=True), direct(spec, True).solve(v, want_nodes=True)
        scale = np.nanmax(np.abs(exp.node_voltages))
        np.testing.assert_array_equal(np.isnan(full.node_voltages), np.isnan(exp.node_voltages))
        np.testing.assert_allclose(full.node_voltages, exp.node_voltages, rtol=0, atol=TOL * scale)
        cells = direct(spec, True).solve(v, want_cells=True).cell_currents
        np.testing.assert_allclose(full.cell_currents, cells, rtol=0, atol=TOL * np.abs(cells).max())


def test_a_vector_reads_the_same_bits_in_any_batch_and_on_any_thread_count(lanes, rng, monkeypatch):
    spec = CASES["floating_1t1r"]
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10))
    v = batch(rng, prep.circuit.n_inputs)
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 0)
    runs = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("COSIM_THREADS", threads)
        runs[threads] = prep.solve(v).currents
    np.testing.assert_array_equal(runs["1"], runs["2"])
    # The same vectors at other lane positions, in other batches.
    np.testing.assert_array_equal(prep.solve(v[5:12]).currents, runs["1"][5:12])
    np.testing.assert_array_equal(prep.solve(v[[18, 3]]).currents, runs["1"][[18, 3]])
    # A single vector takes coldread's kernel: other arithmetic, the same certified answer.
    one = prep.solve(v[4:5])
    assert rel_l1(one.currents, runs["1"][4:5]) <= 2e-10


@pytest.mark.parametrize("refine", [False, True])
def test_uncertified_lanes_fall_back_to_the_general_loop(refine, lanes, rng, monkeypatch):
    if refine:
        monkeypatch.setattr(pcg, "NO_REBASE_MAX_CELLS", 0)
    spec = CASES["v2_biased"]
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10))
    v = batch(rng, prep.circuit.n_inputs)
    clean = prep.solve(v)
    real, real_loop, general = multirhs.solve_lanes, pcg._solve, []

    def spoiled(*args):
        real(*args)
        args[-3][4] *= 1.001  # out_c: vector 4's column drops off by 0.1 %, its true residual shows it

    monkeypatch.setattr(multirhs, "solve_lanes", spoiled)
    monkeypatch.setattr(pcg, "_solve", lambda b, drive, *a: general.append(drive.shape[0]) or real_loop(b, drive, *a))
    got = prep.solve(v)
    assert general == [1]  # only the spoiled vector was solved again
    keep = np.arange(v.shape[0]) != 4
    np.testing.assert_array_equal(got.currents[keep], clean.currents[keep])
    check(got, direct(spec, False).solve(v))


def test_strong_ir_drop_takes_the_lanes_with_refinement_unforced(rng, monkeypatch):
    # N·M·r·g ≥ 10: the route large arrays take (two stages), without forcing anything.
    g = rng.uniform(1e-5, 1e-3, (40, 40))
    spec = CrossbarSpec(conductances=g, r_row=20.0, r_col=20.0, r_sense=5.0, drive="both")
    calls, real = [], multirhs.solve_lanes
    monkeypatch.setattr(multirhs, "solve_lanes", lambda *a: calls.append(a[6]) or real(*a))
    for transpose in (False, True):
        prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10), transpose=transpose)
        assert prep.blocks.ir_parameter() >= 10.0
        v = rng.uniform(0.0, 0.3, (11, 40))
        got = prep.solve(v)
        assert got.info["iterations"] > 10
        check(got, direct(spec, transpose).solve(v))
    assert calls == [True, False, True, False]  # a cold stage, then the refinement stage


def test_a_batch_short_of_a_lane_block_keeps_the_per_vector_path(rng, monkeypatch):
    """Fewer vectors than one block of lanes on an array that rebases (N·M·r·g ≥ 10) go through
    the general loop, where idle lanes would cost more, and stay exact; a full block takes the
    lanes."""
    g = rng.uniform(1e-5, 1e-3, (40, 40))
    spec = CrossbarSpec(conductances=g, r_row=20.0, r_col=20.0)
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10))
    assert prep.blocks.ir_parameter() >= 10.0
    calls, real = [], multirhs.solve_lanes
    monkeypatch.setattr(multirhs, "solve_lanes", lambda *a: calls.append(a[14].shape[0]) or real(*a))
    v = rng.uniform(0.0, 0.3, (multirhs.LANES, 40))
    short = prep.solve(v[:3])
    assert calls == []
    check(short, direct(spec, False).solve(v[:3]))
    prep.solve(v)
    assert calls and calls[0] == multirhs.LANES


def test_lanes_are_off_without_the_compiled_kernels(monkeypatch):
    b = prepare_spec(CASES["uniform"], SolverOptions(method="pcg")).blocks
    monkeypatch.setattr(multirhs, "MIN_CELLS", 0)
    assert multirhs.pays(b, multirhs.MIN_BATCH) and not multirhs.pays(b, multirhs.MIN_BATCH - 1)
    monkeypatch.setattr(kernels, "ENABLED", False)
    assert not multirhs.pays(b, 64)
