"""The compiled per-vector Newton for sinh cells (cosim.circuit.solvers.sinhnewton), the nodal
engine's batch path for Stanford–PKU cells, against the damped Newton of every vector
(``chord=False``: the reference of tests/test_newton.py and tests/test_newton_ngspice.py).

Truths checked, with their tolerances:
- engine against engine: on every drive/sense/unselected option, forward and transpose, and on
  a 64×64 tile with the 30 % IR drops of a digits read, the compiled path's output currents
  equal the reference's to 1e-9 relative (both certified to 1e-11: their difference is within
  2e-11 of the outputs' ℓ1 norm, far below);
- every start gives the same certified answer: zero drops, the last solve of the same inputs
  (warm), the drops predicted from the last solve of other inputs, and a prediction that is far
  off (ratios scaled by −50: a start much worse than zero), per-cell v0 (no shared sinh table);
- a vector the undamped compiled Newton cannot finish (its step budget cut to one) is handed to
  the damped Newton and still certified, and the result says so;
- an independent nonlinear solution (tests/test_newton.py's dense Newton on the full nodal KCL
  with a finite-difference Jacobian) agrees to 1e-8 on random small arrays (hypothesis).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.circuit import CrossbarSpec, build_circuit, prepare
from cosim.circuit.cells import Sinh
from cosim.circuit.engines.base import SolverOptions
from cosim.circuit.solvers import kernels, sinhnewton
from tests.test_newton import OPTIONS, _dense_kcl_solution, pku

pytestmark = pytest.mark.skipif(not kernels.ENABLED, reason="numba kernels disabled")


def _g(law, shape):
    """The cells' small-signal conductances (S): the ohmic array the circuit is built on."""
    return np.broadcast_to(law.small_signal(), shape).copy()


def _pair(spec, law, transpose=False, rtol=1e-11):
    """The engine's read (compiled path) and the reference (Newton for every vector)."""
    import dataclasses

    circuit = dataclasses.replace(build_circuit(spec, transpose=transpose), cell_law=law)
    fast, ref = prepare(circuit, SolverOptions(rtol=rtol)), prepare(circuit, SolverOptions(rtol=rtol))
    ref.chord = False
    return fast, ref


