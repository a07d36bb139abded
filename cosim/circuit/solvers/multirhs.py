"""Compiled multi-right-hand-side PCG: one pass over the line blocks serves eight input vectors.

A read of one vector is bound by memory traffic: each CG step streams the line-block factors and
the cell conductances (five read-only slabs) and the vector's work slabs past the core, and its
tridiagonal recurrences are latency-bound chains. Here the vectors of a batch are interleaved in
blocks of :data:`LANES` (one AVX-512 register of doubles): every work array is (N, M, LANES), so
one load of a factor serves all lanes, the innermost loops run over the lanes (contiguous, one
vector instruction) and the eight recurrences of a line hide each other's latency. Blocks are
split over the cores (``numba.prange``), each thread holding one block's five work slabs.
Measured, a step costs about what coldread's costs per cell and vector: the vectors' own slabs,
not the shared factors, carry most of the traffic (docs/speed.md). The lanes' gain is where a batch would
otherwise take pcg's numpy general loop (large arrays, strong IR drop): compiled, on every core.

Each lane is its own CG (its own α, β, stopping target and convergence): a lane that meets its
target is frozen (α = 0) while the others go on, so a vector's arithmetic depends only on its own
data, never on the other lanes, the batch or the thread count (tests/test_multirhs.py checks
bit-identity). The algorithm per lane is :func:`pcg.solve`'s CG stage on the Schur complement
``S = A_C − G A_R⁻¹ G`` preconditioned by the column blocks, for a general right-hand side
(``rho_r``, ``rho_c``: the row and column equations' residuals), so that :func:`solve` can run a
cold solve and the refinement stage of large arrays through it; certification (the true KCL
residual and the ℓ1 bound on the output currents) stays with the caller (:mod:`pcg`).
"""

from __future__ import annotations

import numpy as np

from cosim.circuit.solvers.coldread import _jit, _leave, _prange
from cosim.circuit.solvers.kernels import _safe_ratio

#: Vectors per block: one 512-bit register of doubles (two 256-bit ones on AVX2 machines).
LANES = 8


@_jit
def _row(lt, dt, t, i):  # pragma: no cover - compiled
    # LDLᵀ solve of row line i of all eight lanes of t (N, LANES, M) in place: the lanes share
    # the line's factors (one load serves eight) and their recurrences, carried in registers,
    # hide each other's latency.
    x = t[i]
    m = x.shape[1]
    c0, c1, c2, c3, c4, c5, c6, c7 = x[0, 0], x[1, 0], x[2, 0], x[3, 0], x[4, 0], x[5, 0], x[6, 0], x[7, 0]
    for j in range(1, m):
        lm = lt[i, j]
        c0, c1, c2, c3 = x[0, j] - lm * c0, x[1, j] - lm * c1, x[2, j] - lm * c2, x[3, j] - lm * c3
        c4, c5, c6, c7 = x[4, j] - lm * c4, x[5, j] - lm * c5, x[6, j] - lm * c6, x[7, j] - lm * c7
        x[0, j], x[1, j], x[2, j], x[3, j], x[4, j], x[5, j], x[6, j], x[7, j] = c0, c1, c2, c3, c4, c5, c6, c7
    d = dt[i, m - 1]
    c0, c1, c2, c3 = c0 * d, c1 * d, c2 * d, c3 * d
    c4, c5, c6, c7 = c4 * d, c5 * d, c6 * d, c7 * d
    x[0, m - 1], x[1, m - 1], x[2, m - 1], x[3, m - 1] = c0, c1, c2, c3
    x[4, m - 1], x[5, m - 1], x[6, m - 1], x[7, m - 1] = c4, c5, c6, c7
    for j in range(m - 2, -1, -1):
        d, lm = dt[i, j], lt[i, j + 1]
        c0, c1, c2, c3 = x[0, j] * d - lm * c0, x[1, j] * d - lm * c1, x[2, j] * d - lm * c2, x[3, j] * d - lm * c3
        c4, c5, c6, c7 = x[4, j] * d - lm * c4, x[5, j] * d - lm * c5, x[6, j] * d - lm * c6, x[7, j] * d - lm * c7
        x[0, j], x[1, j], x[2, j], x[3, j], x[4, j], x[5, j], x[6, j], x[7, j] = c0, c1, c2, c3, c4, c5, c6, c7


