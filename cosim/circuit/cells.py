"""Cell laws: the current–voltage relation each crossbar cell obeys, as pure vectorised numpy.

The circuit layer may not import the device models (DESIGN.md §1), so the laws a nonlinear
solver needs live here as closed forms with their derivatives; :mod:`cosim.array.cells` maps a
device's state and card onto these parameters (and a test holds each map to the device model's
own ``current``). Every law is elementwise over arrays of any shape (usually the (N, M) cells);
parameters broadcast against the voltages. SI throughout: V, A, S.

Each law gives ``branch(v_a, v_b) → (i, di/dv_a, di/dv_b)``, the current from terminal a to
terminal b at terminal potentials v_a, v_b. Two-terminal laws depend on v = v_a − v_b only, so
di/dv_b = −di/dv_a; the access transistor depends on its source potential too (its gate is held
by the word line), so it does not.

- :class:`Ohmic`: i = g·v. VTEAM is ohmic at a fixed state (``models/vteam.va``: i = v/R(w), with
  R linear or exponential in w), so a VTEAM read is exactly ohmic with g = 1/R(w).
- :class:`Sinh`: i = g_lin·v + a·sinh(v/v0). Stanford–PKU (Jiang et al., IEEE TED 63(5):1884,
  2016, eq. 1) is a = i0·exp(−gap/g0), g_lin = 0; the two-terminal selector of
  ``models/selector.va`` is a = i_s, v0 = v_s plus its leakage g_lin = g_leak.
- :class:`Mosfet`: a level-1 (Shichman–Hodges, IEEE JSSC 3(3):285, 1968) n-channel access
  transistor with threshold ``vt``, transconductance factor ``beta`` = kp·W/L and channel-length
  modulation ``lam``, gate at ``v_gate``, source and drain interchangeable (the lower terminal is
  the source), as ``models/nmos_l1.va`` and SPICE's level 1 without body effect.

:class:`SeriesCell` puts a device law (row node → internal node) in series with an access law
(internal node → column node) and eliminates the internal node cell by cell: the internal
potential solves I_dev(u_r − u_m) = I_acc(u_m, u_c) exactly (safeguarded Newton inside the
bracket [min(u_r, u_c), max(u_r, u_c)], where both currents are monotone), and the cell's
derivatives follow by implicit differentiation, so a nonlinear array solver sees one
two-port per cell and keeps the crossbar's line-block structure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from cosim.errors import ConvergenceError

Branch = tuple[np.ndarray, np.ndarray, np.ndarray]


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


@dataclass(frozen=True, slots=True)
class Ohmic:
    """i = g·v with g in S (≥ 0)."""

    g: np.ndarray | float

    def branch(self, v_a, v_b) -> Branch:
        g = np.broadcast_to(_f(self.g), np.broadcast(_f(v_a), _f(v_b)).shape)
        i = g * (_f(v_a) - _f(v_b))
        return i, g.copy(), -g

    def small_signal(self, v_ref=0.0) -> np.ndarray:
        """dI/dV at zero bias, S."""
        return _f(self.g)


@dataclass(frozen=True, slots=True)
class Sinh:
    """i = g_lin·v + a·sinh(v/v0): a in A (≥ 0), v0 in V (> 0), g_lin in S (≥ 0)."""

    a: np.ndarray | float
    v0: np.ndarray | float
    g_lin: np.ndarray | float = 0.0

    def branch(self, v_a, v_b) -> Branch:
        x = (_f(v_a) - _f(v_b)) / self.v0
        # sinh overflows past x ≈ 710; no cell in a real read comes near (v0 ≥ 10 mV at 7 V).
        i = self.g_lin * (x * self.v0) + self.a * np.sinh(x)
        g = self.g_lin + self.a * np.cosh(x) / self.v0
        return i, g, -g

    def small_signal(self, v_ref=0.0) -> np.ndarray:
        return _f(self.g_lin) + _f(self.a) / _f(self.v0)

    @classmethod
    def from_small_signal(cls, g, v0) -> Sinh:
        """i = g·v0·sinh(v/v0): small-signal conductance g (S), nonlinearity voltage v0 (V);
        ohmic (i = g·v) in the limit v0 → ∞."""
        return cls(_f(g) * _f(v0), _f(v0))


@dataclass(frozen=True, slots=True)
class Mosfet:
    """Level-1 n-channel transistor between a and b, gate at ``v_gate`` (V).

    beta = kp·W/L in A/V² (> 0), vt threshold in V, lam channel-length modulation in 1/V (≥ 0).
    With the source the lower of the two terminals, v_ov = v_gate − v_s − vt and v_ds ≥ 0:
    cut-off (v_ov ≤ 0) i = 0; linear (v_ds < v_ov) i = beta·(v_ov − v_ds/2)·v_ds·(1 + lam·v_ds);
    saturation i = beta/2·v_ov²·(1 + lam·v_ds) (SPICE level 1, no body effect).
    """

    beta: np.ndarray | float
    vt: np.ndarray | float
    lam: np.ndarray | float
    v_gate: np.ndarray | float

    def gated(self, on: np.ndarray) -> Mosfet:
        """These transistors with the word line on where ``on`` (a boolean array broadcast to
        the cells, e.g. (N, 1) per row) and at 0 V elsewhere: a deselected row's gates off."""
        on = np.asarray(on, dtype=bool)
        v = np.asarray(self.v_gate, dtype=float)
        shape = np.broadcast_shapes(on.shape, v.shape)
        return dataclasses.replace(self, v_gate=np.where(on, np.broadcast_to(v, shape), 0.0))

    def _forward(self, v_d, v_s) -> Branch:
        """(i, di/dv_d, di/dv_s) for v_d ≥ v_s."""
        vds = v_d - v_s
        vov = self.v_gate - v_s - self.vt
        clm = 1.0 + self.lam * vds
        on = vov > 0
        lin = on & (vds < vov)
        sat = on & ~lin
        vov_p = np.where(on, vov, 0.0)
        core_lin = (vov_p - 0.5 * vds) * vds
        core_sat = 0.5 * vov_p * vov_p
        core = np.where(lin, core_lin, np.where(sat, core_sat, 0.0))
        # ∂core/∂vds and ∂core/∂vov per region
        dc_dvds = np.where(lin, vov_p - vds, 0.0)
        dc_dvov = np.where(lin, vds, np.where(sat, vov_p, 0.0))
        i = self.beta * core * clm
        gds = self.beta * (dc_dvds * clm + core * self.lam)
        gm = self.beta * dc_dvov * clm
        # v_d enters through vds; v_s through vds (−1) and vov (−1).
        return i, gds, -gds - gm

    def branch(self, v_a, v_b) -> Branch:
        v_a, v_b = np.broadcast_arrays(_f(v_a), _f(v_b))
        fwd = v_a >= v_b
        d = np.where(fwd, v_a, v_b)
        s = np.where(fwd, v_b, v_a)
        i, g_d, g_s = self._forward(d, s)
        # Reversed: the current from a to b is minus the channel current from b (drain) to a.
        return (np.where(fwd, i, -i), np.where(fwd, g_d, -g_s), np.where(fwd, g_s, -g_d))

    def small_signal(self, v_ref=0.0) -> np.ndarray:
        """Channel conductance at zero v_ds with the source at ``v_ref`` (V), S."""
        vov = _f(self.v_gate) - _f(v_ref) - _f(self.vt)
        return _f(self.beta) * np.maximum(vov, 0.0)


