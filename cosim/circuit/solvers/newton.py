"""Exact reads of crossbars whose cells obey nonlinear laws: damped Newton on the whole array.

Each Newton step linearises every cell at the present potentials into its *companion model*:
the conductance g_d = ∂i/∂u_r in parallel with the current source J = i − g_d·(u_r − u_c) from
row to column node. That is a linear crossbar with the same line-block structure (the cells'
differential conductances replace their conductances, and J adds to the cell drive currents the
line-block solver already takes), so the structure-aware PCG of :mod:`pcg` (compiled kernels
included) solves every step. A series element (selector, access transistor) was already
eliminated cell by cell by :class:`cosim.circuit.cells.SeriesCell`, so it adds no unknowns.

For two-terminal laws ∂i/∂u_c = −g_d and the step is Newton's. The access transistor's current
also depends on its source potential through the transconductance; that part of the Jacobian
is not symmetric, so it stays in J (lagged one step): a quasi-Newton step whose fixed point is
the same exact solution, converging linearly at the rate the column IR drop couples into the
gates (columns are held near the sense potential by their wires and amplifiers, so it is fast).

Start: the ohmic solution with the cells' zero-bias small-signal conductances. Damping: a step
that would change some cell's voltage by more than the law's ``v_limit`` (a few v0 for the sinh
laws, whose exponential makes long steps overshoot) is shortened for the whole array, and a
step that increases the KCL residual is halved (at most :data:`MAX_HALVINGS` times).

Converged means certified: with ``r`` the nonlinear KCL residual at the free nodes (A), the
output currents are within ``‖r‖₁ / (‖I_out‖₁ − ‖r‖₁) ≤ rtol`` (the M-matrix argument of
:mod:`pcg`, applied to the Jacobian at the solution). Otherwise :class:`ConvergenceError` names
the array, the worst cell (largest KCL residual), the residual reached and what to change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cosim.circuit.cells import Cell, Mosfet, Ohmic, Sinh
from cosim.circuit.solvers import pcg
from cosim.circuit.solvers.lineblock import LineBlocks
from cosim.errors import ConvergenceError

log = logging.getLogger(__name__)

#: Newton steps at most, and halvings of a step that increases the residual.
MAX_NEWTON, MAX_HALVINGS = 60, 12


def v_limit(cell: Cell) -> float:
    """Largest change of a cell's voltage per Newton step, V (inf: no limit)."""
    if isinstance(cell, Ohmic):
        return np.inf
    if isinstance(cell, Sinh):
        return 4.0 * float(np.min(cell.v0))
    if isinstance(cell, Mosfet):
        return 1.0
    return min(v_limit(cell.device), v_limit(cell.access))


@dataclass(slots=True)
class NewtonResult:
    """Row and column IR drops (B, N, M) V, port currents (B, N+M) A, cell currents (B, N, M) A,
    certified bound per vector, Newton steps, PCG iterations (total) and ℓ1 KCL residual (B,) A."""

    d_r: np.ndarray
    d_c: np.ndarray
    branch: np.ndarray
    cells: np.ndarray
    bound: np.ndarray
    steps: int
    iterations: int
    kcl_l1: np.ndarray


#: Smallest companion conductance, relative to the array's largest conductance. A cell whose
#: differential conductance is 0 (a transistor cut off by its word line) would leave a floating
#: line without a path in the linear steps; the floor keeps the steps solvable and changes no
#: answer: the companion source makes the cell current at the iterate the law's own, so the
#: fixed point (and the certified residual) are those of the true laws.
G_FLOOR = 1e-12


def _evaluate(cell: Cell, s_r, s_c, d_r, d_c, g_floor: float):
    """Cell currents (1, N, M), companion conductance (N, M) and drive (1, N, M) of one vector."""
    u_r = s_r[:, :, None] + d_r
    u_c = s_c[:, None, :] + d_c
    i, g_r, _ = cell.branch(u_r, u_c)
    g_d = np.broadcast_to(g_r, i.shape)[0]
    g_d = np.where(np.isfinite(g_d) & (g_d > g_floor), g_d, g_floor)
    drive = i - g_d * (d_r - d_c)  # = g_d·(s_r − s_c) + J: the cell current at the iterate
    return i, g_d, drive


