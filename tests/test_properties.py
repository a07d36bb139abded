"""Circuit laws the nodal engine must obey on random crossbars (hypothesis).

Random instances: up to 8×8, devices 1 µS–100 µS, per-segment wire and periphery resistances in
{0 Ω (an exact short)} ∪ [0.5, 20] Ω, every drive/sense side, 0T1R and 1T1R, partial selections
with every unselected-line scheme (driven, grounded, floating, V/2, V/3). Examples are
derandomized so CI sees the same cases every run.

Tolerance: 1e-9 relative to the largest current of the instance. Round-off in a direct solve is
a few ulps of the ~0.5 V node potentials; currents recovered through the stiffest wires (2 S at
0.5 Ω) carry that times 2 S, ~1e-15 A, against device currents down to ~1e-7 A. Over 800 random
instances (two runs, not derandomized) the worst relative errors measured were 2e-12
(reciprocity) and 2e-11 (KCL), so 1e-9 leaves a 50x margin and still catches any real violation: a lost element or
a wrong sign moves currents by ~1e-3 relative or more.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cosim.circuit import CrossbarSpec, read

TOL = 1e-9
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None)


def _resistances(rng: np.random.Generator, shape, zero_ok: bool = True) -> np.ndarray:
    r = rng.uniform(0.5, 20.0, shape)
    if zero_ok:
        r[rng.random(shape) < 0.25] = 0.0
    return r


@st.composite
def crossbars(draw, *, v_sense: bool = True) -> CrossbarSpec:
    """A random crossbar spec; the numbers come from a drawn seed, the structure from hypothesis.

    ``v_sense=False`` puts every fixed potential (v_sense, the V/2 and V/3 biases) at 0 V.
    """
    n = draw(st.integers(1, 8))
    m = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cell = draw(st.sampled_from(["0T1R", "1T1R"]))
    unselected = draw(st.sampled_from(["driven", "grounded", "floating", "v/2", "v/3"]))
    rows = np.ones(n, dtype=bool)
    cols = np.ones(m, dtype=bool)
    if draw(st.booleans()):  # a partial selection, keeping at least one line of each kind
        rows = rng.random(n) < 0.6
        cols = rng.random(m) < 0.6
        rows[rng.integers(n)] = True
        cols[rng.integers(m)] = True
    periphery_zero_ok = True
    return CrossbarSpec(
        conductances=rng.uniform(1e-6, 1e-4, (n, m)),
        r_row=_resistances(rng, (n, m - 1)),
        r_col=_resistances(rng, (n - 1, m)),
        r_driver=_resistances(rng, n, periphery_zero_ok),
        r_sense=_resistances(rng, m, periphery_zero_ok),
        v_sense=float(rng.uniform(-0.1, 0.1)) if v_sense else 0.0,
        drive=draw(st.sampled_from(["left", "right", "both"])),
        sense=draw(st.sampled_from(["bottom", "top", "both"])),
        cell=cell,
        r_access=float(rng.uniform(100.0, 1e4)),
        selected_rows=rows,
        selected_cols=cols,
        unselected=unselected,
        v_select=float(rng.uniform(0.2, 1.0)) if v_sense else 0.0,
    )


def transfer(spec: CrossbarSpec, transpose: bool) -> np.ndarray:
    """∂(output current)/∂(input voltage), (n_in, n_out) in S, by differencing unit steps."""
    n_in = spec.n_cols if transpose else spec.n_rows
    base = np.full(n_in, spec.v_sense)
    v = np.vstack([base, base + np.eye(n_in)])
    i = read(spec, v, engine="nodal", transpose=transpose).currents
    return i[1:] - i[0]


@SETTINGS
@given(crossbars())
def test_reciprocity(spec):
    """Forward transfer row k → column l equals transpose transfer column l → row k."""
    t_fwd = transfer(spec, transpose=False)  # (N, M)
    t_bwd = transfer(spec, transpose=True)  # (M, N)
    sel = np.ix_(spec.selected_rows, spec.selected_cols)
    scale = np.abs(t_fwd[sel]).max()
    assert scale > 0
    np.testing.assert_allclose(t_fwd[sel], t_bwd.T[sel], rtol=0, atol=TOL * scale)


@SETTINGS
@given(crossbars(), st.booleans(), st.integers(0, 2**32 - 1))
def test_kirchhoff_current_law(spec, transpose, seed):
    """Source currents sum to zero, outputs are their sense sources' currents, and every line's
    port current equals the sum of its device currents (from the node voltages)."""
    n, m = spec.shape
    n_in = m if transpose else n
    v = np.random.default_rng(seed).uniform(-0.5, 0.5, (3, n_in))
    res = read(spec, v, engine="nodal", transpose=transpose, want_cells=True)
    branch, cells = res.branch_currents, res.cell_currents
    assert branch.shape == (3, n + m) and cells.shape == (3, n, m)
    scale = np.abs(branch).max()
    assert scale > 0
    # Every source returns its current to ground: KCL at node 0.
    np.testing.assert_allclose(branch.sum(axis=1), 0.0, atol=TOL * scale)
    # Outputs are the selected sensing lines' source currents (rows vd* come first, then
    # columns vs*); unselected lines are biased, not sensed, and read 0 A.
    out = branch[:, :n] if transpose else branch[:, n:]
    sensed = spec.selected_rows if transpose else spec.selected_cols
    np.testing.assert_allclose(res.currents, np.where(sensed, out, 0.0), rtol=0, atol=TOL * scale)
    # KCL on each line: current in through a row port = current into its devices; current out
    # through a column port = current out of its devices.
    np.testing.assert_allclose(-branch[:, :n], cells.sum(axis=2), rtol=0, atol=TOL * scale)
    np.testing.assert_allclose(branch[:, n:], cells.sum(axis=1), rtol=0, atol=TOL * scale)


WIRES = ["r_row", "r_col", "r_driver", "r_sense"]


def drawn_currents(spec: CrossbarSpec) -> np.ndarray:
    """Current drawn from each selected row's source when it alone is at 1 V, A."""
    v = np.eye(spec.n_rows)[spec.selected_rows]
    branch = read(spec, v, engine="nodal").branch_currents
    return -branch[np.arange(v.shape[0]), np.flatnonzero(spec.selected_rows)]


