"""Compiled cold reads: PCG from zero IR drops, one input vector per core at a time, in cache.

The algorithm and the stopping rule are those of :func:`pcg.solve`'s first stage (no rebase);
this module arranges the arithmetic for the memory hierarchy and the cores. A CG step is bound
by the traffic between the per-core L2 and the registers, so the work is laid out to touch
each slab as few times as possible:

- **Five work slabs per vector** (r, z, p, A_C·p, t), plus its output: the drive g·(s_r − s_c)
  and S·p are recomputed where used, and the row IR drops are solved once from the converged
  column drops instead of being carried along every step (the earlier kernel kept eleven).
- **Three passes per CG step.** (1) Four rows at a time: the new direction p and A_C·p, t = G p,
  the row-line solve t = A_R⁻¹ G p of those four lines (recurrences carried in registers) and
  their share of p·Sp, all while the rows sit in L1; (2) the updates of the iterate and the
  residual with ‖r‖₁ and the forward sweep of z = A_C⁻¹ r; (3) its backward sweep with r·z.
  All inner loops run along contiguous memory (no transposed slabs); reductions vectorise
  (compiled with reassociation allowed).
- **Both cores.** Input vectors are independent: ``numba.prange`` splits the batch into one
  contiguous chunk per thread (:func:`kernels.threads`); each chunk allocates its slabs once.

A vector's arithmetic is fixed by the compiled code alone: it does not depend on the batch, the
chunking or the thread count (tests/test_kernels.py checks bit-identity). Its speed against the
earlier kernel is measured by benchmarks/bench_scale.py part "reads" (README, speed section).
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
    n, m = g_cell.shape
    s, mx = 0.0, 0.0
    for a in range(n + m):
        br[a] = 0.0
    for i in range(n):
        b = 0.0
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
            br[n + j] -= pin_c[i, j] * y
            ax, ay = abs(x) * free_r[i, j], abs(y) * free_c[i, j]
            s += ax + ay
            mx = max(mx, ax, ay)
        br[i] = b + gpl[i] * dr[i, 0] + gpr[i] * dr[i, m - 1]
    for j in range(m):
        br[n + j] += gpt[j] * dc[0, j] + gpb[j] * dc[n - 1, j]
    return s, mx


@_jit
def _rows(lt, dt, t, i0, i1):  # pragma: no cover - compiled
    # Row lines i0 … i1−1 (at most four) of t in place.
    if i1 - i0 == 4:
        _row_block4(lt, dt, t, i0)
    else:
        for i in range(i0, i1):
            _one_row(lt, dt, t, i)


@_jit
def _back_cols(z, r, l_c, dinv_c):  # pragma: no cover - compiled
    # Backward half of z = A_C⁻¹ r (the forward half is fused into the caller's pass); r·z.
    n, m = z.shape
    s = 0.0
    for j in range(m):
        z[n - 1, j] *= dinv_c[n - 1, j]
        s += r[n - 1, j] * z[n - 1, j]
    for i in range(n - 2, -1, -1):
        for j in range(m):
            v = z[i, j] * dinv_c[i, j] - l_c[i + 1, j] * z[i + 1, j]
            z[i, j] = v
            s += r[i, j] * v
    return s


@_jit
def _direction_rows(z, p, r, w, couple, lt, dt, t, beta, first):  # pragma: no cover - compiled
    # p = z + βp, w = r + βw (= A_C p), t = A_R⁻¹ G p and p·Sp (Sp = w − G t) in one pass, four
    # rows at a time: each block's rows are swept and summed while still in L1.
    n, m = z.shape
    pq = 0.0
    i0 = 0
    while i0 < n:
        i1 = min(n, i0 + 4)
        for i in range(i0, i1):
            for j in range(m):
                pv = z[i, j] if first else z[i, j] + beta * p[i, j]
                p[i, j] = pv
                w[i, j] = r[i, j] if first else r[i, j] + beta * w[i, j]
                t[i, j] = couple[i, j] * pv
        _rows(lt, dt, t, i0, i1)
        for i in range(i0, i1):
            for j in range(m):
                pq += p[i, j] * (w[i, j] - couple[i, j] * t[i, j])
        i0 = i1
    return pq


@_jit
def _vector(g_cell, couple, lt, dt, l_c, dinv_c, free_r, free_c, is_out, sr, sc, pin_r, pin_c, rtol,
            atol, maxiter, lo, r, z, p, w, t):  # pragma: no cover - compiled
    # One input vector (line potentials sr (N,), sc (M,)): column drops into lo (N, M), row drops
    # into t (N, M); returns the iteration count (−1: not converged, 0: no solve).
    n, m = g_cell.shape
    # Zero-drop state: port currents, KCL residual, output scale (the larger of the outputs
    # and the ideal zero-wire currents) and the stopping target, as in pcg._solve.
    res0, i_ideal, i_base = 0.0, 0.0, 0.0
    for j in range(m):
        z[0, j] = 0.0  # column sums of the drive
        p[0, j] = 0.0  # column port currents
    for i in range(n):
        ri, bi = 0.0, 0.0
        for j in range(m):
            x = g_cell[i, j] * (sr[i] - sc[j])
            ri += x
            bi -= pin_r[i, j] * x
            z[0, j] += x
            p[0, j] += pin_c[i, j] * x
            res0 += abs(x) * (free_r[i, j] + free_c[i, j])
        if is_out[i]:
            i_ideal += abs(ri)
            i_base += abs(bi)
    for j in range(m):
        if is_out[n + j]:
            i_ideal += abs(z[0, j])
            i_base += abs(p[0, j])
    for i in range(n):
        for j in range(m):
            lo[i, j] = 0.0
    if res0 <= atol or (i_base - res0 > 0.0 and res0 <= rtol * (i_base - res0)):
        for i in range(n):
            for j in range(m):
                t[i, j] = 0.0
        return 0
    target = max(0.5 * rtol * max(i_base, i_ideal), 0.5 * atol)
    # Schur right-hand side of the zero state's residual (ρ_R = −drive, ρ_C = +drive on the
    # free nodes): t = A_R⁻¹ ρ_R, r = G t + ρ_C; z = A_C⁻¹ r.
    i0 = 0
    while i0 < n:  # four rows at a time, each block swept while in L1
        i1 = min(n, i0 + 4)
        for i in range(i0, i1):
            for j in range(m):
                t[i, j] = -(g_cell[i, j] * (sr[i] - sc[j])) * free_r[i, j]
        _rows(lt, dt, t, i0, i1)
        for i in range(i0, i1):
            for j in range(m):
                v = couple[i, j] * t[i, j] + g_cell[i, j] * (sr[i] - sc[j]) * free_c[i, j]
                r[i, j] = v
                z[i, j] = v if i == 0 else v - l_c[i, j] * z[i - 1, j]
        i0 = i1
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
    # CG on S·lo = r from lo = 0, given the Schur residual r and the forward column sweep of
    # z = A_C⁻¹ r (fused into the caller's right-hand-side pass); stops once ‖r‖₁ ≤ target.
    # Returns the step count (−1: not at the target after maxiter). A step takes three passes:
    # the new direction with t = A_R⁻¹ G p and p·Sp (row blocks); the updates of lo and r with
    # ‖r‖₁ and the forward column sweep of z; its backward sweep with r·z.
    n, m = couple.shape
    rz = _back_cols(z, r, l_c, dinv_c)
    b = 0.0
    for step in range(1, maxiter + 1):
        pq = _direction_rows(z, p, r, w, couple, lt, dt, t, b, step == 1)
        a = _safe_ratio(rz, pq)
        rn = 0.0
        for i in range(n):
            for j in range(m):
                lo[i, j] += a * p[i, j]
                v = r[i, j] - a * (w[i, j] - couple[i, j] * t[i, j])
                r[i, j] = v
                rn += abs(v)
                z[i, j] = v if i == 0 else v - l_c[i, j] * z[i - 1, j]
        if rn <= target:
            return step
        s = _back_cols(z, r, l_c, dinv_c)
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
