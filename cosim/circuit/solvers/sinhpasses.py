"""Compiled passes of the per-vector Newton for sinh cells (:mod:`sinhnewton`).

One Newton step of one input vector touches its (N, M) slabs in a single sweep over the rows,
four at a time while they sit in L1 (:func:`_sweep`): the previous step's row correction, the
cell law and the KCL residual at the new iterate, the line blocks' factorisation at the new
slopes and the next step's Schur right-hand side; the CG between sweeps is coldread's
(:func:`coldread._cg`). Inner loops run over j without branches, so they vectorise; the
helpers are inlined into the sweep, except the first and last rows' balances (:func:`_leave_edge`),
whose per-cell branches slowed the other loops when inlined. Units: V, A, S; arrays (N, M)
C-contiguous float64.
"""

from __future__ import annotations

import math

from cosim.circuit.solvers.coldread import _jit, _rows
from cosim.circuit.solvers.lawkernels import SERIES_MAX, sinh_cosh_small


def _inline(fn):
    return _jit(fn, inline="always")


@_jit
def _applied(sr, sc, v0, uniform, hr, kr, hc, kc, sh, ch):  # pragma: no cover - compiled
    # sh, ch (N, M): sinh and cosh of x0 = (sr[i] − sc[j])/v0 of one vector. ``uniform`` (one v0
    # and one g_lin for the whole array, v0[0, 0]): from the lines' own sinh/cosh (N + M library
    # calls) by the difference formulas, whose rounding is a few ulps of cosh(sr/v0)·cosh(sc/v0)
    # (the currents' absolute error); else a library call per cell.
    n, m = sh.shape
    if uniform:
        inv = 1.0 / v0[0, 0]
        for i in range(n):
            hr[i], kr[i] = math.sinh(sr[i] * inv), math.cosh(sr[i] * inv)
        for j in range(m):
            hc[j], kc[j] = math.sinh(sc[j] * inv), math.cosh(sc[j] * inv)
        for i in range(n):
            for j in range(m):
                sh[i, j] = hr[i] * kc[j] - kr[i] * hc[j]
                ch[i, j] = kr[i] * kc[j] - hr[i] * hc[j]
    else:
        for i in range(n):
            for j in range(m):
                x = (sr[i] - sc[j]) / v0[i, j]
                sh[i, j], ch[i, j] = math.sinh(x), math.cosh(x)


@_inline
def _law_row(i, k, uniform, sr, sc, dr, dc, inv_v0, a, a_v0, g_lin, sh, ch, cur, slope):  # pragma: no cover - compiled
    # Row i's cell currents (A) and slopes (S, into row k of ``slope``) at the drops (dr, dc):
    # sinh(x0 + t) = sinh x0·cosh t + cosh x0·sinh t, t = (dr − dc)/v0, by the series; the row
    # by math.sinh/cosh of t if some |t| exceeds SERIES_MAX (a count, not a max, keeps the loop
    # vectorised). ``uniform``: one v0 and one g_lin for every cell, held in inv_v0[0, 0] and
    # g_lin[0, 0] (a_v0 unused), which spares the pass three of its eight (N, M) reads.
    m = cur.shape[1]
    u = sr[i]
    big = 0
    if uniform:
        iv, gl = inv_v0[0, 0], g_lin[0, 0]
        for j in range(m):
            dd = dr[i, j] - dc[i, j]
            t = dd * iv
            sd, cd = sinh_cosh_small(t)
            cur[i, j] = gl * ((u - sc[j]) + dd) + a[i, j] * (sh[i, j] * cd + ch[i, j] * sd)
            slope[k, j] = gl + (a[i, j] * iv) * (ch[i, j] * cd + sh[i, j] * sd)
            big += abs(t) > SERIES_MAX
    else:
        for j in range(m):
            dd = dr[i, j] - dc[i, j]
            t = dd * inv_v0[i, j]
            sd, cd = sinh_cosh_small(t)
            cur[i, j] = g_lin[i, j] * ((u - sc[j]) + dd) + a[i, j] * (sh[i, j] * cd + ch[i, j] * sd)
            slope[k, j] = g_lin[i, j] + a_v0[i, j] * (ch[i, j] * cd + sh[i, j] * sd)
            big += abs(t) > SERIES_MAX
    if big:
        e = 1 - uniform  # the per-cell arrays' index scale: 0 reads element [0, 0]
        for j in range(m):
            dd = dr[i, j] - dc[i, j]
            iv, gl = inv_v0[i * e, j * e], g_lin[i * e, j * e]
            t = dd * iv
            sd, cd = math.sinh(t), math.cosh(t)
            cur[i, j] = gl * ((u - sc[j]) + dd) + a[i, j] * (sh[i, j] * cd + ch[i, j] * sd)
            slope[k, j] = gl + (a[i, j] * iv if uniform else a_v0[i, j]) * (ch[i, j] * cd + sh[i, j] * sd)


