"""Conjugate gradients with algebraic multigrid (pyamg) for large general resistive grids.

Kept outside :mod:`cosim.circuit.solvers` (the crossbar solvers, with compiled kernels) so a
general circuit loads neither.

Power grids (IBM-style decks: rails, vias, pads, loads) reduce, once the source-held nodes are
eliminated, to a symmetric M-matrix ``A`` (positive conductances: off-diagonals ≤ 0, diagonal
dominance, a source reached from every part). That is the classic case for smoothed-aggregation
AMG, which converges in a few tens of iterations whatever the size; crossbars are not (their
strong wires couple through weak devices, DESIGN.md §5) and keep their own solver.

Certified accuracy. For a nonsingular M-matrix, ``A⁻¹ ≥ 0`` elementwise, so any ``w`` with
``A w ≥ c·1`` (``c > 0``) bounds the inverse: ``A⁻¹·1 ≤ w / c`` and ``‖A⁻¹‖∞ ≤ max(w) / c``.
``w`` is a cheap approximate solve of ``A w = 1`` (its accuracy does not matter: ``A w`` is
recomputed exactly). Then the node-voltage error of an approximate solution with residual
``r = b − A x`` obeys ``‖x − x*‖∞ ≤ ‖A⁻¹‖∞ · ‖r‖∞``. Iterations continue (restarted from the
current iterate, i.e. iterative refinement on the true residual) until that bound is at most
``rtol`` times the largest node voltage, and the bound is reported; otherwise
:class:`ConvergenceError`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from cosim.errors import ConvergenceError, EngineError

if TYPE_CHECKING:
    import scipy.sparse as sp

log = logging.getLogger(__name__)

#: Reduced systems with at least this many unknowns go to AMG when ``method="auto"`` (and the
#: system is an M-matrix); smaller ones to SuperLU. Calibrated with benchmarks/bench_powergrid.py
#: (IBM-like grids, one BLAS thread): SuperLU is faster at the sizes measured, but its fill grows
#: faster than AMG's linear memory; the crossing is extrapolated from those timings.
AMG_MIN_UNKNOWNS = 400_000
_REFINE = 8  # restarts on the true residual before giving up


def _one_blas_thread():
    """kernels.single_thread_blas, imported when an AMG solve runs: a small deck's solve path
    imports this module and must not load numba (tests/test_cli_solve.py)."""
    from cosim.circuit.solvers.kernels import single_thread_blas

    return single_thread_blas()


def inverse_norm_bound(a: sp.csr_matrix, solve) -> float:
    """An upper bound on ‖A⁻¹‖∞ for an M-matrix ``a`` from an approximate solve of ``A w = 1``."""
    w = np.maximum(solve(np.ones(a.shape[0])), 0.0)
    aw = a @ w
    c = float(aw.min())
    if not c > 0:
        raise EngineError("the AMG bound failed (A·w has a non-positive entry): not an M-matrix?")
    return float(w.max()) / c


class AmgSolver:
    """Smoothed-aggregation AMG preconditioning CG, certified by :func:`inverse_norm_bound`."""

    name = "amg"

    def __init__(self, system, options):
        try:
            import pyamg
        except ImportError as exc:  # a declared dependency; a broken install still gets one line
            raise EngineError(f"pyamg is needed for large general circuits ({exc}); pip install pyamg") from None
        self.a = system.a.tocsr()
        self.rtol = float(options.rtol)
        self.maxiter = int(options.maxiter)
        with _one_blas_thread():
            self.ml = pyamg.smoothed_aggregation_solver(self.a, symmetry="hermitian")
            self.inv_norm = inverse_norm_bound(
                self.a, lambda b: self.ml.solve(b, tol=1e-3, accel="cg", maxiter=50))

    def solve(self, rhs: np.ndarray, system) -> tuple[np.ndarray, dict]:
        with _one_blas_thread():
            return self._solve(rhs)

    def _solve(self, rhs: np.ndarray) -> tuple[np.ndarray, dict]:
        x = np.zeros_like(rhs, dtype=float)
        iters, bounds = 0, []
        for j in range(rhs.shape[1]):
            b = rhs[:, j]
            xj = np.zeros_like(b)
            for _ in range(_REFINE):
                r = b - self.a @ xj
                bound = self.inv_norm * float(np.abs(r).max(initial=0.0))
                target = self.rtol * max(float(np.abs(xj).max(initial=0.0)), 1e-300)
                if bound <= target or not r.any():
                    break
                res: list[float] = []
                dx = self.ml.solve(r, tol=min(0.1, self.rtol), accel="cg", maxiter=self.maxiter,
                                   residuals=res)
                xj = xj + dx
                iters += len(res)
            else:
                raise ConvergenceError(
                    f"AMG-CG stopped at a node-voltage error bound of {bound:.2e} V "
                    f"(target {target:.2e} V) after {iters} iterations; use method='direct'")
            x[:, j] = xj
            bounds.append(bound)
        worst = max(bounds, default=0.0)
        log.debug("amg: %d iterations, |dV| bound %.2e V", iters, worst)
        return x, {"iterations": iters, "bound_volts": worst, "inverse_norm": self.inv_norm,
                   "levels": len(self.ml.levels)}
