"""A very large finite conductance (a shorted cell modelled as 1e9–1e20 S among 1e-5 S devices
and 1 Ω wires) against exact rational arithmetic.

Truth: the nodal equations of the same circuit solved with ``fractions.Fraction`` (Gaussian
elimination, no rounding at all), then rounded once. The nodal engine must agree to 1e-9
relative on every output, whatever the method asked for (direct here; pcg and transfer are
routed to the direct branch form and say so), and a stiff cell's own current comes from its
branch unknown, not from g·Δv. Before the branch form, 1e15 S gave column 2 7.7 % off and 1e20 S
gave −5.0e+08 A with a 2.7e-37 "KCL residual".
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from cosim.circuit.build import build_circuit
from cosim.circuit.engines.base import SolverOptions
from cosim.circuit.mna import has_stiff
from cosim.circuit.read import read
from cosim.circuit.spec import CrossbarSpec


def exact_outputs(spec: CrossbarSpec, v: np.ndarray) -> tuple[np.ndarray, dict]:
    """Column currents (A) and cell currents of ``spec`` for one input vector, exactly.

    Nodes of the canonical crossbar with 0 Ω driver and sense (DESIGN.md §2): R(i,j) and C(i,j);
    R(i,0) held at v_i, C(N-1,j) at 0 V; rows of 1/r_row, columns of 1/r_col.
    """
    g = spec.conductances
    n, m = g.shape
    rr, rc = (Fraction(1) / Fraction(float(np.ravel(r)[0])) for r in (spec.r_row, spec.r_col))
    idx: dict[tuple, int] = {}
    known: dict[tuple, Fraction] = {}
    for i in range(n):
        for j in range(m):
            if j == 0:
                known[("r", i, j)] = Fraction(float(v[i]))
            else:
                idx[("r", i, j)] = len(idx)
            if i == n - 1:
                known[("c", i, j)] = Fraction(0)
            else:
                idx[("c", i, j)] = len(idx)
    edges = []
    for i in range(n):
        for j in range(m):
            edges.append((("r", i, j), ("c", i, j), Fraction(float(g[i, j]))))
            if j + 1 < m:
                edges.append((("r", i, j), ("r", i, j + 1), rr))
            if i + 1 < n:
                edges.append((("c", i, j), ("c", i + 1, j), rc))
    k = len(idx)
    a = [[Fraction(0)] * k for _ in range(k)]
    b = [Fraction(0)] * k
    for p, q, ge in edges:
        for x, y in ((p, q), (q, p)):
            if x in idx:
                a[idx[x]][idx[x]] += ge
                if y in idx:
                    a[idx[x]][idx[y]] -= ge
                else:
                    b[idx[x]] += ge * known[y]
    for col in range(k):  # Gaussian elimination with exact pivots
        piv = next(r for r in range(col, k) if a[r][col] != 0)
        a[col], a[piv], b[col], b[piv] = a[piv], a[col], b[piv], b[col]
        for r in range(col + 1, k):
            f = a[r][col] / a[col][col]
            if f:
                a[r] = [x - f * y for x, y in zip(a[r], a[col])]
                b[r] -= f * b[col]
    sol = [Fraction(0)] * k
    for r in range(k - 1, -1, -1):
        sol[r] = (b[r] - sum(a[r][c] * sol[c] for c in range(r + 1, k))) / a[r][r]
    pot = {**known, **{key: sol[pos] for key, pos in idx.items()}}
    cells = {(i, j): Fraction(float(g[i, j])) * (pot[("r", i, j)] - pot[("c", i, j)]) for i in range(n) for j in range(m)}
    out = []
    for j in range(m):  # into the virtual ground: the bottom cell plus the column wire above it
        cur = cells[(n - 1, j)]
        if n > 1:
            cur += rc * (pot[("c", n - 2, j)] - pot[("c", n - 1, j)])
        out.append(float(cur))
    return np.array(out), {key: float(val) for key, val in cells.items()}


@pytest.mark.parametrize("big", [1e9, 1e12, 1e15, 1e20])
@pytest.mark.parametrize("where", [(1, 2), (2, 0), (0, 3)])
def test_large_conductance_matches_exact_arithmetic(big, where):
    g = np.full((3, 4), 1e-5)
    g[where] = big
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)
    v = np.full(3, 0.2)
    truth, cells_exact = exact_outputs(spec, v)
    assert has_stiff(build_circuit(spec))
    for method in ("direct", "auto", "pcg", "transfer"):
        res = read(spec, v[None], engine="nodal", options=SolverOptions(method=method), want_cells=True)
        np.testing.assert_allclose(res.currents[0], truth, rtol=1e-9, atol=0, err_msg=method)
        assert res.info["method"] == "direct" and (method == "direct" or "stiff" in res.info["auto"])
        np.testing.assert_allclose(res.cell_currents[0][where], cells_exact[where], rtol=1e-9)
        assert res.residual < 1e-12


def test_ordinary_arrays_are_not_stiff_and_still_exact(rng):
    g = rng.uniform(1e-6, 1e-5, (3, 4))
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)
    assert not has_stiff(build_circuit(spec))
    v = rng.uniform(0, 0.3, 3)
    truth, _ = exact_outputs(spec, v)
    np.testing.assert_allclose(read(spec, v[None], engine="nodal").currents[0], truth, rtol=1e-12)


def test_cli_read_of_a_shorted_cell(tmp_path, capsys):
    from cosim.cli import main

    g = np.full((3, 4), 1e-5)
    g[1, 2] = 1e20
    np.save(tmp_path / "g.npy", g)
    np.save(tmp_path / "v.npy", np.full((1, 3), 0.2))
    assert main(["read", "--conductance", str(tmp_path / "g.npy"), "--voltages", str(tmp_path / "v.npy"),
                 "--r-row", "1", "--r-col", "1"]) == 0
    out = capsys.readouterr().out
    truth, _ = exact_outputs(CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0), np.full(3, 0.2))
    printed = [float(x) for x in out.strip().splitlines()[-1].split()]
    np.testing.assert_allclose(printed, truth, rtol=1e-6)  # printed with 7 digits