def _kcl(blocks: LineBlocks, d_r, d_c, drive, out_ports):
    l_r, l_c, branch, kcl = blocks.leave_branch(np.ascontiguousarray(d_r), np.ascontiguousarray(d_c),
                                                np.ascontiguousarray(drive))
    i_out = np.abs(branch[:, out_ports]).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.where(kcl == 0, 0.0, kcl / (i_out - kcl))
    bound[(i_out - kcl <= 0) & (kcl > 0)] = np.inf
    return l_r, l_c, branch, float(kcl[0]), float(bound[0])


def solve(blocks: LineBlocks, cell: Cell, shifts: tuple[np.ndarray, np.ndarray], out_ports: np.ndarray, *,
          rtol: float, maxiter: int, label: str = "crossbar", atol: float = 0.0,
          max_newton: int = MAX_NEWTON, x0: tuple[np.ndarray, np.ndarray] | None = None) -> NewtonResult:
    """Solve a batch of nonlinear reads; ``blocks`` carries the wires and ports (its cell
    conductances are replaced), ``shifts`` the line reference potentials (B, N), (B, M) V.

    Each input vector is solved on its own: its cells' differential conductances are its own
    (a batch shares no Jacobian). ``x0``: row and column IR drops (B, N, M) V to start from (a
    previous solve of the same inputs on nearly the same cells) instead of the ohmic solution."""
    s_r, s_c = (np.ascontiguousarray(a, dtype=float) for a in shifts)
    start = (lambda b: None) if x0 is None else (lambda b: (x0[0][b:b + 1], x0[1][b:b + 1]))  # noqa: E731
    parts = [_solve_one(blocks, cell, s_r[b:b + 1], s_c[b:b + 1], out_ports, rtol, maxiter, label, atol,
                        max_newton, b, start(b)) for b in range(s_r.shape[0])]
    cat = lambda k: np.concatenate([getattr(p, k) for p in parts])  # noqa: E731
    return NewtonResult(cat("d_r"), cat("d_c"), cat("branch"), cat("cells"), cat("bound"),
                        max((p.steps for p in parts), default=0), sum(p.iterations for p in parts), cat("kcl_l1"))


