"""Conjugate gradients on the column-node Schur complement of a crossbar, preconditioned by the
column line blocks, with a stopping rule on the output currents.

Eliminating the row nodes exactly (one batched tridiagonal solve per row line) leaves the SPD
system ``S δ_C = b`` with ``S = A_C − G A_R⁻¹ G`` on the column IR drops. CG on ``S`` with the
column blocks ``A_C`` as preconditioner is, in exact arithmetic, CG on the 2×2 block system
preconditioned by a symmetric line-block Gauss–Seidel sweep (rows, columns, rows), at two
tridiagonal solves per iteration instead of three. ``A_C·p`` is carried by the recurrence
``A_C p ← r + β A_C p`` (since ``A_C z = r``), so an iteration costs one row solve, one column
solve and a few BLAS vector operations.

Stopping rule (why it bounds what a designer reads). After the row solve the row equations hold
to round-off, so the KCL residual ``r`` (A) of the approximate solution is a set of spurious
current sources at the nodes. Their effect on the port currents is the response of the passive
network, with every port held, to those injections; the nodal matrix is an M-matrix, so a
current injected anywhere splits into non-negative parts reaching the ports that add up to at
most the injection. Hence ``Σ_ports |ΔI| ≤ ‖r‖₁`` and the relative error of the output currents
obeys ``‖ΔI_out‖₁ / ‖I_out‖₁ ≤ ‖r‖₁ / (‖Ĩ_out‖₁ − ‖r‖₁)``. The solver stops once that bound,
recomputed from the true residual (not CG's recurrence), is ≤ ``rtol`` for every input vector,
and reports it; otherwise :class:`ConvergenceError`.

Accuracy below the rounding of ~1 V drops. Summed over millions of nodes, the residual that the
mere rounding of the stored potentials leaves is ~1e-10 of the output current at 1024² (1 Ω,
1–100 µS), too close to the targets. So the iterate is kept as a stored base plus a small
correction (iterative refinement): when the residual has fallen to :data:`REBASE`, the iterate
becomes the base, its true residual replaces CG's (with ``A_C p`` recomputed; the search
direction is kept), and the output scale of the target is updated from the base's currents.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas

from cosim.circuit.solvers import coldread, kernels, multirhs
from cosim.circuit.solvers.lineblock import LineBlocks
from cosim.errors import ConvergenceError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PcgResult:
    """IR drops and port currents of a batch, with the certified error bound per input vector."""

    d_r: np.ndarray | None  # (B, N, M) row IR drops, V (None unless asked for: keep_rows)
    d_c: np.ndarray | None  # (B, N, M) column IR drops, V (None when not asked for: keep_cols)
    branch: np.ndarray  # (B, N+M) port currents, A
    leave_r: np.ndarray | None  # (B, N, M) current leaving each row node, A (KCL residual = −this);
    leave_c: np.ndarray | None  # None from the compiled cold solve (kcl_inf is set instead)
    bound: np.ndarray  # (B,) bound on ‖ΔI_out‖₁/‖I_out‖₁
    kcl_l1: np.ndarray  # (B,) ‖r‖₁ over all free nodes, A
    iterations: int
    kcl_inf: float | None = None  # ‖r‖∞ over the batch and the free nodes, A (None: not yet known)

    def merge(self, rows: np.ndarray, other: PcgResult, blocks: LineBlocks) -> None:
        """Take vectors ``rows`` (mask (B,)) from ``other`` (a solve of just those vectors)."""
        if self.d_r is not None:
            self.d_r[rows] = other.d_r
        if self.d_c is not None:
            self.d_c[rows] = other.d_c
        self.branch[rows] = other.branch
        self.bound[rows], self.kcl_l1[rows] = other.bound, other.kcl_l1
        self.iterations = max(self.iterations, other.iterations)
        if self.leave_r is not None:  # from the lanes (multirhs): leave currents kept
            self.leave_r[rows], self.leave_c[rows] = other.leave_r, other.leave_c
            self.kcl_inf = None
        else:  # from the compiled cold solve: only its ℓ∞ residual
            self.kcl_inf = max(self.kcl_inf, other.max_residual(blocks))

    def max_residual(self, blocks: LineBlocks) -> float:
        """Largest KCL residual (A) at any free node of any input vector."""
        if self.kcl_inf is None:
            self.kcl_inf = max(float(np.abs(self.leave_r * blocks.free_r).max(initial=0.0)),
                               float(np.abs(self.leave_c * blocks.free_c).max(initial=0.0)))
        return self.kcl_inf


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([blas.ddot(a[k].ravel(), b[k].ravel()) for k in range(a.shape[0])])


def _asum(a: np.ndarray) -> np.ndarray:
    return np.array([blas.dasum(a[k].ravel()) for k in range(a.shape[0])])


def _axpy(alpha: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
    """y += alpha[b]·x[b] in place."""
    for k in range(x.shape[0]):
        if alpha[k] != 0.0:
            blas.daxpy(x[k].ravel(), y[k].ravel(), a=float(alpha[k]))


def _xpby(x: np.ndarray, beta: np.ndarray, y: np.ndarray) -> None:
    """y = x + beta[b]·y in place."""
    for k in range(x.shape[0]):
        yk = y[k].ravel()
        blas.dscal(float(beta[k]), yk)
        blas.daxpy(x[k].ravel(), yk, a=1.0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0/0 = 0 and x/0 = inf (no warnings)."""
    out = np.full(num.shape, np.inf)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    out[num == 0] = 0.0
    return out


