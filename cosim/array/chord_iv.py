"""The chord-conductance fixed point of non-ohmic devices in a linear circuit, Anderson-mixed.

Programming through the circuit with a linear engine (the spice engine, or ``iv_solver="chord"``)
finds the voltage every device sees by iterating g ← I(V(g))/V(g): solve the circuit with the
devices as conductances g, take each device's chord conductance at the voltage it sees, repeat.
Plain iteration contracts only where the device's conductance barely reacts to its voltage
through the wires. For a sinh device the loop gain of a cell is about −(x·coth x − 1)·gR/(1 + gR)
(x = V/v0, R the wire and periphery resistance it sees): at a 1.5 V Stanford–PKU SET pulse
x = 6 and the gain passes −1 once gR ≳ 0.25, so the iterates oscillate and settle slowly or not
at all (16×16 arrays from random states needed 18–74 solves, and more than 2000 on some pulses,
against a cap of 50).

Anderson mixing (Walker & Ni, SIAM J. Numer. Anal. 49(4):1715, 2011; type II, memory
:data:`MEMORY`) fixes it at the root: the next iterate is the combination of the last few images
that minimises the linearised residual, a multisecant quasi-Newton step that converges where
the plain map diverges (on a linear map it is GMRES). It runs on y = ln g, where a sinh device's
chord is nearly linear in its voltage, so every iterate stays a positive conductance. A step
whose residual grows past :data:`RESTART` times the previous one clears the memory (the secant
information no longer fits), and if the cap is reached the error names the worst cell and its
residual: never a silently unsettled state.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cosim.errors import ConvergenceError

#: Past iterates combined by Anderson mixing; restart factor of the residual norm.
MEMORY, RESTART = 5, 10.0


def chord_fixed_point(solve: Callable[[np.ndarray], np.ndarray], chord: Callable[[np.ndarray], np.ndarray],
                      g0: np.ndarray, *, rtol: float, maxiter: int, label: str) -> tuple[np.ndarray, int]:
    """Voltages (N, M) V at which every device's chord conductance equals the conductance it was
    solved with, to ``rtol`` relative; and the number of circuit solves.

    ``solve(g)`` → device voltages of the circuit with conductances g (S); ``chord(v)`` → the
    devices' chord conductances at voltages v (S; fixed devices return their fixed value).
    ``g0``: the start (the read conductances). ``label`` names the devices in the error.
    """
    g0 = np.asarray(g0, dtype=float)
    free = g0 > 0  # a device with no conductance (dead) stays open: its chord is its fixed 0 S
    y = np.log(g0[free])
    ys, fs = [], []  # images F(y_k) and residuals f_k of the iterates in memory
    last = np.inf
    for k in range(1, maxiter + 1):
        g = g0.copy()
        g[free] = np.exp(y)
        v = solve(g)
        g_new = np.asarray(chord(v), dtype=float)
        if np.any(g_new[free] <= 0) or not np.all(np.isfinite(g_new)):
            bad = np.argwhere(~(np.isfinite(g_new) & ((g_new > 0) | ~free)))[0]
            raise ConvergenceError(f"chord-conductance iteration of {label}: cell {tuple(int(a) for a in bad)} "
                                   f"has chord conductance {g_new[tuple(bad)]!r} S at {v[tuple(bad)]!r} V")
        image = np.log(g_new[free])
        f = image - y
        worst = np.max(np.abs(np.expm1(f)), initial=0.0)  # |g_new − g| / g
        if worst <= rtol:
            return v, k
        norm = float(np.linalg.norm(f))
        if norm > RESTART * last:
            ys, fs = [], []
        last = norm
        ys.append(image)
        fs.append(f)
        del ys[:-(MEMORY + 1)], fs[:-(MEMORY + 1)]
        y = _mix(ys, fs)
    res = np.zeros(g0.shape)
    res[free] = np.abs(np.expm1(f))
    cell = tuple(int(a) for a in np.unravel_index(int(np.argmax(res)), res.shape))
    raise ConvergenceError(f"chord-conductance iteration of {label} did not settle in {maxiter} circuit solves: "
                           f"cell {cell} chord conductance still changes by {res[cell]:.2e} (relative) > "
                           f"program.chord_rtol {rtol:.1e}; use iv_solver='newton' on the nodal engine or raise "
                           "program.chord_maxiter")


def _mix(ys: list[np.ndarray], fs: list[np.ndarray]) -> np.ndarray:
    """Anderson type-II update from images ``ys`` and residuals ``fs`` (oldest first)."""
    if len(fs) == 1:
        return ys[-1]
    d_f = np.stack([fs[i + 1] - fs[i] for i in range(len(fs) - 1)], axis=1)
    d_y = np.stack([ys[i + 1] - ys[i] for i in range(len(ys) - 1)], axis=1)
    gamma = np.linalg.lstsq(d_f, fs[-1], rcond=None)[0]
    new = ys[-1] - d_y @ gamma
    return new if np.all(np.isfinite(new)) else ys[-1]
