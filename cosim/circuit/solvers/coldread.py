"""Compiled cold reads: PCG from zero IR drops, one input vector per core at a time, in cache.

The algorithm and the stopping rule are those of :func:`pcg.solve`'s first stage (no rebase);
this module arranges the arithmetic for the memory hierarchy and the cores. A CG step is bound
by the traffic between the per-core L2 and the registers, so the work is laid out to touch
each slab as few times as possible:

- **Five work slabs per vector** (r, z, p, A_C·p, t), plus its output: the drive g·(s_r − s_c)
  is recomputed where used, S·p is kept in t once the row solve has used it, and the row IR
  drops are solved once from the converged column drops instead of being carried along every
  step (the earlier kernel kept eleven).
- **Two passes per CG step.** (1) Up the rows, four at a time: the backward half of the
  preconditioner's solve z = A_C⁻¹ r, the new direction p and A_C·p, t = G p, the row-line
  solve t = A_R⁻¹ G p of those four lines (recurrences carried in registers), S·p and their
  share of p·Sp, all while the rows sit in L1; (2) down the rows: the updates of the iterate
  and the residual with ‖r‖₁, the forward half of the next z and r·z, computed from the
  forward half alone (r·A_C⁻¹r = y·D⁻¹y with y = L⁻¹r), so that β is known before the next
  up pass. The three-pass form (a separate backward pass for r·z) read 25 slabs a step against
  21 and gave the same iterates to rounding (its time against this one:
  benchmarks/results/docstring_figures.md).
  All inner loops run along contiguous memory (no transposed slabs); reductions vectorise
  (compiled with reassociation allowed), and the balance pass (:func:`_leave`) keeps the
  edge tests out of its vectorised interior loop.
- **Both cores.** Input vectors are independent: ``numba.prange`` splits the batch into one
  contiguous chunk per thread (:func:`kernels.threads`); each chunk allocates its slabs once.

A vector's arithmetic is fixed by the compiled code alone: it does not depend on the batch, the
chunking or the thread count (tests/test_kernels.py checks bit-identity). Its speed against the
earlier kernel is measured by benchmarks/bench_scale.py part "reads" (docs/speed.md).
"""

from __future__ import annotations

import numpy as np

from cosim.circuit.solvers.kernels import _one_row, _row_block4, _row_slab, _safe_ratio, njit, numba

_FLAGS = {"reassoc", "contract"}  # not nnan/ninf: _safe_ratio tests for non-finite ratios


def _jit(fn, parallel=False, inline="never"):
    if numba is None:  # pragma: no cover
        return fn
    return njit(fn, boundscheck=False, nogil=True, fastmath=_FLAGS, parallel=parallel, inline=inline)


_prange = range if numba is None else numba.prange


@_jit
def _leave(dr, dc, sr, sc, g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c,
           br):  # pragma: no cover - compiled
    # Port currents br (N+M) and the ℓ1/ℓ∞ KCL residuals over the free nodes of the IR drops
    # (dr, dc) (N, M) of one vector; each node gathers its own terms, boolean masks as 0/1.
    # A row with both column neighbours (0 < i < N−1) runs in one branch-free loop over all m
    # cells that vectorises: its drops sit in ``row`` between two zeros and its wires in
    # ``wires`` with the port conductances at the ends, so an end cell's port is the same term
    # as an inner wire (as sinhpasses._leave_row). The loop it replaces ran over the m − 2
    # inner cells, whose remainder the compiler left scalar, and took the end cells through
    # the edge tests, at about 1.1–1.6× this one's time (benchmarks/results/docstring_figures.md;
    # bench_scale.py --parts kernels' balance column times it). The first and last rows test
    # each term (_leave_edge). The ℓ∞ residual is kept per column until the end.
    n, m = g_cell.shape
    s = 0.0
    bc = br[n:]
    mxv = np.zeros(m)
    row, wires = np.empty(m + 2), np.empty(m + 1)
    for a in range(n + m):
        br[a] = 0.0
    row[0] = 0.0
    row[m + 1] = 0.0
    for i in range(n):
        if 0 < i < n - 1:
            si = sr[i]
            for j in range(m):
                row[j + 1] = dr[i, j]
            wires[0] = gpl[i]
            for j in range(m - 1):
                wires[j + 1] = gw[i, j]
            wires[m] = gpr[i]
            b = 0.0
            for j in range(m):
                gq = g_cell[i, j]
                u = row[j + 1]
                c = gq * (u - dc[i, j]) + gq * (si - sc[j])
                x = c + wires[j + 1] * (u - row[j + 2])
                x -= wires[j] * (row[j] - u)
                y = -c + gc[i, j] * (dc[i, j] - dc[i + 1, j])
                y -= gc[i - 1, j] * (dc[i - 1, j] - dc[i, j])
                b -= pin_r[i, j] * x
                bc[j] -= pin_c[i, j] * y
                ax, ay = abs(x) * free_r[i, j], abs(y) * free_c[i, j]
                s += ax + ay
                v = ax if ax > ay else ay
                mxv[j] = v if v > mxv[j] else mxv[j]
        else:
            b, se = _leave_edge(i, dr, dc, sr, sc, g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r,
                                free_c, bc, mxv)
            s += se
        br[i] = b + gpl[i] * dr[i, 0] + gpr[i] * dr[i, m - 1]
    mx = 0.0
    for j in range(m):
        br[n + j] += gpt[j] * dc[0, j] + gpb[j] * dc[n - 1, j]
        mx = max(mx, mxv[j])
    return s, mx


