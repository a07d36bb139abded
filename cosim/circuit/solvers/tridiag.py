"""Batched symmetric tridiagonal solves over all the lines of a crossbar at once.

A crossbar's row wires are N independent tridiagonal blocks (one per row, along ``j``) and its
column wires M blocks (one per column, along ``i``). Both solvers below factor every line in one
call and solve a whole batch of right-hand sides without a Python loop over lines:

- :class:`RowLines` stacks the row blocks into one long tridiagonal system whose couplings
  between consecutive lines are zero, and hands it to LAPACK ``dpttrf``/``dpttrs`` (LDLᵀ of an
  SPD tridiagonal). Rows are contiguous in the (B, N, M) C layout, so no copy is made.
- :class:`ColLines` runs the same LDLᵀ recurrence along ``i`` vectorised across all columns
  (each step touches one contiguous row of M values). LAPACK would need the data transposed,
  which costs more than the sweep itself at 4096×4096.

Both are exact (no pivoting is needed for SPD tridiagonals; LDLᵀ is backward stable there).
With numba (:mod:`kernels`) both solves run as compiled sweeps over the same factors; the code
below is then the reference they are tested against (tests/test_kernels.py).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from cosim.circuit.solvers import kernels
from cosim.errors import TopologyError


class RowLines:
    """LDLᵀ of the N row blocks of an (N, M) grid: ``diag`` (N, M), ``off`` (N, M-1) ≤ 0, S.

    ``overwrite`` lets the factorisation reuse ``diag``'s memory.
    """

    def __init__(self, diag: np.ndarray, off: np.ndarray, *, overwrite: bool = False):
        n, m = diag.shape
        self.shape = (n, m)
        if kernels.ENABLED and n * m > 1:
            # The compiled factorisation on the transposed lines (cheaper than LAPACK's set-up
            # with its copies); LAPACK's factors for the numpy solve are derived on demand.
            self.l, self.dinv = np.zeros((m, n)), np.empty((m, n))
            bad = kernels.line_factor(np.ascontiguousarray(diag.T), np.ascontiguousarray(off.T), self.l, self.dinv)
            self.l, self.dinv = np.ascontiguousarray(self.l.T), np.ascontiguousarray(self.dinv.T)
            self._pad, self._lapack = False, None
            if bad >= 0:  # the first in row-major order, as LAPACK reports it (lines are independent)
                self.check()
            return
        d_in = np.ascontiguousarray(diag, dtype=float).ravel() if overwrite else np.array(diag, dtype=float).ravel()
        e = np.zeros(n * m)
        e.reshape(n, m)[:, :-1] = off
        # f2py refuses an empty off-diagonal: pad a single node with a dummy decoupled one.
        self._pad = n * m == 1
        if self._pad:
            d_in, e = np.append(d_in, 1.0), np.zeros(2)
        d_f, e_f, info = lapack.dpttrf(d_in, e[:-1], overwrite_d=1, overwrite_e=1)
        if info != 0:
            _singular_row(*divmod(abs(int(info)) - 1, m))
        self._lapack = (d_f, e_f)
        # The same factors per line for the compiled sweep: multipliers along j (0 at each line's
        # start, where the stacked system's coupling is zero) and 1/D.
        self.l = np.zeros((n, m))
        self.dinv = 1.0 / d_f[:n * m].reshape(n, m)
        if not self._pad:
            self.l.ravel()[1:] = e_f

    @classmethod
    def factored(cls, lm: np.ndarray, dinv: np.ndarray) -> RowLines:
        """Row lines from their factors ``lm`` (multipliers), ``dinv`` (N, M), as the compiled
        factorisation above leaves them (:func:`kernels.line_blocks` computes them with the rest
        of the line blocks)."""
        self = object.__new__(cls)
        self.shape, self.l, self.dinv, self._pad, self._lapack = lm.shape, lm, dinv, False, None
        return self

    def check(self) -> None:
        """:class:`TopologyError` naming the first singular node in row-major order, if any (the
        compiled factorisation leaves 1/D = 0 at a pivot that is not positive)."""
        if not self.dinv.all():
            _singular_row(*(int(k) for k in np.argwhere(self.dinv == 0.0)[0]))

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Solve in place for ``b`` of shape (B, N, M), C-contiguous; returns ``b``."""
        bsz = b.shape[0]
        if self._pad:
            b /= self._lapack[0][0]
            return b
        if kernels.ENABLED and b.flags.c_contiguous and b.dtype == np.float64:
            kernels.row_solve(self.l, self.dinv, b)
            return b
        if self._lapack is None:  # factored by the compiled kernel: LAPACK's D and L from it
            self._lapack = (1.0 / self.dinv.ravel(), self.l.ravel()[1:].copy())
        flat = b.reshape(bsz, -1).T  # Fortran-ordered (N·M, B) view of the same memory
        x, info = lapack.dpttrs(*self._lapack, flat, overwrite_b=1)
        if info != 0:  # pragma: no cover - only on invalid arguments
            raise RuntimeError(f"dpttrs failed with info={info}")
        if not np.shares_memory(x, b):  # pragma: no cover - LAPACK copied (non-contiguous input)
            b.reshape(bsz, -1)[...] = x.T
        return b


