"""Compiled passes of the per-vector Newton for sinh cells (:mod:`sinhnewton`).

One Newton step of one input vector touches its (N, M) slabs in a single sweep over the rows,
four at a time while they sit in L1 (:func:`_sweep`): the previous step's row correction, the
cell law and the KCL residual at the new iterate, the line blocks' factorisation at the new
slopes and the next step's Schur right-hand side; the CG between sweeps is coldread's
(:func:`coldread._cg`). Inner loops run over j without branches, so they vectorise; the
helpers are inlined into the sweep. Units: V, A, S; arrays (N, M) C-contiguous float64.
"""

from __future__ import annotations

import math

from cosim.circuit.solvers.coldread import _jit, _rows
from cosim.circuit.solvers.lawkernels import SERIES_MAX, sinh_cosh_small


def _inline(fn):
    return _jit(fn, inline="always")


@_jit
def _applied(sr, sc, v0, uniform, hr, kr, hc, kc, sh, ch):  # pragma: no cover - compiled
    # sh, ch (N, M): sinh and cosh of x0 = (sr[i] − sc[j])/v0 of one vector. One v0 for the whole
    # array: from the lines' own sinh/cosh (N + M library calls) by the difference formulas,
    # whose rounding is a few ulps of cosh(sr/v0)·cosh(sc/v0) (the currents' absolute error).
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
def _law_row(i, sr, sc, dr, dc, inv_v0, a, a_v0, g_lin, sh, ch, cur, slope):  # pragma: no cover - compiled
    # Row i's cell currents (A) and slopes (S) at the drops (dr, dc): sinh(x0 + t) = sinh x0·cosh t
    # + cosh x0·sinh t, t = (dr − dc)/v0, by the series; the row by math.sinh/cosh of t if some
    # |t| exceeds SERIES_MAX (a count, not a max, keeps the loop vectorised).
    m = cur.shape[1]
    u = sr[i]
    big = 0
    for j in range(m):
        dd = dr[i, j] - dc[i, j]
        t = dd * inv_v0[i, j]
        sd, cd = sinh_cosh_small(t)
        cur[i, j] = g_lin[i, j] * ((u - sc[j]) + dd) + a[i, j] * (sh[i, j] * cd + ch[i, j] * sd)
        slope[i, j] = g_lin[i, j] + a_v0[i, j] * (ch[i, j] * cd + sh[i, j] * sd)
        big += abs(t) > SERIES_MAX
    if big:
        for j in range(m):
            dd = dr[i, j] - dc[i, j]
            t = dd * inv_v0[i, j]
            sd, cd = math.sinh(t), math.cosh(t)
            cur[i, j] = g_lin[i, j] * ((u - sc[j]) + dd) + a[i, j] * (sh[i, j] * cd + ch[i, j] * sd)
            slope[i, j] = g_lin[i, j] + a_v0[i, j] * (ch[i, j] * cd + sh[i, j] * sd)


@_inline
def _leave_row(i, dr, dc, cur, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c, lr, lc,
               br):  # pragma: no cover - compiled
    # Currents leaving row i's row and column nodes (lr, lc, A) through its cells, wires and
    # ports; row i's port current into br[i] and its part of the column ports' into br[n + j].
    # Returns row i's share of the ℓ1 KCL residual over the free nodes (A). One loop over j, each
    # node gathering its own terms (a loop per term measured twice as slow on a 64×64 tile), its
    # interior cells split out branch-free so that they vectorise, as in coldread._leave.
    # coldread._leave and kernels._leave_slab gather the same terms in the same order; a per-cell
    # helper shared by the three ran 57× slower (numba 0.68 keeps array arguments' per-call cost
    # even when it inlines), so each keeps its own loop.
    n, m = cur.shape
    b = gpl[i] * dr[i, 0] + gpr[i] * dr[i, m - 1]
    s = 0.0
    inner = 0 < i < n - 1 and m > 2
    j = 0
    while j < m:
        if inner and j == 1:  # every neighbour present, no port: branch-free, vectorises
            for q in range(1, m - 1):
                c = cur[i, q]
                x = c + gw[i, q] * (dr[i, q] - dr[i, q + 1])
                x -= gw[i, q - 1] * (dr[i, q - 1] - dr[i, q])
                y = -c + gc[i, q] * (dc[i, q] - dc[i + 1, q])
                y -= gc[i - 1, q] * (dc[i - 1, q] - dc[i, q])
                lr[i, q] = x
                lc[i, q] = y
                b -= pin_r[i, q] * x
                br[n + q] -= pin_c[i, q] * y
                s += abs(x) * free_r[i, q] + abs(y) * free_c[i, q]
            j = m - 1
            continue
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
        b -= pin_r[i, j] * x
        br[n + j] -= pin_c[i, j] * y
        s += abs(x) * free_r[i, j] + abs(y) * free_c[i, j]
        j += 1
    br[i] = b
    return s