@_jit
def _leave_edge(i, dr, dc, sr, sc, g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c, bc,
                mxv):  # pragma: no cover - compiled
    # _leave's terms for any row i (the first and last), each tested for; returns row i's
    # pinned-port sum and its share of the ℓ1 residual, and updates bc and mxv.
    n, m = g_cell.shape
    b, s = 0.0, 0.0
    for j in range(m):
        c = g_cell[i, j] * (dr[i, j] - dc[i, j]) + g_cell[i, j] * (sr[i] - sc[j])
        x = c
        if j + 1 < m:
            x += gw[i, j] * (dr[i, j] - dr[i, j + 1])
        if j > 0:
            x -= gw[i, j - 1] * (dr[i, j - 1] - dr[i, j])
        y = -c
        if i + 1 < n:
            y += gc[i, j] * (dc[i, j] - dc[i + 1, j])
        if i > 0:
            y -= gc[i - 1, j] * (dc[i - 1, j] - dc[i, j])
        if j == 0:
            x += gpl[i] * dr[i, 0]
        if j == m - 1:
            x += gpr[i] * dr[i, m - 1]
        if i == 0:
            y += gpt[j] * dc[0, j]
        if i == n - 1:
            y += gpb[j] * dc[n - 1, j]
        b -= pin_r[i, j] * x
        bc[j] -= pin_c[i, j] * y
        ax, ay = abs(x) * free_r[i, j], abs(y) * free_c[i, j]
        s += ax + ay
        v = ax if ax > ay else ay
        mxv[j] = v if v > mxv[j] else mxv[j]
    return b, s


@_jit
def _rows(lt, dt, t, i0, i1, k0):  # pragma: no cover - compiled
    # Row lines i0 … i1−1 (at most four) in place on rows k0 … of t (k0 = i0: t is the slab).
    if i1 - i0 == 4:
        _row_block4(lt, dt, t, i0, k0)
    else:
        for i in range(i0, i1):
            _one_row(lt, dt, t, i, k0 + i - i0)


@_jit
def _up_pass(z, p, r, w, couple, lt, dt, l_c, dinv_c, t, zc, beta, first):  # pragma: no cover - compiled
    # One pass up the rows, four at a time: the backward half of A_C⁻¹ (z holds the forward
    # half y = L⁻¹r; the rows of A_C⁻¹r are carried in zc, never stored), then p = A_C⁻¹r + βp,
    # w = r + βw (= A_C p), t = A_R⁻¹ G p and q = S p = w − G t into t, while the block is in
    # L1. Returns p·q and, on the first step, r·A_C⁻¹r = Σ y·D⁻¹·y (later steps get it from
    # the down pass, which needs no backward half for it).
    n, m = z.shape
    pq, rz = 0.0, 0.0
    i1 = n
    while i1 > 0:
        i0 = max(0, i1 - 4)
        for i in range(i1 - 1, i0 - 1, -1):
            if i == n - 1:
                for j in range(m):
                    zc[j] = z[i, j] * dinv_c[i, j]
            else:
                for j in range(m):
                    zc[j] = z[i, j] * dinv_c[i, j] - l_c[i + 1, j] * zc[j]
            if first:
                for j in range(m):
                    rz += z[i, j] * z[i, j] * dinv_c[i, j]
                    p[i, j] = zc[j]
                    w[i, j] = r[i, j]
                    t[i, j] = couple[i, j] * zc[j]
            else:
                for j in range(m):
                    pv = zc[j] + beta * p[i, j]
                    p[i, j] = pv
                    w[i, j] = r[i, j] + beta * w[i, j]
                    t[i, j] = couple[i, j] * pv
        _rows(lt, dt, t, i0, i1, i0)
        for i in range(i0, i1):
            for j in range(m):
                q = w[i, j] - couple[i, j] * t[i, j]
                t[i, j] = q
                pq += p[i, j] * q
        i1 = i0
    return pq, rz


