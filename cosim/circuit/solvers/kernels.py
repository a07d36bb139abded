"""Compiled (numba) kernels for the line-block solvers; the numpy code in tridiag/pcg is their twin.

Why compiled: a read of a training tile (64×64, 32 input vectors) is a few PCG iterations on
(32, 64, 64) arrays. In numpy every tridiagonal sweep is one call per line position and every
vector operation a full pass over 1 MB arrays that do not stay in cache, for ~2 M flops: the
compiled read is several times faster (benchmarks/bench_scale.py part "kernels" times both).
The cold read itself (one input vector per core at a time, in cache) is in :mod:`coldread`; the
general loop's CG steps are fused per vector here (benchmarks/bench_train.py measures the effect
on training). They compute the same quantities as the numpy path, in the same order per line; sums run in a different order, so results agree to round-off
(tests/test_kernels.py compares the two paths on random arrays).

``ENABLED`` is false without numba or with ``COSIM_NUMBA=0`` in the environment; callers then
use the numpy path. Arrays passed in must be C-contiguous float64.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:  # numba is a regular dependency, but the numpy path keeps the package working without it
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

ENABLED = numba is not None and os.environ.get("COSIM_NUMBA", "1") != "0"

#: The modules of compiled kernels (in cosim.circuit.solvers). Their kernels inline and call
#: one another across files, but numba keys a cached kernel on its own file only (checked with
#: numba 0.68: a cached kernel calling a cached helper of another file kept running the helper's
#: old code after that file changed). With an editable install every ``git pull`` is such an
#: edit, so the cache lives in a directory named by a hash of all of these files (:func:`cache_dir`).
KERNEL_MODULES = ("kernels", "coldread", "lawkernels", "sinhpasses", "sinhnewton", "multirhs")


def source_hash(folder: Path | None = None) -> str:
    """sha256 (16 hex digits) of the kernel modules' sources in ``folder`` (default: this package)."""
    h = hashlib.sha256()
    folder = Path(__file__).parent if folder is None else folder
    for name in KERNEL_MODULES:
        h.update((folder / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """Where this version of the kernels is cached (hash: :func:`source_hash`):
    ``$NUMBA_CACHE_DIR/cosim-numba-<hash>`` when the user set that variable; else ``numba-<hash>``
    under the package's ``__pycache__`` when writable, else under ``$XDG_CACHE_HOME/cosim``
    (default ``~/.cache/cosim``)."""
    name = f"numba-{source_hash()}"
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / f"cosim-{name}"
    tree = Path(__file__).parent / "__pycache__"
    if os.access(tree if tree.exists() else tree.parent, os.W_OK):
        return tree / name
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cosim" / name


def _prune(current: Path) -> None:
    """Remove the caches of earlier versions beside ``current`` (best effort: another process
    of another version may still use one, and then it recompiles)."""
    try:
        for old in current.parent.glob(current.name.rsplit("-", 1)[0] + "-*"):
            if old != current and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        if current.parent == Path(__file__).parent / "__pycache__":  # numba's own in-tree files, from before
            for old in current.parent.glob("*.nb[ic]"):
                old.unlink()
    except OSError:
        pass


_CACHE: list[Path] = []


def njit(fn, **options):
    """``numba.njit(cache=True, error_model="numpy", **options)(fn)``, cached in :func:`cache_dir`
    (numba reads its cache directory when a function is decorated; the setting is put back
    after). numpy's error model: a float division by zero gives inf or NaN, as in numpy, where
    numba's default tests every divisor and raises, and that test keeps a loop with a division
    from vectorising (the line blocks' pivots: benchmarks/results/bench_nonlinear.txt)."""
    if not _CACHE:
        _CACHE.append(cache_dir())
        _prune(_CACHE[0])
    before = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(_CACHE[0])
    try:
        return numba.njit(cache=True, error_model="numpy", **options)(fn)
    finally:
        numba.config.CACHE_DIR = before


#: Smallest read (input vectors × cells) always split over threads. A parallel region costs a
#: thread wake-up and a join: cheap on idle cores, but far more than a small read's own work
#: when the cores are shared (benchmarks/bench_scale.py part "reads" compares threads on small
#: reads). Reads from :data:`PROBE_MIN_WORK` up to this size run the way measured faster on
#: this machine now (:func:`parallel`); smaller ones stay on the calling thread.
PARALLEL_MIN_WORK = 2**18
#: Smallest read whose thread count is chosen by measurement (below it a parallel region's own
#: cost, tens of microseconds on idle cores, is a large share of the work).
PROBE_MIN_WORK = 2**13
#: Calls per measured choice after which the slower way is timed once more (the load changes).
REPROBE_EVERY = 16
#: Longest interval between such re-timings: each one that finds the way not taken still
#: :data:`REPROBE_CLEAR` times slower per unit of work doubles the interval up to this; any other
#: outcome sets it back to :data:`REPROBE_EVERY`. Why: a re-timing runs a whole read the slow
#: way; at every sixteenth call that cost a digits device-cell epoch about 5 % of its
#: compiled-Newton time (benchmarks/results/docstring_figures.md). A slowdown of the way taken is
#: still followed at once, from its own running mean; a choice that is close, or that noise
#: made, keeps the short interval (doubling it there too kept a class of ohmic reads on one
#: thread for 235 of 516 reads instead of 84, at 16 against 9 ns per unit of work).
REPROBE_MAX = 256
#: How much slower (a factor) a re-timed way must still be for the interval to double.
REPROBE_CLEAR = 1.25
#: How much faster (a fraction) the way not taken must have measured to be taken.
SWITCH_MARGIN = 0.1
#: Weight of a new timing in the running mean of seconds per unit of work.
_EMA = 0.25


@dataclass(slots=True)
class _Timings:
    """What :func:`plan_chunks` knows of one kind and size of read; index 0 is one thread, 1 all."""

    rate: list[float] = field(default_factory=lambda: [0.0, 0.0])  # running s per unit of work
    reads: list[int] = field(default_factory=lambda: [0, 0])  # reads timed each way
    taken: int = 0  # the way reads run once both are timed
    calls: int = 0  # calls since the way not taken was last timed
    every: int = REPROBE_EVERY  # calls between two timings of the way not taken
    probed: bool = False  # the last call timed the way not taken
    last: list[float] = field(default_factory=lambda: [0.0, 0.0])  # the latest s per unit of work


_TIMES: dict[tuple[str, int], _Timings] = {}


def threads() -> int:
    """Threads a compiled read may use: ``COSIM_THREADS`` if set (≥ 1), else numba's count (one
    per core, or ``NUMBA_NUM_THREADS``). A read's results do not depend on it."""
    most = numba.config.NUMBA_NUM_THREADS if numba is not None else 1
    raw = os.environ.get("COSIM_THREADS", "")
    try:
        return max(1, min(most, int(raw))) if raw else most
    except ValueError:
        raise ValueError(f"COSIM_THREADS must be a whole number of threads, got {raw!r}") from None


def set_threads(count: int) -> None:
    """Run the calling thread's next parallel kernels on ``count`` threads (numba's setting is
    per calling thread)."""
    if numba is not None and numba.get_num_threads() != count:
        numba.set_num_threads(count)


def plan_chunks(kind: str, work: float, parts: int) -> int:
    """Threads for a compiled read of ``work`` (input vectors × cells, weighted per vector by the
    kernel's cost) split into at most ``parts`` pieces: all of :func:`threads` from
    :data:`PARALLEL_MIN_WORK` up, one below :data:`PROBE_MIN_WORK`, and in between the way the
    earlier reads of this kind and size (a power of two of work) ran faster per unit of work:
    each way is timed twice first, then the one not taken again after :data:`REPROBE_EVERY`
    calls (an interval that doubles, up to :data:`REPROBE_MAX`, while these timings find that way
    still :data:`REPROBE_CLEAR` times slower), and taken once it measures :data:`SWITCH_MARGIN`
    faster.
    A read's results do not depend on its thread count (tests/test_kernels.py), only its speed."""
    most = min(threads(), parts)
    if most <= 1:
        return 1
    if work >= PARALLEL_MIN_WORK:
        return most
    if work < PROBE_MIN_WORK:
        return 1
    st = _TIMES.setdefault((kind, int(work).bit_length()), _Timings())
    if min(st.reads) < 2:
        way = int(st.reads[1] < st.reads[0])  # the way timed fewer times, one thread first
    else:
        # The other way must be clearly faster to take over: timings of a shared machine are noisy.
        switch = st.rate[1 - st.taken] < (1.0 - SWITCH_MARGIN) * st.rate[st.taken]
        if switch:  # calls carries on: REPROBE_EVERY calls or more after the last re-timing,
            # this call re-times the way just left, which undoes a switch one slow read made
            st.taken, st.every = 1 - st.taken, REPROBE_EVERY
        elif st.probed:  # a clear confirmation waits longer before the next re-timing
            # judged by the re-timing itself: the running mean lags behind a change of load
            clear = st.last[1 - st.taken] >= REPROBE_CLEAR * st.rate[st.taken]
            st.every = min(2 * st.every, REPROBE_MAX) if clear else REPROBE_EVERY
        st.probed = False
        st.calls += 1
        way = st.taken
        if st.calls >= st.every:
            way, st.calls, st.probed = 1 - st.taken, 0, True
    return most if way else 1


def record_time(kind: str, work: float, chunks: int, seconds: float) -> None:
    """Account a read planned by :func:`plan_chunks` that took ``seconds`` on ``chunks`` threads."""
    st = _TIMES.get((kind, int(work).bit_length()))
    if st is None or work <= 0:
        return
    way, rate = int(chunks > 1), seconds / work
    # The probes keep their faster time (a first parallel region also starts the thread pool);
    # later reads move a running mean.
    old, n = st.rate[way], st.reads[way]
    st.rate[way] = rate if n == 0 else min(old, rate) if n < 2 else (1.0 - _EMA) * old + _EMA * rate
    st.reads[way] += 1
    st.last[way] = rate


def thread_choices() -> list[str]:
    """One line per kind and size of read whose thread count was measured (:func:`plan_chunks`):
    the way now taken and the mean time per unit of work of each way, for benchmark reports."""
    lines = []
    for (kind, bits), st in sorted(_TIMES.items()):
        (t1, tn), (n1, nn) = st.rate, st.reads
        way = "parallel" if st.taken else "serial"
        lines.append(f"{kind} reads of 2^{bits - 1}–2^{bits} cell-vectors: {way} (one thread {1e9 * t1:.0f} ns per "
                     f"unit of work over {n1} reads, all threads {1e9 * tn:.0f} ns over {nn})")
    return lines


@contextlib.contextmanager
def parallel(kind: str, work: float, parts: int):
    """Context giving the thread count of a compiled read (:func:`plan_chunks`), set for the
    calling thread, and timing the read for the next choice."""
    chunks = plan_chunks(kind, work, parts)
    set_threads(chunks)
    t0 = time.perf_counter()
    yield chunks
    record_time(kind, work, chunks, time.perf_counter() - t0)


_CONTROLLER: list = []


def single_thread_blas():
    """Context limiting BLAS to one thread (a no-op without threadpoolctl).

    Level-1 BLAS is memory bound: a second OpenBLAS thread only spins, and on a shared 2-core
    machine a tiny matmul then waits for a descheduled thread (milliseconds each); the same holds
    for pyamg's many small BLAS calls and for a training step's matmuls beside the compiled
    reads. The library scan is done once per process.
    """
    if not _CONTROLLER:
        # scipy's own OpenBLAS must be loaded before the one scan, or it would stay unlimited.
        import scipy.linalg  # noqa: F401

        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - comes with scikit-learn
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    ctl = _CONTROLLER[0]
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")


def _jit(fn):
    if numba is None:  # pragma: no cover
        return fn
    return njit(fn, boundscheck=False, nogil=True)


@_jit
def _safe_ratio(num, den):  # pragma: no cover - compiled
    # CG's α = rz/(p·q) and β = rz'/rz, with 0 wherever the step is undefined (as pcg._ratio
    # followed by zeroing non-finite values on the numpy path).
    if num == 0.0 or not den > 0.0:
        return 0.0
    x = num / den
    return x if math.isfinite(x) else 0.0


@_jit
def _one_row(lm, dinv, x, i, k):  # pragma: no cover - compiled
    # LDLᵀ solve of row line i (factors lm, dinv (N, M)) on row k of x in place (L y = b, then
    # Lᵀ x = D⁻¹ y with the scaling folded into the backward sweep); the carried value stays in
    # a register. x is the slab itself (k = i) or a block's own rows.
    m = x.shape[1]
    c = x[k, 0]
    for j in range(1, m):
        c = x[k, j] - lm[i, j] * c
        x[k, j] = c
    c = x[k, m - 1] * dinv[i, m - 1]
    x[k, m - 1] = c
    for j in range(m - 2, -1, -1):
        c = x[k, j] * dinv[i, j] - lm[i, j + 1] * c
        x[k, j] = c


@_jit
def _row_block4(lm, dinv, x, i, k):  # pragma: no cover - compiled
    # Row lines i … i+3 on rows k … k+3 of x at once: four independent recurrences carried in
    # registers hide each one's latency, where sixteen lines carried through memory were slower
    # (their power-of-two strides also collide in L1; benchmarks/bench_scale.py part "kernels").
    m = x.shape[1]
    a, b, c, d = x[k, 0], x[k + 1, 0], x[k + 2, 0], x[k + 3, 0]
    for j in range(1, m):
        a = x[k, j] - lm[i, j] * a
        b = x[k + 1, j] - lm[i + 1, j] * b
        c = x[k + 2, j] - lm[i + 2, j] * c
        d = x[k + 3, j] - lm[i + 3, j] * d
        x[k, j], x[k + 1, j], x[k + 2, j], x[k + 3, j] = a, b, c, d
    a, b = a * dinv[i, m - 1], b * dinv[i + 1, m - 1]
    c, d = c * dinv[i + 2, m - 1], d * dinv[i + 3, m - 1]
    x[k, m - 1], x[k + 1, m - 1], x[k + 2, m - 1], x[k + 3, m - 1] = a, b, c, d
    for j in range(m - 2, -1, -1):
        a = x[k, j] * dinv[i, j] - lm[i, j + 1] * a
        b = x[k + 1, j] * dinv[i + 1, j] - lm[i + 1, j + 1] * b
        c = x[k + 2, j] * dinv[i + 2, j] - lm[i + 2, j + 1] * c
        d = x[k + 3, j] * dinv[i + 3, j] - lm[i + 3, j + 1] * d
        x[k, j], x[k + 1, j], x[k + 2, j], x[k + 3, j] = a, b, c, d


@_jit
def _row_slab(lm, dinv, x):  # pragma: no cover - compiled
    # All row lines of one (N, M) slab, four at a time, then the rest one by one.
    n = x.shape[0]
    i = 0
    while i + 4 <= n:
        _row_block4(lm, dinv, x, i, i)
        i += 4
    while i < n:
        _one_row(lm, dinv, x, i, i)
        i += 1


@_jit
def _axis0_solve(lm, dinv, x):  # pragma: no cover - compiled
    # The same along axis 0 (column lines, or row lines on transposed slabs): inner loops run
    # along contiguous memory.
    n, m = x.shape
    for i in range(1, n):
        for j in range(m):
            x[i, j] -= lm[i, j] * x[i - 1, j]
    for j in range(m):
        x[n - 1, j] *= dinv[n - 1, j]
    for i in range(n - 2, -1, -1):
        for j in range(m):
            x[i, j] = x[i, j] * dinv[i, j] - lm[i + 1, j] * x[i + 1, j]


@_jit
def line_factor(diag, off, lm, dinv):  # pragma: no cover - compiled
    """LDLᵀ of the lines along axis 0 of (N, M) arrays, all M lines at once: ``off`` (N-1, M) the
    couplings, ``lm`` (N, M) the multipliers (row 0 untouched), ``dinv`` 1/D. Returns the first
    non-positive pivot's flat index in row-major order, or −1 (its 1/D and what follows are then
    meaningless, as on the numpy path)."""
    n, m = diag.shape
    bad = -1
    for j in range(m):
        p = diag[0, j]
        dinv[0, j] = 1.0 / p if p > 0.0 else 0.0
        if not p > 0.0 and bad < 0:
            bad = j
    for i in range(1, n):
        for j in range(m):
            lij = off[i - 1, j] * dinv[i - 1, j]
            lm[i, j] = lij
            p = diag[i, j] - lij * off[i - 1, j]
            dinv[i, j] = 1.0 / p if p > 0.0 else 0.0
            if not p > 0.0 and bad < 0:
                bad = i * m + j
    return bad


@_jit
def line_blocks(g, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r, free_c, couple, l_r, dinv_r, l_c,
                dinv_c):  # pragma: no cover - compiled
    """The device-dependent part of :class:`~cosim.circuit.solvers.lineblock.LineBlocks` for cell
    conductances ``g`` (N, M), S, in one compiled pass per line direction (the numpy reference is
    ``LineBlocks._set_devices``; equal bit for bit, tests/test_kernels.py): the free masks (a node
    is free unless pinned or without any conductance), ``couple`` (g where both nodes are free)
    and the LDLᵀ factors of the row lines along j and of the column lines along i, a node that
    is not free on a unit diagonal with no coupling. Row 0 of ``l_c`` and column 0 of ``l_r``
    are 0. Returns the free node count and whether a pivot was not positive (rows, columns)."""
    n, m = g.shape
    count, bad_r, bad_c = 0, False, False
    # Column diagonals, masks and couplings of row i need rows i − 1 and i: one pass down.
    for i in range(n):
        for j in range(m):
            d = g[i, j]
            if j < m - 1:
                d += gw[i, j]
            if j > 0:
                d += gw[i, j - 1]
            if j == 0:
                d += gpl[i]
            if j == m - 1:
                d += gpr[i]
            fr = not pin_r[i, j] and not d == 0.0
            free_r[i, j] = fr
            dinv_r[i, j] = d if fr else 1.0  # the diagonal until factored below
            d = g[i, j]
            if i < n - 1:
                d += gc[i, j]
            if i > 0:
                d += gc[i - 1, j]
            if i == 0:
                d += gpt[j]
            if i == n - 1:
                d += gpb[j]
            fc = not pin_c[i, j] and not d == 0.0
            free_c[i, j] = fc
            count += fr + fc
            couple[i, j] = g[i, j] * (1.0 if fr and fc else 0.0)
            d = d if fc else 1.0
            if i == 0:
                l_c[0, j] = 0.0
            else:
                e = -gc[i - 1, j] if fc and free_c[i - 1, j] else 0.0
                lij = e * dinv_c[i - 1, j]
                l_c[i, j] = lij
                d = d - lij * e
            bad_c |= not d > 0.0
            dinv_c[i, j] = 1.0 / d if d > 0.0 else 0.0
    # Row lines four at a time: their division chains interleave (one at a time waits on each).
    for i0 in range(0, n, 4):
        i1 = min(n, i0 + 4)
        for i in range(i0, i1):
            d = dinv_r[i, 0]
            l_r[i, 0] = 0.0
            bad_r |= not d > 0.0
            dinv_r[i, 0] = 1.0 / d if d > 0.0 else 0.0
        for j in range(1, m):
            for i in range(i0, i1):
                e = -gw[i, j - 1] if free_r[i, j - 1] and free_r[i, j] else 0.0
                lij = e * dinv_r[i, j - 1]
                l_r[i, j] = lij
                d = dinv_r[i, j] - lij * e
                bad_r |= not d > 0.0
                dinv_r[i, j] = 1.0 / d if d > 0.0 else 0.0
    return count, bad_r, bad_c


@_jit
def row_solve(lm, dinv, b):  # pragma: no cover - compiled
    """Row-line solve of every slab of ``b`` (B, N, M) in place; ``lm`` subdiagonal of L along j
    (``lm[i, 0]`` unused), ``dinv`` 1/D."""
    for k in range(b.shape[0]):
        _row_slab(lm, dinv, b[k])


@_jit
def col_solve(lm, dinv, r, out):  # pragma: no cover - compiled
    """Column-line solve ``out = A_C⁻¹ r`` for (B, N, M) arrays; ``lm`` subdiagonal along i."""
    for k in range(r.shape[0]):
        out[k, :, :] = r[k]
        _axis0_solve(lm, dinv, out[k])


@_jit
def cg_update(couple, l_r, dinv_r, p, w, t, q, lo, e_r, r, rz, rn):  # pragma: no cover
    """First half of a CG step on S = A_C − G A_R⁻¹ G, per input vector k:

    t = A_R⁻¹ G p,  q = w − G t (= S p, with w = A_C p),  α = rz/(p·q),
    lo += α p,  e_r += α t,  r −= α q,  rn = ‖r‖₁.   (α = 0 where p·q ≤ 0 or rz = 0.)
    ``rn`` is written; the other vectors are updated in place.
    """
    bsz, n, m = p.shape
    for k in range(bsz):
        pk, tk, qk, wk = p[k], t[k], q[k], w[k]
        for i in range(n):
            for j in range(m):
                tk[i, j] = couple[i, j] * pk[i, j]
        _row_slab(l_r, dinv_r, tk)
        pq = 0.0
        for i in range(n):
            for j in range(m):
                v = wk[i, j] - couple[i, j] * tk[i, j]
                qk[i, j] = v
                pq += pk[i, j] * v
        a = _safe_ratio(rz[k], pq)
        s = 0.0
        lk, ek, rk = lo[k], e_r[k], r[k]
        for i in range(n):
            for j in range(m):
                lk[i, j] += a * pk[i, j]
                ek[i, j] += a * tk[i, j]
                v = rk[i, j] - a * qk[i, j]
                rk[i, j] = v
                s += abs(v)
        rn[k] = s


@_jit
def cg_direction(l_c, dinv_c, r, z, p, w, rz):  # pragma: no cover - compiled
    """Second half of a CG step, per input vector k: z = A_C⁻¹ r, rz' = r·z, β = rz'/rz,
    p = z + β p, w = r + β w (= A_C p); ``rz`` is replaced by rz' in place."""
    bsz, n, m = r.shape
    for k in range(bsz):
        rk, zk, pk, wk = r[k], z[k], p[k], w[k]
        zk[:, :] = rk
        _axis0_solve(l_c, dinv_c, zk)
        s = 0.0
        for i in range(n):
            for j in range(m):
                s += rk[i, j] * zk[i, j]
        b = _safe_ratio(s, rz[k])
        rz[k] = s
        for i in range(n):
            for j in range(m):
                pk[i, j] = zk[i, j] + b * pk[i, j]
                wk[i, j] = rk[i, j] + b * wk[i, j]


@_jit
def _leave_slab(dr, dc, dv, has_drive, g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c, free_r,
                free_c, lr, lc, br):  # pragma: no cover - compiled
    # Leave currents, port currents and the ℓ1/ℓ∞ KCL residuals of one input vector's slabs.
    # Each node gathers its own terms (no scatter into neighbours), so the inner loops carry no
    # dependency; the boolean masks (pin, free) enter as 0/1 factors, keeping them branch-free.
    n, m = dr.shape
    s, mx = 0.0, 0.0
    for a in range(n + m):
        br[a] = 0.0
    for i in range(n):
        for j in range(m):
            c = g_cell[i, j] * (dr[i, j] - dc[i, j])
            if has_drive:
                c += dv[i, j]
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
            lr[i, j] = x
            lc[i, j] = y
        lr[i, 0] += gpl[i] * dr[i, 0]
        lr[i, m - 1] += gpr[i] * dr[i, m - 1]
    for j in range(m):
        lc[0, j] += gpt[j] * dc[0, j]
        lc[n - 1, j] += gpb[j] * dc[n - 1, j]
    for i in range(n):
        b = gpl[i] * dr[i, 0] + gpr[i] * dr[i, m - 1]
        for j in range(m):
            x, y = lr[i, j], lc[i, j]
            b -= pin_r[i, j] * x
            br[n + j] -= pin_c[i, j] * y
            ax, ay = abs(x) * free_r[i, j], abs(y) * free_c[i, j]
            s += ax + ay
            mx = max(mx, ax, ay)
        br[i] = b
    for j in range(m):
        br[n + j] += gpt[j] * dc[0, j] + gpb[j] * dc[n - 1, j]
    return s, mx


@_jit
def leave_branch(d_r, d_c, drive, has_drive, g_cell, gw, gc, gpl, gpr, gpt, gpb, pin_r, pin_c,
                 free_r, free_c, l_r, l_c, branch, kcl, kmax):  # pragma: no cover - compiled
    """LineBlocks.leave + branch_currents + ℓ1 KCL residual, one pass per input vector k:
    l_r, l_c (B, N, M) leave currents (+ ``drive`` when ``has_drive``), A; branch (B, N+M) port
    currents, A; kcl (B,) ‖l‖₁ and kmax (B,) ‖l‖∞ over the free nodes, A."""
    for k in range(d_r.shape[0]):
        kcl[k], kmax[k] = _leave_slab(d_r[k], d_c[k], drive[k], has_drive, g_cell, gw, gc, gpl, gpr, gpt,
                             gpb, pin_r, pin_c, free_r, free_c, l_r[k], l_c[k], branch[k])


_LOADED: list[bool] = []


def load() -> None:
    """Compile (first run) or load from numba's cache (later runs) every kernel, once per process.

    Called when a tile is built (NodalEngine.warm_up), so the one-time cost (a fraction of a
    second from the cache; docs/speed.md) lands in set-up rather than in the first read
    of a timed loop. If compiling fails
    (a broken LLVM, an unwritable cache with no fallback), the numpy path takes over, with a
    warning: slower, never wrong.
    """
    global ENABLED
    if _LOADED or not ENABLED:
        return
    _LOADED.append(True)
    try:
        _exercise()
    except Exception as exc:  # noqa: BLE001 - any failure of the compiler means: use numpy
        ENABLED = False
        logging.getLogger(__name__).warning("compiled solver kernels unavailable (%s: %s); using the numpy "
                                            "path", type(exc).__name__, exc)


def _exercise() -> None:
    n = m = 2
    g = np.full((n, m), 1e-5)
    one = np.ones((n, m))
    wires_r, wires_c = np.ones((n, m - 1)), np.ones((n - 1, m))
    port_r, port_c = np.ones(n), np.ones(m)
    pin = np.zeros((n, m), dtype=np.bool_)
    free = np.ones((n, m), dtype=np.bool_)
    drive = np.full((1, n, m), 1e-6)
    out = [np.empty((1, n, m)) for _ in range(4)]
    vec = np.empty((1, n + m))
    one_k, kmax = np.ones(1), np.empty(1)
    iters = np.empty(1, dtype=np.int64)
    is_out = np.ones(n + m, dtype=np.bool_)
    line_factor(one, wires_c, np.zeros((n, m)), np.empty((n, m)))
    line_blocks(g, wires_r, wires_c, port_r, port_r, port_c, port_c, pin, pin, free.copy(), free.copy(),
                *(np.empty((n, m)) for _ in range(5)))
    row_solve(np.zeros((n, m)), one, drive.copy())
    col_solve(np.zeros((n, m)), one, drive, out[0])
    leave_branch(drive, drive, drive, True, g, wires_r, wires_c, port_r, port_r, port_c, port_c, pin, pin,
                 free, free, out[0], out[1], vec, one_k.copy(), kmax)
    from cosim.circuit.solvers import coldread, lawkernels, sinhnewton  # import this module: loaded late

    lawkernels.exercise()
    sinhnewton.exercise()

    coldread.cold_read(g, g, np.zeros((n, m)), one, np.zeros((n, m)), one, wires_r, wires_c, port_r, port_r,
                       port_c, port_c, pin, pin, free, free, is_out, np.ones((1, n)), np.zeros((1, m)), 1e-9,
                       0.0, 10, 1, out[0], out[1], vec, one_k.copy(), kmax, iters)
    from cosim.circuit.solvers import multirhs

    shifts = (np.ones((1, n)), np.zeros((1, m)))
    multirhs.solve_lanes(g, np.zeros((n, m)), one, np.zeros((n, m)), one, np.ones((3, n, m)), True, g, free, free,
                         *shifts,
                         np.zeros((1, 1, 1)), np.zeros((1, 1, 1)), np.full(1, 1e-30),
                         10, 1, out[0], out[1], iters)
    multirhs.leave_all(out[1], out[0], *shifts, g, wires_r, wires_c, port_r, port_r, port_c, port_c, pin, pin,
                       free, free, 1, vec, one_k.copy(), kmax)
    b = [np.zeros((1, n, m)) for _ in range(8)]
    cg_update(g, np.zeros((n, m)), one, *b[:7], one_k.copy(), np.empty(1))
    cg_direction(np.zeros((n, m)), one, b[0], b[1], b[2], b[3], one_k.copy())