@_inline
def _factor_rows(i0, i1, slope, g_floor, free_r, free_c, wr, offr, wc, offc, couple, lt, dt, l_c,
                 dinv_c):  # pragma: no cover - compiled
    # LDLᵀ of row lines i0 … i1−1 and of the column lines' rows i0 … i1−1 (their recurrence
    # runs down the rows: row i0−1 is already factored) with the cells' slopes floored at
    # g_floor, as LineBlocks with these conductances would; non-free nodes get a unit
    # diagonal. The rows' recurrences run side by side (independent division chains). Returns
    # the count of non-positive pivots (only with non-finite slopes).
    m = slope.shape[1]
    for i in range(i0, i1):
        for j in range(m):
            g = slope[i, j]
            g = g if g > g_floor else g_floor  # also for NaN
            couple[i, j] = g * (free_r[i, j] and free_c[i, j])
            dt[i, j] = g + wr[i, j] if free_r[i, j] else 1.0
            dinv_c[i, j] = g + wc[i, j] if free_c[i, j] else 1.0
    bad = 0
    for i in range(i0, i1):
        p = dt[i, 0]
        bad += not p > 0.0
        dt[i, 0] = 1.0 / p
        lt[i, 0] = 0.0
    for j in range(1, m):
        for i in range(i0, i1):
            e = offr[i, j - 1]
            lij = e * dt[i, j - 1]
            lt[i, j] = lij
            p = dt[i, j] - lij * e
            bad += not p > 0.0
            dt[i, j] = 1.0 / p
    for i in range(i0, i1):
        if i == 0:
            for j in range(m):
                p = dinv_c[0, j]
                bad += not p > 0.0
                dinv_c[0, j] = 1.0 / p
                l_c[0, j] = 0.0
        else:
            for j in range(m):
                e = offc[i - 1, j]
                lij = e * dinv_c[i - 1, j]
                l_c[i, j] = lij
                p = dinv_c[i, j] - lij * e
                bad += not p > 0.0
                dinv_c[i, j] = 1.0 / p
    return bad


@_inline
def _rhs_rows(i0, i1, couple, lt, dt, l_c, free_r, free_c, lr, lc, lo, r, z, t):  # pragma: no cover - compiled
    # Rows i0 … i1−1 of the Schur right-hand side of the residual −(lr, lc) at the free nodes:
    # t = A_R⁻¹ ρ_R, r = G t + ρ_C, the forward sweep of z = A_C⁻¹ r; lo (the CG iterate) zeroed.
    # Returns the rows' share of ‖r‖₁.
    m = couple.shape[1]
    for i in range(i0, i1):
        for j in range(m):
            t[i, j] = -lr[i, j] * free_r[i, j]
    _rows(lt, dt, t, i0, i1)
    s = 0.0
    for i in range(i0, i1):
        for j in range(m):
            v = couple[i, j] * t[i, j] - lc[i, j] * free_c[i, j]
            r[i, j] = v
            s += abs(v)
            z[i, j] = v if i == 0 else v - l_c[i, j] * z[i - 1, j]
            lo[i, j] = 0.0
    return s


@_jit
def _sweep(correct, refactor, rhs, sr, sc, inv_v0, a, a_v0, g_lin, sh, ch, g_floor, gw, gc, gpl, gpr, gpt, gpb, pin_r,
           pin_c, free_r, free_c, wr, offr, wc, offc, dr, dc, cur, br, w, acc):  # pragma: no cover - compiled
    # One pass over the rows, four at a time while they sit in L1: the previous step's row
    # correction (``correct``: dr += A_R⁻¹(ρ_R + G lo) with that step's factors and residual),
    # the law and the KCL residual at the new iterate, the line blocks' factorisation at its
    # slopes (``refactor``) and the next step's Schur right-hand side (``rhs``).
    # acc = (ℓ1 KCL residual (A), ‖r‖₁ of the right-hand side, bad pivots).
    n, m = cur.shape
    slope, couple, lt, dt, l_c, dinv_c = w[0], w[1], w[2], w[3], w[4], w[5]
    lr, lc, lo, r, z, t = w[6], w[7], w[8], w[9], w[10], w[11]
    kcl, rn0, bad = 0.0, 0.0, 0
    for q in range(n + m):
        br[q] = 0.0
    i0 = 0
    while i0 < n:
        i1 = min(n, i0 + 4)
        if correct:
            for i in range(i0, i1):
                for j in range(m):
                    t[i, j] = couple[i, j] * lo[i, j] - lr[i, j] * free_r[i, j]
            _rows(lt, dt, t, i0, i1)
            for i in range(i0, i1):
                for j in range(m):
                    dr[i, j] += t[i, j]
        for i in range(i0, i1):
            _law_row(i, sr, sc, dr, dc, inv_v0, a, a_v0, g_lin, sh, ch, cur, slope)
            kcl += _leave_row(i, dr, dc, cur, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c, lr, lc, br)
        if refactor:
            bad += _factor_rows(i0, i1, slope, g_floor, free_r, free_c, wr, offr, wc, offc, couple, lt, dt, l_c,
                                dinv_c)
        if rhs:
            rn0 += _rhs_rows(i0, i1, couple, lt, dt, l_c, free_r, free_c, lr, lc, lo, r, z, t)
        i0 = i1
    for j in range(m):
        br[n + j] += gpt[j] * dc[0, j] + gpb[j] * dc[n - 1, j]
    acc[0], acc[1], acc[2] = kcl, rn0, bad