@SETTINGS
@given(crossbars(v_sense=False), st.sampled_from(WIRES), st.integers(0, 2**32 - 1),
       st.floats(0.1, 100.0))
def test_rayleigh_monotonicity(spec, wire, seed, extra):
    """With one input at 1 V and every other source at 0 V, raising any one wire resistance never
    raises the current drawn from that input (Rayleigh: effective conductance is monotone)."""
    r = getattr(spec, wire).copy()
    assume(r.size > 0)  # a 1-wide array has no such segment
    rng = np.random.default_rng(seed)
    idx = tuple(int(rng.integers(s)) for s in r.shape)
    r[idx] += extra  # from 0 Ω (a short) too
    before = drawn_currents(spec)
    after = drawn_currents(spec.replace(**{wire: r}))
    assert (before > 0).all()
    assert (after <= before + TOL * before.max()).all()


def test_rayleigh_is_strict_when_the_wire_carries_current():
    # The property above allows equality; here raising a carrying row segment must lower the
    # current, so the monotonicity test cannot pass for a circuit that ignores wires.
    g = np.full((2, 3), 1e-3)
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)
    r = spec.r_row.copy()
    r[0, 0] = 50.0
    before = drawn_currents(spec)
    after = drawn_currents(spec.replace(r_row=r))
    assert after[0] < before[0] * (1 - 1e-3)
    assert after[1] == pytest.approx(before[1], rel=1e-3)  # row 1's own wires did not change
