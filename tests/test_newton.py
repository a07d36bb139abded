"""Exact nonlinear reads: damped Newton on the line-block structure (cosim.circuit.solvers.newton).

Truths checked, with their tolerances:
- engine against engine: ohmic laws through Newton equal the nodal direct read (forward and
  transpose) to 1e-10 (both certified to 1e-10 or exact);
- the small-signal limit: Stanford–PKU (sinh) cells read at ~1 µV equal the ohmic read with the
  cells' small-signal conductance a/v0 to 1e-9 (the sinh curvature at v/v0 = 4e-6 is
  (v/v0)²/6 ≈ 3e-12, far below);
- an independent nonlinear solution: a dense Newton with a finite-difference Jacobian on the
  full nodal KCL of random small arrays, written out in this file (no line blocks, no analytic
  derivatives), agrees to 1e-8 (a hypothesis property over sizes, wires, laws, states and
  voltages);
- the Verilog-A sources in VACASK (tests marked vacask): Stanford–PKU cells, 1S1R (with
  models/selector.va) and 1T1R (models/nmos_l1.va, gate on the word line) arrays with every
  drive/sense/unselected option VACASK can pose, ≤ 1e-6 (measured 1e-14–3e-8);
- a read that cannot converge in the step budget raises one line naming the array, the worst
  cell and the residual.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.array.cells import device_law, load_access_card
from cosim.circuit import CrossbarSpec, build_circuit, read
from cosim.circuit.cells import Mosfet, Ohmic, SeriesCell, Sinh
from cosim.circuit.engines.base import SolverOptions
from cosim.circuit.solvers.newton import read_nonlinear
from cosim.devices import get_model, load_card
from cosim.devices.paths import models_dir
from cosim.errors import ConvergenceError

CARDS = models_dir() / "cards"
OPTIONS = [
    {"r_row": 2.0, "r_col": 3.0, "r_driver": 5.0, "r_sense": 1.0},
    {"r_row": 1.0, "r_col": 1.0, "drive": "both", "sense": "both"},
    {"r_row": 2.0, "r_col": 3.0, "drive": "right", "sense": "top", "selected_rows": [0, 2], "unselected": "floating"},
    {"r_row": 1.0, "r_col": 1.0, "selected_rows": [1], "selected_cols": [0, 3], "unselected": "v/2", "v_select": 0.8},
    {"r_row": 1.0, "r_col": 2.0, "r_driver": 1.0, "selected_rows": [2], "unselected": "v/3", "v_select": 0.8},
]


def pku(shape, rng):
    c = load_card(CARDS / "stanford_pku_default.toml")
    p = dict(c.params)
    states = rng.uniform(p["g_min"], p["g_max"], shape)
    return device_law(get_model("stanford_pku"), states, p), p, states


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("transpose", [False, True])
def test_ohmic_laws_equal_the_nodal_read(options, transpose, rng):
    g = rng.uniform(1e-6, 1e-4, (6, 5))
    spec = CrossbarSpec(conductances=g, **options)
    x = rng.uniform(0.0, 0.5, (3, 5 if transpose else 6))
    got = read_nonlinear(spec, Ohmic(g), x, transpose=transpose)
    want = read(spec, x, engine="nodal", transpose=transpose, options=SolverOptions(method="direct"))
    np.testing.assert_allclose(got.currents, want.currents, rtol=1e-10, atol=1e-10 * np.abs(want.currents).max())
    assert got.info["method"] == "newton" and got.info["error_bound"] <= 1e-10


@pytest.mark.parametrize("options", OPTIONS[:3])
def test_small_signal_limit_is_the_ohmic_read(options, rng):
    law, _, _ = pku((6, 5), rng)
    g_ss = law.small_signal()
    spec = CrossbarSpec(conductances=g_ss, **options)
    x = rng.uniform(0.0, 1e-6, (2, 6))
    got = read_nonlinear(spec, law, x)
    want = read(spec, x, engine="nodal", options=SolverOptions(method="direct"))
    np.testing.assert_allclose(got.currents, want.currents, rtol=1e-9, atol=1e-9 * np.abs(want.currents).max())


def _dense_kcl_solution(spec: CrossbarSpec, cell, x: np.ndarray) -> np.ndarray:
    """Output currents by scipy.optimize.root on every node's KCL, written out independently:
    unknowns are all node potentials not held by a source through 0 Ω (no line blocks)."""
    c = build_circuit(spec)
    n, m = spec.shape
    values = c.source_values(x[None, :])[0]
    lay = c.layout
    cell_sl = slice(lay.cell_res0, lay.cell_res0 + n * m)
    is_cell = np.zeros(c.res_g.size, bool)
    is_cell[cell_sl] = True
    # Sources sit between port nodes and ground: port potentials are known.
    fixed = {int(p): float(values[k]) for k, p in enumerate(c.vsrc_p)}
    fixed[0] = 0.0
    # 0 Ω elements: the far node copies the near potential (ports' 0 Ω resistors, grounded lines).
    shorts = [(int(a), int(b)) for a, b, g in zip(c.res_a, c.res_b, c.res_g) if np.isinf(g)]
    alias = {}
    for a, b in shorts:
        (k, v) = (b, a) if a in fixed or a in alias else (a, b)
        alias[k] = v
    def rep(k):
        while k in alias:
            k = alias[k]
        return k
    free = sorted({rep(k) for k in range(c.n_nodes)} - set(fixed))
    pos = {k: i for i, k in enumerate(free)}

    def pot(u):
        return np.array([fixed[rep(k)] if rep(k) in fixed else u[pos[rep(k)]] for k in range(c.n_nodes)])

    def kcl(u):
        v = pot(u)
        f = np.zeros(c.n_nodes)
        a, b = c.res_a, c.res_b
        ok = ~is_cell & np.isfinite(c.res_g) & (c.res_g > 0)
        cur = np.zeros(c.res_g.size)
        cur[ok] = c.res_g[ok] * (v[a[ok]] - v[b[ok]])
        cur[cell_sl] = cell.branch(v[a[cell_sl]].reshape(n, m), v[b[cell_sl]].reshape(n, m))[0].ravel()
        np.add.at(f, a, cur)
        np.add.at(f, b, -cur)
        out = np.zeros(len(free))
        for k in range(c.n_nodes):  # shorted nodes add their KCL to their representative's
            if rep(k) in pos:
                out[pos[rep(k)]] += f[k]
        return out, v, cur

    # Newton on the dense system with a central-difference Jacobian (no analytic derivative, no
    # line blocks), halving steps that do not reduce the residual.
    u = np.zeros(len(free))
    res, v, cur = kcl(u)
    for _ in range(60):
        if np.abs(res).max() <= 1e-14 * max(np.abs(cur).max(), 1e-18):
            break
        h = 1e-7
        jac = np.column_stack([(kcl(u + h * e)[0] - kcl(u - h * e)[0]) / (2 * h) for e in np.eye(len(free))])
        step = np.linalg.solve(jac, -res)
        t, trial = 1.0, None
        while t > 1e-3:
            trial = kcl(u + t * step)
            if np.abs(trial[0]).sum() < np.abs(res).sum():
                break
            t *= 0.5
        else:
            break  # no step reduces the residual: at round-off
        u = u + t * step
        res, v, cur = trial
    # Output currents: current delivered into each sense port = sum of currents into port nodes.
    out = np.zeros(m)
    for j in range(m):
        node = int(c.vsrc_p[n + j])
        into = cur[c.res_b == node].sum() - cur[c.res_a == node].sum()
        out[j] = into if spec.selected_cols[j] else 0.0  # SPICE branch current of vs{j}
    # Round-off floor: ~1e-16 V on 1 S wires against µA–mA currents.
    assert np.abs(res).max() <= 1e-10 * max(np.abs(cur).max(), 1e-18)
    return out


@settings(max_examples=20, deadline=None, derandomize=True)
@given(n=st.integers(1, 3), m=st.integers(1, 3), r=st.floats(0.5, 20.0), seed=st.integers(0, 2**31),
       kind=st.sampled_from(["sinh", "1s1r", "1t1r"]))
def test_property_newton_equals_an_independent_dense_solve(n, m, r, seed, kind):
    rng = np.random.default_rng(seed)
    dev = Sinh(rng.uniform(1e-7, 1e-5, (n, m)), rng.uniform(0.1, 0.4, (n, m)))
    cell = {"sinh": dev, "1s1r": SeriesCell(dev, Sinh(1e-9, 0.08, 1e-10)),
            "1t1r": SeriesCell(dev, Mosfet(2.7e-4, 0.7, 0.1, 3.3))}[kind]
    spec = CrossbarSpec(conductances=np.ones((n, m)), r_row=r, r_col=r, r_driver=r, r_sense=r)
    x = rng.uniform(-1.0, 1.0, n)
    got = read_nonlinear(spec, cell, x).currents[0]
    want = _dense_kcl_solution(spec, cell, x)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-8 * max(np.abs(want).max(), 1e-15))


def test_forced_non_convergence_is_one_line(rng):
    law, _, _ = pku((8, 8), rng)
    spec = CrossbarSpec(conductances=np.ones((8, 8)), r_row=5.0, r_col=5.0)
    with pytest.raises(ConvergenceError) as exc:
        read_nonlinear(spec, law, np.full(8, 1.5), SolverOptions(rtol=1e-12), max_newton=1)
    text = str(exc.value)
    assert "\n" not in text and "8x8" in text and "worst at cell (" in text and "rtol 1.0e-12" in text


@pytest.mark.vacask
@pytest.mark.parametrize("kind", ["pku", "1s1r", "1s1r-taox", "1t1r"])
@pytest.mark.parametrize("options", OPTIONS)
def test_newton_equals_the_verilog_a_in_vacask(kind, options, rng):
    from cosim.array.vacask import array_read

    shape = (4, 5)
    law, p, states = pku(shape, rng)
    spec = CrossbarSpec(conductances=np.ones(shape), **options)
    acc = None
    cell = law
    if kind != "pku":
        acc = load_access_card({"1s1r": "selector_default", "1s1r-taox": "selector_taox_luo2017",
                                "1t1r": "nmos_l1_default"}[kind])
        if kind == "1t1r" and spec.unselected == "floating":
            pytest.skip("deselected floating rows behind cut-off transistors have no defined potential")
        cell = SeriesCell(law, acc.law(spec.selected_rows, shape))
    # The published selector conducts ~1e-11 A below 0.5 V: read it near its 2 V operating point.
    x = rng.uniform(1.4, 2.2, shape[0]) if kind == "1s1r-taox" else rng.uniform(0.2, 0.8, shape[0])
    got = read_nonlinear(spec, cell, x).currents[0]
    want = array_read(spec.replace(cell="1T1R") if acc else spec, "stanford_pku", p, states, x, access=acc)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