@_jit
def _vector(g_cell, couple, lt, dt, l_c, dinv_c, free_r, free_c, is_out, sr, sc, pin_r, pin_c, rtol,
            atol, maxiter, lo, r, z, p, w, t):  # pragma: no cover - compiled
    # One input vector (line potentials sr (N,), sc (M,)): column drops into lo (N, M), row drops
    # into t (N, M); returns the iteration count (−1: not converged, 0: no solve).
    n, m = g_cell.shape
    # One pass down the rows, four at a time, each block swept while in L1: the zero-drop
    # state's port currents, KCL residual and output scale (the larger of the outputs and the
    # ideal zero-wire currents, as in pcg._solve), and the Schur right-hand side of its
    # residual (ρ_R = −drive, ρ_C = +drive on the free nodes): t = A_R⁻¹ ρ_R, r = G t + ρ_C and
    # the forward half of z = A_C⁻¹ r. Row 0 of w and of p (written only once CG starts) keep
    # the drive's column sums and column port currents.
    res0, i_ideal, i_base = 0.0, 0.0, 0.0
    csum, cport = w[0], p[0]
    for j in range(m):
        csum[j] = 0.0
        cport[j] = 0.0
    i0 = 0
    while i0 < n:
        i1 = min(n, i0 + 4)
        for i in range(i0, i1):
            ri, bi, si = 0.0, 0.0, sr[i]
            for j in range(m):
                x = g_cell[i, j] * (si - sc[j])
                ri += x
                bi -= pin_r[i, j] * x
                csum[j] += x
                cport[j] += pin_c[i, j] * x
                res0 += abs(x) * (free_r[i, j] + free_c[i, j])
                t[i, j] = -x * free_r[i, j]
            if is_out[i]:
                i_ideal += abs(ri)
                i_base += abs(bi)
        _rows(lt, dt, t, i0, i1, i0)
        for i in range(i0, i1):
            for j in range(m):
                v = couple[i, j] * t[i, j] + g_cell[i, j] * (sr[i] - sc[j]) * free_c[i, j]
                r[i, j] = v
                z[i, j] = v if i == 0 else v - l_c[i, j] * z[i - 1, j]
        i0 = i1
    for j in range(m):
        if is_out[n + j]:
            i_ideal += abs(csum[j])
            i_base += abs(cport[j])
    if res0 <= atol or (i_base - res0 > 0.0 and res0 <= rtol * (i_base - res0)):
        for i in range(n):
            for j in range(m):
                lo[i, j] = 0.0
                t[i, j] = 0.0
        return 0
    target = max(0.5 * rtol * max(i_base, i_ideal), 0.5 * atol)
    steps = _cg(couple, lt, dt, l_c, dinv_c, target, maxiter, lo, r, z, p, w, t)
    if steps > 0:
        # Row drops of the converged column drops: t = A_R⁻¹(ρ_R + G lo).
        for i in range(n):
            for j in range(m):
                t[i, j] = couple[i, j] * lo[i, j] - g_cell[i, j] * (sr[i] - sc[j]) * free_r[i, j]
        _row_slab(lt, dt, t)
    return steps