@_jit
def _back_cols(z, r, l_c, dinv_c, s):  # pragma: no cover - compiled
    # Backward half of z = A_C⁻¹ r per lane (the forward half is fused into the caller's pass);
    # s[q] = r·z of lane q.
    n, m = z.shape[0], z.shape[2]
    for q in range(LANES):
        zq, rq = z[n - 1, q], r[n - 1, q]
        acc = 0.0
        for j in range(m):
            v = zq[j] * dinv_c[n - 1, j]
            zq[j] = v
            acc += rq[j] * v
        s[q] = acc
    for i in range(n - 2, -1, -1):
        di, lm = dinv_c[i], l_c[i + 1]
        for q in range(LANES):
            zq, zn, rq = z[i, q], z[i + 1, q], r[i, q]
            acc = 0.0
            for j in range(m):
                v = zq[j] * di[j] - lm[j] * zn[j]
                zq[j] = v
                acc += rq[j] * v
            s[q] += acc


@_jit
def _gather(cold, g_cell, free, s_r, s_c, rho, sign, k, i, out):  # pragma: no cover - compiled
    # Row i of vector k's right-hand side into out (M,): the residual ``rho`` of a base, or for a
    # cold start (zero drops) the cell drive ±g·(s_r − s_c) on the free nodes.
    if cold:
        sr, sc, g, f = s_r[k, i], s_c[k], g_cell[i], free[i]
        for j in range(out.size):
            out[j] = sign * (g[j] * (sr - sc[j])) * f[j]
    else:
        rk = rho[k, i]
        for j in range(out.size):
            out[j] = rk[j]


@_jit
def _direction(z, p, beta, i):  # pragma: no cover - compiled
    # Row i of the new search directions, p = z + βp per lane.
    for q in range(LANES):
        bq, zq, pp = beta[q], z[i, q], p[i, q]
        for j in range(zq.size):
            pp[j] = zq[j] + bq * pp[j]