@_inline
def _leave_row(i, dr, dc, cur, gwp, gc, free_r, free_c, lr, lc, row):  # pragma: no cover - compiled
    # Currents leaving row i's row and column nodes (lr, lc, A) through its cells, wires and
    # ports, for a row with both column neighbours (0 < i < N−1; _leave_edge takes the others);
    # returns row i's share of the ℓ1 KCL residual over the free nodes (A). One loop over all m
    # cells without a branch, each node gathering its own terms (a loop per term measured twice
    # as slow on a 64×64 tile): the row's drops sit in ``row`` (M+2) between two zeros and gwp
    # (N, M+1) holds the row wires with the port conductances at the ends, so an end cell's port
    # is the same term as an inner wire. What it replaces cost 2.5× as much on a 64×64 tile: a
    # loop over the m − 2 inner cells, whose remainder (30 of 62 cells) the compiler left
    # scalar; the test for an inner row inside this helper instead of in the caller (twice as
    # slow, measured); and the pinned nodes' port currents summed here over every cell
    # (_pinned). coldread._leave and kernels._leave_slab gather the same terms; a per-cell helper
    # shared by the three ran 57× slower (numba 0.68 keeps array arguments' per-call cost even
    # when it inlines), so each keeps its own loop.
    m = cur.shape[1]
    row[0] = 0.0
    for j in range(m):
        row[j + 1] = dr[i, j]
    row[m + 1] = 0.0
    s = 0.0
    for j in range(m):
        c = cur[i, j]
        u = row[j + 1]
        x = c + gwp[i, j + 1] * (u - row[j + 2])
        x -= gwp[i, j] * (row[j] - u)
        y = -c + gc[i, j] * (dc[i, j] - dc[i + 1, j])
        y -= gc[i - 1, j] * (dc[i - 1, j] - dc[i, j])
        lr[i, j] = x
        lc[i, j] = y
        s += abs(x) * free_r[i, j] + abs(y) * free_c[i, j]
    return s


@_jit
def _leave_edge(i, dr, dc, cur, gw, gc, gpl, gpr, gpt, gpb, free_r, free_c, lr,
                lc):  # pragma: no cover - compiled
    # _leave_row for any row (the first and last), each term tested for. Called, not inlined:
    # inlined into the sweep, its branches slowed the sweep's other loops (the law and balances
    # took about half as long again: benchmarks/results/docstring_figures.md).
    n, m = cur.shape
    s = 0.0
    for j in range(m):
        c = cur[i, j]
        x = c
        if j + 1 < m:
            x += gw[i, j] * (dr[i, j] - dr[i, j + 1])
        if j > 0:
            x -= gw[i, j - 1] * (dr[i, j - 1] - dr[i, j])
        if j == 0:
            x += gpl[i] * dr[i, 0]
        if j == m - 1:
            x += gpr[i] * dr[i, m - 1]
        y = -c
        if i + 1 < n:
            y += gc[i, j] * (dc[i, j] - dc[i + 1, j])
        if i > 0:
            y -= gc[i - 1, j] * (dc[i - 1, j] - dc[i, j])
        if i == 0:
            y += gpt[j] * dc[0, j]
        if i == n - 1:
            y += gpb[j] * dc[n - 1, j]
        lr[i, j] = x
        lc[i, j] = y
        s += abs(x) * free_r[i, j] + abs(y) * free_c[i, j]
    return s


@_inline
def _pinned(pins_r, pins_c, lr, lc, br):  # pragma: no cover - compiled
    # The currents of the pinned nodes (pins_r, pins_c: (P, 2) their rows and columns, in row
    # order) into their ports: br[i] for a row node, br[n + j] for a column node. Gathered here
    # rather than in _leave_row's loop, where a masked sum into br[n + j] over every cell cost
    # 8 µs of a 64×64 sweep's 12 (the compiler left that loop's stores to br unvectorised).
    n = lr.shape[0]
    for k in range(pins_r.shape[0]):
        br[pins_r[k, 0]] -= lr[pins_r[k, 0], pins_r[k, 1]]
    for k in range(pins_c.shape[0]):
        br[n + pins_c[k, 1]] -= lc[pins_c[k, 0], pins_c[k, 1]]