def _close(got, want, rtol=1e-9):
    scale = np.abs(want.currents).max()
    np.testing.assert_allclose(got.currents, want.currents, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("transpose", [False, True])
def test_compiled_newton_equals_newton_on_every_option(options, transpose, rng):
    law, _, _ = pku((9, 7), rng)
    spec = CrossbarSpec(conductances=_g(law, (9, 7)), **options)
    fast, ref = _pair(spec, law, transpose)
    x = rng.uniform(0.0, 0.4, (4, 7 if transpose else 9))
    got, want = fast.solve(x), ref.solve(x)
    assert got.info["method"] == "compiled-newton" and want.info["method"] == "newton"
    assert got.residual <= 1e-11
    _close(got, want)


@pytest.mark.parametrize("transpose", [False, True])
def test_large_ir_drop_tile_and_every_start(transpose, rng):
    """A 64×64 tile with 1 Ω wires and the cells of a digits read (drops up to ~30 % of the
    0.1 V inputs): zero start, warm start, predicted start, a far-off prediction."""
    law, _, _ = pku((64, 64), rng)
    spec = CrossbarSpec(conductances=_g(law, (64, 64)), r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0)
    fast, ref = _pair(spec, law, transpose)
    fast.predict = False
    fast.keep_bytes = 6 * 64 * 64 * 8  # keep these six vectors' drops for the warm start below
    x1, x2 = rng.uniform(0.0, 0.1, (2, 6, 64))
    want1, want2 = ref.solve(x1), ref.solve(x2)
    cold = fast.solve(x1)  # no earlier solve: from zero drops
    _close(cold, want1)
    _, d_r1, d_c1 = fast.last
    steps_cold = cold.info["compiled-newton_steps"]
    fast.predict = True
    pred = fast.solve(x2)  # from the drops the solve of x1 predicts
    _close(pred, want2)
    assert pred.info["method"] == "compiled-newton" and pred.info["compiled-newton_steps"] <= steps_cold
    # The same inputs after the devices moved a little (a training update): from their solution.
    law2 = Sinh(law.a * rng.uniform(0.999, 1.001, law.a.shape), law.v0)
    fast2, ref2 = _pair(spec, law2, transpose)
    fast2 = fast.for_cells(fast2.circuit)
    warm = fast2.solve(x2)
    assert warm.info["warm"] and warm.info["compiled-newton_steps"] <= pred.info["compiled-newton_steps"]
    _close(warm, ref2.solve(x2))
    # A far-off prediction (the last solve's drops flipped and scaled 50×, a start far worse
    # than zero): the undamped steps from it fail, those vectors are solved again from zero.
    c = fast.circuit
    fast.fit = sinhnewton.DropFit.of(fast.blocks, fast.blocks.shifts(c.source_values(x1)), -50 * d_r1, -50 * d_c1)
    far = fast.solve(x2)
    assert far.residual <= 1e-11 and far.info["method"] == "compiled-newton"
    _close(far, want2)
    rho = sinhnewton.ratios(fast.blocks, fast.blocks.shifts(c.source_values(x1)), -50 * d_r1, -50 * d_c1)
    alone = sinhnewton.solve(fast.blocks, law, fast.blocks.shifts(c.source_values(x2)), c.out_src, rtol=1e-11,
                             maxiter=500, g_floor=1e-12, prior=rho)
    assert not alone.converged.any()  # (what the retry from zero repaired)


def test_strong_ir_drop_is_read_by_the_compiled_newton(rng):
    """An array whose IR drop sends the ohmic cold read to its rebase (N·M·r·g ≥ 10) is still read
    by the compiled Newton, whose steps refine the true residual, and equals the reference."""
    from cosim.circuit.solvers import pcg

    law, _, _ = pku((48, 40), rng)
    g = _g(law, (48, 40))
    r = 12.0 / (48 * 40 * g.mean())  # N·M·r·g = 12
    spec = CrossbarSpec(conductances=g, r_row=r, r_col=r, r_driver=1.0, r_sense=1.0)
    fast, ref = _pair(spec, law)
    assert pcg._rebase_worth(fast.blocks)
    x = rng.uniform(0.0, 0.4, (5, 48))
    got, want = fast.solve(x), ref.solve(x)
    assert got.info["method"] == "compiled-newton" and got.residual <= 1e-11
    _close(got, want)


def test_the_drop_fit_keeps_what_the_newest_batch_leaves_undriven(rng):
    """DropFit against its definition: after two batches its sums are FIT_KEEP × the first's plus
    the second's (numpy least squares, 1e-12); a row only the first batch drove keeps a ratio
    from it (the last batch alone would give none); and a read started from the fit of two
    batches certifies the same answer as the reference."""
    law, _, _ = pku((16, 12), rng)
    spec = CrossbarSpec(conductances=_g(law, (16, 12)), r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    fast, ref = _pair(spec, law)
    x1, x2, x3 = rng.uniform(0.0, 0.2, (3, 5, 16))
    x2[:, 3] = 0.0  # row 3 undriven in the second batch
    fast.solve(x1)
    first = fast.fit
    _, d_r1, d_c1 = fast.last
    fast.solve(x2)
    _, d_r2, d_c2 = fast.last

    def sums(x, d_r, d_c):
        i_r, i_c = sinhnewton.ideal_currents(fast.blocks, *fast.blocks.shifts(fast.circuit.source_values(x)))
        return (np.einsum("kij,ki->ij", d_r, i_r), (i_r ** 2).sum(0), np.einsum("kij,kj->ij", d_c, i_c),
                (i_c ** 2).sum(0))

    k = sinhnewton.FIT_KEEP
    for got, a, b in zip((fast.fit.num_r, fast.fit.den_r, fast.fit.num_c, fast.fit.den_c), sums(x1, d_r1, d_c1),
                         sums(x2, d_r2, d_c2)):
        want = k * a + b
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    rho_r, _ = fast.fit.ratios()
    alone_r, _ = sinhnewton.ratios(fast.blocks, fast.blocks.shifts(fast.circuit.source_values(x2)), d_r2, d_c2)
    assert not alone_r[3].any() and rho_r[3].any()
    np.testing.assert_allclose(rho_r[3], first.ratios()[0][3], rtol=1e-12)
    got = fast.solve(x3)
    assert got.residual <= 1e-11 and got.info["method"] == "compiled-newton"
    _close(got, ref.solve(x3))


def test_cell_currents_only_when_asked(rng):
    """The compiled path returns cell currents only with want_cells; the outputs are the same bit
    for bit either way, and the cell currents equal the damped Newton's to 1e-9 of the largest."""
    law, _, _ = pku((10, 8), rng)
    spec = CrossbarSpec(conductances=_g(law, (10, 8)), r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    fast, ref = _pair(spec, law)
    fast.predict = False  # the same start both times
    x = rng.uniform(0.0, 0.3, (4, 10))
    bare, full = fast.solve(x), fast.solve(x, want_cells=True)
    assert bare.cell_currents is None and full.info["method"] == "compiled-newton"
    np.testing.assert_array_equal(bare.currents, full.currents)
    want = ref.solve(x, want_cells=True).cell_currents
    np.testing.assert_allclose(full.cell_currents, want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_a_batch_beyond_keep_bytes_reads_the_same_without_keeping_its_drops(rng):
    """Drops of a batch larger than ``keep_bytes`` go to reusable memory (sinhnewton.scratch) and
    are not kept for a warm start: the outputs and the drop fit are the same bit for bit as when
    they are kept, over batches that predict each other's starts."""
    law, _, _ = pku((16, 12), rng)
    spec = CrossbarSpec(conductances=_g(law, (16, 12)), r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    kept, _ = _pair(spec, law)
    lent, _ = _pair(spec, law)
    lent.keep_bytes = 0
    for x in rng.uniform(0.0, 0.3, (3, 5, 16)):
        a, b = kept.solve(x), lent.solve(x)
        assert a.info["method"] == b.info["method"] == "compiled-newton"
        np.testing.assert_array_equal(a.currents, b.currents)
        for name in ("num_r", "den_r", "num_c", "den_c"):
            np.testing.assert_array_equal(getattr(kept.fit, name), getattr(lent.fit, name))
    assert kept.last is not None and lent.last is None
    # a read asking for node voltages keeps them whatever the size (NewtonPrepared.keep_bytes)
    assert lent.solve(x, want_nodes=True).node_voltages is not None and lent.last is not None


def test_arrays_of_the_wrong_shape_are_refused_before_the_kernel(rng):
    """The kernel indexes drops, starts and currents by vector without bounds checks: arrays for
    another batch size are refused, not written past."""
    law, _, _ = pku((8, 6), rng)
    spec = CrossbarSpec(conductances=_g(law, (8, 6)), r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    fast, _ = _pair(spec, law)
    b, c = fast.blocks, fast.circuit
    shifts = b.shifts(c.source_values(rng.uniform(0.0, 0.2, (3, 8))))
    kw = dict(rtol=1e-10, maxiter=50, g_floor=1e-12)
    small = (np.empty((2, 8, 6)), np.empty((2, 8, 6)))
    with pytest.raises(ValueError, match="out must be"):
        sinhnewton.solve(b, law, shifts, c.out_src, out=small, **kw)
    with pytest.raises(ValueError, match="x0 or prior must be"):
        sinhnewton.solve(b, law, shifts, c.out_src, x0=small, **kw)
    prior = (np.zeros((8, 6)), np.zeros((8, 6)))
    with pytest.raises(ValueError, match="ideal must be"):
        sinhnewton.solve(b, law, shifts, c.out_src, prior=prior, ideal=(np.zeros((2, 8)), np.zeros((2, 6))), **kw)
    assert sinhnewton.solve(b, law, shifts, c.out_src, prior=prior, **kw).converged.all()


def test_the_work_slabs_spacing_changes_no_bit(rng, monkeypatch):
    """The work slabs sit SLAB_PAD values apart for the caches' sake only: with them N·M apart
    (no pad), or a pad that is not a whole cache line, a batch's outputs, drops and step counts
    are the same bit for bit, and slabs() hands out disjoint views of its buffer's rows."""
    law, _, _ = pku((12, 9), rng)
    spec = CrossbarSpec(conductances=_g(law, (12, 9)), r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    fast, _ = _pair(spec, law)
    b, c = fast.blocks, fast.circuit
    shifts = b.shifts(c.source_values(rng.uniform(0.0, 0.3, (6, 12))))
    kw = dict(rtol=1e-11, maxiter=50, g_floor=1e-12)
    runs = []
    for pad in (sinhnewton.SLAB_PAD, 0, 5):
        monkeypatch.setattr(sinhnewton, "SLAB_PAD", pad)
        runs.append(sinhnewton.solve(b, law, shifts, c.out_src, **kw))
    assert runs[0].converged.all()
    for other in runs[1:]:
        for name in ("d_r", "d_c", "branch", "kcl_l1", "counts"):
            np.testing.assert_array_equal(getattr(other, name), getattr(runs[0], name))
    wq = np.zeros((16, 12 * 9 + 5))
    views = sinhnewton.slabs(wq, 12, 9)
    for k, v in enumerate(views):
        assert v.shape == (12, 9) and v.flags.c_contiguous
        v[...] = k + 1
    assert (wq[:, :12 * 9] == np.arange(1, 17)[:, None]).all() and not wq[:, 12 * 9:].any()


def test_scratch_hands_out_the_same_memory_up_to_its_limit(monkeypatch):
    a = sinhnewton.scratch("test", (3, 4))
    b = sinhnewton.scratch("test", (2, 5))
    assert a.shape == (3, 4) and b.shape == (2, 5) and np.shares_memory(a, b)
    monkeypatch.setattr(sinhnewton, "SCRATCH_BYTES", 0)
    c = sinhnewton.scratch("test", (100, 100))  # beyond the limit: a fresh array
    assert c.shape == (100, 100) and not np.shares_memory(b, c)


def test_per_cell_v0_and_leak(rng):
    """Cells with their own v0 and a linear leak (no shared sinh table of the lines)."""
    a, v0, g_lin = rng.uniform(1e-7, 1e-5, (12, 10)), rng.uniform(0.1, 0.4, (12, 10)), rng.uniform(0, 1e-6, (12, 10))
    spec = CrossbarSpec(conductances=_g(Sinh(a, v0, g_lin), (12, 10)), r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    fast, ref = _pair(spec, Sinh(a, v0, g_lin))
    x = rng.uniform(-0.3, 0.3, (5, 12))
    got = fast.solve(x)
    assert got.info["method"] == "compiled-newton"
    _close(got, ref.solve(x))


def test_unfinished_vectors_go_to_the_damped_newton(rng, monkeypatch):
    law, _, _ = pku((16, 16), rng)
    spec = CrossbarSpec(conductances=_g(law, (16, 16)), r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    fast, ref = _pair(spec, law)
    real = sinhnewton.solve
    monkeypatch.setattr(sinhnewton, "solve", lambda *a, **k: real(*a, **{**k, "max_steps": 1}))
    x = rng.uniform(0.0, 0.3, (3, 16))
    got = fast.solve(x)
    assert got.info["method"] == "compiled-newton+newton" and got.info["newton_vectors"] == 3
    assert got.residual <= 1e-11
    _close(got, ref.solve(x))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(n=st.integers(1, 3), m=st.integers(1, 3), r=st.floats(0.5, 20.0), seed=st.integers(0, 2**31))
def test_property_compiled_newton_equals_an_independent_dense_solve(n, m, r, seed):
    rng = np.random.default_rng(seed)
    law = Sinh(rng.uniform(1e-7, 1e-5, (n, m)), rng.uniform(0.1, 0.4, (n, m)))
    spec = CrossbarSpec(conductances=_g(law, (n, m)), r_row=r, r_col=r, r_driver=r, r_sense=r)
    fast, _ = _pair(spec, law, rtol=1e-10)
    x = rng.uniform(-1.0, 1.0, n)
    res = fast.solve(x[None, :])
    assert res.info["method"].startswith("compiled-newton")
    want = _dense_kcl_solution(spec, law, x)
    np.testing.assert_allclose(res.currents[0], want, rtol=1e-8, atol=1e-8 * max(np.abs(want).max(), 1e-15))
