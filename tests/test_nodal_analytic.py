"""The nodal engine against closed forms and hand-solved circuits.

Tolerance: 1e-12 relative to the largest expected current throughout. A sparse direct solve of
these small, well-scaled systems is exact up to round-off (a few ulps per operation times the
matrix condition, here at most ~1e3 for the 64-node ladders); the largest error measured is
~3e-14 (the ladders), so 1e-12 leaves a 30x margin yet catches any modelling error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cosim.circuit import CrossbarSpec, build_circuit, read

RTOL = 1e-12


def assert_rel(actual, expected, rtol):
    """Element-wise agreement within ``rtol`` of the largest expected magnitude."""
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (8, 2), (16, 16)])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("sides", [("left", "bottom"), ("right", "top"), ("both", "both")])
def test_zero_parasitics_equal_matmul(shape, transpose, sides, rng):
    g = rng.uniform(1e-6, 1e-4, shape)
    g[rng.random(shape) < 0.1] = 0.0  # some open devices
    v_sense = 0.05
    spec = CrossbarSpec(conductances=g, drive=sides[0], sense=sides[1], v_sense=v_sense)
    n_in = shape[1] if transpose else shape[0]
    v = rng.uniform(-0.3, 0.3, (7, n_in))
    expected = (v - v_sense) @ (g.T if transpose else g)
    res = read(spec, v, engine="nodal", transpose=transpose)
    assert res.currents.shape == expected.shape
    assert_rel(res.currents, expected, RTOL)


@pytest.mark.parametrize("unselected", ["grounded", "driven"])
@pytest.mark.parametrize("transpose", [False, True])
def test_zero_parasitics_partial_selection_selected_block(unselected, transpose, rng):
    # Unselected lines held at 0 V with ideal wires carry no sneak current: the selected outputs
    # see exactly the selected inputs times the selected conductances.
    g = rng.uniform(1e-6, 1e-4, (5, 6))
    rows, cols = np.array([1, 0, 1, 1, 0], bool), np.array([0, 1, 1, 0, 1, 1], bool)
    spec = CrossbarSpec(conductances=g, selected_rows=rows, selected_cols=cols, unselected=unselected)
    gg, ins, outs = (g.T, cols, rows) if transpose else (g, rows, cols)
    v = rng.uniform(-0.3, 0.3, (4, ins.size))
    res = read(spec, v, engine="nodal", transpose=transpose)
    expected = v[:, ins] @ gg[np.ix_(ins, outs)]
    assert_rel(res.currents[:, outs], expected, RTOL)


def test_zero_parasitics_partial_selection_matches_ideal_engine(rng):
    g = rng.uniform(1e-6, 1e-4, (3, 4))
    spec = CrossbarSpec(conductances=g, selected_rows=[0, 2], selected_cols=[1, 3], unselected="grounded")
    v = rng.uniform(0.1, 0.3, (2, 3))
    assert_rel(read(spec, v, engine="nodal").currents, read(spec, v, engine="ideal").currents, RTOL)


@pytest.mark.parametrize("transpose", [False, True])
def test_zero_wire_1t1r_is_series_combination(transpose, rng):
    g = rng.uniform(1e-6, 1e-4, (6, 4))
    g[0, 0] = 0.0
    r_access = 2.5e3
    spec = CrossbarSpec(conductances=g, cell="1T1R", r_access=r_access)
    g_eff = np.divide(g, 1.0 + g * r_access)  # 1 / (1/g + r_access), exact at g = 0
    v = rng.uniform(0.0, 0.5, (5, 4 if transpose else 6))
    res = read(spec, v, engine="nodal", transpose=transpose)
    assert_rel(res.currents, v @ (g_eff.T if transpose else g_eff), RTOL)


@pytest.mark.parametrize("drive,sense,factor", [("left", "bottom", 1.0), ("both", "both", 0.5)])
@pytest.mark.parametrize("cell", ["0T1R", "1T1R"])
def test_single_cell_series_formula(drive, sense, factor, cell):
    # For 1x1 both ends of the row (column) are one node, so "both" puts the two periphery
    # resistors in parallel: r/2.
    g, r_d, r_s, r_a, v = 2e-4, 150.0, 80.0, 1e3, 0.3
    spec = CrossbarSpec(conductances=[[g]], r_driver=r_d, r_sense=r_s, drive=drive, sense=sense,
                        cell=cell, r_access=r_a)
    r_total = factor * (r_d + r_s) + 1 / g + (r_a if cell == "1T1R" else 0.0)
    res = read(spec, [v], engine="nodal")
    assert res.currents[0, 0] == pytest.approx(v / r_total, rel=RTOL)


def test_2x2_with_wires_by_series_parallel_reduction():
    # Ideal periphery (r_driver = r_sense = 0): R00 = V0, R10 = V1, C10 = C11 = 0 V. Then
    #   C00 = V0·g00 / (g00 + 1/rc)                       (cell 00 in series with column wire)
    #   R11 = V1·(1/rr) / (1/rr + g11)                    (row wire in series with cell 11)
    #   R01 = V0·(1/rr) / (1/rr + gs),  gs = 1/(1/g01 + rc)
    #   I0 = C00/rc + g10·V1,            I1 = gs·R01 + g11·R11
    g00, g01, g10, g11 = 1e-3, 2e-3, 3e-3, 4e-3
    rr, rc = 50.0, 120.0
    spec = CrossbarSpec(conductances=[[g00, g01], [g10, g11]], r_row=rr, r_col=rc)
    v = np.array([[0.2, 0.0], [0.0, 0.2], [0.3, -0.1]])
    v0, v1 = v[:, 0], v[:, 1]
    c00 = v0 * g00 / (g00 + 1 / rc)
    r11 = v1 * (1 / rr) / (1 / rr + g11)
    gs = 1 / (1 / g01 + rc)
    r01 = v0 * (1 / rr) / (1 / rr + gs)
    expected = np.stack([c00 / rc + g10 * v1, gs * r01 + g11 * r11], axis=1)
    res = read(spec, v, engine="nodal")
    assert_rel(res.currents, expected, RTOL)


def test_2x2_with_all_parasitics_by_explicit_kcl():
    # Unknowns x = [R00, R01, R10, R11, C00, C01, C10, C11]; each row below is KCL at one node
    # (sum of currents leaving = 0), written out by hand, sources moved to the right side.
    g00, g01, g10, g11 = 1e-3, 5e-4, 2e-3, 8e-4
    rd, rs, rr, rc = 30.0, 20.0, 40.0, 60.0
    gd, gsn, gw, gc = 1 / rd, 1 / rs, 1 / rr, 1 / rc
    a = np.array([
        # R00      R01        R10        R11        C00        C01        C10             C11
        [gd + gw + g00, -gw, 0, 0, -g00, 0, 0, 0],                                 # R00
        [-gw, gw + g01, 0, 0, 0, -g01, 0, 0],                                      # R01
        [0, 0, gd + gw + g10, -gw, 0, 0, -g10, 0],                                 # R10
        [0, 0, -gw, gw + g11, 0, 0, 0, -g11],                                      # R11
        [-g00, 0, 0, 0, g00 + gc, 0, -gc, 0],                                      # C00
        [0, -g01, 0, 0, 0, g01 + gc, 0, -gc],                                      # C01
        [0, 0, -g10, 0, -gc, 0, g10 + gc + gsn, 0],                                # C10
        [0, 0, 0, -g11, 0, -gc, 0, g11 + gc + gsn],                                # C11
    ])
    v = np.array([[0.25, -0.1], [0.0, 0.3]])
    rhs = np.zeros((8, v.shape[0]))
    rhs[0], rhs[2] = gd * v[:, 0], gd * v[:, 1]
    x = np.linalg.solve(a, rhs)
    expected = (gsn * x[[6, 7]]).T  # I_j = current through r_sense into the virtual ground
    spec = CrossbarSpec(conductances=[[g00, g01], [g10, g11]], r_driver=rd, r_sense=rs, r_row=rr, r_col=rc)
    res = read(spec, v, engine="nodal", want_nodes=True)
    assert_rel(res.currents, expected, RTOL)
    nodes = build_circuit(spec).node_names
    idx = [nodes.index(nm) for nm in ("r0_0", "r0_1", "r1_0", "r1_1", "c0_0", "c0_1", "c1_0", "c1_1")]
    assert_rel(res.node_voltages[:, idx], x.T, RTOL)


def ladder(m: int, g: float, r: float, r_d: float, v: float) -> np.ndarray:
    """Node voltages of a line of m identical cells g (to 0 V) joined by wire segments r, fed by
    v through r_d at node 0.

    Interior KCL gives V[k+1] + V[k-1] = (2 + g·r)·V[k], solved by V[k] = A·cosh(θ(m − ½ − k))
    with cosh θ = 1 + g·r/2, i.e. θ = 2·asinh(√(g·r)/2) (the accurate form for small g·r). The
    open far end (V[m−2] = (1 + g·r)·V[m−1]) is the mirror condition V[m] = V[m−1], which
    the half-integer centre meets. The driver node fixes A:
    (v − V0)/r_d = g·V0 + (V0 − V1)/r.
    """
    theta = 2.0 * math.asinh(math.sqrt(g * r) / 2.0)
    k = np.arange(m)
    shape = np.cosh(theta * (m - 0.5 - k))
    a = v / (shape[0] * (1.0 + r_d * g) + (r_d / r) * (shape[0] - shape[1]))
    return a * shape


@pytest.mark.parametrize("r_d", [0.0, 25.0])
def test_uniform_row_ladder_closed_form(r_d):
    m, g, r, v = 64, 1e-3, 2.0, 0.4  # g·r·m² ≈ 8: a strong IR drop along the row
    spec = CrossbarSpec(conductances=np.full((1, m), g), r_row=r, r_driver=r_d)
    res = read(spec, [v], engine="nodal")
    expected = g * ladder(m, g, r, r_d, v)
    assert expected[-1] < 0.2 * expected[0]  # the closed form really exercises the drop
    assert_rel(res.currents[0], expected, RTOL)


def test_uniform_column_ladder_closed_form_transpose():
    # Transpose read of an N×1 array: the column is driven from its bottom port through
    # r_sense; rows are sensed at 0 V. Row i sits N−1−i segments from the port.
    n, g, r, r_s, v = 48, 5e-4, 3.0, 10.0, -0.2
    spec = CrossbarSpec(conductances=np.full((n, 1), g), r_col=r, r_sense=r_s)
    res = read(spec, [v], engine="nodal", transpose=True)
    expected = g * ladder(n, g, r, r_s, v)[::-1]
    assert_rel(res.currents[0], expected, RTOL)


def sneak_closed_form(n: int, m: int, g: float) -> float:
    """Conductance of the floating sneak network between row i and column j of a uniform array:
    by symmetry the other columns share one potential, as do the other rows, giving three
    conductances in series: (M−1)g, (N−1)(M−1)g, (N−1)g."""
    return 1.0 / (1.0 / ((m - 1) * g) + 1.0 / ((n - 1) * (m - 1) * g) + 1.0 / ((n - 1) * g))


def floating_read_current(n, m, g, r_p, v):
    spec = CrossbarSpec(conductances=np.full((n, m), g), selected_rows=[1], selected_cols=[2],
                        unselected="floating", r_driver=r_p, r_sense=r_p)
    inputs = np.zeros(n)
    inputs[1] = v
    return read(spec, inputs, engine="nodal").currents[0, 2]


def test_floating_unselected_sneak_network():
    n, m, g, r_p, v = 5, 6, 1e-4, 15.0, 0.2
    g_path = g + sneak_closed_form(n, m, g)
    expected = v / (2 * r_p + 1.0 / g_path)
    assert floating_read_current(n, m, g, r_p, v) == pytest.approx(expected, rel=RTOL)


def test_floating_unselected_sneak_network_ideal_periphery():
    n, m, g, v = 5, 6, 1e-4, 0.2
    expected = v * (g + sneak_closed_form(n, m, g))
    assert floating_read_current(n, m, g, 0.0, v) == pytest.approx(expected, rel=RTOL)