def _solve_one(blocks, cell, s_r, s_c, out_ports, rtol, maxiter, label, atol, max_newton, index,
               x0=None) -> NewtonResult:
    n, m = blocks.n, blocks.m
    lim = v_limit(cell)
    # Ohmic start with the zero-bias small-signal conductances (source at the sense potential).
    g0 = np.broadcast_to(np.asarray(cell.small_signal(blocks.v_ref), dtype=float), (n, m))
    g0 = np.where(np.isfinite(g0), g0, 0.0)
    scale = max((float(a[np.isfinite(a)].max(initial=0.0)) for a in (g0, blocks.gw, blocks.gc)), default=0.0)
    g_floor = G_FLOOR * (scale if scale > 0 else 1.0)
    if x0 is not None and np.isfinite(x0[0]).all() and np.isfinite(x0[1]).all():
        d_r, d_c, its = np.array(x0[0], dtype=float), np.array(x0[1], dtype=float), 0
    else:
        lin = blocks.with_devices(np.maximum(g0, g_floor))
        # Only a start: loose, since a selector's zero-bias conductance (~1e-12 S) makes the ohmic
        # currents so small that a tight bound stalls on rounding (a 256×256 1S1R start did at 2e-6).
        res = pcg.solve(lin, None, out_ports, rtol=max(rtol, 1e-3), maxiter=maxiter, label=label,
                        shifts=(s_r, s_c), keep_rows=True)
        d_r, d_c, its = res.d_r, res.d_c, res.iterations
    for step in range(max_newton + 1):
        i, g_d, drive = _evaluate(cell, s_r, s_c, d_r, d_c, g_floor)
        lin = blocks.with_devices(g_d)
        l_r, l_c, branch, kcl, bound = _kcl(lin, d_r, d_c, drive, out_ports)
        if bound <= rtol or kcl <= atol:
            log.debug("%s: newton converged in %d steps (bound %.2e)", label, step, bound)
            return NewtonResult(d_r, d_c, branch, i, np.array([bound]), step, its, np.array([kcl]))
        if step == max_newton:
            break
        # Inexact Newton: the linear step need only be a little more accurate than the residual.
        lin_rtol = float(np.clip(0.01 * bound if np.isfinite(bound) else 1e-3, rtol / 10.0, 1e-3))
        res = pcg.solve(lin, drive, out_ports, rtol=lin_rtol, maxiter=maxiter, label=label, x0=d_c,
                        keep_rows=True)
        its += res.iterations
        new_r, new_c = res.d_r, res.d_c
        big = float(np.max(np.abs((new_r - new_c) - (d_r - d_c)), initial=0.0))
        alpha = 1.0 if big <= lim else lim / big
        # Backtrack on the KCL residual (the full step is Newton's; shorter ones are damped).
        for _ in range(MAX_HALVINGS):
            t_r, t_c = d_r + alpha * (new_r - d_r), d_c + alpha * (new_c - d_c)
            _, g_t, drv_t = _evaluate(cell, s_r, s_c, t_r, t_c, g_floor)
            if _kcl(blocks.with_devices(g_t), t_r, t_c, drv_t, out_ports)[3] <= kcl * (1.0 - 1e-4 * alpha):
                break
            alpha *= 0.5
        d_r, d_c = t_r, t_c
    leave = np.abs(l_r[0] * lin.free_r) + np.abs(l_c[0] * lin.free_c)
    wi, wj = np.unravel_index(int(np.argmax(leave)), (n, m))
    raise ConvergenceError(
        f"newton on the {label} did not converge in {max_newton} steps: output-current error bound "
        f"{bound:.2e} > rtol {rtol:.1e} (KCL residual {kcl:.2e} A, worst at cell ({wi}, {wj}) of input "
        f"vector {index}); lower the read voltages, loosen solver.rtol or check the cell parameters")


def read_nonlinear(spec, cell: Cell, inputs, options=None, *, transpose: bool = False,
                   want_nodes: bool = False, max_newton: int = MAX_NEWTON, atol: float = 0.0):
    """Read ``spec`` (a 0T1R crossbar: its wires, ports and bias scheme) whose cells obey ``cell``
    (laws with (N, M) parameters; a :class:`SeriesCell` for 1S1R/1T1R) → :class:`ReadResult`.

    ``spec.conductances`` are not used (the cells' laws replace them). ``options.rtol`` is the
    certified bound on the output currents, ``options.maxiter`` the PCG cap per Newton step.
    The same read as the nodal engine on a spec with ``cell``/``law`` set (which also gates
    1T1R-mos transistors of unselected rows); this form takes the law as it is.
    ``atol`` (A): also accept an iterate whose ℓ1 KCL residual is below it (a caller that knows
    the rounding floor of its circuit); ``info["error_bound"]`` is then the bound reached.
    """
    import dataclasses  # noqa: PLC0415

    from cosim.circuit.build import build_circuit  # noqa: PLC0415 - solvers stay below build
    from cosim.circuit.engines.base import SolverOptions  # noqa: PLC0415
    from cosim.circuit.engines.nodal_cells import prepare  # noqa: PLC0415
    from cosim.errors import SpecError  # noqa: PLC0415

    options = options or SolverOptions()
    if spec.cell != "0T1R":
        raise SpecError("read_nonlinear takes the series element in the cell law (SeriesCell); "
                        "give a 0T1R spec, not spec.cell='1T1R' with r_access")
    circuit = dataclasses.replace(build_circuit(spec, transpose=transpose), cell_law=cell)
    prepared = prepare(circuit, options)  # refuses a method other than auto/pcg in one line
    prepared.max_newton, prepared.chord = max_newton, False  # Newton for every vector: the reference
    prepared.atol = atol
    return prepared.solve(inputs, want_nodes=want_nodes, want_cells=True)