Law = Ohmic | Sinh | Mosfet


@dataclass(frozen=True, slots=True)
class SeriesCell:
    """A device law (row → internal node) in series with an access law (internal → column).

    ``tol``: the internal node is solved until its KCL mismatch is below ``tol`` times the cell
    current scale (relative), ``maxiter`` safeguarded Newton steps at most.
    """

    device: Law
    access: Law
    tol: float = 1e-14
    maxiter: int = 100

    def mid(self, u_r, u_c) -> np.ndarray:
        """Internal-node potentials (V) at which both elements carry the same current."""
        u_r, u_c = np.broadcast_arrays(_f(u_r), _f(u_c))
        lo, hi = np.minimum(u_r, u_c), np.maximum(u_r, u_c)
        # Start from the ohmic divider of the zero-bias conductances (exact for two resistors).
        g1 = np.broadcast_to(self.device.small_signal(), u_r.shape)
        g2 = np.broadcast_to(self.access.small_signal(u_c), u_r.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = (g1 * u_r + g2 * u_c) / (g1 + g2)
        m = np.clip(np.where(np.isfinite(m), m, 0.5 * (lo + hi)), lo, hi)
        # Steps below a few ulps of the terminal potentials are rounding: the cell is solved.
        floor = 4.0 * np.finfo(float).eps * (np.abs(u_r) + np.abs(u_c))
        # f at the bracket ends (f(lo) ≥ 0 ≥ f(hi)) for the regula-falsi fallback.
        f_lo, f_hi = self._mismatch(u_r, u_c, lo), self._mismatch(u_r, u_c, hi)
        for _ in range(self.maxiter):
            i_d, _, gd_b = self.device.branch(u_r, m)
            i_t, gt_a, _ = self.access.branch(m, u_c)
            f = i_d - i_t  # non-increasing in m: df = ∂i_d/∂m − ∂i_t/∂m ≤ 0
            df = gd_b - gt_a
            small = np.abs(f) <= self.tol * np.maximum(np.abs(i_d), np.abs(i_t))
            if np.all(small):
                return m
            # f > 0 means the root lies above m: shrink the bracket. Newton where its step stays
            # inside; otherwise the Illinois regula falsi (Newton overshoots where the selector's
            # exponential and the device's curvature disagree, and bisection would take ~50 steps).
            up, down = f > 0, f < 0
            f_lo = np.where(up, f, np.where(down, 0.5 * f_lo, f_lo))
            f_hi = np.where(down, f, np.where(up, 0.5 * f_hi, f_hi))
            lo = np.where(up, m, lo)
            hi = np.where(down, m, hi)
            with np.errstate(invalid="ignore", divide="ignore"):
                step = m - f / df
                falsi = lo + f_lo * (hi - lo) / (f_lo - f_hi)
            # Closed bracket: at convergence both steps land on an end of it.
            inside = np.isfinite(step) & (step >= lo) & (step <= hi)
            ok_falsi = np.isfinite(falsi) & (falsi >= lo) & (falsi <= hi)
            new = np.where(small, m, np.where(inside, step, np.where(ok_falsi, falsi, 0.5 * (lo + hi))))
            if np.all(small | (np.abs(new - m) <= floor)):
                return new
            m = new
        i_d = self.device.branch(u_r, m)[0]
        i_t = self.access.branch(m, u_c)[0]
        worst = float(np.max(np.abs(i_d - i_t) / np.maximum(np.maximum(np.abs(i_d), np.abs(i_t)), 1e-300)))
        if worst > 1e-9:
            raise ConvergenceError(f"series cell: the internal node did not converge in {self.maxiter} "
                                   f"steps (relative current mismatch {worst:.1e})")
        return m

    def _mismatch(self, u_r, u_c, m) -> np.ndarray:
        return self.device.branch(u_r, m)[0] - self.access.branch(m, u_c)[0]

    def branch(self, u_r, u_c) -> Branch:
        """(cell current row → column, ∂i/∂u_r, ∂i/∂u_c) with the internal node eliminated."""
        m = self.mid(u_r, u_c)
        i, a, _ = self.device.branch(u_r, m)
        _, t_m, t_c = self.access.branch(m, u_c)
        # i = I_dev(u_r − u_m) = I_acc(u_m, u_c): implicit differentiation through u_m.
        den = a + t_m
        with np.errstate(invalid="ignore", divide="ignore"):
            g_r = np.where(den > 0, a * t_m / den, 0.0)
            g_c = np.where(den > 0, a * t_c / den, 0.0)
        return i, g_r, g_c

    def small_signal(self, v_ref=0.0) -> np.ndarray:
        g1, g2 = _f(self.device.small_signal()), _f(self.access.small_signal(v_ref))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(g1 + g2 > 0, g1 * g2 / (g1 + g2), 0.0)


Cell = Law | SeriesCell