class _Base:
    """A stored iterate δ_C with its row solve, leave currents and port currents.

    The solution is kept as this base plus a small correction: residuals and port currents of
    the pair are sums of the two parts, each computed in difference form, so rounding scales
    with the correction's size rather than with the ~1 V drops (iterative refinement without
    extended precision).
    """

    def __init__(self, blocks: LineBlocks, x_c: np.ndarray | None, f_r: np.ndarray, drive):
        self.zero = x_c is None
        self.drive = drive
        if x_c is None:  # zero IR drops: every quantity follows from the drive alone
            self.x, self.d_r = np.zeros_like(drive), np.zeros_like(drive)
            self.l_r, self.l_c = drive.copy(), -drive
            self.branch = blocks.branch_currents(self.d_r, self.x, self.l_r, self.l_c)
            self.kcl = _asum(drive * blocks.free_r) + _asum(drive * blocks.free_c)
        else:
            self.x = x_c
            self.d_r = f_r + blocks.couple * x_c
            blocks.rows.solve(self.d_r)
            self.l_r, self.l_c, self.branch, self.kcl = blocks.leave_branch(self.d_r, x_c, drive)
        self.res_r = -self.l_r * blocks.free_r
        self.res_c = -self.l_c * blocks.free_c


def _pair(blocks: LineBlocks, base: _Base, lo: np.ndarray | None, out_ports,
          e_r: np.ndarray | None = None) -> tuple[PcgResult, np.ndarray]:
    """The result for base + correction ``lo`` (None: the base alone) and its output-current norm.

    ``e_r``, when given, is the row correction ``A_R⁻¹(ρ_R + G·lo)`` carried along by the CG
    recurrence (it saves a row solve). Either way the residual below is the true one of the
    returned potentials, so a recurrence's rounding can only show in the bound, never hide.
    """
    if lo is None:
        d_r, d_c, l_r, l_c, branch, kcl = base.d_r, base.x, base.l_r, base.l_c, base.branch, base.kcl
    else:
        if e_r is None:
            e_r = base.res_r + blocks.couple * lo
            blocks.rows.solve(e_r)
        if base.zero:  # a cold start's base holds zero drops: the correction is the solution
            d_r, d_c = e_r, lo
            l_r, l_c, branch, kcl = blocks.leave_branch(d_r, d_c, base.drive)
        else:
            m_r, m_c, b_m, _ = blocks.leave_branch(e_r, lo, None)
            branch = base.branch + b_m
            d_r, d_c = base.d_r + e_r, base.x + lo
            l_r, l_c = base.l_r + m_r, base.l_c + m_c
            kcl = _asum(l_r * blocks.free_r) + _asum(l_c * blocks.free_c)
    i_out = np.abs(branch[:, out_ports]).sum(axis=1)
    return PcgResult(d_r, d_c, branch, l_r, l_c, _ratio(kcl, i_out - kcl), kcl, 0), i_out