class ColLines:
    """LDLᵀ of the M column blocks of an (N, M) grid: ``diag`` (N, M), ``off`` (N-1, M) ≤ 0, S."""

    def __init__(self, diag: np.ndarray, off: np.ndarray):
        n, m = diag.shape
        self.shape = (n, m)
        self.l = np.zeros((n, m))  # multipliers along i (row 0 unused)
        self.dinv = np.empty((n, m))
        if kernels.ENABLED:
            bad = kernels.line_factor(np.ascontiguousarray(diag, dtype=float), np.ascontiguousarray(off, dtype=float),
                                      self.l, self.dinv)
            if bad >= 0:
                self.check()
            return
        pivots = np.empty((n, m))
        pivots[0] = diag[0]
        # Pivots are checked once at the end: a bad one only spoils the rows after it, and the
        # first bad (i, j) in row-major order is the one reported either way.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self.dinv[0] = 1.0 / pivots[0]
            for i in range(1, n):
                np.multiply(off[i - 1], self.dinv[i - 1], out=self.l[i])
                np.subtract(diag[i], self.l[i] * off[i - 1], out=pivots[i])
                np.divide(1.0, pivots[i], out=self.dinv[i])
        bad = ~(pivots > 0)
        if bad.any():
            _singular_col(*(int(k) for k in np.argwhere(bad)[0]))

    @classmethod
    def factored(cls, lm: np.ndarray, dinv: np.ndarray) -> ColLines:
        """Column lines from their factors ``lm`` (multipliers), ``dinv`` (N, M)."""
        self = object.__new__(cls)
        self.shape, self.l, self.dinv = lm.shape, lm, dinv
        return self

    def check(self) -> None:
        """:class:`TopologyError` naming the first singular node in row-major order, if any."""
        if not self.dinv.all():
            _singular_col(*(int(k) for k in np.argwhere(self.dinv == 0.0)[0]))

    def solve(self, r: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Solve for ``r`` (B, N, M) into ``out`` (may be ``r`` itself); returns ``out``."""
        if out is None:
            out = np.empty_like(r)
        if kernels.ENABLED and r.flags.c_contiguous and out.flags.c_contiguous and r.dtype == np.float64:
            kernels.col_solve(self.l, self.dinv, r, out)
            return out
        n = r.shape[1]
        l_ = self.l
        tmp = np.empty((r.shape[0], r.shape[2]))
        if out is not r:
            out[:, 0] = r[:, 0]
        for i in range(1, n):
            np.multiply(l_[i], out[:, i - 1], out=tmp)
            np.subtract(r[:, i], tmp, out=out[:, i])
        out *= self.dinv
        for i in range(n - 2, -1, -1):
            np.multiply(l_[i + 1], out[:, i + 1], out=tmp)
            out[:, i] -= tmp
        return out


def _singular_row(i: int, j: int):
    raise TopologyError(f"row line block is singular at node r{i}_{j} (a wire with no path to a source); "
                        "check floating lines")


def _singular_col(i: int, j: int):
    raise TopologyError(f"column line block is singular at node c{i}_{j} (a wire with no path to a source); "
                        "check floating lines")
