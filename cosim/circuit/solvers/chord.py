"""Nonlinear reads of a whole batch at once: the chord iteration on one shared linear system.

Newton (:mod:`newton`) linearises every input vector at its own potentials, so each vector has
its own matrix and the batch is solved vector by vector. A training read is a batch of many
small input vectors, where the cells' differential conductances barely move: a Stanford–PKU
cell (v0 = 0.25 V) read at ≤ 0.2 V changes its slope by at most cosh(0.8) − 1 = 34 %, and the
wires (1 Ω against kΩ–MΩ cells) hold every cell close to its applied voltage. There the chord
method is the cheaper exact solver: every step solves the *same* linear crossbar, whose cell
conductances g0 are the cells' mean slopes over the batch's applied voltages, for the whole batch
at once (warm-started line-block PCG), with the cells' true currents moved to the right-hand
side through the companion drive J = i(u) − g0·(u_r − u_c), exactly as in Newton. Its fixed
point is the exact solution; each step shrinks the error by about (IR-drop fraction) × (slope
deviation from g0), a few times 1e-3 in a training read, so 3–5 steps reach 1e-10.

The answer is certified exactly as Newton's: the nonlinear KCL residual at the free nodes bounds
the output currents' error (``bound ≤ rtol``). Vectors that do not reach it within
:data:`MAX_STEPS` (large voltages, a selector's exponential) are returned unconverged, for the
caller to solve by Newton.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.circuit.cells import Cell, Sinh
from cosim.circuit.solvers import kernels, lawkernels, multirhs, pcg
from cosim.circuit.solvers.lineblock import LineBlocks

#: Chord steps at most before the unconverged vectors are handed to Newton.
MAX_STEPS = 8
#: A step that shrinks the residual by less than this factor means the chord is too far from
#: the cells' slopes: stop and let Newton take over.
MIN_CONTRACTION = 0.5


@dataclass(slots=True)
class ChordResult:
    """Row and column IR drops (B, N, M) V, port currents (B, N+M) A, cell currents (B, N, M)
    A, certified bound (B,), converged mask (B,), chord steps, PCG iterations, ℓ1 KCL residual (B,) A."""

    d_r: np.ndarray
    d_c: np.ndarray
    branch: np.ndarray
    cells: np.ndarray
    bound: np.ndarray
    converged: np.ndarray
    steps: int
    iterations: int
    kcl_l1: np.ndarray


@dataclass(slots=True)
class _Residual:
    """The residual currents (B, N, M) of the row and column equations that a correction
    solves (the part of :class:`pcg._Base` that :func:`multirhs._run` reads)."""

    res_r: np.ndarray
    res_c: np.ndarray


def _bound(branch, kcl, out_ports) -> np.ndarray:
    i_out = np.abs(branch[:, out_ports]).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(kcl == 0, 0.0, kcl / (i_out - kcl))
    bound[(i_out - kcl <= 0) & (kcl > 0)] = np.inf
    return bound


def solve(blocks: LineBlocks, cell: Cell, shifts: tuple[np.ndarray, np.ndarray], out_ports: np.ndarray, *,
          rtol: float, maxiter: int, g_floor: float, label: str = "crossbar",
          max_steps: int = MAX_STEPS, atol: float = 0.0) -> ChordResult:
    """The chord iteration of the module docstring for a batch with line potentials ``shifts``
    ((B, N), (B, M) V); ``g_floor`` (S) is the smallest chord conductance (see newton.G_FLOOR);
    ``atol`` (A): an ℓ1 KCL residual also accepted as converged (as in Newton)."""
    s_r, s_c = (np.ascontiguousarray(a, dtype=float) for a in shifts)
    bsz, n, m = s_r.shape[0], blocks.n, blocks.m
    # Sinh cells (Stanford–PKU, the sinh selector) take the compiled law passes (lawkernels).
    fused = lawkernels.SinhPasses(cell, s_r, s_c) if kernels.ENABLED and isinstance(cell, Sinh) else None
    # The chord slope of each cell: its slope averaged over the batch at the applied potentials.
    if fused is not None:
        g0 = fused.mean_slope()
    else:
        _, g_app, _ = cell.branch(np.broadcast_to(s_r[:, :, None], (bsz, n, m)),
                                  np.broadcast_to(s_c[:, None, :], (bsz, n, m)))
        g0 = np.broadcast_to(g_app, (bsz, n, m)).mean(axis=0)
    g0 = np.where(np.isfinite(g0) & (g0 > g_floor), g0, g_floor)
    lin = blocks.with_devices(g0)
    # Start: the ohmic read with the chord conductances, by the compiled cold read (the cheapest
    # solve there is); its residual is the cells' deviation from g0 times the wires' coupling.
    start = pcg.solve(lin, None, out_ports, rtol=1e-3, maxiter=maxiter, label=label, shifts=(s_r, s_c),
                      keep_rows=True)
    d_r, d_c = np.ascontiguousarray(start.d_r), np.ascontiguousarray(start.d_c)
    its, best = start.iterations, np.full(bsz, np.inf)
    g0 = np.ascontiguousarray(g0)
    if fused is not None:
        i, drive = np.empty_like(d_r), np.empty_like(d_r)
    for step in range(max_steps + 1):
        if fused is not None:
            fused.drive(d_r, d_c, g0, i, drive)
        else:
            i = np.ascontiguousarray(cell.branch(s_r[:, :, None] + d_r, s_c[:, None, :] + d_c)[0])
            drive = np.ascontiguousarray(i - g0 * (d_r - d_c))
        l_r, l_c, branch, kcl = lin.leave_branch(d_r, d_c, drive)
        bound = _bound(branch, kcl, out_ports)
        done = (bound <= rtol) | (kcl <= atol)
        stalled = bound > MIN_CONTRACTION * best
        if done.all() or step == max_steps or (stalled & ~done).any():
            return ChordResult(d_r, d_c, branch, i, bound, done, step, its, kcl)
        best = bound
        if kernels.ENABLED:
            # The step as a correction of the present residual, all vectors through the compiled
            # lanes at once (multirhs): it solves A0·Δ = r for the nonlinear KCL residual r.
            i_out = np.abs(branch[:, out_ports]).sum(axis=1)
            stop = np.maximum(1e-3 * kcl, 0.05 * rtol * i_out)
            l_r *= lin.free_r  # the residual currents are minus the leaving ones, at free nodes
            l_c *= lin.free_c
            np.negative(l_r, out=l_r)
            np.negative(l_c, out=l_c)
            lo, e_r, it = multirhs._run(lin, None, _Residual(l_r, l_c), stop, maxiter)
            its += int(it.max(initial=0))
            d_r += e_r
            d_c += lo
        else:
            # Inexact steps: the linear solve need only beat the present residual by a margin.
            lin_rtol = float(np.clip(1e-3 * bound[np.isfinite(bound)].min(initial=1e-3), rtol / 10.0, 1e-3))
            res = pcg.solve(lin, drive, out_ports, rtol=lin_rtol, maxiter=maxiter, label=label,
                            x0=d_c, keep_rows=True)
            its += res.iterations
            d_r, d_c = np.ascontiguousarray(res.d_r), np.ascontiguousarray(res.d_c)
    raise AssertionError("unreachable")  # pragma: no cover
