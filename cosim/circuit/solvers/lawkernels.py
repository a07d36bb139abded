"""Compiled cell-law passes of the chord iteration (:mod:`chord`) for sinh cells.

Why compiled: in a training read through Stanford–PKU cells the chord iteration evaluates the
cells' currents on (B, N, M) arrays once per step. In numpy that is the cell potentials
(two broadcast temporaries), the law's sinh *and* cosh (the slope the chord never uses), then
the companion drive i − g0·(d_r − d_c): about ten passes over 1 MB arrays per step, which
profiled at a third of a digits-MLP epoch. Here each is one pass per input vector. The batch's
sinh and cosh at the applied potentials are taken once (with the chord slope); every step then
needs only sinh(x0 + Δx) = sinh x0·cosh Δx + cosh x0·sinh Δx, where Δx (the IR drops over v0,
a few 1e-3 in a read) enters through short series: no library call per cell, so the loop
vectorises (5× the numpy law on a 32-vector 64×64 batch, 2.5× for a fused math.sinh). The
results equal :meth:`cosim.circuit.cells.Sinh.branch` to round-off (tests/test_cell_kinds.py).

Arrays passed in must be C-contiguous float64; the law's parameters are broadcast to (N, M).
"""

from __future__ import annotations

import math

import numpy as np

from cosim.circuit.cells import Sinh
from cosim.circuit.solvers.kernels import _jit, njit, numba

#: Largest |Δx| (the cell's voltage change since the applied potentials over v0) for which the
#: series below are used: their truncation errors there are ≤ 3e-17 relative.
SERIES_MAX = 0.125


def _inline(fn):
    return fn if numba is None else njit(fn, inline="always")


@_inline
def sinh_cosh_small(t):  # pragma: no cover - compiled
    """(sinh t, cosh t) by their series, for |t| ≤ SERIES_MAX (truncation ≤ 3e-17 relative)."""
    t2 = t * t
    sd = t * (1.0 + t2 * (1.0 / 6.0 + t2 * (1.0 / 120.0 + t2 * (1.0 / 5040.0 + t2 * (1.0 / 362880.0)))))
    cd = 1.0 + t2 * (0.5 + t2 * (1.0 / 24.0 + t2 * (1.0 / 720.0 + t2 * (1.0 / 40320.0 + t2 * (1.0 / 3628800.0)))))
    return sd, cd


@_jit
def sinh_at_applied(s_r, s_c, a, v0, g_lin, sh, ch, slope):  # pragma: no cover - compiled
    """sh, ch (B, N, M): sinh and cosh of x0 = (s_r[k, i] − s_c[k, j])/v0, the cells at the
    applied potentials; slope (N, M): the cells' di/dv there (S), averaged over the batch k."""
    bsz = s_r.shape[0]
    n, m = slope.shape
    slope[:] = 0.0
    for k in range(bsz):
        for i in range(n):
            for j in range(m):
                x = (s_r[k, i] - s_c[k, j]) / v0[i, j]
                sh[k, i, j] = math.sinh(x)
                c = math.cosh(x)
                ch[k, i, j] = c
                slope[i, j] += g_lin[i, j] + a[i, j] * c / v0[i, j]
    slope /= bsz


@_jit
def sinh_drive(s_r, s_c, d_r, d_c, a, v0, g_lin, g0, sh, ch, cur, drive):  # pragma: no cover - compiled
    """cur (B, N, M): the cells' currents (A) at x = x0 + Δx, Δx = (d_r − d_c)/v0, by
    sinh(x0 + Δx) = sinh x0·cosh Δx + cosh x0·sinh Δx with the series of Δx (no library call, so
    the loop vectorises); rows where some |Δx| > SERIES_MAX take math.sinh instead.
    drive = cur − g0·(d_r − d_c) (A), the chord's companion source."""
    bsz, n, m = d_r.shape
    for k in range(bsz):
        for i in range(n):
            sr = s_r[k, i]
            tmax = 0.0
            for j in range(m):
                dd = d_r[k, i, j] - d_c[k, i, j]
                t = dd / v0[i, j]
                sd, cd = sinh_cosh_small(t)
                c = g_lin[i, j] * ((sr - s_c[k, j]) + dd) + a[i, j] * (sh[k, i, j] * cd + ch[k, i, j] * sd)
                cur[k, i, j] = c
                drive[k, i, j] = c - g0[i, j] * dd
                tmax = max(tmax, abs(t))
            if tmax > SERIES_MAX:
                for j in range(m):
                    dd = d_r[k, i, j] - d_c[k, i, j]
                    x = ((sr + d_r[k, i, j]) - (s_c[k, j] + d_c[k, i, j])) / v0[i, j]
                    c = g_lin[i, j] * (x * v0[i, j]) + a[i, j] * math.sinh(x)
                    cur[k, i, j] = c
                    drive[k, i, j] = c - g0[i, j] * dd


class SinhPasses:
    """The two passes above bound to one :class:`Sinh` law on an (N, M) array and one batch of
    applied potentials s_r (B, N), s_c (B, M) in V."""

    def __init__(self, law: Sinh, s_r: np.ndarray, s_c: np.ndarray):
        shape = (s_r.shape[1], s_c.shape[1])
        self.a, self.v0, self.g_lin = (np.ascontiguousarray(np.broadcast_to(np.asarray(p, dtype=float), shape))
                                       for p in (law.a, law.v0, law.g_lin))
        self.s_r, self.s_c = s_r, s_c
        self.sh, self.ch = np.empty((s_r.shape[0], *shape)), np.empty((s_r.shape[0], *shape))
        self.slope = np.empty(shape)
        sinh_at_applied(s_r, s_c, self.a, self.v0, self.g_lin, self.sh, self.ch, self.slope)

    def mean_slope(self) -> np.ndarray:
        """The cells' slope (S) at the applied potentials, averaged over the batch (N, M)."""
        return self.slope

    def drive(self, d_r, d_c, g0, cur, drive) -> None:
        """Fill cur and drive (B, N, M), A, at IR drops d_r, d_c (B, N, M), V (see sinh_drive)."""
        sinh_drive(self.s_r, self.s_c, d_r, d_c, self.a, self.v0, self.g_lin, g0, self.sh, self.ch, cur, drive)


def exercise() -> None:
    """Compile or load both passes (called from :func:`kernels.load`)."""
    law = Sinh(np.full((2, 2), 1e-6), np.full((2, 2), 0.25))
    p = SinhPasses(law, np.zeros((1, 2)), np.zeros((1, 2)))
    d = np.zeros((1, 2, 2))
    p.drive(d, d, p.mean_slope(), np.empty_like(d), np.empty_like(d))