@_inline
def _factor_rows(i0, i1, slope, g_floor, free_r, free_c, wr, offr, wc, offc, couple, lt, dt, l_c, dinv_c,
                 carry):  # pragma: no cover - compiled
    # LDLᵀ of row lines i0 … i1−1 and of the column lines' rows i0 … i1−1 (their recurrence
    # runs down the rows: row i0−1 is already factored, its 1/D in ``carry`` (M,)) with the
    # cells' slopes (rows 0 … i1−i0−1 of ``slope``: the block's own, kept in L1) floored at
    # g_floor, as LineBlocks with these conductances would; non-free nodes get a unit diagonal.
    # Returns the count of non-positive pivots (only with non-finite slopes). Why this shape:
    # the row lines' recurrences are division chains, so four run side by side with their 1/D
    # carried in registers (through memory each step waited on its own store); the column
    # lines' run along j, their previous row read from ``carry``, not from dinv_c itself, which
    # the compiler could not prove free of overlap and so left scalar.
    m = slope.shape[1]
    for i in range(i0, i1):
        for j in range(m):
            g = slope[i - i0, j]
            g = g if g > g_floor else g_floor  # also for NaN
            couple[i, j] = g * (free_r[i, j] and free_c[i, j])
            dt[i, j] = g + wr[i, j] if free_r[i, j] else 1.0
            dinv_c[i, j] = g + wc[i, j] if free_c[i, j] else 1.0
    bad = 0
    if i1 - i0 == 4:
        pa, pb, pc, pd = dt[i0, 0], dt[i0 + 1, 0], dt[i0 + 2, 0], dt[i0 + 3, 0]
        bad += (not pa > 0.0) + (not pb > 0.0) + (not pc > 0.0) + (not pd > 0.0)
        qa, qb, qc, qd = 1.0 / pa, 1.0 / pb, 1.0 / pc, 1.0 / pd
        dt[i0, 0], dt[i0 + 1, 0], dt[i0 + 2, 0], dt[i0 + 3, 0] = qa, qb, qc, qd
        lt[i0, 0], lt[i0 + 1, 0], lt[i0 + 2, 0], lt[i0 + 3, 0] = 0.0, 0.0, 0.0, 0.0
        for j in range(1, m):
            ea, eb, ec, ed = offr[i0, j - 1], offr[i0 + 1, j - 1], offr[i0 + 2, j - 1], offr[i0 + 3, j - 1]
            lt[i0, j], lt[i0 + 1, j], lt[i0 + 2, j], lt[i0 + 3, j] = ea * qa, eb * qb, ec * qc, ed * qd
            pa, pb = dt[i0, j] - ea * ea * qa, dt[i0 + 1, j] - eb * eb * qb
            pc, pd = dt[i0 + 2, j] - ec * ec * qc, dt[i0 + 3, j] - ed * ed * qd
            bad += (not pa > 0.0) + (not pb > 0.0) + (not pc > 0.0) + (not pd > 0.0)
            qa, qb, qc, qd = 1.0 / pa, 1.0 / pb, 1.0 / pc, 1.0 / pd
            dt[i0, j], dt[i0 + 1, j], dt[i0 + 2, j], dt[i0 + 3, j] = qa, qb, qc, qd
    else:
        for i in range(i0, i1):
            p = dt[i, 0]
            bad += not p > 0.0
            q = 1.0 / p
            dt[i, 0] = q
            lt[i, 0] = 0.0
            for j in range(1, m):
                e = offr[i, j - 1]
                lt[i, j] = e * q
                p = dt[i, j] - e * e * q
                bad += not p > 0.0
                q = 1.0 / p
                dt[i, j] = q
    for i in range(i0, i1):
        if i == 0:
            for j in range(m):
                p = dinv_c[0, j]
                bad += not p > 0.0
                q = 1.0 / p
                dinv_c[0, j] = q
                carry[j] = q
                l_c[0, j] = 0.0
        else:
            for j in range(m):
                e = offc[i - 1, j]
                lij = e * carry[j]
                l_c[i, j] = lij
                p = dinv_c[i, j] - lij * e
                bad += not p > 0.0
                q = 1.0 / p
                dinv_c[i, j] = q
                carry[j] = q
    return bad