#: Relative ℓ1 residual (of the output currents) at which a stage rebases its iterate.
REBASE = 1e-5
#: Arrays of at most this many cells (and N·M·r·g < 10) never rebase mid-stage (measured floors:
#: ≤ 1e-11 of the outputs up to 512², 1 Ω, 1–100 µS); the few vectors whose outputs cancel below
#: a single stage's floor are refined from their cold drops (:func:`solve`). Counted in cells,
#: not free unknowns: driver and sense resistors free a node per line end without moving the
#: floor (counting them sent a 256² array with them to the numpy loop, 5× slower). At 512² one
#: stage measured 1.5–2.7× faster than the rebase over five circuit options at N·M·r·g 1.4–5
#: (benchmarks/results/bench_scale.txt; bench_scale.py "reads" prints one of them against a
#: forced rebase), a Fashion MLP epoch on 512² tiles 6× (bench_train.py --tiles 512); at 1024²
#: one stage was slower (203 against 145 ms), so larger arrays keep the rebase.
NO_REBASE_MAX_CELLS = 512 * 512


def _schur_residual(blocks: LineBlocks, base: _Base) -> tuple[np.ndarray, np.ndarray]:
    """The base's true residual carried onto the column nodes, ρ_C + G A_R⁻¹ ρ_R, and A_R⁻¹ ρ_R."""
    y = base.res_r.copy()
    blocks.rows.solve(y)
    r = blocks.couple * y
    r += base.res_c
    return r, y


