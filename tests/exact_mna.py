"""Exact modified nodal analysis of a :class:`Circuit`, for tests: no rounding anywhere.

Textbook MNA stamps in ``fractions.Fraction`` (every float converts exactly), solved by Gaussian
elimination, then rounded once. It shares nothing with cosim.circuit.mna (no merged shorts, no
eliminated known nodes, no stiff branches): one unknown per node and per voltage source, which
makes it the independent truth where double precision itself is the question (stiff resistors,
controlled sources of 1e308 gain, where ngspice's own LU drifts; see test_stiff, test_fuzz_netlist).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


class Singular(ValueError):
    """The exact system has no unique solution."""


def solve_exact(a: list[list[Fraction]], b: list[Fraction]) -> list[Fraction]:
    """x with a·x = b by Gaussian elimination with exact pivots (``a`` and ``b`` are consumed)."""
    k = len(b)
    for col in range(k):
        piv = next((r for r in range(col, k) if a[r][col] != 0), None)
        if piv is None:
            raise Singular(f"no pivot in column {col}")
        a[col], a[piv], b[col], b[piv] = a[piv], a[col], b[piv], b[col]
        for r in range(col + 1, k):
            f = a[r][col] / a[col][col]
            if f:
                a[r] = [x - f * y for x, y in zip(a[r], a[col])]
                b[r] -= f * b[col]
    sol = [Fraction(0)] * k
    for r in range(k - 1, -1, -1):
        sol[r] = (b[r] - sum(a[r][c] * sol[c] for c in range(r + 1, k))) / a[r][r]
    return sol


def exact_mna(circuit) -> tuple[list[Fraction], list[Fraction]]:
    """(potentials of nodes 1.., source branch currents) of ``circuit`` with its inputs at 0 V.

    Resistors (0 Ω ones as 0 V branches), independent and controlled sources (E, F, G, H as
    :class:`~cosim.circuit.model.Controls` terms). Every KCL row is the current leaving its node;
    a voltage source's current flows in at its + terminal (SPICE sign). A node no element
    touches has no equation and comes back as 0; raises :class:`Singular` for a floating part.
    """
    c = circuit
    nv, ns = c.n_nodes - 1, c.vsrc_p.size
    shorts = [(p, q) for p, q, g in zip(c.res_a.tolist(), c.res_b.tolist(), c.res_g.tolist())
              if g == float("inf") and p != q]
    k = nv + ns + len(shorts)
    a = [[Fraction(0)] * k for _ in range(k)]
    b = [Fraction(0)] * k
    touched = np.zeros(c.n_nodes, dtype=bool)

    def stamp(row: int, node: int, val: Fraction) -> None:
        if node:
            a[row][node - 1] += val

    for p, q, g in zip(c.res_a.tolist(), c.res_b.tolist(), c.res_g.tolist()):
        if g == 0 or not np.isfinite(g) or p == q:
            continue
        touched[[p, q]] = True
        for x, y in ((p, q), (q, p)):
            if x:
                stamp(x - 1, x, Fraction(g))
                stamp(x - 1, y, -Fraction(g))
    branches = [(p, q, Fraction(float(v))) for p, q, v in zip(c.vsrc_p.tolist(), c.vsrc_n.tolist(), c.vsrc_dc.tolist())]
    branches += [(p, q, Fraction(0)) for p, q in shorts]
    for s, (p, q, v) in enumerate(branches):
        touched[[p, q]] = True
        for node, sign in ((p, 1), (q, -1)):
            if node:
                a[node - 1][nv + s] += sign
                a[nv + s][node - 1] += sign
        b[nv + s] = v
    isrc = [(p, q) for p, q in zip(c.isrc_a.tolist(), c.isrc_b.tolist())]
    for (p, q), i in zip(isrc, c.isrc_dc.tolist()):
        touched[[p, q]] = True
        for node, sign in ((p, -1), (q, 1)):  # leaves p, enters q
            if node:
                b[node - 1] += sign * Fraction(i)
    ctl = c.controls
    if ctl is not None:
        for src, node, coef in zip(ctl.v_node_src.tolist(), ctl.v_node.tolist(), ctl.v_node_coef.tolist()):
            stamp(nv + src, node, -Fraction(coef))
        for src, ctrl, coef in zip(ctl.v_curr_src.tolist(), ctl.v_curr.tolist(), ctl.v_curr_coef.tolist()):
            a[nv + src][nv + ctrl] -= Fraction(coef)
        for src, node, coef in zip(ctl.i_node_src.tolist(), ctl.i_node.tolist(), ctl.i_node_coef.tolist()):
            p, q = isrc[src]
            for x, sign in ((p, 1), (q, -1)):
                if x:
                    stamp(x - 1, node, sign * Fraction(coef))
        for src, ctrl, coef in zip(ctl.i_curr_src.tolist(), ctl.i_curr.tolist(), ctl.i_curr_coef.tolist()):
            p, q = isrc[src]
            for x, sign in ((p, 1), (q, -1)):
                if x:
                    a[x - 1][nv + ctrl] += sign * Fraction(coef)
    keep = [r for r in range(k) if r >= nv or touched[r + 1]]
    sol = solve_exact([[a[r][col] for col in keep] for r in keep], [b[r] for r in keep])
    full = [Fraction(0)] * k
    for pos, r in enumerate(keep):
        full[r] = sol[pos]
    return full[:nv], full[nv:nv + ns]