@_jit
def _cg(couple, lt, dt, l_c, dinv_c, target, maxiter, lo, r, z, p, w, t):  # pragma: no cover - compiled
    # CG on S·lo = r from lo = 0 (whatever lo holds on entry), given the Schur residual r and
    # the forward column sweep y = L⁻¹r of the preconditioner A_C = L·D·Lᵀ in z (fused into the
    # caller's right-hand-side pass); stops once ‖r‖₁ ≤ target. Returns the step count (−1: not
    # at the target after maxiter). Two passes a step (module docstring): up the rows
    # (_up_pass: the new direction p, t = A_R⁻¹ G p, S·p and p·Sp), then down (lo and r
    # updated with ‖r‖₁, the forward sweep of the new r and r·A_C⁻¹r = Σ y·D⁻¹·y, which gives
    # β before the next up pass). The forward sweep reads the previous row from zc, not from z
    # itself, which the compiler could not prove free of overlap (a 64×64 down pass: 4.8 → 2.6 µs).
    n, m = couple.shape
    zc, b, rz = np.empty(m), 0.0, 0.0
    for step in range(1, maxiter + 1):
        pq, rz1 = _up_pass(z, p, r, w, couple, lt, dt, l_c, dinv_c, t, zc, b, step == 1)
        if step == 1:
            rz = rz1
        a = _safe_ratio(rz, pq)
        rn, s = 0.0, 0.0
        for i in range(n):
            if step == 1:  # lo starts at 0: the caller need not clear it
                for j in range(m):
                    lo[i, j] = a * p[i, j]
            else:
                for j in range(m):
                    lo[i, j] += a * p[i, j]
            if i == 0:
                for j in range(m):
                    v = r[0, j] - a * t[0, j]
                    r[0, j] = v
                    rn += abs(v)
                    z[0, j] = v
                    zc[j] = v
                    s += v * v * dinv_c[0, j]
            else:
                for j in range(m):
                    v = r[i, j] - a * t[i, j]
                    r[i, j] = v
                    rn += abs(v)
                    y = v - l_c[i, j] * zc[j]
                    z[i, j] = y
                    zc[j] = y
                    s += y * y * dinv_c[i, j]
        if rn <= target:
            return step
        b = _safe_ratio(s, rz)
        rz = s
    return -1


@_jit
def _chunk(g_cell, couple, lt, dt, l_c, dinv_c, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r,
           free_c, is_out, s_r, s_c, rtol, atol, maxiter, k0, k1, d_r, d_c, branch, kcl, kmax,
           iters):  # pragma: no cover - compiled
    n, m = g_cell.shape
    r, z, p, w = np.empty((n, m)), np.empty((n, m)), np.empty((n, m)), np.empty((n, m))
    t = np.empty((n, m))
    keep_rows, keep_cols = d_r.shape[0] == s_r.shape[0], d_c.shape[0] == s_r.shape[0]
    # A drop not kept stays in this thread's own slab (in cache): no write of a fresh slab per
    # vector to memory, no page faults of the caller's (B, N, M) array.
    own = np.empty((n, m)) if not keep_cols else d_c[0]
    for k in range(k0, k1):
        lo = d_c[k] if keep_cols else own
        iters[k] = _vector(g_cell, couple, lt, dt, l_c, dinv_c, free_r, free_c, is_out, s_r[k], s_c[k],
                           pin_r, pin_c, rtol, atol, maxiter, lo, r, z, p, w, t)
        if keep_rows:
            dr = d_r[k]
            for i in range(n):
                for j in range(m):
                    dr[i, j] = t[i, j]
        kcl[k], kmax[k] = _leave(t, lo, s_r[k], s_c[k], g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c,
                                 free_r, free_c, branch[k])


def _cold_read(g_cell, couple, l_r, dinv_r, l_c, dinv_c, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c,
               free_r, free_c, is_out, s_r, s_c, rtol, atol, maxiter, chunks,
               d_r, d_c, branch, kcl, kmax, iters):  # pragma: no cover - compiled
    bsz = s_r.shape[0]
    lt, dt = l_r, dinv_r
    for q in _prange(chunks):
        _chunk(g_cell, couple, lt, dt, l_c, dinv_c, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r,
               free_c, is_out, s_r, s_c, rtol, atol, maxiter, q * bsz // chunks, (q + 1) * bsz // chunks,
               d_r, d_c, branch, kcl, kmax, iters)


cold_read = _jit(_cold_read, parallel=True)
cold_read.__doc__ = """pcg.solve from zero IR drops without rebasing for a batch of B input vectors, split
into ``chunks`` contiguous chunks run in parallel (numba's threads).

Inputs per vector k: line reference potentials s_r (B, N), s_c (B, M), V (the cell drive is
g_cell·(s_r − s_c)). Writes the column IR drops d_c and the row drops d_r, V, each only if it has B
slabs (not 1: that drop stays in the thread's own slab); port currents branch (B, N+M), A; ℓ1 and ℓ∞ KCL residuals kcl, kmax (B,), A
(the caller certifies them) and iters[k] (−1: not converged in maxiter; 0: the zero-drop state
already met the target)."""