def rhs(blocks: LineBlocks, drive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right-hand sides (B, N, M) of the row and column equations: the ideal cell currents."""
    return -drive * blocks.free_r, drive * blocks.free_c


def schur_operator(blocks: LineBlocks, x: np.ndarray) -> np.ndarray:
    """S·x = A_C x − G A_R⁻¹ G x for column-space vectors (B, N, M)."""
    t = blocks.couple * x
    blocks.rows.solve(t)
    t *= blocks.couple
    out = blocks.col_operator(x)
    out -= t
    return out


def solve(blocks: LineBlocks, drive: np.ndarray | None, out_ports: np.ndarray, *, rtol: float,
          maxiter: int, x0: np.ndarray | None = None, atol: float = 0.0,
          label: str = "crossbar", shifts: tuple[np.ndarray, np.ndarray] | None = None,
          keep_rows: bool = True, keep_cols: bool = True) -> PcgResult:
    """Solve a batch of reads given the cell drive currents (B, N, M); see the module docstring.

    ``out_ports`` indexes the port currents (0..N+M-1) whose ℓ1 norm the error is relative to;
    ``x0`` is an optional initial guess of the column IR drops (B, N, M), V; ``atol`` (A) also
    accepts an input vector whose ℓ1 KCL residual is below it (for outputs that may be ~0 A).
    ``drive`` may be None when ``shifts`` (the line reference potentials (B, N), (B, M) in V of
    :meth:`LineBlocks.shifts`) are given: the drive is then g_cell·(s_row − s_col), formed only
    where needed. With ``keep_rows=False`` the compiled path may leave ``d_r`` (and the leave
    currents) out of the result, with ``keep_cols=False`` ``d_c``: a drop not kept stays in the
    core's cache instead of a fresh (B, N, M) array.
    """
    batch = x0 is None and shifts is not None and multirhs.pays(blocks, shifts[0].shape[0])
    cold = not batch and x0 is None and shifts is not None and kernels.ENABLED and not _rebase_worth(blocks)
    # The compiled cold read of a single vector calls no BLAS: it skips the limit, whose
    # threadpoolctl queries cost a noticeable share of a small read (docstring_figures.md).
    with contextlib.nullcontext() if cold and shifts[0].shape[0] == 1 else kernels.single_thread_blas():
        if batch or cold:
            if batch:  # several vectors per pass over the line blocks (multirhs)
                res, bad = multirhs.solve(blocks, shifts, out_ports, rtol=rtol, maxiter=maxiter, atol=atol)
            else:
                res, bad = _solve_compiled(blocks, shifts, out_ports, rtol, maxiter, atol, keep_rows,
                                                   keep_cols)
            if bad.any():
                _refine_uncertified(res, bad, blocks, shifts, out_ports, rtol, maxiter, atol, label)
            return res
        if drive is None:
            drive = blocks.drive(*shifts)
        return _solve(blocks, drive, out_ports, rtol, maxiter, x0, atol, label)


#: Arrays of N·M doubles a right-hand side keeps alive during a PCG solve (work memory budgets:
#: transfer.chunk_size, :data:`FALLBACK_BYTES`).
VECTORS_PER_RHS = 18
#: Work memory (bytes) of the general loop per chunk of the vectors a compiled read leaves
#: uncertified, so that a chunk stays in the last-level cache: all at once, a batch's arrays
#: run from memory and are faulted in afresh at every allocation (bench_scale.py "reads": the
#: zero-mean inputs' line prints both).
FALLBACK_BYTES = 32 * 2**20


def _refine_uncertified(res: PcgResult, bad: np.ndarray, blocks: LineBlocks, shifts, out_ports, rtol: float,
                        maxiter: int, atol: float, label: str) -> None:
    """Vectors ``bad`` (mask (B,)) of a compiled result ``res`` solved again by the general loop
    (restarts, stall and non-convergence errors) and merged into ``res``. They usually miss only
    a single stage's rounding floor (outputs that cancel, 256² and up), which the loop's
    refinement takes in a step or two from their compiled drops; drops the compiled read did not
    keep are solved again for those vectors, compiled, far cheaper than the loop's iterations
    from zero. Taken in chunks of :data:`FALLBACK_BYTES`."""
    bad_r, bad_c = shifts[0][bad], shifts[1][bad]
    if res.d_c is not None:
        start = res.d_c[bad]
    else:
        start = _solve_compiled(blocks, (bad_r, bad_c), out_ports, rtol, maxiter, atol, False, True)[0].d_c
    idx = np.flatnonzero(bad)
    step = max(1, int(FALLBACK_BYTES // (VECTORS_PER_RHS * blocks.n * blocks.m * 8)))
    for k in range(0, idx.size, step):
        part = np.zeros_like(bad)
        part[idx[k:k + step]] = True
        sub = _solve(blocks, blocks.drive(bad_r[k:k + step], bad_c[k:k + step]), out_ports, rtol, maxiter,
                     start[k:k + step], atol, label)
        res.merge(part, sub, blocks)


def _rebase_worth(blocks: LineBlocks) -> bool:
    """Whether a solve rebases its iterate halfway (large arrays or strong IR drop; see REBASE)."""
    return blocks.n * blocks.m > NO_REBASE_MAX_CELLS or blocks.ir_parameter() >= 10.0


def _solve_compiled(blocks, shifts, out_ports, rtol, maxiter, atol,
                    keep_rows=True, keep_cols=True) -> tuple[PcgResult, np.ndarray]:
    """The cold-start solve of :func:`_solve` (first stage, no rebase) compiled, one input vector
    per core at a time (coldread.cold_read), and the mask (B,) of vectors it did not certify."""
    b = blocks
    s_r, s_c = (np.ascontiguousarray(a, dtype=float) for a in shifts)
    bsz, n, m = s_r.shape[0], b.n, b.m
    is_out = np.zeros(n + m, dtype=bool)
    is_out[out_ports] = True
    d_r, d_c = np.empty((bsz if keep_rows else 1, n, m)), np.empty((bsz if keep_cols else 1, n, m))
    branch, kcl, kmax = np.empty((bsz, n + m)), np.empty(bsz), np.empty(bsz)
    iters = np.empty(bsz, dtype=np.int64)
    g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c = b.kernel_args()
    with kernels.parallel("coldread", bsz * n * m, bsz) as chunks:
        coldread.cold_read(g_cell, b.couple, b.rows.l, b.rows.dinv, b.cols.l, b.cols.dinv, gw, gc, gpl, gpr,
                           gpt, gpb, pin_r, pin_c, free_r, free_c, is_out, s_r, s_c, float(rtol), float(atol),
                           int(maxiter), chunks, d_r, d_c, branch, kcl, kmax, iters)
    i_out = np.abs(branch[:, out_ports]).sum(axis=1)
    bound = _ratio(kcl, i_out - kcl)
    bad = (iters < 0) | ~((bound <= rtol) | (kcl <= atol))
    ok = ~bad
    return PcgResult(d_r if keep_rows else None, d_c if keep_cols else None, branch, None, None, bound, kcl,
                     int(iters[ok].max(initial=0)), float(kmax[ok].max(initial=0.0))), bad


def _solve(blocks, drive, out_ports, rtol, maxiter, x0, atol, label) -> PcgResult:
    f_r, f_c = rhs(blocks, drive)
    base = _Base(blocks, None if x0 is None else np.ascontiguousarray(x0 * blocks.free_c), f_r, drive)
    res, scale = _pair(blocks, base, None, out_ports)
    if np.all((res.bound <= rtol) | (res.kcl_l1 <= atol)):
        return res
    # At zero IR drop the outputs through finite sense resistors read 0 A: take the ideal
    # (zero-wire) port currents as the scale until a checkpoint measures the real ones.
    ideal = np.concatenate([drive.sum(axis=2), drive.sum(axis=1)], axis=1)
    scale = np.maximum(scale, np.abs(ideal[:, out_ports]).sum(axis=1))
    best, stalls, it = np.inf, 0, 0
    while True:
        # One stage of CG on S·lo = (Schur right-hand side of the base's true residual).
        r, e_r = _schur_residual(blocks, base)  # e_r: A_R⁻¹(ρ_R + G·lo), carried along with lo
        lo = np.zeros_like(r)
        z = blocks.cols.solve(r)
        p = z.copy()
        w = r.copy()  # A_C p, carried by recurrence
        t = np.empty_like(r)
        q = np.empty_like(r)
        rz = _dot(r, z)
        target = np.maximum(0.5 * rtol * scale, 0.5 * atol) * min(1.0, rtol / best if np.isfinite(best) else 1.0)
        # Halfway down, move the iterate into the base (CG state kept): the rest of the solve
        # then works on a small correction whose rounding is far below the final tolerance.
        # Only once, in the first stage: a later rebase would round the iterate again.
        # Small arrays with little IR drop skip it: their rounding floor is far below any rtol,
        # the ideal scale is close to the real one, and a failed final check costs them only a
        # few cheap iterations.
        worth = _rebase_worth(blocks)
        rebase = REBASE * scale if worth and np.isinf(best) and np.all(REBASE * scale > target) else None
        fused = kernels.ENABLED and all(a.flags.c_contiguous for a in (r, e_r, blocks.couple))
        rn = np.empty(r.shape[0])
        while it < maxiter:
            it += 1
            if fused:  # the same step per input vector, compiled (kernels.cg_update)
                kernels.cg_update(blocks.couple, blocks.rows.l, blocks.rows.dinv, p, w, t, q, lo, e_r,
                                  r, rz, rn)
            else:
                np.multiply(blocks.couple, p, out=t)
                blocks.rows.solve(t)  # t = A_R⁻¹ G p
                np.multiply(blocks.couple, t, out=q)
                np.subtract(w, q, out=q)  # q = S p
                alpha = _ratio(rz, _dot(p, q))
                alpha[~np.isfinite(alpha)] = 0.0
                _axpy(alpha, p, lo)
                _axpy(alpha, t, e_r)
                _axpy(-alpha, q, r)
                rn = _asum(r)
            if np.all(rn <= target):
                break
            if rebase is not None and np.all(rn <= rebase):
                # Residual replacement (van der Vorst & Ye): the recurrences for r and A_C p
                # drift by ~eps·cond(A_C) per step, amplified where S ≪ A_C; restore both
                # from the rebased iterate and keep the search direction.
                base = _Base(blocks, base.x + lo, f_r, drive)
                lo[...] = 0.0
                rebase = None
                r, e_r = _schur_residual(blocks, base)
                w[...] = blocks.col_operator(p)
                # The outputs are now known to ~REBASE: the true scale for the target (the
                # ideal currents overstate it by the IR-drop loss, 25x at 1024² and 1 Ω).
                scale = np.abs(base.branch[:, out_ports]).sum(axis=1)
                target = np.maximum(0.5 * rtol * scale, 0.5 * atol)
            if fused:
                kernels.cg_direction(blocks.cols.l, blocks.cols.dinv, r, z, p, w, rz)
                continue
            blocks.cols.solve(r, out=z)
            rz_new = _dot(r, z)
            beta = _ratio(rz_new, rz)
            beta[~np.isfinite(beta)] = 0.0
            rz = rz_new
            _xpby(z, beta, p)
            _xpby(r, beta, w)
        res, scale = _pair(blocks, base, lo, out_ports, e_r)
        res.iterations = it
        worst = float(np.where(res.kcl_l1 <= atol, 0.0, res.bound).max())
        if worst <= rtol:
            log.debug("%s: pcg converged in %d iterations, bound %.2e", label, it, worst)
            return res
        if it >= maxiter:
            raise ConvergenceError(
                f"pcg on the {label} did not converge in {maxiter} iterations: output-current error "
                f"bound {worst:.2e} > rtol {rtol:.1e} (KCL residual {res.kcl_l1.max():.2e} A, IR-drop "
                f"parameter N·M·r·g = {blocks.ir_parameter():.3g}); raise solver.maxiter, loosen "
                "solver.rtol or use solver.method='direct'")
        stalls = stalls + 1 if worst > 0.5 * best else 0
        if stalls >= 3:
            raise ConvergenceError(
                f"pcg on the {label} stagnated after {it} iterations at an output-current error bound "
                f"of {worst:.2e} > rtol {rtol:.1e} (KCL residual {res.kcl_l1.max():.2e} A); loosen "
                "solver.rtol or use solver.method='direct'")
        best = min(best, worst)
        # Rebase on the pair and restart from its true residual.
        base = _Base(blocks, base.x + lo, f_r, drive)


#: Smallest estimated cold-start iteration count for which a Galerkin warm start can pay: the
#: guess and the warm base cost about three iterations (row solves, the Schur operator on the
#: basis, the base's leave currents), measured with benchmarks/bench_scale.py part "warm".
WARM_MIN_ITERATIONS = 6.0
#: Largest relative ℓ2 distance of a read's port potentials from the span of the basis's ports
#: for which the warm start is used (two digits of the guess come from the inputs alone).
WARM_SPAN = 1e-2


def estimated_iterations(blocks: LineBlocks) -> float:
    """PCG iterations to ~1e-9 from a cold start: 2 + 2.2·sqrt(N·M·r·g) (fitted, bench_scale "ir")."""
    return 2.0 + 2.2 * float(np.sqrt(max(blocks.ir_parameter(), 0.0)))


def warm_can_pay(blocks: LineBlocks) -> bool:
    """Whether a cold solve of ``blocks`` is estimated at :data:`WARM_MIN_ITERATIONS` or more:
    below that any warm start (of reads or of the transfer's excitations) costs more than it
    saves."""
    return estimated_iterations(blocks) >= WARM_MIN_ITERATIONS


def warm_pays(blocks: LineBlocks, basis_ports: np.ndarray, ports: np.ndarray) -> bool:
    """Whether a Galerkin start from solutions with port potentials ``basis_ports`` (k, P) is
    worth its cost for reads with port potentials ``ports`` (B, P), V.

    The guess is only as good as the new reads are close to the span of the old ones (it is
    exact in the span, up to the conductance change). Fresh inputs outside that span gain a
    digit at most, which saves no iteration of a fast-converging array; the guess then costs
    more than it saves (benchmarks/bench_scale.py part "warm").
    """
    if not warm_can_pay(blocks):
        return False
    coef, *_ = np.linalg.lstsq(basis_ports.T, ports.T, rcond=None)
    miss = np.linalg.norm(ports.T - basis_ports.T @ coef, axis=0)
    return bool(np.all(miss <= WARM_SPAN * np.linalg.norm(ports, axis=1)))


def galerkin_guess(blocks: LineBlocks, basis: np.ndarray, drive: np.ndarray) -> np.ndarray | None:
    """Initial column IR drops (B, N, M) from earlier solutions ``basis`` (k, N, M), V.

    For each read the guess is the S-energy minimiser over span(basis): never farther from the
    solution (in S-norm) than a zero start, and exact when the read lies in the span (a repeated
    input, or the same inputs after a small conductance change, up to that change).
    """
    with kernels.single_thread_blas():
        return _galerkin(blocks, basis, drive)


def _galerkin(blocks: LineBlocks, basis: np.ndarray, drive: np.ndarray) -> np.ndarray | None:
    k, bsz = basis.shape[0], drive.shape[0]
    f_r, f_c = rhs(blocks, drive)
    b = f_r.copy()
    blocks.rows.solve(b)
    b *= blocks.couple
    b += f_c
    w = np.ascontiguousarray(basis * blocks.free_c)
    sw = schur_operator(blocks, w)
    wf = w.reshape(k, -1)
    h = wf @ sw.reshape(k, -1).T
    h = 0.5 * (h + h.T)
    lam, vec = np.linalg.eigh(h)
    keep = lam > lam.max(initial=0.0) * 1e-12
    if not keep.any():
        return None
    proj = vec[:, keep].T @ (wf @ b.reshape(bsz, -1).T)
    coef = vec[:, keep] @ (proj / lam[keep][:, None])  # (k, B)
    return (coef.T @ wf).reshape(drive.shape)
