"""Every nodal path against the direct factorisation, and the guarantees of the iterative ones.

Truths used: SuperLU on the assembled nodal matrix (method "direct", exact to round-off, ~1e-14
relative on these arrays); scipy's banded solver for the tridiagonal line blocks.

Tolerances. The iterative paths run at rtol = 1e-10 and certify the relative ℓ1 error of the
output currents; they must match the direct answer to 1e-9 relative (the issue's target). The
certified bound must hold against the direct answer up to the direct path's own round-off,
allowed as 1e-11 relative: it recovers port currents as differences of absolute potentials,
which loses |V|/|ΔV| ulps (9e-14 measured for an input 10 mV from v_sense; tests/
test_properties.py reports KCL residuals up to 2e-11). The bound is therefore also checked with
loose tolerances (1e-3…1e-7), where the remaining error dwarfs that allowance. Node voltages
must match to 1e-9 of the largest potential: the bound covers currents, and a node's potential
error is at most its current error divided by its conductance to a port.

Budget: about 60 s on the shared 2-core machine (arrays up to 24×24, one 64×64 array).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import solve_banded

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, get_engine
from cosim.circuit.engines import nodal
from cosim.circuit.engines.nodal import prepare_pair, prepare_spec
from cosim.circuit.engines.nodal_crossbar import CrossbarPrepared
from cosim.circuit.solvers import ColLines, LineBlocks, RowLines, kernels, transfer
from cosim.errors import ConvergenceError, EngineError, InputError

TOL = 1e-9
DIRECT_ROUNDOFF = 1e-11
ITERATIVE = ("pcg", "transfer")


def rel_l1(a: np.ndarray, b: np.ndarray) -> float:
    """max over the batch of ‖a − b‖₁ / ‖b‖₁.

    Reads whose exact outputs vanish (every device open) compare absolutely against 1e-14 A,
    the direct path's round-off for ~0.1 V across ~10 Ω periphery (it then returns ~1e-18 A).
    Differences below 1e-17 A are the direct path's own round-off (ε × ~1 V potentials through
    ~0.1 S periphery): a nearly cancelling read (6 nA out of a 1×1 array) had the iterative
    answer exact to 3e-16 against rational arithmetic, the direct one off by 1.5e-19 A.
    """
    num = np.maximum(np.abs(a - b).sum(axis=1) - 1e-17, 0.0)
    den = np.abs(b).sum(axis=1)
    zero = den < 1e-14
    if np.any(zero & (num > 1e-14)):
        return np.inf
    return float(np.max(np.where(zero, 0.0, num / np.where(zero, 1.0, den)), initial=0.0))


def direct(spec: CrossbarSpec, transpose: bool):
    return prepare_spec(spec, SolverOptions(method="direct"), transpose=transpose)


def spec_cases(rng) -> dict[str, CrossbarSpec]:
    n, m = 11, 8
    g = rng.uniform(1e-6, 1e-4, (n, m))
    g[rng.random((n, m)) < 0.1] = 0.0
    nonuni = dict(r_row=rng.uniform(0.5, 5.0, (n, m - 1)), r_col=rng.uniform(0.5, 5.0, (n - 1, m)))
    part = dict(selected_rows=[0, 3, 4, 9], selected_cols=[1, 2, 6], v_select=0.8)
    r_pin = rng.uniform(0.5, 5.0, (n, m - 1))
    r_pin[:, :2] = 0.0  # 0 Ω segments continuing from a 0 Ω driver: pinned, not merged
    return {
        "uniform": CrossbarSpec(conductances=g, r_row=1.0, r_col=2.0),
        "both_ends": CrossbarSpec(conductances=g, **nonuni, r_driver=3.0, r_sense=5.0, drive="both",
                                  sense="both", v_sense=0.1),
        "right_top": CrossbarSpec(conductances=g, **nonuni, r_driver=2.0, drive="right", sense="top"),
        "pinned_segments": CrossbarSpec(conductances=g, r_row=r_pin, r_col=1.5),
        "1t1r": CrossbarSpec(conductances=g, **nonuni, cell="1T1R", r_access=2e3, r_sense=4.0),
        "1t1r_short_access": CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0, cell="1T1R", r_access=0.0,
                                          **part, unselected="v/3"),
        "floating": CrossbarSpec(conductances=g, **nonuni, **part, unselected="floating", r_sense=2.0),
        "floating_1t1r": CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0, cell="1T1R", r_access=1e3,
                                      **part, unselected="floating"),
        "grounded": CrossbarSpec(conductances=g, **nonuni, **part, unselected="grounded", drive="both"),
        "v2_biased": CrossbarSpec(conductances=g, **nonuni, **part, unselected="v/2", r_driver=1.0,
                                  v_sense=0.05),
        "single_row": CrossbarSpec(conductances=g[:1], r_row=1.0, drive="both"),
        "single_col": CrossbarSpec(conductances=g[:, :1], r_col=1.0, sense="both", r_sense=2.0),
    }


CASES = list(spec_cases(np.random.default_rng(0)))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("method", ITERATIVE)
def test_every_path_equals_direct(case, transpose, method, rng):
    spec = spec_cases(np.random.default_rng(0))[case]
    ref = direct(spec, transpose)
    got = prepare_spec(spec, SolverOptions(method=method, rtol=1e-10), transpose=transpose)
    assert got.solve(np.zeros((1, got.circuit.n_inputs))).info["method"] == method  # not routed
    v = rng.uniform(-0.4, 0.6, (5, got.circuit.n_inputs))
    res, exp = got.solve(v), ref.solve(v, want_nodes=True)
    err = rel_l1(res.currents, exp.currents)
    assert err <= TOL
    assert err <= res.info["error_bound"] + DIRECT_ROUNDOFF
    if method == "pcg":
        full = got.solve(v, want_nodes=True, want_cells=True)
        nodes = exp.node_voltages
        np.testing.assert_array_equal(np.isnan(full.node_voltages), np.isnan(nodes))
        scale = np.nanmax(np.abs(nodes))
        np.testing.assert_allclose(full.node_voltages, nodes, rtol=0, atol=TOL * scale)
        cells = ref.solve(v, want_cells=True).cell_currents
        np.testing.assert_allclose(full.cell_currents, cells, rtol=0, atol=TOL * np.abs(cells).max())
        np.testing.assert_allclose(full.branch_currents, exp.branch_currents, rtol=0,
                                   atol=TOL * np.abs(exp.branch_currents).max())
        assert full.residual < 1e-6


@st.composite
def crossbars(draw) -> CrossbarSpec:
    """Random arrays with every circuit option; wires > 0 except a 0 Ω periphery allowed."""
    n, m = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows, cols = np.ones(n, bool), np.ones(m, bool)
    if draw(st.booleans()):
        rows, cols = rng.random(n) < 0.6, rng.random(m) < 0.6
        rows[rng.integers(n)] = cols[rng.integers(m)] = True
    periphery = lambda k: np.where(rng.random(k) < 0.3, 0.0, rng.uniform(0.5, 20.0, k))  # noqa: E731
    return CrossbarSpec(
        conductances=rng.uniform(1e-6, 1e-4, (n, m)) * (rng.random((n, m)) > 0.05),
        r_row=rng.uniform(0.2, 20.0, (n, m - 1)), r_col=rng.uniform(0.2, 20.0, (n - 1, m)),
        r_driver=periphery(n), r_sense=periphery(m), v_sense=float(rng.uniform(-0.1, 0.1)),
        drive=draw(st.sampled_from(["left", "right", "both"])),
        sense=draw(st.sampled_from(["bottom", "top", "both"])),
        cell=draw(st.sampled_from(["0T1R", "1T1R"])), r_access=float(rng.uniform(100.0, 1e4)),
        selected_rows=rows, selected_cols=cols,
        unselected=draw(st.sampled_from(["driven", "grounded", "floating", "v/2", "v/3"])),
        v_select=float(rng.uniform(0.2, 1.0)),
    )


@given(spec=crossbars(), transpose=st.booleans(), method=st.sampled_from(ITERATIVE), seed=st.integers(0, 99),
       rtol=st.sampled_from([1e-10, 1e-4]))
@settings(max_examples=80, deadline=None, derandomize=True, database=None)
def test_property_iterative_equals_direct(spec, transpose, method, seed, rtol):
    got = prepare_spec(spec, SolverOptions(method=method, rtol=rtol), transpose=transpose)
    v = np.random.default_rng(seed).uniform(-0.5, 0.5, (3, got.circuit.n_inputs))
    res, exp = got.solve(v), direct(spec, transpose).solve(v)
    assert res.info["method"] == method
    err = rel_l1(res.currents, exp.currents)
    assert err <= (TOL if rtol < TOL else rtol)
    assert res.info["error_bound"] <= rtol
    assert err <= res.info["error_bound"] + DIRECT_ROUNDOFF


@pytest.mark.parametrize("rtol", [1e-2, 1e-3, 1e-4])
def test_reported_bound_holds_when_stopped_early(rtol, rng):
    # A loose tolerance stops PCG with a real error left; the certified bound must cover it.
    g = rng.uniform(1e-5, 1e-4, (24, 20))
    spec = CrossbarSpec(conductances=g, r_row=5.0, r_col=5.0, r_sense=2.0)
    v = rng.uniform(0.0, 0.5, (4, 24))
    res = prepare_spec(spec, SolverOptions(method="pcg", rtol=rtol)).solve(v)
    err = rel_l1(res.currents, direct(spec, False).solve(v).currents)
    assert 10 * DIRECT_ROUNDOFF < err <= res.info["error_bound"] + DIRECT_ROUNDOFF
    assert res.info["error_bound"] <= rtol


def test_nonconvergence_raises_with_what_to_change(rng):
    g = rng.uniform(1e-5, 1e-4, (32, 32))
    spec = CrossbarSpec(conductances=g, r_row=20.0, r_col=20.0)
    prepared = prepare_spec(spec, SolverOptions(method="pcg", rtol=1e-12, maxiter=1))
    with pytest.raises(ConvergenceError) as exc:
        prepared.solve(rng.uniform(0, 0.5, (2, 32)))
    msg = str(exc.value)
    assert "32x32 0T1R crossbar, forward read" in msg
    assert "did not converge in 1 iterations" in msg
    assert "KCL residual" in msg and "A" in msg
    assert "solver.maxiter" in msg and "solver.method='direct'" in msg


def test_merged_nodes_route_to_direct_with_reason(rng):
    r = np.full((6, 5), 1.0)
    r[2, 2] = 0.0  # a 0 Ω segment between two free nodes: merged, not handled by the line blocks
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (6, 6)), r_row=r, r_col=1.0)
    for method in ("pcg", "transfer"):
        res = prepare_spec(spec, SolverOptions(method=method)).solve(np.ones(6))
        assert res.info["method"] == "direct"
        assert "routed to direct" in res.info["auto"] and "0 Ω row wire segment" in res.info["auto"]


@pytest.mark.parametrize("compiled", [True, False])
def test_auto_picks_by_size_and_ir_drop(compiled, rng, monkeypatch):
    monkeypatch.setattr(kernels, "ENABLED", compiled and kernels.ENABLED)
    small = prepare_spec(CrossbarSpec(conductances=np.full((8, 8), 1e-5), r_row=1.0, r_col=1.0))
    assert isinstance(small, nodal.NodalPrepared) and small.reason.startswith("small array")
    medium = prepare_spec(CrossbarSpec(conductances=np.full((16, 16), 1e-5), r_row=1.0, r_col=1.0))
    # The compiled read beats SuperLU above 8×8; without it the direct path keeps arrays to 48².
    assert medium.reason.startswith("pcg" if kernels.ENABLED else "small array")
    g = rng.uniform(1e-6, 1e-5, (128, 128))
    mild = nodal.ENGINE.prepare(build_circuit(CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)),
                                SolverOptions())
    assert mild.reason.startswith("pcg")
    # N·M·r·g ≈ 9000 (numpy path) or 90000 (compiled): past the switch to the direct path
    harsh = CrossbarSpec(conductances=g * 10, r_row=1e4 if not kernels.ENABLED else 1e5,
                         r_col=1e4 if not kernels.ENABLED else 1e5)
    worst = nodal.ENGINE.prepare(build_circuit(harsh), SolverOptions())
    assert isinstance(worst, nodal.NodalPrepared) and worst.reason.startswith("direct")
    t_lu, t_pcg, its = nodal.estimate_times(LineBlocks.from_circuit(build_circuit(harsh)))
    assert t_pcg > t_lu and its > 150


def test_auto_switches_to_the_transfer_for_big_batches(rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (10, 14)), r_row=1.0, r_col=1.0)
    # Small enough for the engine to pick "direct"; the crossbar path's own auto is tested here.
    p = CrossbarPrepared.prepare(build_circuit(spec), SolverOptions(method="auto"))
    v = rng.uniform(0, 0.5, (30, 10))
    assert p.solve(v[:5]).info["method"] == "pcg"
    big = p.solve(v)
    assert big.info["method"] == "transfer"
    assert p.solve(v[:5]).info["method"] == "transfer"  # built once, then reused
    assert rel_l1(big.currents, direct(spec, False).solve(v).currents) <= TOL


def test_transfer_matrix_is_exact_and_shared_by_both_directions(rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (9, 13)), r_row=2.0, r_col=1.0,
                        r_driver=1.0, v_sense=0.1)
    pair = prepare_pair(spec, SolverOptions(method="transfer"))
    assert pair.forward.shared is pair.transpose.shared
    tf, tt = pair.forward.transfer(), pair.transpose.transfer()
    np.testing.assert_array_equal(tt.matrix, tf.matrix.T)  # one port response, read both ways
    d = direct(spec, False)
    base = np.full(9, spec.v_sense)
    steps = d.solve(np.vstack([base, base + np.eye(9)])).currents
    exact = steps[1:] - steps[0]
    np.testing.assert_allclose(tf.matrix, exact, rtol=0, atol=TOL * np.abs(exact).max())
    np.testing.assert_allclose(tf.offset, d.solve(np.zeros(9)).currents[0], rtol=0,
                               atol=TOL * np.abs(exact).sum())


def test_transfer_resolves_uncertified_reads_by_pcg(rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (6, 7)), r_row=1.0, r_col=1.0, v_sense=0.2)
    p = prepare_spec(spec, SolverOptions(method="transfer"))
    v = np.vstack([np.full(6, 0.2), rng.uniform(0, 0.5, 6)])  # the first read's outputs are 0 A
    res = p.solve(v)
    assert res.info["resolved_by_pcg"] == 1
    exp = direct(spec, False).solve(v).currents
    np.testing.assert_allclose(res.currents, exp, rtol=0, atol=TOL * np.abs(exp).max())
    assert np.all(res.currents[0] == 0.0)


def test_batches_are_chunked_to_the_memory_budget(rng, monkeypatch):
    monkeypatch.setattr(transfer, "WORK_BYTES", 3 * 18 * 8 * 7 * 9)  # three inputs per chunk
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (7, 9)), r_row=1.0, r_col=3.0)
    v = rng.uniform(0, 0.5, (8, 7))
    for method in ITERATIVE:
        res = prepare_spec(spec, SolverOptions(method=method)).solve(v)
        assert rel_l1(res.currents, direct(spec, False).solve(v).currents) <= TOL


@pytest.mark.parametrize("method", ["direct", "pcg", "transfer"])
def test_update_conductances_equals_a_fresh_solve(method, rng):
    g = rng.uniform(1e-6, 1e-4, (16, 12))
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0, r_sense=2.0)
    pair = prepare_pair(spec, SolverOptions(method=method))
    v, d = rng.uniform(0, 0.5, (4, 16)), rng.uniform(-0.2, 0.2, (3, 12))
    pair.forward.solve(v), pair.transpose.solve(d)
    g2 = g.copy()
    hit = rng.random(g.shape) < 0.05
    g2[hit] = rng.uniform(1e-6, 1e-4, hit.sum())
    new = pair.update_conductances(g2)
    if method != "direct":
        assert new.transpose.shared is new.forward.shared
    spec2 = spec.replace(conductances=g2)
    assert rel_l1(new.forward.solve(v).currents, direct(spec2, False).solve(v).currents) <= TOL
    assert rel_l1(new.transpose.solve(d).currents, direct(spec2, True).solve(d).currents) <= TOL


def test_warm_start_takes_fewer_iterations(rng):
    # A sparse update moves the solution by a few per cent: a start from the old solution saves
    # the first one or two orders of magnitude of residual (measured: 9 vs 10 iterations).
    g = rng.uniform(1e-5, 1e-4, (64, 64))
    spec = CrossbarSpec(conductances=g, r_row=50.0, r_col=50.0)
    v = rng.uniform(0, 0.5, (4, 64))
    prepared = prepare_spec(spec, SolverOptions(method="pcg"))
    prepared.solve(v)
    g2 = g.copy()
    hit = rng.random(g.shape) < 0.05
    g2[hit] *= rng.uniform(0.5, 1.5, hit.sum())
    warm = prepared.update_conductances(g2).solve(v)
    cold = prepare_spec(spec.replace(conductances=g2), SolverOptions(method="pcg")).solve(v)
    assert warm.info["warm_start"] and not cold.info["warm_start"]
    assert warm.info["iterations"] < cold.info["iterations"]
    assert rel_l1(warm.currents, cold.currents) <= 2 * 1e-10
    # The transfer's excitation solves start from the previous ones too.
    t_old = prepare_spec(spec, SolverOptions(method="transfer"))
    t_old.transfer()
    t_new = t_old.update_conductances(g2)
    t_new.transfer()
    t_cold = prepare_spec(spec.replace(conductances=g2), SolverOptions(method="transfer"))
    t_cold.transfer()
    assert t_new.shared.response.iterations < t_cold.shared.response.iterations


def test_training_updates_read_cold_and_equal_direct(rng):
    # A training step: a few per cent of the devices move by ±2 %, then fresh inputs are read
    # forward and backward. The Galerkin guess cannot pay here (fresh inputs lie outside the
    # span of the old ones, and a weak-IR array converges in ~3 iterations), so the reads start
    # cold; the row correction is then carried by the CG recurrence instead of a final row solve.
    # Both paths must still equal the direct factorisation to the certified 1e-10 (1e-9 here),
    # including the cells next to the pinned driver and sense nodes.
    n = 64
    g = rng.uniform(1e-6, 1.6e-4, (n, n))
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)
    pair = prepare_pair(spec, SolverOptions(method="pcg"))
    for _ in range(4):
        v, d = rng.uniform(0, 0.2, (32, n)), rng.uniform(-0.2, 0.2, (32, n))
        fwd, bwd = pair.forward.solve(v), pair.transpose.solve(d)
        assert not fwd.info["warm_start"] and not bwd.info["warm_start"]
        spec = spec.replace(conductances=g)
        assert rel_l1(fwd.currents, direct(spec, False).solve(v).currents) <= TOL
        assert rel_l1(bwd.currents, direct(spec, True).solve(d).currents) <= TOL
        hit = rng.random((n, n)) < 0.03
        hit[:, 0] |= rng.random(n) < 0.5
        hit[-1, :] |= rng.random(n) < 0.5
        g = np.where(hit, g * rng.uniform(0.98, 1.02, (n, n)), g)
        pair = pair.update_conductances(g)


def test_warm_start_policy():
    # The guess is used only when the reads lie in (or near) the span of the old ones and the
    # array converges slowly enough for it to pay.
    from cosim.circuit.solvers import pcg

    g = np.full((32, 32), 5e-5)
    slow = LineBlocks.from_circuit(build_circuit(CrossbarSpec(conductances=g, r_row=200.0, r_col=200.0)))
    fast = LineBlocks.from_circuit(build_circuit(CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)))
    assert pcg.estimated_iterations(slow) >= pcg.WARM_MIN_ITERATIONS > pcg.estimated_iterations(fast)
    basis = np.random.default_rng(1).uniform(0, 0.3, (8, 64))
    inside = np.array([[0.5], [-2.0]]) * basis[:1] + basis[2:3]
    fresh = np.random.default_rng(2).uniform(0, 0.3, (2, 64))
    assert pcg.warm_pays(slow, basis, inside)
    assert not pcg.warm_pays(slow, basis, fresh)
    assert not pcg.warm_pays(fast, basis, inside)


def test_update_needs_the_spec_when_islands_can_change(rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (5, 6)), r_row=1.0, r_col=1.0,
                        selected_rows=[0, 2], unselected="floating")
    bare = nodal.ENGINE.prepare(build_circuit(spec), SolverOptions(method="pcg"))
    with pytest.raises(EngineError, match="prepare it from its spec"):
        bare.update_conductances(spec.conductances)
    g2 = spec.conductances.copy()
    g2[1, :] = 0.0  # the floating row 1 loses every device: it becomes an island
    new = prepare_spec(spec, SolverOptions(method="pcg")).update_conductances(g2)
    ref = direct(spec.replace(conductances=g2), False)
    v = rng.uniform(0, 0.5, (2, 5))
    a, b = new.solve(v, want_nodes=True), ref.solve(v, want_nodes=True)
    assert rel_l1(a.currents, b.currents) <= TOL
    np.testing.assert_array_equal(np.isnan(a.node_voltages), np.isnan(b.node_voltages))
    with pytest.raises(InputError, match="shape"):
        new.update_conductances(np.ones((6, 5)))
    with pytest.raises(InputError, match=r"conductances\[0,0\]"):
        new.update_conductances(-spec.conductances)


def test_for_circuit_refuses_another_array(rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (4, 4)), r_row=1.0, r_col=1.0)
    for method in ("direct", "pcg"):
        p = prepare_spec(spec, SolverOptions(method=method))
        other = build_circuit(spec.replace(r_row=2.0), transpose=True)
        with pytest.raises(EngineError, match="same resistors"):
            p.for_circuit(other)


def test_line_solvers_match_banded_lapack(rng):
    n, m, b = 7, 9, 3
    off_r, off_c = -rng.uniform(0.1, 1.0, (n, m - 1)), -rng.uniform(0.1, 1.0, (n - 1, m))
    diag = rng.uniform(2.5, 3.0, (n, m))
    rhs = rng.standard_normal((b, n, m))
    x_r, x_c = RowLines(diag, off_r).solve(rhs.copy()), ColLines(diag, off_c).solve(rhs.copy())
    for k in range(b):
        for i in range(n):
            band = np.zeros((3, m))
            band[0, 1:], band[1], band[2, :-1] = off_r[i], diag[i], off_r[i]
            np.testing.assert_allclose(x_r[k, i], solve_banded((1, 1), band, rhs[k, i]), rtol=1e-12)
        for j in range(m):
            band = np.zeros((3, n))
            band[0, 1:], band[1], band[2, :-1] = off_c[:, j], diag[:, j], off_c[:, j]
            np.testing.assert_allclose(x_c[k, :, j], solve_banded((1, 1), band, rhs[k, :, j]), rtol=1e-12)


def test_no_dense_matrix_of_the_array_is_formed(rng):
    # Every array the line-block path keeps is O(N·M): nothing N²×N² (or N·M × N·M).
    n, m = 20, 30
    blocks = LineBlocks.from_circuit(build_circuit(CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (n, m)),
                                                                r_row=1.0, r_col=1.0)))
    sizes = [v.size for v in vars(blocks).values() if isinstance(v, np.ndarray)]
    sizes += [v.size for line in (blocks.rows, blocks.cols) for v in vars(line).values()
              if isinstance(v, np.ndarray)]
    assert sizes and max(sizes) <= n * m


def test_direct_read_is_unchanged_through_the_engine(rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (5, 4)), r_row=1.0, r_col=1.0)
    res = get_engine("nodal").prepare(build_circuit(spec), SolverOptions(method="direct")).solve(np.ones(5))
    assert res.info["method"] == "direct" and "ordering" in res.info and res.branch_currents is not None
