"""The compiled line-block kernels (numba) against their numpy twins and the direct factorisation.

Truths: scipy's banded LAPACK solver for single lines; the numpy path of the same solvers
(``kernels.ENABLED = False``, the code the kernels were written from); SuperLU (method
"direct") for whole reads.

Tolerances. Line solves and leave/port currents are the same arithmetic per element, with sums
in a different order: 1e-12 relative. Whole reads stop on each input vector's own certified
bound (the numpy loop stops when all vectors of the batch reach theirs), so the two paths agree
to the sum of their bounds (≤ 2·rtol) and each to the direct answer to 1e-9 (rtol 1e-10), as in
tests/test_solvers.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import solve_banded
from test_solvers import TOL, crossbars, direct, rel_l1, spec_cases

from cosim.circuit import CrossbarSpec, SolverOptions
from cosim.circuit.engines.nodal import prepare_spec
from cosim.circuit.solvers import ColLines, LineBlocks, RowLines, coldread, kernels, lineblock, multirhs, pcg
from cosim.errors import TopologyError

pytestmark = pytest.mark.skipif(not kernels.ENABLED, reason="numba not installed or COSIM_NUMBA=0")

CASES = spec_cases(np.random.default_rng(0))


@pytest.fixture
def numpy_path(monkeypatch):
    """Run the solvers without the compiled kernels while the test holds it."""
    monkeypatch.setattr(kernels, "ENABLED", False)


def both_paths(fn, monkeypatch):
    """fn() with the compiled kernels, then with the numpy path."""
    got = fn()
    with monkeypatch.context() as mp:
        mp.setattr(kernels, "ENABLED", False)
        ref = fn()
    return got, ref


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (13, 9), (64, 64)])
def test_line_solves_equal_numpy_and_banded_lapack(shape, rng, monkeypatch):
    n, m = shape
    off_r, off_c = -rng.uniform(0.1, 1.0, (n, m - 1)), -rng.uniform(0.1, 1.0, (n - 1, m))
    diag = rng.uniform(2.5, 3.0, (n, m))
    rhs = rng.standard_normal((3, n, m))
    rows, cols = RowLines(diag, off_r), ColLines(diag, off_c)
    (x_r, x_c), (y_r, y_c) = both_paths(lambda: (rows.solve(rhs.copy()), cols.solve(rhs.copy())), monkeypatch)
    np.testing.assert_allclose(x_r, y_r, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(x_c, y_c, rtol=1e-12, atol=1e-14)
    i, j = n // 2, m // 2
    band = np.zeros((3, m))
    band[0, 1:], band[1], band[2, :-1] = off_r[i], diag[i], off_r[i]
    np.testing.assert_allclose(x_r[1, i], solve_banded((1, 1), band, rhs[1, i]), rtol=1e-12)
    band = np.zeros((3, n))
    band[0, 1:], band[1], band[2, :-1] = off_c[:, j], diag[:, j], off_c[:, j]
    np.testing.assert_allclose(x_c[1, :, j], solve_banded((1, 1), band, rhs[1, :, j]), rtol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("transpose", [False, True])
def test_line_blocks_of_new_devices_equal_numpy_bit_for_bit(case, transpose, rng, monkeypatch):
    # kernels.line_blocks against LineBlocks._set_devices' numpy lines: the same sums in the same
    # order, no reassociation, so every mask, coupling and factor is the same bits. Cells at 0 S
    # (dead nodes), pinned segments, floating lines and 1T1R rows are among the cases.
    spec = CASES[case]
    prep = prepare_spec(spec, SolverOptions(method="pcg"), transpose=transpose)
    g = prep.blocks.g_dev * rng.uniform(0.5, 1.5, prep.blocks.g_dev.shape)
    g[rng.random(g.shape) < 0.2] = 0.0
    got = prep.blocks.with_devices(g)
    with monkeypatch.context() as mp:  # the numpy lines, their line factors by the compiled line_factor
        mp.setattr(kernels, "ENABLED", False)
        for name in ("RowLines", "ColLines"):
            mp.setattr(lineblock, name, _compiled(getattr(lineblock, name), monkeypatch))
        ref = prep.blocks.with_devices(g)
    for name in ("free_r", "free_c", "dead_r", "dead_c", "couple", "n_free"):
        assert np.array_equal(getattr(got, name), getattr(ref, name)), name
    for side in ("rows", "cols"):
        for name in ("l", "dinv"):
            assert np.array_equal(getattr(getattr(got, side), name), getattr(getattr(ref, side), name)), (side, name)


def _compiled(cls, monkeypatch):
    def make(*args, **kwargs):
        with monkeypatch.context() as mp:
            mp.setattr(kernels, "ENABLED", True)
            return cls(*args, **kwargs)
    return make


def test_line_blocks_name_the_same_singular_node_as_numpy(monkeypatch):
    # Column 1 left with wires only (no sense port, its cells at 0 S): its last pivot is 0, and
    # both paths name that node.
    spec = CrossbarSpec(conductances=np.full((4, 3), 1e-5), r_row=1.0, r_col=1.0)
    b = prepare_spec(spec, SolverOptions(method="pcg")).blocks
    bad = type(b).__new__(type(b))
    bad.__dict__.update(b.__dict__)
    bad.gpt, bad.gpb, bad.pin_c = np.zeros(3), np.zeros(3), np.zeros((4, 3), dtype=bool)  # no sense port
    g = np.full((4, 3), 1e-5)
    g[:, 1] = 0.0
    errors = []
    for enabled in (True, False):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        with pytest.raises(TopologyError) as err:
            bad.with_devices(g)
        errors.append(str(err.value))
    assert errors[0] == errors[1]
    assert "c3_1" in errors[0]


def blocks_and_shifts(spec: CrossbarSpec, rng, batch: int = 4, transpose: bool = False):
    prep = prepare_spec(spec, SolverOptions(method="pcg"), transpose=transpose)
    b, c = prep.blocks, prep.circuit
    v = rng.uniform(-0.5, 0.5, (batch, c.n_inputs))
    return b, c, b.shifts(c.source_values(v))


@pytest.mark.parametrize("case", list(CASES))
def test_leave_and_port_currents_equal_numpy(case, rng, monkeypatch):
    b, _, (s_r, s_c) = blocks_and_shifts(CASES[case], rng)
    d_r, d_c = rng.normal(0, 1e-3, (2, 4, b.n, b.m)) * np.stack([b.free_r, b.free_c])[:, None]
    drive = b.drive(s_r, s_c)
    calls, real = [], kernels.leave_branch
    monkeypatch.setattr(kernels, "leave_branch", lambda *a: calls.append(1) or real(*a))
    got, ref = both_paths(lambda: b.leave_branch(np.ascontiguousarray(d_r), np.ascontiguousarray(d_c), drive),
                          monkeypatch)
    assert len(calls) == 1  # the compiled pass ran (once: not for the numpy reference)
    scale = np.abs(drive).max()
    for a, e in zip(got, ref):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12 * scale)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("transpose", [False, True])
def test_cold_read_balance_pass_equals_numpy(case, transpose, rng):
    # coldread._leave (the cold read's and the lanes' certification: port currents, ℓ1 and ℓ∞
    # KCL residuals over the free nodes) against LineBlocks' numpy balances, on arrays whose
    # edge rows, end cells, ports and pinned nodes differ (one row, one column, both ends).
    b, _, (s_r, s_c) = blocks_and_shifts(CASES[case], rng, transpose=transpose)
    if b.g_acc is not None:
        pytest.skip("an eliminated access resistor: the cold read does not take these")
    d_r, d_c = rng.normal(0, 1e-3, (2, 4, b.n, b.m)) * np.stack([b.free_r, b.free_c])[:, None]
    g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c = b.kernel_args()
    l_r, l_c = b.leave(d_r, d_c, b.drive(s_r, s_c))
    ref_branch = b.branch_currents(d_r, d_c, l_r, l_c)
    scale = np.abs(b.drive(s_r, s_c)).max()
    for k in range(d_r.shape[0]):
        br = np.empty(b.n + b.m)
        l1, linf = coldread._leave(np.ascontiguousarray(d_r[k]), np.ascontiguousarray(d_c[k]), s_r[k], s_c[k],
                                   g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c, br)
        res_r, res_c = np.abs(l_r[k]) * b.free_r, np.abs(l_c[k]) * b.free_c
        np.testing.assert_allclose(br, ref_branch[k], rtol=1e-12, atol=1e-12 * scale)
        assert l1 == pytest.approx(res_r.sum() + res_c.sum(), rel=1e-12, abs=1e-12 * scale)
        assert linf == pytest.approx(max(res_r.max(), res_c.max()), rel=1e-12, abs=1e-12 * scale)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("transpose", [False, True])
def test_cold_reads_equal_numpy_and_direct(case, transpose, rng, monkeypatch):
    spec = CASES[case]
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10), transpose=transpose)
    v = rng.uniform(-0.5, 0.5, (5, prep.circuit.n_inputs))
    calls, real = [], coldread.cold_read
    monkeypatch.setattr(coldread, "cold_read", lambda *a: calls.append(1) or real(*a))
    got, ref = both_paths(lambda: prep.solve(v, want_nodes=True), monkeypatch)
    assert len(calls) == 1  # the compiled read ran (once: not for the numpy reference)
    exp = direct(spec, transpose).solve(v, want_nodes=True)
    assert rel_l1(got.currents, exp.currents) <= TOL
    assert rel_l1(got.currents, ref.currents) <= got.info["error_bound"] + ref.info["error_bound"] + 1e-12
    np.testing.assert_allclose(got.node_voltages, exp.node_voltages, atol=1e-9 * np.nanmax(np.abs(exp.node_voltages)))


def test_periphery_resistors_keep_a_256_array_on_the_compiled_cold_read(rng, monkeypatch):
    """Driver and sense resistors free the line-end nodes an ideal port would fix (2·256² free
    unknowns here, 512 more than without them); such an array must still take the single-stage
    compiled path (not the numpy loop with a rebase, five times slower) and be exact; past
    512×512 cells arrays rebase."""
    g = rng.uniform(1e-6, 1e-5, (256, 256))
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0)
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10))
    assert prep.blocks.n_free == 2 * 256 * 256 and not pcg._rebase_worth(prep.blocks)
    v = rng.uniform(0.0, 0.3, (1, 256))
    calls, real = [], coldread.cold_read
    monkeypatch.setattr(coldread, "cold_read", lambda *a: calls.append(1) or real(*a))
    got = prep.solve(v)
    assert len(calls) == 1
    assert rel_l1(got.currents, direct(spec, False).solve(v).currents) <= TOL
    larger = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-5, (513, 512)), r_row=1.0, r_col=1.0)
    assert pcg._rebase_worth(prepare_spec(larger, SolverOptions(method="pcg")).blocks)


def test_uncertified_cold_reads_restart_from_their_own_drops(rng, monkeypatch):
    """Inputs that cancel in the outputs leave some 256² vectors above a single stage's rounding
    floor; the general loop then starts from the cold solve's drops (solved again, compiled,
    when the read did not keep them), not from zero, and the result is exact."""
    g = rng.uniform(1e-6, 1e-5, (256, 256))
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10))
    v = rng.uniform(-0.2, 0.2, (8, 256))
    starts, real = [], pcg._solve
    monkeypatch.setattr(pcg, "_solve", lambda b, d, o, rtol, it, x0, *a: starts.append(x0) or real(b, d, o, rtol, it, x0, *a))
    got = prep.solve(v)
    assert starts and all(x0 is not None and x0.shape[0] > 0 and np.abs(x0).max() > 0 for x0 in starts)
    ref = direct(spec, False).solve(v).currents
    assert rel_l1(got.currents, ref) <= TOL
    assert np.all(got.info["error_bound"] <= 1e-10)


def mixed_inputs(rng, n_inputs: int) -> np.ndarray:
    """A batch no chunk boundary can hide behind: random, all-zero (solved before any step),
    one tiny, one large and one repeated vector, uneven in length (7) over 1, 2 or 3 chunks."""
    v = rng.uniform(-0.5, 0.5, (7, n_inputs))
    v[1] = 0.0
    v[3] *= 1e-6
    v[4] = rng.uniform(0.5, 1.0, n_inputs)
    v[6] = v[0]
    return v


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("transpose", [False, True])
def test_mixed_batches_equal_direct_and_do_not_depend_on_threads(case, transpose, rng, monkeypatch):
    """Each vector's compiled read is the same bits alone, in any batch, on 1 or 2 threads; and
    equals the direct factorisation to 1e-9."""
    spec = CASES[case]
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10), transpose=transpose)
    v = mixed_inputs(rng, prep.circuit.n_inputs)
    calls, real = [], coldread.cold_read
    # chunks of each whole-batch read (not of a re-solve of the vectors it left uncertified)
    monkeypatch.setattr(coldread, "cold_read",
                        lambda *a: (a[17].shape[0] == v.shape[0] and calls.append(a[22])) or real(*a))
    monkeypatch.setenv("COSIM_THREADS", "2")
    prep.solve(v)  # a small read stays on the calling thread
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 0)
    runs = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("COSIM_THREADS", threads)
        runs[threads] = prep.solve(v)
    singles = [prep.solve(v[k:k + 1]).currents[0] for k in range(v.shape[0])]
    assert calls[:4] == [1, 1, min(2, kernels.threads()), min(3, kernels.threads())]  # chunks per run
    exp = direct(spec, transpose).solve(v)
    assert rel_l1(runs["1"].currents, exp.currents) <= TOL
    for got in runs.values():
        np.testing.assert_array_equal(got.currents, runs["1"].currents)
    np.testing.assert_array_equal(np.array(singles), runs["1"].currents)


@pytest.mark.parametrize("case", list(CASES)[:3])
def test_reads_that_keep_no_drops_are_the_same_bits(case, rng, monkeypatch):
    """A cold read that keeps neither drop (each stays in its thread's own slab) gives the same
    port currents, residuals and bounds, bit for bit, on 1 and 2 threads, and no drops."""
    spec = CASES[case]
    c = prepare_spec(spec, SolverOptions(method="pcg")).circuit
    b = LineBlocks.from_circuit(c)
    v = mixed_inputs(rng, c.n_inputs)
    shifts = b.shifts(c.source_values(v))
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 0)
    kept = pcg.solve(b, None, c.out_src, rtol=1e-10, maxiter=500, shifts=shifts)
    assert kept.d_c is not None and kept.d_r is not None
    for threads in ("1", "2"):
        monkeypatch.setenv("COSIM_THREADS", threads)
        bare = pcg.solve(b, None, c.out_src, rtol=1e-10, maxiter=500, shifts=shifts, keep_rows=False,
                         keep_cols=False)
        assert bare.d_c is None and bare.d_r is None
        for name in ("branch", "kcl_l1", "bound"):
            np.testing.assert_array_equal(getattr(bare, name), getattr(kept, name))


def test_middling_reads_run_the_way_measured_faster(monkeypatch):
    """Reads between PROBE_MIN_WORK and PARALLEL_MIN_WORK time both ways twice, then keep the
    faster per unit of work, try the slower again after REPROBE_EVERY calls, then after twice as
    many each time it is still REPROBE_CLEAR times slower (up to REPROBE_MAX), and follow a
    change of speed at once; a close choice keeps the short interval; smaller reads stay serial,
    larger ones parallel, COSIM_THREADS=1 serial."""
    monkeypatch.setenv("COSIM_THREADS", "2")
    if kernels.threads() < 2:
        pytest.skip("numba has one thread here")
    monkeypatch.setattr(kernels, "_TIMES", {})
    work = 3 * kernels.PROBE_MIN_WORK
    assert work < kernels.PARALLEL_MIN_WORK
    seconds = {1: 1.0, 2: 0.5}  # serial, parallel: what a read of this size takes

    def call():
        chunks = kernels.plan_chunks("test", work, 64)
        kernels.record_time("test", work, chunks, seconds[chunks])
        return chunks

    assert [call() for _ in range(4)] == [1, 2, 1, 2]  # both ways timed twice
    gaps = [kernels.REPROBE_EVERY]
    while gaps[-1] < kernels.REPROBE_MAX:
        gaps.append(2 * gaps[-1])
    gaps.append(kernels.REPROBE_MAX)
    ways = [call() for _ in range(sum(gaps))]
    probes = [k for k, way in enumerate(ways) if way == 1]  # the slower way re-timed
    assert np.diff([-1, *probes]).tolist() == gaps
    seconds[2] = 4.0  # the other core got busy: parallel is now the slow way
    ways = [call() for _ in range(kernels.REPROBE_EVERY)]
    assert ways[:2] == [2, 1] and ways.count(2) <= 2  # one slow parallel read, then serial (and a re-probe)
    seconds[2] = 0.5  # free again: the re-timings, not clearly slower, stay REPROBE_EVERY apart
    ways = [call() for _ in range(8 * kernels.REPROBE_EVERY)]
    assert ways[-kernels.REPROBE_EVERY:] == [2] * kernels.REPROBE_EVERY  # back to parallel
    assert kernels.plan_chunks("test", kernels.PROBE_MIN_WORK - 1, 64) == 1
    assert kernels.plan_chunks("test", kernels.PARALLEL_MIN_WORK, 64) == 2
    assert kernels.plan_chunks("test", kernels.PARALLEL_MIN_WORK, 1) == 1  # one piece of work
    monkeypatch.setenv("COSIM_THREADS", "1")
    assert kernels.plan_chunks("test", work, 64) == 1


def test_thread_count_comes_from_the_environment(monkeypatch):
    most = kernels.numba.config.NUMBA_NUM_THREADS
    monkeypatch.setenv("COSIM_THREADS", "1")
    assert kernels.threads() == 1
    monkeypatch.setenv("COSIM_THREADS", "64")
    assert kernels.threads() == most  # never more than numba's pool
    monkeypatch.delenv("COSIM_THREADS")
    assert kernels.threads() == most
    monkeypatch.setenv("COSIM_THREADS", "two")
    with pytest.raises(ValueError, match="COSIM_THREADS must be a whole number"):
        kernels.threads()


@given(spec=crossbars(), seed=st.integers(0, 99), rtol=st.sampled_from([1e-10, 1e-5]))
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
def test_property_compiled_read_is_certified_and_equals_numpy(spec, seed, rtol):
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=rtol))
    b, c = prep.blocks, prep.circuit
    v = np.random.default_rng(seed).uniform(-0.5, 0.5, (3, c.n_inputs))
    shifts = b.shifts(c.source_values(v))
    fast = pcg.solve(b, None, c.out_src, rtol=rtol, maxiter=500, shifts=shifts)
    slow = pcg._solve(b, b.drive(*shifts), c.out_src, rtol, 500, None, 0.0, "crossbar")
    assert fast.leave_r is None  # the compiled read certified it (no fallback to the numpy loop)
    assert np.all(fast.bound <= rtol)
    num = np.abs(fast.branch - slow.branch)[:, c.out_src].sum(axis=1)
    den = np.abs(slow.branch[:, c.out_src]).sum(axis=1)
    assert np.all(num <= (fast.bound + slow.bound + 1e-11) * den + 1e-17)


def test_general_loop_with_fused_steps_equals_numpy(rng, monkeypatch):
    # Strong IR drop (N·M·r·g ≥ 10) takes the general loop (rebasing), whose CG steps are the
    # fused cg_update / cg_direction kernels.
    g = rng.uniform(1e-5, 1e-3, (40, 40))
    spec = CrossbarSpec(conductances=g, r_row=20.0, r_col=20.0, r_sense=5.0)
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10))
    assert prep.blocks.ir_parameter() >= 10.0
    v = rng.uniform(0.0, 0.3, (6, 40))
    monkeypatch.setattr(multirhs, "MIN_BATCH", 10**9)  # batches would take the lanes (test_multirhs.py)
    calls, real = [], kernels.cg_update
    monkeypatch.setattr(kernels, "cg_update", lambda *a: calls.append(1) or real(*a))
    got, ref = both_paths(lambda: prep.solve(v), monkeypatch)
    assert len(calls) == got.info["iterations"]  # every CG step of the compiled run was fused
    exp = direct(spec, False).solve(v)
    assert got.info["iterations"] > 10
    assert rel_l1(got.currents, exp.currents) <= TOL
    assert rel_l1(ref.currents, exp.currents) <= TOL


@pytest.mark.parametrize("transpose", [False, True])
def test_uncertified_vectors_fall_back_to_the_general_loop(transpose, rng, monkeypatch):
    spec = CASES["uniform"]
    prep = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-10), transpose=transpose)
    v = rng.uniform(-0.5, 0.5, (4, prep.circuit.n_inputs))
    clean = prep.solve(v)
    calls, general = [], []
    real, real_loop = coldread.cold_read, pcg._solve

    def failing(*args):
        real(*args)
        if args[-1].shape[0] > 1:  # not the compiled re-solve of the vector's start drops
            args[-1][1] = -1  # vector 1 "not converged": the caller must not trust it
        calls.append(1)

    monkeypatch.setattr(coldread, "cold_read", failing)
    monkeypatch.setattr(pcg, "_solve", lambda b, drive, *a: general.append(drive.shape[0]) or real_loop(b, drive, *a))
    res = prep.solve(v)
    assert calls and general == [1]  # only the uncertified vector went through the general loop
    assert res.info["error_bound"] <= 1e-10
    keep = [0, 2, 3]
    np.testing.assert_array_equal(res.currents[keep], clean.currents[keep])
    assert rel_l1(res.currents, direct(spec, transpose).solve(v).currents) <= TOL


def test_kernels_can_be_switched_off_by_the_environment():
    code = ("import numpy as np; from cosim.circuit.solvers import kernels; assert not kernels.ENABLED;"
            "from cosim.circuit import CrossbarSpec, SolverOptions;"
            "from cosim.circuit.engines.nodal import prepare_spec;"
            "g = np.random.default_rng(0).uniform(1e-6, 1e-4, (20, 20));"
            "s = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0); v = np.full((2, 20), 0.2);"
            "a = prepare_spec(s, SolverOptions(method='pcg')).solve(v).currents;"
            "b = prepare_spec(s, SolverOptions(method='direct')).solve(v).currents;"
            "assert np.abs(a - b).sum() <= 1e-9 * np.abs(b).sum(); print('numpy path ok')")
    env = {**os.environ, "COSIM_NUMBA": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "numpy path ok" in out.stdout


def test_line_blocks_pass_one_kernel_signature(rng):
    # Every array the kernels take is C-contiguous, float64 or bool: one compiled version serves
    # all circuits (a Fortran-ordered mask once compiled a second copy of the read kernel).
    b = LineBlocks.from_circuit(prepare_spec(CASES["floating"], SolverOptions(method="pcg")).circuit)
    arrays = b.kernel_args() + (b.couple, b.rows.l, b.rows.dinv, b.cols.l, b.cols.dinv)
    assert [a.dtype for a in arrays] == [np.float64] * 7 + [np.bool_] * 4 + [np.float64] * 5
    assert all(a.flags.c_contiguous for a in arrays)


def test_a_failing_compiler_falls_back_to_numpy(monkeypatch, caplog):
    monkeypatch.setattr(kernels, "_LOADED", [])
    monkeypatch.setattr(kernels, "ENABLED", True)

    def broken():
        raise RuntimeError("LLVM says no")

    monkeypatch.setattr(kernels, "_exercise", broken)
    kernels.load()
    assert not kernels.ENABLED
    assert "compiled solver kernels unavailable (RuntimeError: LLVM says no)" in caplog.text
    spec = CASES["uniform"]
    v = np.full((2, spec.conductances.shape[0]), 0.3)
    got = prepare_spec(spec, SolverOptions(method="pcg")).solve(v)
    assert rel_l1(got.currents, direct(spec, False).solve(v).currents) <= TOL


@pytest.mark.parametrize("shape", [(1, 7), (7, 1), (13, 9), (64, 64)])
def test_compiled_line_factors_equal_lapack_and_numpy(shape, rng, monkeypatch):
    n, m = shape
    off_r, off_c = -rng.uniform(0.1, 1.0, (n, m - 1)), -rng.uniform(0.1, 1.0, (n - 1, m))
    diag = rng.uniform(2.5, 3.0, (n, m))
    rhs = rng.standard_normal((2, n, m))
    fast = RowLines(diag, off_r), ColLines(diag, off_c)
    with monkeypatch.context() as mp:
        mp.setattr(kernels, "ENABLED", False)
        slow = RowLines(diag, off_r), ColLines(diag, off_c)
        for f, s in zip(fast, slow):
            np.testing.assert_allclose(f.l, s.l, rtol=1e-14, atol=1e-15)
            np.testing.assert_allclose(f.dinv, s.dinv, rtol=1e-14)
        # The numpy solve of compiled factors (LAPACK's D and L derived from them).
        np.testing.assert_allclose(fast[0].solve(rhs.copy()), slow[0].solve(rhs.copy()), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("compiled", [True, False])
def test_singular_lines_are_reported_at_the_same_node(compiled, monkeypatch):
    # Two singular lines (pivot 0 by cancellation: a 2-node line of 1 S with no path to a port);
    # both paths name the first in row-major order.
    monkeypatch.setattr(kernels, "ENABLED", compiled)
    diag = np.full((4, 3), 3.0)
    off = np.full((4, 2), -1.0)
    diag[2, 1:], off[2, 1] = 1.0, -1.0
    diag[3, 1:], off[3, 1] = 1.0, -1.0
    with pytest.raises(TopologyError, match="row line block is singular at node r2_2"):
        RowLines(diag, off)
    with pytest.raises(TopologyError, match="column line block is singular at node c1_1"):  # before c2_0
        ColLines(np.array([[3.0, 1.0], [1.0, 1.0], [1.0, 3.0]]), np.array([[0.0, -1.0], [-1.0, -1.0]]))


def test_every_kernel_module_is_in_the_cache_key():
    # A module whose kernels are cached but whose source is not hashed would be loaded stale
    # by the kernels that inline it (KERNEL_MODULES says why).
    folder = Path(kernels.__file__).parent
    jitted = {p.stem for p in folder.glob("*.py")
              if any(key in p.read_text() for key in ("@_jit", "_jit(", "njit(", "_inline("))}
    assert jitted == set(kernels.KERNEL_MODULES)


def test_the_cache_follows_every_kernel_source(tmp_path, monkeypatch):
    folder = Path(kernels.__file__).parent
    for name in kernels.KERNEL_MODULES:
        (tmp_path / f"{name}.py").write_bytes((folder / f"{name}.py").read_bytes())
    before = kernels.source_hash(tmp_path)
    assert before == kernels.source_hash()
    with open(tmp_path / "sinhpasses.py", "a") as f:  # a helper that another file's kernel inlines
        f.write("\n# edited\n")
    assert kernels.source_hash(tmp_path) != before
    assert kernels.cache_dir().name.endswith(f"numba-{before}")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert kernels.cache_dir() == tmp_path / "mine" / f"cosim-numba-{before}"


def test_compiled_kernels_are_cached_under_the_source_hash():
    kernels.load()
    for fn in (coldread.cold_read, multirhs.solve_lanes, kernels._leave_slab):
        assert fn._cache._cache_path.startswith(str(kernels._CACHE[0])), fn
    assert kernels._CACHE[0].name.endswith(kernels.source_hash())
    assert kernels.numba.config.CACHE_DIR != str(kernels._CACHE[0])  # put back after decorating