@_jit
def _block(couple, lt, dt, l_c, dinv_c, ac, cold, g_cell, free_r, free_c, s_r, s_c, rho_r, rho_c, stop,
           k0, k1, maxiter, lo, r, z, p, t, out_c, out_r, iters):  # pragma: no cover - compiled
    # Vectors k0 … k1−1 (≤ LANES) in the lanes of the work slabs (N, LANES, M); lanes past
    # k1−k0 carry a zero right-hand side and stay frozen.
    n, m = couple.shape
    nk = k1 - k0
    act = np.zeros(LANES, dtype=np.bool_)  # still iterating; lanes q < nk hold a vector
    tgt, a, beta = np.zeros(LANES), np.zeros(LANES), np.zeros(LANES)
    rz, s, pq, rn = np.zeros(LANES), np.zeros(LANES), np.zeros(LANES), np.zeros(LANES)
    its = np.zeros(LANES, dtype=np.int64)
    for q in range(nk):
        act[q] = True
        tgt[q] = stop[k0 + q]
    # Schur right-hand side: t = A_R⁻¹ ρ_R, r = G t + ρ_C; forward sweep of z = A_C⁻¹ r; ‖r‖₁.
    for i in range(n):
        for q in range(LANES):
            tq, lq, pp = t[i, q], lo[i, q], p[i, q]
            if q < nk:
                _gather(cold, g_cell, free_r, s_r, s_c, rho_r, -1.0, k0 + q, i, tq)
            for j in range(m):
                if q >= nk:
                    tq[j] = 0.0
                lq[j], pp[j] = 0.0, 0.0
        _row(lt, dt, t, i)
        ci, lm = couple[i], l_c[i]
        for q in range(LANES):
            tq, rq, zq, zp = t[i, q], r[i, q], z[i, q], z[i - 1, q]
            if q < nk:
                _gather(cold, g_cell, free_c, s_r, s_c, rho_c, 1.0, k0 + q, i, rq)
            else:
                rq[:] = 0.0
            acc = 0.0
            for j in range(m):
                v = ci[j] * tq[j] + rq[j]
                rq[j] = v
                zq[j] = v if i == 0 else v - lm[j] * zp[j]
                acc += abs(v)
            rn[q] = acc if i == 0 else rn[q] + acc
    live = False
    for q in range(LANES):
        if act[q] and rn[q] <= tgt[q]:
            act[q] = False
        live = live or act[q]
    _back_cols(z, r, l_c, dinv_c, rz)
    for step in range(1, maxiter + 1):
        if not live:
            break
        # p = z + βp one row ahead, t = A_R⁻¹ G p row by row (in L1), and p·Sp with A_C p formed
        # from the rows i−1, i, i+1 of p (no slab for it: one stream less each way).
        for q in range(LANES):
            pq[q] = 0.0
        _direction(z, p, beta, 0)
        for i in range(n):
            if i + 1 < n:
                _direction(z, p, beta, i + 1)
            ci = couple[i]
            for q in range(LANES):
                pp, tq = p[i, q], t[i, q]
                for j in range(m):
                    tq[j] = ci[j] * pp[j]
            _row(lt, dt, t, i)
            for q in range(LANES):
                pp, tq = p[i, q], t[i, q]
                pu, pd = p[max(i - 1, 0), q], p[min(i + 1, n - 1), q]
                ad, au, an = ac[0, i], ac[1, i], ac[2, i]
                acc = 0.0
                for j in range(m):
                    acc += pp[j] * (ad[j] * pp[j] - au[j] * pu[j] - an[j] * pd[j] - ci[j] * tq[j])
                pq[q] += acc
        for q in range(LANES):
            a[q] = _safe_ratio(rz[q], pq[q]) if act[q] else 0.0
            rn[q] = 0.0
        # lo += αp, r −= α Sp with ‖r‖₁, and the forward sweep of z = A_C⁻¹ r.
        for i in range(n):
            ci, lm = couple[i], l_c[i]
            ad, au, an = ac[0, i], ac[1, i], ac[2, i]
            for q in range(LANES):
                aq = a[q]
                lq, pp, rq, tq, zq, zp = lo[i, q], p[i, q], r[i, q], t[i, q], z[i, q], z[i - 1, q]
                pu, pd = p[max(i - 1, 0), q], p[min(i + 1, n - 1), q]
                acc = 0.0
                for j in range(m):
                    lq[j] += aq * pp[j]
                    v = rq[j] - aq * (ad[j] * pp[j] - au[j] * pu[j] - an[j] * pd[j] - ci[j] * tq[j])
                    rq[j] = v
                    acc += abs(v)
                    zq[j] = v if i == 0 else v - lm[j] * zp[j]
                rn[q] += acc
        live = False
        for q in range(LANES):
            if act[q] and rn[q] <= tgt[q]:
                act[q], its[q] = False, step
            live = live or act[q]
        if not live:
            break
        _back_cols(z, r, l_c, dinv_c, s)
        for q in range(LANES):
            beta[q] = _safe_ratio(s[q], rz[q]) if act[q] else 0.0
            rz[q] = s[q]
    for q in range(LANES):
        if act[q]:
            its[q] = -1
    # Row drops of the final column drops, t = A_R⁻¹(ρ_R + G lo), then back to (B, N, M).
    for i in range(n):
        ci = couple[i]
        for q in range(LANES):
            tq, lq = t[i, q], lo[i, q]
            if q < nk:
                _gather(cold, g_cell, free_r, s_r, s_c, rho_r, -1.0, k0 + q, i, tq)
            else:
                tq[:] = 0.0
            for j in range(m):
                tq[j] += ci[j] * lq[j]
        _row(lt, dt, t, i)
    for q in range(nk):
        k = k0 + q
        iters[k] = its[q]
        oc, orr = out_c[k], out_r[k]
        for i in range(n):
            for j in range(m):
                oc[i, j] = lo[i, q, j]
                orr[i, j] = t[i, q, j]


