"""Compiled Newton reads of sinh cells: each input vector iterates to its own certified answer
inside one compiled loop, one vector per core at a time, in cache.

Why: a training read through Stanford–PKU cells is a batch of small input vectors on a 64×64
tile. The chord iteration (:mod:`chord`) solves it on one shared linear system whose slopes
are the batch's mean, so each step removes only (IR-drop fraction) × (slope spread) of the
error, and every step is a round trip through Python with (B, N, M) passes for the law, the
residual and a multi-vector correction: about seven ohmic reads per batch. Here each vector is
linearised at its *own* potentials, which a per-vector factorisation of the line blocks (part
of one sweep, :mod:`sinhpasses`) makes affordable:

1. The cells at the applied potentials: with one v0 for the whole array, sinh and cosh of
   x0 = (s_r − s_c)/v0 follow from those of the N + M line potentials by the difference
   formulas (no library call per cell); the law at any later iterate is sinh(x0 + Δx) by the
   sum formula with the series of :func:`lawkernels.sinh_cosh_small` in Δx.
2. A start: zero drops; the vector's own earlier solution (the same inputs after the devices
   moved a little); or the drops predicted from the earlier solves of other inputs on this
   array (:func:`ratios`: a row's drop profile scales with the row's current, a column's with
   the column's; :class:`DropFit` keeps the fit over batches). Newton's remainder after a
   step is ½·tanh(x0)·(Δu/v0)² of the currents, so the start decides the step count: on a
   digits tile (drops up to 30 % of 0.1 V inputs) three steps from zero, two from the
   prediction.
3. Newton: each step solves the linearised KCL for the nonlinear residual by coldread's CG on
   the column Schur complement (:func:`coldread._cg`), inexactly (:data:`ETA`, then
   Eisenstat–Walker); a small step keeps the factorisation (:data:`REFACTOR_DT`).

Converged means certified exactly as :mod:`newton`: the nonlinear KCL residual at the free
nodes (the cell currents of the law, not of a linear model) bounds the output currents' error,
``‖r‖₁/(‖I_out‖₁ − ‖r‖₁) ≤ rtol``. A vector that stops contracting (its residual falls by less
than :data:`MIN_CONTRACTION` in a step), overflows, or does not certify within
:data:`MAX_STEPS` is returned unconverged for the caller (a retry from zero drops, then the
damped Newton of :mod:`newton`): there is no damping here, so a hard case or a bad start costs a
fallback, never a wrong answer (tests/test_sinhnewton.py).

Memory: each thread's work slabs, and a batch's drops that the caller does not keep, come from
per-thread reusable memory (:func:`scratch`): fresh arrays of their size fault in page by page,
which took a tenth of a digits device epoch.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from cosim.circuit.cells import Sinh
from cosim.circuit.solvers import kernels
from cosim.circuit.solvers.chord import ChordResult
from cosim.circuit.solvers.coldread import _cg, _jit, _prange
from cosim.circuit.solvers.kernels import numba
from cosim.circuit.solvers.lineblock import LineBlocks
from cosim.circuit.solvers.sinhpasses import _applied, _rhs_rows, _sweep

#: A vector's work in cold-read units per cell (kernels.parallel): measured on digits training
#: tiles (64×64, 1 Ω, predicted start), a Newton read took 627 µs a vector against 340 µs for
#: the ohmic cold read of the same tiles.
WORK_PER_CELL = 1.8
#: Newton steps at most before a vector is handed to the damped Newton of :mod:`newton`.
MAX_STEPS = 8
#: A step must shrink the ℓ1 KCL residual at least by this factor, else the vector is handed on.
MIN_CONTRACTION = 0.5
#: The first step's linear solve stops at this fraction of its starting Schur residual (or at
#: the final target). Newton's remainder after it is ~½·tanh(x0)·(Δu/v0)² of the currents
#: (Δu: how far the start is from the solution): 5e-3 from zero drops on a digits tile (1 Ω
#: wires, 64×64, drops up to 30 % of 0.1 V inputs), ~1e-4 from the predicted drops, so digits
#: past it are wasted. Measured on captured digits reads from the predicted start: 1e-2, 1e-3,
#: 1e-4, 1e-5 cost 1.95, 1.88, 1.92, 1.95 cold reads per vector.
ETA = 1e-3
#: A step that moved no cell's voltage by more than this times v0 keeps the line blocks'
#: factorisation for the next (the slopes changed by less than tanh(x)·REFACTOR_DT, so the
#: step is a chord step contracting by about that factor times the wires' coupling).
REFACTOR_DT = 1e-3


#: Values (three cache lines) between two work slabs of a thread (:func:`slabs`). Why: slabs of
#: N·M values a multiple of 4 KiB apart put the same cell of every slab in the same L1 set, and
#: a CG step reads some ten slabs cell by cell, more than a set's eight ways. An odd number of
#: lines puts up to 64 slabs' same cell in as many sets. A digits read took 0.93–0.96 of the
#: time it took on slabs 32 KiB apart (benchmarks/results/docstring_figures.md).
SLAB_PAD = 24


def _slabs(wq, n, m):  # pragma: no cover - compiled
    # The 16 work slabs (N, M) of one thread, C-contiguous views of the rows of its buffer
    # wq (16, N·M + SLAB_PAD), each SLAB_PAD values further along the L1 sets than the last.
    k = n * m
    return (wq[0, :k].reshape((n, m)), wq[1, :k].reshape((n, m)), wq[2, :k].reshape((n, m)),
            wq[3, :k].reshape((n, m)), wq[4, :k].reshape((n, m)), wq[5, :k].reshape((n, m)),
            wq[6, :k].reshape((n, m)), wq[7, :k].reshape((n, m)), wq[8, :k].reshape((n, m)),
            wq[9, :k].reshape((n, m)), wq[10, :k].reshape((n, m)), wq[11, :k].reshape((n, m)),
            wq[12, :k].reshape((n, m)), wq[13, :k].reshape((n, m)), wq[14, :k].reshape((n, m)),
            wq[15, :k].reshape((n, m)))


slabs = _jit(_slabs, inline="always")


@_jit
def _vector(sr, sc, a, v0, inv_v0, a_v0, g_lin, uniform, g_floor, gw, gc, gpl, gpr, gpt, gpb, pins_r, pins_c, free_r,
            free_c, wr, offr, wc, offc, gwp, is_out, rtol, atol, eta, maxiter, max_steps, start, x_r, x_c, i_r, i_c, dr,
            dc, cur, br, wq, w1, res):  # pragma: no cover - compiled
    # One input vector from the drops ``start`` names: 0 zero, 1 (x_r, x_c), 2 the prediction
    # x_r·i_r[i], x_c·i_c[j] (per-cell ratios times the ideal line currents); res = (Newton
    # steps, CG steps, ℓ1 KCL residual, certified 1/0, ℓ1 output currents). wq: the thread's
    # work buffer (16, N·M + SLAB_PAD), its rows the slabs (slabs()).
    n, m = cur.shape
    w = slabs(wq, n, m)
    sh, ch = w[12], w[13]
    lt, dt, l_c, dinv_c, couple = w[2], w[3], w[4], w[5], w[1]
    lr, lc, lo, r, z, p, q, t = w[6], w[7], w[8], w[9], w[10], w[14], w[15], w[11]
    _applied(sr, sc, v0, uniform, w1[0, :n], w1[1, :n], w1[2, :m], w1[3, :m], sh, ch)
    for i in range(n):
        for j in range(m):
            dr[i, j] = 0.0 if start == 0 else (x_r[i, j] if start == 1 else x_r[i, j] * i_r[i])
            dc[i, j] = 0.0 if start == 0 else (x_c[i, j] if start == 1 else x_c[i, j] * i_c[j])
    acc = np.zeros(3)
    its, prev, refactor, rhs, correct = 0, np.inf, True, True, False
    res[0], res[3] = 0.0, 0.0
    for step in range(max_steps + 1):
        _sweep(correct, refactor, rhs, uniform, sr, sc, inv_v0, a, a_v0, g_lin, sh, ch, g_floor, gw, gwp, gc, gpl,
               gpr, gpt, gpb, pins_r, pins_c, free_r, free_c, wr, offr, wc, offc, dr, dc, cur, br, w, w1[4, :m],
               w1[5, :m + 2], w1[6, :m], acc)
        kcl, rn0 = acc[0], acc[1]
        i_out = 0.0
        for k in range(n + m):
            if is_out[k]:
                i_out += abs(br[k])
        res[0], res[1], res[2], res[4] = step, its, kcl, i_out
        if kcl <= atol or (i_out - kcl > 0.0 and kcl <= rtol * (i_out - kcl)):
            res[3] = 1.0
            return
        if step == max_steps or not kcl < MIN_CONTRACTION * prev or acc[2] > 0:  # also NaN
            return
        if not rhs:  # the step was expected to certify and did not: its right-hand side now
            rn0 = 0.0
            i0 = 0
            while i0 < n:
                i1 = min(n, i0 + 4)
                rn0 += _rhs_rows(i0, i1, couple, lt, dt, l_c, free_r, free_c, lr, lc, r, z, t, w1[6, :m])
                i0 = i1
        scale = i_out
        if step == 0:  # the sense resistors carry nothing at zero drops: the ideal currents too
            ideal = 0.0
            for i in range(n):
                if is_out[i]:
                    s = 0.0
                    for j in range(m):
                        s += cur[i, j]
                    ideal += abs(s)
            col = w1[6, :m]  # the column sums row by row, along memory (the sweep's zc is free here)
            col[:] = 0.0
            for i in range(n):
                for j in range(m):
                    col[j] += cur[i, j]
            for j in range(m):
                if is_out[n + j]:
                    ideal += abs(col[j])
            scale = max(scale, ideal)
        # Inexact Newton: the first step to eta of its residual; later ones to a tenth of what
        # quadratic convergence predicts after them, ‖F‖³/‖F_prev‖² (Eisenstat & Walker's
        # choice 2), never looser than eta; the final target below both.
        rel = eta if step == 0 else min(eta, 0.1 * (kcl / prev) ** 2)
        floor = max(0.5 * rtol * scale, 0.5 * atol)
        target = max(rel * rn0, floor)
        if rn0 > target:  # CG's first step sets lo (the column correction) without reading it
            k = _cg(couple, lt, dt, l_c, dinv_c, target, maxiter, lo, r, z, p, q, t)
            if k < 0:
                return
            its += k
        else:
            lo[:, :] = 0.0
        # A step that moved no cell by REFACTOR_DT·v0 (judged by the column drops) and
        # converged fast keeps the factorisation: its slopes changed by less than that.
        moved, e = 0, 1 - uniform  # e = 0: one 1/v0, held in inv_v0[0, 0]
        for i in range(n):
            for j in range(m):
                dc[i, j] += lo[i, j]
                moved += abs(lo[i, j] * inv_v0[i * e, j * e]) > REFACTOR_DT
        refactor = moved > 0 or kcl > 1e-2 * prev
        # The next sweep computes the next right-hand side unless this step should certify.
        rhs = step == 0 or not (target <= floor and 0.1 * kcl * (kcl / prev) ** 2 <= 0.1 * rtol * scale)
        prev, correct = kcl, True


#: Bytes of reusable memory (:func:`scratch`) each Python thread keeps between reads.
SCRATCH_BYTES = 64 * 2 ** 20

_local = threading.local()


def scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` (uninitialised) from this Python thread's reusable memory under
    ``name``: the next call for ``name`` on this thread hands out the same memory, so a caller
    keeps nothing it gets here past its own read. Beyond :data:`SCRATCH_BYTES` in all (a large
    array's own arithmetic dwarfs the cost below) a fresh array.

    Why: a fresh array of more than 128 KiB may come from mmap (or from a heap glibc trimmed),
    and then every page of it faults on first touch. In a digits device epoch the fresh drop
    arrays took ~0.2 s of 1.9 s (2029 page faults against 102 with this memory: a one-off count,
    docs/speed.md); benchmarks/bench_nonlinear.py part 4 reads that epoch's batches into fresh
    and into reusable drops after the epoch (181 against 174 µs a vector, one thread)."""
    pool = _local.__dict__.setdefault("pool", {})
    size = math.prod(shape)
    buf = pool.get(name)
    if buf is None or buf.size < size:
        held = sum(b.size for k, b in pool.items() if k != name)
        if 8 * (held + size) > SCRATCH_BYTES:
            return _aligned(shape)
        buf = pool[name] = _aligned((size,))
    return buf[:size].reshape(shape)


