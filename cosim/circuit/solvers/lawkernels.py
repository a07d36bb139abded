"""Compiled cell-law passes of the chord iteration (:mod:`chord`) for sinh cells.

Why compiled: in a training read through Stanford–PKU cells the chord iteration evaluates the
cells' currents on (B, N, M) arrays once per step. In numpy that is the cell potentials
(two broadcast temporaries), the law's sinh *and* cosh (the slope the chord never uses), then
the companion drive i − g0·(d_r − d_c): about ten passes over 1 MB arrays per step, which
profiled at a third of a digits-MLP epoch. Here each is one pass per input vector with the
same per-cell arithmetic as :meth:`cosim.circuit.cells.Sinh.branch` (so the results agree with
the numpy path to round-off; tests/test_cell_kinds.py compares them).

Arrays passed in must be C-contiguous float64; the law's parameters are broadcast to (N, M).
"""

from __future__ import annotations

import math

import numpy as np

from cosim.circuit.cells import Sinh
from cosim.circuit.solvers.kernels import _jit


@_jit
def sinh_drive(s_r, s_c, d_r, d_c, a, v0, g_lin, g0, cur, drive):  # pragma: no cover - compiled
    """cur (B, N, M) the cells' currents (A) at potentials s_r[k, i] + d_r − s_c[k, j] − d_c,
    drive = cur − g0·(d_r − d_c) (A), the chord's companion source."""
    bsz, n, m = d_r.shape
    for k in range(bsz):
        for i in range(n):
            sr = s_r[k, i]
            for j in range(m):
                x = ((sr + d_r[k, i, j]) - (s_c[k, j] + d_c[k, i, j])) / v0[i, j]
                c = g_lin[i, j] * (x * v0[i, j]) + a[i, j] * math.sinh(x)
                cur[k, i, j] = c
                drive[k, i, j] = c - g0[i, j] * (d_r[k, i, j] - d_c[k, i, j])


@_jit
def sinh_mean_slope(s_r, s_c, a, v0, g_lin, out):  # pragma: no cover - compiled
    """out (N, M): the cells' slope di/dv (S) at the applied potentials s_r[k, i] − s_c[k, j],
    averaged over the batch k."""
    bsz = s_r.shape[0]
    n, m = out.shape
    out[:] = 0.0
    for k in range(bsz):
        for i in range(n):
            for j in range(m):
                x = (s_r[k, i] - s_c[k, j]) / v0[i, j]
                out[i, j] += g_lin[i, j] + a[i, j] * math.cosh(x) / v0[i, j]
    out /= bsz


class SinhPasses:
    """The two passes above bound to one :class:`Sinh` law on an (N, M) array."""

    def __init__(self, law: Sinh, shape: tuple[int, int]):
        self.a, self.v0, self.g_lin = (np.ascontiguousarray(np.broadcast_to(np.asarray(p, dtype=float), shape))
                                       for p in (law.a, law.v0, law.g_lin))

    def mean_slope(self, s_r: np.ndarray, s_c: np.ndarray) -> np.ndarray:
        out = np.empty(self.a.shape)
        sinh_mean_slope(s_r, s_c, self.a, self.v0, self.g_lin, out)
        return out

    def drive(self, s_r, s_c, d_r, d_c, g0, cur, drive) -> None:
        sinh_drive(s_r, s_c, d_r, d_c, self.a, self.v0, self.g_lin, g0, cur, drive)


def exercise() -> None:
    """Compile or load both passes (called from :func:`kernels.load`)."""
    law = Sinh(np.full((2, 2), 1e-6), np.full((2, 2), 0.25))
    p = SinhPasses(law, (2, 2))
    s_r, s_c = np.zeros((1, 2)), np.zeros((1, 2))
    d = np.zeros((1, 2, 2))
    g0 = p.mean_slope(s_r, s_c)
    p.drive(s_r, s_c, d, d, g0, np.empty_like(d), np.empty_like(d))