def _solve_lanes(couple, l_r, dinv_r, l_c, dinv_c, ac, cold, g_cell, free_r, free_c, s_r, s_c, rho_r, rho_c,
                 stop, maxiter, chunks, out_c, out_r, iters):  # pragma: no cover - compiled
    n, m = couple.shape
    bsz = stop.shape[0]
    blocks = (bsz + LANES - 1) // LANES
    for q in _prange(chunks):
        lo, r, z = np.empty((n, LANES, m)), np.empty((n, LANES, m)), np.empty((n, LANES, m))
        p, t = np.empty((n, LANES, m)), np.empty((n, LANES, m))
        for blk in range(q * blocks // chunks, (q + 1) * blocks // chunks):
            k0 = blk * LANES
            _block(couple, l_r, dinv_r, l_c, dinv_c, ac, cold, g_cell, free_r, free_c, s_r, s_c, rho_r, rho_c,
                   stop, k0, min(bsz, k0 + LANES), maxiter, lo, r, z, p, t, out_c, out_r, iters)


solve_lanes = _jit(_solve_lanes, parallel=True)
solve_lanes.__doc__ = """PCG on the Schur complement for B right-hand sides, LANES at a time, blocks of
lanes split into ``chunks`` run in parallel (numba's threads).

Per vector k: ``rho_r``, ``rho_c`` (B, N, M) the residual currents of the row and column equations
at zero correction, A (zero outside the free nodes); ``stop[k]`` the target on the ℓ1 norm of the
Schur residual (CG's recurrence), A. Writes the column drops out_c and row drops out_r
(B, N, M), V (the correction that solves the residual equations), and iters[k] (−1: not at its
target after maxiter)."""


def _leave_all(d_r, d_c, s_r, s_c, g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c, chunks,
               branch, kcl, kmax):  # pragma: no cover - compiled
    # Port currents and ℓ1/ℓ∞ KCL residuals of every vector of a cold solve (coldread's pass).
    bsz = d_c.shape[0]
    for q in _prange(chunks):
        for k in range(q * bsz // chunks, (q + 1) * bsz // chunks):
            kcl[k], kmax[k] = _leave(d_r[k], d_c[k], s_r[k], s_c[k], g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r,
                                     pin_c, free_r, free_c, branch[k])


leave_all = _jit(_leave_all, parallel=True)

#: Smallest batch read through the lanes: one block of them. Fewer vectors keep the per-vector
#: paths (coldread's kernel, or the general loop), where idle lanes would multiply the traffic:
#: measured (bench_scale.py part "reads", session 13) on arrays that rebase, at 256², 512² and
#: 1024², 2 vectors through the lanes cost 2.9–3.4× the per-vector path, 4 vectors 1.4–2.0×,
#: 6 vectors 0.9–2.1×, 8 vectors 0.6–0.9×.
MIN_BATCH = LANES
#: Smallest array (cells) read through the lanes unless its IR drop needs the refinement stage.
#: A CG step costs about the same per cell and vector on either kernel (the lanes share only the
#: line factors' traffic), and up to 256² coldread measured as fast or faster (benchmarks/
#: bench_scale.py part "reads" prints both paths). Set when the one-stage limit
#: (pcg.NO_REBASE_MAX_CELLS) was 2^17 unknowns; between this and its 512² cells today, batches
#: take the lanes in one stage, and coldread has not been measured against them there.
MIN_CELLS = 2**17


def pays(blocks, bsz: int) -> bool:
    """Whether a cold batch of ``bsz`` vectors of ``blocks`` is read through the lanes."""
    from cosim.circuit.solvers import kernels, pcg

    return kernels.ENABLED and bsz >= MIN_BATCH and (blocks.n * blocks.m >= MIN_CELLS or pcg._rebase_worth(blocks))


def solve(blocks, shifts: tuple[np.ndarray, np.ndarray], out_ports: np.ndarray, *, rtol: float,
          maxiter: int, atol: float = 0.0):
    """Cold PCG of a batch through the lanes, certified as :func:`pcg.solve` certifies.

    ``shifts``: line reference potentials (B, N), (B, M), V (:meth:`LineBlocks.shifts`). Small
    arrays run one stage from zero IR drops to the final target, with coldread's stopping rule
    and compiled certification. Arrays whose rounding needs it (:func:`pcg._rebase_worth`) stop
    that stage at :data:`pcg.REBASE`, then, as pcg's general loop does, keep the iterate as a
    base and solve its true residual in a second stage (iterative refinement in difference form;
    the target's output scale is then the base's real currents). Returns (:class:`pcg.PcgResult`,
    mask (B,) of the vectors not certified, which the caller sends through the general loop).
    """
    from cosim.circuit.solvers import pcg  # pcg calls this module: imported at run time

    b = blocks
    s_r, s_c = (np.ascontiguousarray(a, dtype=float) for a in shifts)
    # The stopping scale of coldread: the larger of the zero-drop port currents and the ideal
    # (zero-wire) currents, each a matmul here rather than a pass over (B, N, M).
    g, gr, gk = b.g_cell, b.g_cell * b.pin_r, b.g_cell * b.pin_c
    ideal = np.concatenate([s_r * g.sum(axis=1) - s_c @ g.T, s_r @ g - s_c * g.sum(axis=0)], axis=1)
    zero = np.concatenate([s_c @ gr.T - s_r * gr.sum(axis=1), s_r @ gk - s_c * gk.sum(axis=0)], axis=1)
    scale = np.maximum(np.abs(ideal[:, out_ports]).sum(axis=1), np.abs(zero[:, out_ports]).sum(axis=1))
    target = np.maximum(0.5 * rtol * scale, 0.5 * atol)
    refine = pcg._rebase_worth(b)
    stop = np.maximum(pcg.REBASE * scale, target) if refine else target
    d_c, d_r, its = _run(b, (s_r, s_c), None, stop, maxiter)
    if not refine:
        branch, kcl, kmax = _certify(b, d_r, d_c, s_r, s_c)
        i_out = np.abs(branch[:, out_ports]).sum(axis=1)
        bound = pcg._ratio(kcl, i_out - kcl)
        bad = ~((bound <= rtol) | (kcl <= atol))
        ok = ~bad
        return pcg.PcgResult(d_r, d_c, branch, None, None, bound, kcl, int(its[ok].max(initial=0)),
                             float(kmax[ok].max(initial=0.0))), bad
    drive = b.drive(s_r, s_c)
    base = pcg._Base(b, d_c, pcg.rhs(b, drive)[0], drive)
    scale = np.abs(base.branch[:, out_ports]).sum(axis=1)
    lo, e_r, its2 = _run(b, None, base, np.maximum(0.5 * rtol * scale, 0.5 * atol), maxiter)
    out, _ = pcg._pair(b, base, lo, out_ports, e_r)
    out.iterations = int(its.max(initial=0)) + int(its2.max(initial=0))
    return out, ~((out.bound <= rtol) | (out.kcl_l1 <= atol))


def _parallel(kind: str, bsz: int, cells: int):
    """kernels.parallel for a pass over ``bsz`` vectors in blocks of LANES."""
    from cosim.circuit.solvers import kernels

    n_blocks = -(-bsz // LANES)
    return kernels.parallel(kind, n_blocks * LANES * cells, n_blocks)


def _run(b, shifts, base, stop: np.ndarray, maxiter: int):
    """The lanes' CG from zero drops (``shifts`` given) or for the residual of ``base`` (a
    pcg._Base): (column drops, row drops (B, N, M) V, iterations (B,))."""
    bsz, n, m = stop.shape[0], b.n, b.m
    none2, none3 = np.zeros((1, 1)), np.zeros((1, 1, 1))
    s_r, s_c = shifts if shifts is not None else (none2, none2)
    rho_r, rho_c = ((none3, none3) if base is None
                    else (np.ascontiguousarray(base.res_r), np.ascontiguousarray(base.res_c)))
    g_cell, *_, free_r, free_c = b.kernel_args()
    out_c, out_r = np.empty((bsz, n, m)), np.empty((bsz, n, m))
    iters = np.empty(bsz, dtype=np.int64)
    with _parallel("lanes", bsz, n * m) as chunks:
        solve_lanes(b.couple, b.rows.l, b.rows.dinv, b.cols.l, b.cols.dinv, col_stencil(b), base is None, g_cell,
                    free_r, free_c, s_r, s_c, rho_r, rho_c, np.ascontiguousarray(stop, dtype=float),
                    int(maxiter), chunks, out_c, out_r, iters)
    return out_c, out_r, iters


def col_stencil(b) -> np.ndarray:
    """A_C as a stencil (3, N, M), S: diagonal, coupling to the row above and to the row below,
    zero outside the free column nodes (and above row 0, below row N−1), so that
    (A_C x)[i] = s[0, i]·x[i] − s[1, i]·x[i−1] − s[2, i]·x[i+1] (as LineBlocks.col_operator)."""
    if b._stencil is None:  # cleared by LineBlocks._set_devices
        n, m = b.n, b.m
        st = np.zeros((3, n, m))
        st[0] = b.g_cell
        st[0, 0] += b.gpt
        st[0, -1] += b.gpb
        if n > 1:
            st[0, :-1] += b.gc
            st[0, 1:] += b.gc
            st[1, 1:] = b.gc
            st[2, :-1] = b.gc
        st *= b.free_c
        b._stencil = st
    return b._stencil


def _certify(b, d_r, d_c, s_r, s_c):
    """Port currents (B, N+M) A and ℓ1, ℓ∞ KCL residuals (B,) A of a cold solve's drops."""
    bsz = d_c.shape[0]
    branch, kcl, kmax = np.empty((bsz, b.n + b.m)), np.empty(bsz), np.empty(bsz)
    with _parallel("lanes-leave", bsz, b.n * b.m) as chunks:
        leave_all(d_r, d_c, s_r, s_c, *b.kernel_args(), chunks, branch, kcl, kmax)
    return branch, kcl, kmax