def _aligned(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float64 array of ``shape`` starting on a 64-byte boundary (numpy's own
    start 16 bytes into a cache line or on one, by chance): the slabs' rows then begin on cache
    lines whatever the allocator gave."""
    size = math.prod(shape)
    buf = np.empty(size + 8)
    k = (-buf.ctypes.data % 64) // 8
    return buf[k:k + size].reshape(shape)


_thread_id = (lambda: 0) if numba is None else numba.get_thread_id


def _dynamic():
    """Context handing a parallel loop's iterations out one at a time."""
    return contextlib.nullcontext() if numba is None else numba.parallel_chunksize(1)


#: Rows of a thread's line buffers (each max(N, M) + 2 long), what :func:`_vector` keeps in them:
#: 0–3 the lines' sinh and cosh at the applied potentials (sinhpasses._applied), 4 the column
#: pivots' previous row (_factor_rows), 5 a row's drops between zeros (_leave_row), 6 the forward
#: column sweep's previous row (_rhs_rows).
LINE_ROWS = 7


def _newton_batch(s_r, s_c, a, v0, inv_v0, a_v0, g_lin, uniform, g_floor, gw, gc, gpl, gpr, gpt, gpb, pins_r, pins_c,
                  free_r, free_c, wr, offr, wc, offc, gwp, is_out, rtol, atol, eta, maxiter, max_steps, start, x_r,
                  x_c, i_r, i_c, d_r, d_c, cells, branch, out, work, lines, own):  # pragma: no cover - compiled
    # ``work.shape[0]`` threads, each with its own work slabs (work (16, N·M + SLAB_PAD):
    # slabs()), lines and own (N, M) (per thread: :func:`scratch`), take the vectors one at a
    # time as they free up (dynamic scheduling: solve() sets numba.parallel_chunksize(1));
    # vectors differ in their Newton and CG steps, and fixed halves of a batch left one thread
    # idle at the end.
    bsz = s_r.shape[0]
    keep_cells = cells.shape[0] == bsz
    for k in _prange(bsz):
        q = np.intp(_thread_id())
        kx = k * (start == 1)  # as products: a conditional expression here was typed float64
        ki = k * (start == 2)
        # Cell currents not asked for stay in the thread's own slab (in cache): no fresh (N, M)
        # slab per vector to fault in and write back.
        cur = own[q]
        if keep_cells:
            cur = cells[k]
        _vector(s_r[k], s_c[k], a, v0, inv_v0, a_v0, g_lin, uniform, g_floor, gw, gc, gpl, gpr, gpt, gpb, pins_r,
                pins_c, free_r, free_c, wr, offr, wc, offc, gwp, is_out, rtol, atol, eta, maxiter, max_steps, start,
                x_r[kx], x_c[kx], i_r[ki], i_c[ki], d_r[k], d_c[k], cur, branch[k], work[q], lines[q], out[k])


newton_batch = _jit(_newton_batch, parallel=True)


@dataclass(slots=True)
class SinhNewtonResult(ChordResult):
    """A batch's result as :class:`chord.ChordResult` (``steps``: Newton steps, ``iterations``:
    CG steps, each the most over the batch; ``cells`` None unless asked for), with the Newton and
    CG steps of each vector (B, 2)."""

    counts: np.ndarray


#: Largest array (cells) :func:`solve` reads. Unlike the ohmic cold read, which stops in one
#: stage and so needs a rebase on large arrays or strong IR drop (pcg._rebase_worth), each Newton
#: step solves for the true nonlinear residual at its iterate, which refines as a rebase does.
#: Measured (bench_nonlinear.py part 5): Stanford–PKU arrays with 1 Ω wires certified at rtol
#: 1e-10 at 256², 512² and 1024² (N·M·r·g 20, 81, 322), 7–13× faster than the chord iteration
#: and damped Newton they went to before; larger arrays are not measured and keep that path.
MAX_CELLS = 1024 * 1024


def applies(blocks: LineBlocks, cell) -> bool:
    """Whether :func:`solve` reads this array: compiled kernels on, a two-terminal sinh law, no
    eliminated access resistor, and at most :data:`MAX_CELLS` cells. A vector it does not
    certify is still solved exactly by the caller's fallbacks (module docstring)."""
    return kernels.ENABLED and isinstance(cell, Sinh) and blocks.g_acc is None and blocks.n * blocks.m <= MAX_CELLS


def _line_constants(b: LineBlocks):
    """The line blocks without their cells: wire and port diagonals (N, M) and couplings of the
    rows (N, M−1) and columns (N−1, M), S, zero between nodes that are not both free; and the
    row wires with the row ports at their ends (N, M+1), S (sinhpasses._leave_row); the row and
    column indices (P, 2) of the pinned row nodes and of the pinned column nodes, in row order
    (sinhpasses._pinned). Kept on ``b``, and by LineBlocks.with_devices while its devices leave
    the free nodes as they were."""
    if b._lines is None:
        b._lines = _lines(b)
    return b._lines


def _lines(b: LineBlocks):
    wr = np.zeros((b.n, b.m))
    wr[:, :-1] += b.gw
    wr[:, 1:] += b.gw
    wr[:, 0] += b.gpl
    wr[:, -1] += b.gpr
    wc = np.zeros((b.n, b.m))
    wc[:-1, :] += b.gc
    wc[1:, :] += b.gc
    wc[0, :] += b.gpt
    wc[-1, :] += b.gpb
    offr = np.where(b.free_r[:, :-1] & b.free_r[:, 1:], -b.gw, 0.0)
    offc = np.where(b.free_c[:-1, :] & b.free_c[1:, :], -b.gc, 0.0)
    gwp = np.concatenate([b.gpl[:, None], b.gw, b.gpr[:, None]], axis=1)
    return (np.ascontiguousarray(wr), np.ascontiguousarray(offr, dtype=float), np.ascontiguousarray(wc),
            np.ascontiguousarray(offc, dtype=float), np.ascontiguousarray(gwp, dtype=float),
            np.argwhere(b.pin_r).astype(np.int64), np.argwhere(b.pin_c).astype(np.int64))


def _law_of(b: LineBlocks, cell: Sinh) -> tuple:
    """:func:`_law_arrays` of ``cell`` on ``b``, kept on ``b`` while its law is ``cell`` (a tile
    reads several batches between two writes)."""
    if b._law is None or b._law[0] is not cell:
        b._law = (cell, _law_arrays(cell, b.n, b.m))
    return b._law[1]


def _law_arrays(cell: Sinh, n: int, m: int) -> tuple:
    """a (A), v0 (V), 1/v0, a/v0 (S), g_lin (S) as C-contiguous arrays, and whether one v0 and
    one g_lin hold for every cell ("uniform": then v0, 1/v0 and g_lin are (1, 1) and a/v0 is
    not formed; else each is (N, M))."""
    v0, g_lin, a = (np.asarray(x, dtype=float) for x in (cell.v0, cell.g_lin, cell.a))
    # Writable and C-ordered whatever the law holds (one compiled signature): a copy unless so.
    if a.shape != (n, m) or not (a.flags.c_contiguous and a.flags.writeable):
        a = np.array(np.broadcast_to(a, (n, m)), order="C")
    if (v0.ndim == 0 and g_lin.ndim == 0) or (np.all(v0 == v0.flat[0]) and np.all(g_lin == g_lin.flat[0])):
        v0, g_lin = np.full((1, 1), v0.flat[0]), np.full((1, 1), g_lin.flat[0])
        return a, v0, 1.0 / v0, np.zeros((1, 1)), g_lin, True
    v0, g_lin = (np.array(np.broadcast_to(x, (n, m)), order="C") for x in (v0, g_lin))
    return a, v0, 1.0 / v0, a / v0, g_lin, False


def solve(blocks: LineBlocks, cell: Sinh, shifts: tuple[np.ndarray, np.ndarray], out_ports: np.ndarray, *,
          rtol: float, maxiter: int, g_floor: float, atol: float = 0.0, max_steps: int = MAX_STEPS,
          eta: float = ETA, x0: tuple[np.ndarray, np.ndarray] | None = None,
          prior: tuple[np.ndarray, np.ndarray] | None = None, want_cells: bool = True,
          out: tuple[np.ndarray, np.ndarray] | None = None,
          ideal: tuple[np.ndarray, np.ndarray] | None = None) -> SinhNewtonResult:
    """Newton per input vector, compiled (module docstring), for line potentials ``shifts``
    ((B, N), (B, M) V); ``g_floor`` (S) the smallest slope a step uses (newton.G_FLOOR);
    ``atol`` (A) an ℓ1 KCL residual also accepted; ``maxiter`` the CG cap per step.

    Start: zero IR drops, or ``x0`` (row and column drops (B, N, M) V: a previous solve of the
    same inputs on nearly the same cells), or ``prior`` (the per-cell ratios (N, M) of
    :func:`ratios` from an earlier solve of other inputs on this array: each vector starts
    from the drops they predict for its own ideal line currents). A start changes how many
    steps a vector takes, never the certified answer. ``want_cells``: return the cell currents
    (B, N, M) A (else ``cells`` is None). ``out``: arrays (B, N, M) for the row and column drops
    (e.g. from :func:`scratch`), else fresh ones. ``ideal``: :func:`ideal_currents` of these
    shifts where the caller has them."""
    b = blocks
    s_r, s_c = (np.ascontiguousarray(x, dtype=float) for x in shifts)
    bsz, n, m = s_r.shape[0], b.n, b.m
    _, gw, gc, gpl, gpr, gpt, gpb, _, _, free_r, free_c = b.kernel_args()
    *lines, pins_r, pins_c = _line_constants(b)
    is_out = np.zeros(n + m, dtype=bool)
    is_out[out_ports] = True
    if prior is not None and x0 is None:
        start, x_r, x_c = 2, prior[0][None], prior[1][None]
        i_r, i_c = ideal_currents(b, s_r, s_c) if ideal is None else ideal
    else:  # the kernel takes the start arrays by vector index either way: one-vector stand-ins
        i_r, i_c = np.zeros((1, n)), np.zeros((1, m))
        if x0 is not None:
            start, (x_r, x_c) = 1, (np.ascontiguousarray(x, dtype=float) for x in x0)
        else:
            start, x_r = 0, np.zeros((1, n, m))
            x_c = x_r
    if out is None:
        d_r, d_c = np.empty((bsz, n, m)), np.empty((bsz, n, m))
    else:
        d_r, d_c = out
    # The kernel indexes these by vector without bounds checks: a wrong shape would write or
    # read past them.
    _check_shapes(bsz, n, m, (d_r, d_c), x_r, x_c, start, i_r, i_c)
    cells = np.empty((bsz if want_cells else 0, n, m))
    branch, res = np.empty((bsz, n + m)), np.empty((bsz, 5))
    with kernels.parallel("sinhnewton", bsz * n * m * WORK_PER_CELL, bsz) as chunks, _dynamic():
        newton_batch(s_r, s_c, *_law_of(b, cell), float(g_floor), gw, gc, gpl, gpr, gpt, gpb,
                     pins_r, pins_c, free_r, free_c, *lines, is_out, float(rtol), float(atol),
                     float(eta), int(maxiter), int(max_steps), start, x_r, x_c, i_r, i_c, d_r, d_c, cells,
                     branch, res, scratch("work", (chunks, 16, n * m + SLAB_PAD)),
                     scratch("lines", (chunks, LINE_ROWS, max(n, m) + 2)), scratch("own", (chunks, n, m)))
    kcl = res[:, 2]
    den = res[:, 4] - kcl
    bound = np.full(bsz, np.inf)  # no bound where the outputs do not exceed the residual (or NaN)
    np.divide(kcl, den, out=bound, where=den > 0)
    bound[kcl == 0] = 0.0
    counts = res[:, :2].astype(np.int64)
    return SinhNewtonResult(d_r, d_c, branch, cells if want_cells else None, bound, res[:, 3] > 0,
                            int(counts[:, 0].max(initial=0)), int(counts[:, 1].max(initial=0)), kcl, counts)


def _check_shapes(bsz: int, n: int, m: int, drops, x_r, x_c, start: int, i_r, i_c) -> None:
    want = {"out": ((bsz, n, m),) * 2, "x0 or prior": ((bsz if start == 1 else 1, n, m),) * 2,
            "ideal": ((bsz if start == 2 else 1, n), (bsz if start == 2 else 1, m))}
    for name, arrays in (("out", drops), ("x0 or prior", (x_r, x_c)), ("ideal", (i_r, i_c))):
        for a, shape in zip(arrays, want[name]):
            if a.shape != shape or a.dtype != np.float64 or not a.flags.c_contiguous:
                raise ValueError(f"sinhnewton.solve: {name} must be C-contiguous float64 arrays of shape "
                                 f"{want[name]}, got {a.shape} {a.dtype}")


def ideal_currents(blocks: LineBlocks, s_r: np.ndarray, s_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column currents (B, N), (B, M) A of the cells at the array's conductances
    (``blocks.g_cell``) with no IR drop: Σ_j g·(s_r − s_c) and Σ_i g·(s_r − s_c)."""
    g = blocks.g_cell
    return (np.ascontiguousarray(s_r * g.sum(axis=1) - s_c @ g.T),
            np.ascontiguousarray(s_r @ g - s_c * g.sum(axis=0)))


#: Weight the earlier batches keep in a :class:`DropFit` when a batch's solution is added, so
#: that a row or column the newest batch leaves undriven keeps its earlier estimate instead of
#: none. On the batches of a digits device epoch (1 Ω, 64×64 tiles; bench_nonlinear.py part 4's
#: whole-read line): fitted to the last batch alone, 11.4 % of the vectors took a third Newton
#: step, 4.0 % with this weight. Replaying that epoch's captured batches with other weights: the
#: test-set batch, which follows a last training batch of three vectors, 44 % alone and 7–9 %
#: keeping 0.1–0.5 of the earlier fit (all vectors 4 %); 0.9, which remembers devices that have
#: since moved, 27 %.
FIT_KEEP = 0.25


@dataclass(slots=True)
class DropFit:
    """The least-squares sums behind :func:`ratios` over the batches solved on one array, each
    earlier batch weighted down by :data:`FIT_KEEP` per batch: numerators (N, M) V·A of the row
    and column drops times their lines' ideal currents, denominators (N,), (M,) A² (the
    currents' squares); and their ratios (N, M) V/A (:meth:`ratios`), formed with them."""

    num_r: np.ndarray
    den_r: np.ndarray
    num_c: np.ndarray
    den_c: np.ndarray
    rho_r: np.ndarray
    rho_c: np.ndarray

    @classmethod
    def of(cls, blocks: LineBlocks, shifts: tuple[np.ndarray, np.ndarray], d_r: np.ndarray, d_c: np.ndarray,
           earlier: DropFit | None = None, keep: float = FIT_KEEP,
           ideal: tuple[np.ndarray, np.ndarray] | None = None) -> DropFit:
        """The fit of a solve's drops (B, N, M) V for line potentials ``shifts``, added to
        ``earlier`` (weighted by ``keep``) when it is a fit of an array of the same size;
        ``ideal``: :func:`ideal_currents` of ``shifts`` where the caller has them."""
        i_r, i_c = ideal_currents(blocks, *shifts) if ideal is None else ideal
        n, m = blocks.n, blocks.m
        if earlier is not None and earlier.num_r.shape == (n, m):
            old = (earlier.num_r, earlier.den_r, earlier.num_c, earlier.den_c)
        else:
            old, keep = (np.zeros((n, m)), np.zeros(n), np.zeros((n, m)), np.zeros(m)), 0.0
        fit = cls(*(np.empty(shape) for shape in ((n, m), (n,), (n, m), (m,), (n, m), (n, m))))
        # One compiled pass for the earlier sums' weight, this batch's and the ratios: as numpy
        # passes around fit_sums they took a third of the fit's time (one-off line profile).
        fit_sums(np.ascontiguousarray(d_r, dtype=float), np.ascontiguousarray(d_c, dtype=float), i_r, i_c,
                 float(keep), *old, fit.num_r, fit.den_r, fit.num_c, fit.den_c, fit.rho_r, fit.rho_c)
        return fit

    def ratios(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell ratios (N, M), V/A, of row drops to row currents and of column drops to column
        currents (0 on a line no fitted batch drove): the ``prior`` of :func:`solve`. The fit's
        own arrays, formed with its sums: read them, do not write them."""
        return self.rho_r, self.rho_c


def ratios(blocks: LineBlocks, shifts: tuple[np.ndarray, np.ndarray], d_r: np.ndarray,
           d_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell ratios (N, M), V/A, of a solve's row drops to its rows' ideal currents and of its
    column drops to its columns' ideal currents (least squares over the batch), the start
    :func:`solve` predicts other inputs' drops from (:class:`DropFit` keeps them over batches).

    Why it predicts well: a row line's drop profile is set by how its current spreads over its
    cells, which the conductances fix (every cell of a row sees the same input), so it scales
    with the row's current; a column's also depends on which rows are driven, but its total
    scales with the column's current. Measured on a digits tile (1 Ω wires, 30 % drops): a
    prediction within 10–20 % of the drops, so Newton takes two steps instead of three.
    """
    return DropFit.of(blocks, shifts, d_r, d_c).ratios()


@_jit
def fit_sums(d_r, d_c, i_r, i_c, keep, old_nr, old_dr, old_nc, old_dc, num_r, den_r, num_c, den_c, rho_r,
             rho_c):  # pragma: no cover - compiled
    """num_r[i, j] = keep·old_nr[i, j] + Σ_k d_r[k, i, j]·i_r[k, i], den_r[i] = keep·old_dr[i] +
    Σ_k i_r[k, i]², and likewise num_c, den_c with Σ_k d_c[k, i, j]·i_c[k, j] and Σ_k i_c[k, j]²;
    then rho_r = num_r/den_r and rho_c = num_c/den_c (0 where the denominator is not positive)."""
    bsz, n, m = d_r.shape
    for i in range(n):
        den_r[i] = keep * old_dr[i]
        for j in range(m):
            num_r[i, j] = keep * old_nr[i, j]
            num_c[i, j] = keep * old_nc[i, j]
    for j in range(m):
        den_c[j] = keep * old_dc[j]
    for k in range(bsz):
        for i in range(n):
            x = i_r[k, i]
            den_r[i] += x * x
            for j in range(m):
                num_r[i, j] += d_r[k, i, j] * x
                num_c[i, j] += d_c[k, i, j] * i_c[k, j]
        for j in range(m):
            den_c[j] += i_c[k, j] * i_c[k, j]
    for i in range(n):
        for j in range(m):
            rho_r[i, j] = num_r[i, j] / den_r[i] if den_r[i] > 0 else 0.0
            rho_c[i, j] = num_c[i, j] / den_c[j] if den_c[j] > 0 else 0.0


def exercise() -> None:
    """Compile or load the kernel (called from :func:`kernels.load`): a 2×2 array, 1 S wires."""
    one, free, w = np.ones((2, 2)), np.ones((2, 2), dtype=bool), np.ones(2)
    newton_batch(np.ones((1, 2)), np.zeros((1, 2)), *_law_arrays(Sinh(1e-6, 0.25), 2, 2), 1e-18,
                 np.ones((2, 1)), np.ones((1, 2)), w, w, w, w, np.zeros((0, 2), dtype=np.int64),
                 np.zeros((0, 2), dtype=np.int64), free, free, one, -np.ones((2, 1)), one, -np.ones((1, 2)),
                 np.ones((2, 3)), np.ones(4, dtype=bool), 1e-9, 0.0, ETA, 10, 2, 0, np.zeros((1, 2, 2)),
                 np.zeros((1, 2, 2)), np.zeros((1, 2)), np.zeros((1, 2)), np.empty((1, 2, 2)), np.empty((1, 2, 2)),
                 np.empty((1, 2, 2)), np.empty((1, 4)), np.empty((1, 5)), np.empty((1, 16, 4 + SLAB_PAD)),
                 np.empty((1, LINE_ROWS, 4)), np.empty((1, 2, 2)))
    d = np.zeros((1, 2, 2))
    z2, z = np.zeros((2, 2)), np.zeros(2)
    fit_sums(d, d, np.ones((1, 2)), np.ones((1, 2)), 0.25, z2, z, z2, z, np.zeros((2, 2)), np.zeros(2),
             np.zeros((2, 2)), np.zeros(2), np.zeros((2, 2)), np.zeros((2, 2)))