@_inline
def _rhs_rows(i0, i1, couple, lt, dt, l_c, free_r, free_c, lr, lc, r, z, t, zc):  # pragma: no cover - compiled
    # Rows i0 … i1−1 of the Schur right-hand side of the residual −(lr, lc) at the free nodes:
    # t = A_R⁻¹ ρ_R (in t's rows 0 … i1−i0−1: a block's own, kept in L1), r = G t + ρ_C, the
    # forward sweep of z = A_C⁻¹ r (row i0−1 of it carried in zc (M), as in coldread._cg).
    # Returns the rows' share of ‖r‖₁.
    m = couple.shape[1]
    for i in range(i0, i1):
        for j in range(m):
            t[i - i0, j] = -lr[i, j] * free_r[i, j]
    _rows(lt, dt, t, i0, i1, 0)
    s = 0.0
    for i in range(i0, i1):
        for j in range(m):
            v = couple[i, j] * t[i - i0, j] - lc[i, j] * free_c[i, j]
            r[i, j] = v
            s += abs(v)
            y = v if i == 0 else v - l_c[i, j] * zc[j]
            z[i, j] = y
            zc[j] = y
    return s


@_jit
def _sweep(correct, refactor, rhs, uniform, sr, sc, inv_v0, a, a_v0, g_lin, sh, ch, g_floor, gw, gwp, gc, gpl, gpr,
           gpt, gpb, pins_r, pins_c, free_r, free_c, wr, offr, wc, offc, dr, dc, cur, br, w, carry, row, zc,
           acc):  # pragma: no cover - compiled
    # One pass over the rows, four at a time while they sit in L1: the previous step's row
    # correction (``correct``: dr += A_R⁻¹(ρ_R + G lo) with that step's factors and residual),
    # the law and the KCL residual at the new iterate, the line blocks' factorisation at its
    # slopes (``refactor``) and the next step's Schur right-hand side (``rhs``).
    # acc = (ℓ1 KCL residual (A), ‖r‖₁ of the right-hand side, bad pivots). The slopes and the
    # row solves' values live only within a block: they use the first rows of their slabs,
    # which stay in L1 (whole slabs written back to L2 cost 1–5 % of a read, measured).
    # The CG after the sweep overwrites t before it reads it.
    n, m = cur.shape
    slope, couple, lt, dt, l_c, dinv_c = w[0], w[1], w[2], w[3], w[4], w[5]
    lr, lc, lo, r, z, t = w[6], w[7], w[8], w[9], w[10], w[11]
    kcl, rn0, bad = 0.0, 0.0, 0
    for q in range(n + m):
        br[q] = 0.0
    # One loop over the rows, the block steps at a block's first and last row: the same work
    # as a loop over blocks with an inner loop over their rows, but the law and balance loops
    # compile faster this way (benchmarks/results/docstring_figures.md).
    i0, i1 = 0, 0
    for i in range(n):
        if i == i1:
            i0, i1 = i, min(n, i + 4)
            if correct:
                for k in range(i0, i1):
                    for j in range(m):
                        t[k - i0, j] = couple[k, j] * lo[k, j] - lr[k, j] * free_r[k, j]
                _rows(lt, dt, t, i0, i1, 0)
                for k in range(i0, i1):
                    for j in range(m):
                        dr[k, j] += t[k - i0, j]
        _law_row(i, i - i0, uniform, sr, sc, dr, dc, inv_v0, a, a_v0, g_lin, sh, ch, cur, slope)
        br[i] = gpl[i] * dr[i, 0] + gpr[i] * dr[i, m - 1]
        if i == 0 or i == n - 1:
            kcl += _leave_edge(i, dr, dc, cur, gw, gc, gpl, gpr, gpt, gpb, free_r, free_c, lr, lc)
        else:
            kcl += _leave_row(i, dr, dc, cur, gwp, gc, free_r, free_c, lr, lc, row)
        if i == i1 - 1:
            if refactor:
                bad += _factor_rows(i0, i1, slope, g_floor, free_r, free_c, wr, offr, wc, offc, couple, lt, dt, l_c,
                                    dinv_c, carry)
            if rhs:
                rn0 += _rhs_rows(i0, i1, couple, lt, dt, l_c, free_r, free_c, lr, lc, r, z, t, zc)
    _pinned(pins_r, pins_c, lr, lc, br)
    for j in range(m):
        br[n + j] += gpt[j] * dc[0, j] + gpb[j] * dc[n - 1, j]
    acc[0], acc[1], acc[2] = kcl, rn0, bad
