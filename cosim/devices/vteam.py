"""VTEAM (Kvatinsky, Ramadan, Friedman, Kolodny, IEEE TCAS-II 62(8), 2015) in numpy.

State ``w`` (m) in [w_on, w_off]; ``u = (w - w_on)/(w_off - w_on)``.

- Kinetics, paper eq. (1): dw/dt = k_off (v/v_off - 1)^alpha_off f(u) for v > v_off > 0,
  k_on (v/v_on - 1)^alpha_on f(u) for v < v_on < 0, and 0 in between (no drift while reading).
- Resistance, paper eq. (4): linear r_on + (r_off - r_on) u, or exponential
  r_on (r_off/r_on)^u; i = v / R(u) (ohmic, so the read conductance is 1/R for any v_read).
- Window ``window = 0``: Biolek, f = 1 - |u - stp(-i)|^(2 p_win) (Radioengineering 18, 2009):
  zero at the bound the drive moves towards, so the state approaches but never crosses it and
  leaves it freely when the drive reverses. ``window = 1``: Joglekar, f = 1 - |2u - 1|^(2 p_win)
  (Eur. J. Phys. 30, 2009): zero at both bounds, so a device placed exactly on a bound sticks
  there (the known "stick effect"; keep states strictly inside when using it).

Negative voltage raises the conductance (SET), positive lowers it (RESET): Kvatinsky's polarity.
Same equations as ``models/vteam.va``.
"""

from __future__ import annotations

import numpy as np

from cosim.devices.base import DeviceModel, Params
from cosim.devices.params import ParamSpec


def _p(name, unit, lo, hi, doc, **kw) -> ParamSpec:
    return ParamSpec(name=name, unit=unit, lo=lo, hi=hi, doc=doc, **kw)


class VTEAM(DeviceModel):
    name = "vteam"
    reference = "Kvatinsky et al., IEEE TCAS-II 62(8):786, 2015, eqs. (1)-(4); Biolek/Joglekar windows"
    state_name = "w"
    state_unit = "m"
    set_polarity = -1
    g_increases_with_state = False
    hard_bounds = False
    va_file = "vteam.va"
    va_state_scale = 1e-9
    va_rate = "dwdt"
    specs = (
        _p("r_on", "Ω", 0.0, 1e12, "ON resistance", lo_open=True),
        _p("r_off", "Ω", 0.0, 1e12, "OFF resistance (> r_on)", lo_open=True),
        _p("w_on", "m", 0.0, 1e-6, "ON bound of the state"),
        _p("w_off", "m", 0.0, 1e-6, "OFF bound of the state (> w_on)", lo_open=True),
        _p("k_on", "m/s", -1e6, 0.0, "ON rate constant (< 0)", hi_open=True),
        _p("k_off", "m/s", 0.0, 1e6, "OFF rate constant (> 0)", lo_open=True),
        _p("alpha_on", "", 0.0, 20.0, "ON exponent", lo_open=True),
        _p("alpha_off", "", 0.0, 20.0, "OFF exponent", lo_open=True),
        _p("v_on", "V", -20.0, 0.0, "ON threshold voltage (< 0)", hi_open=True),
        _p("v_off", "V", 0.0, 20.0, "OFF threshold voltage (> 0)", lo_open=True),
        _p("window", "", 0.0, 1.0, "window function: 0 Biolek, 1 Joglekar", integer=True),
        _p("p_win", "", 1.0, 20.0, "window exponent p"),
        _p("iv", "", 0.0, 1.0, "resistance law: 0 linear, 1 exponential", integer=True),
    )

    def constraints(self, params: Params) -> list[tuple[np.ndarray, str]]:
        return [
            (np.asarray(params["r_off"]) > np.asarray(params["r_on"]), "r_off > r_on"),
            (np.asarray(params["w_off"]) > np.asarray(params["w_on"]), "w_off > w_on"),
        ]

    @staticmethod
    def _u(state, params):
        return (np.asarray(state, dtype=float) - params["w_on"]) / (params["w_off"] - params["w_on"])

    def _resistance(self, u, params):
        lin = params["r_on"] + (params["r_off"] - params["r_on"]) * u
        expo = params["r_on"] * np.exp(np.log(params["r_off"] / params["r_on"]) * u)
        return np.where(np.asarray(params["iv"]) == 0, lin, expo)

    def current(self, state, v, params):
        return np.asarray(v, dtype=float) / self._resistance(self._u(state, params), params)

    @staticmethod
    def _window(u, stp, params):
        two_p = 2.0 * np.asarray(params["p_win"], dtype=float)
        # An integrator's trial stage may probe a state far outside the bounds (a 1 V pulse on a
        # 0.2 V card); the window then overflows to -inf and the step is rejected, as it should.
        with np.errstate(over="ignore"):
            return np.where(np.asarray(params["window"]) == 0,
                            1.0 - np.abs(u - stp) ** two_p,
                            1.0 - np.abs(2.0 * u - 1.0) ** two_p)

    def state_rate(self, state, v, params):
        u = self._u(state, params)
        v = np.asarray(v, dtype=float)
        f = self._window(u, np.where(v <= 0.0, 1.0, 0.0), params)
        with np.errstate(invalid="ignore", over="ignore"):  # the unused branch may take a negative base
            off = params["k_off"] * (v / params["v_off"] - 1.0) ** params["alpha_off"] * f
            on = params["k_on"] * (v / params["v_on"] - 1.0) ** params["alpha_on"] * f
        rate = np.where(v > params["v_off"], off, np.where(v < params["v_on"], on, 0.0))
        return np.broadcast_to(rate, np.broadcast_shapes(u.shape, v.shape)).astype(float)

    # -- whole runs of equal pulses (cosim.devices.fit.simulate_curve) ---------------------------
    # The rate is separable, k(v)·f(u), and the window's branch depends only on the sign of v:
    # a pulse advances "drive time" τ by m = ∫|k(v(t))| dt and moves w along the flow of
    # dw/dτ = ±f(u), whatever w is. n equal pulses are that flow at τ = n·m: one ODE solve for a
    # whole run instead of n pulse integrations, equal to them within the integrators' tolerance.
    def pulse_steps(self, pulse, params) -> tuple[np.ndarray, np.ndarray]:
        """(direction, m): +1 (w grows, RESET) / -1 / 0 per parameter set, and τ of one pulse, m
        (NaN for a pulse that drives more than the window: integrate those one by one)."""
        amp = np.asarray(pulse.amplitude, dtype=float)
        off, on = amp > params["v_off"], amp < params["v_on"]
        v_th = np.where(off, params["v_off"], params["v_on"])
        k = np.abs(np.where(off, params["k_off"], params["k_on"]))
        alpha = np.asarray(np.where(off, params["alpha_off"], params["alpha_on"]), dtype=float)
        m = np.zeros(np.broadcast(amp, v_th, alpha).shape)
        # over: a pulse of 1e200 V overflows to inf, which the NaN below sends pulse by pulse
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for duration, f0, f1 in pulse.segments():  # linear in v: ∫(x - 1)^α dt in closed form
                x0, x1 = amp * f0 / v_th, amp * f1 / v_th
                if f0 == f1:
                    m = m + duration * np.maximum(x0 - 1.0, 0.0) ** alpha
                else:
                    big = (np.maximum(x1 - 1.0, 0.0) ** (alpha + 1) - np.maximum(x0 - 1.0, 0.0) ** (alpha + 1))
                    m = m + duration * big / ((alpha + 1) * (x1 - x0))
            m = np.where(off | on, k * m, 0.0)
        direction = np.where(off, 1, np.where(on, -1, 0))
        # A pulse that drives more than the whole window (1e30 V) has no run worth a flow, and its
        # flow is too stiff to follow: NaN sends the caller to pulse-by-pulse integration.
        return direction, np.where(np.isfinite(m) & (m <= np.abs(params["w_off"] - params["w_on"])), m, np.nan)

    def advance(self, x: np.ndarray, tau: np.ndarray, direction: np.ndarray, params: Params) -> np.ndarray:
        """States (K, R) after drive times ``tau`` (K, R, nondecreasing per row) from ``x`` (K, 1).

        Rows whose times are proportional (one run of pulses for K parameter sets: τ = n·m_k)
        are one vectorised solve in the shared variable σ = τ / τ_end.
        """
        from scipy.integrate import solve_ivp  # noqa: PLC0415 - keep `import cosim.devices` light

        tau = np.asarray(tau, dtype=float)
        kk, rows = tau.shape
        x0 = np.broadcast_to(np.asarray(x, dtype=float), (kk, 1))[:, 0]
        sign = np.broadcast_to(np.asarray(direction, dtype=float), (kk, 1))[:, 0]
        out = np.repeat(x0[:, None], rows, axis=1)
        end = tau[:, -1]
        live = (sign != 0) & (end > 0)
        if not live.any():
            return out
        sigma = tau[live] / end[live, None]
        groups = [np.flatnonzero(live)] if np.allclose(sigma, sigma[0], rtol=0, atol=1e-13) else \
            [np.array([i]) for i in np.flatnonzero(live)]
        for idx in groups:
            p = {n: (np.ravel(v)[idx] if np.size(v) > 1 else np.ravel(v)[0]) for n, v in params.items()}
            span = p["w_off"] - p["w_on"]
            stp = np.where(sign[idx] < 0, 1.0, 0.0)
            rate = sign[idx] * end[idx]

            def flow(_s, w, p=p, stp=stp, rate=rate):
                return rate * self._window(self._u(w, p), stp, p)

            with np.errstate(over="ignore", invalid="ignore"):  # trial stages far outside: rejected
                sol = solve_ivp(flow, (0.0, 1.0), x0[idx], method="DOP853", t_eval=tau[idx[0]] / end[idx[0]],
                                rtol=1e-11, atol=1e-13 * np.min(span))
            if sol.status != 0:  # a flow the solver cannot follow: NaN, a result nobody can read
                out[idx] = np.nan
                continue
            # The flow is monotone (f ≥ 0 in the window) and stays in it; near the bound it
            # approaches, dense output wiggles by ~atol, which would read as a curve that turns.
            ys = np.clip(sol.y, np.minimum(p["w_on"], p["w_off"]), np.maximum(p["w_on"], p["w_off"]))
            up = sign[idx, None] > 0
            out[idx] = np.where(up, np.maximum.accumulate(ys, axis=1), np.minimum.accumulate(ys, axis=1))
        return out

    def quiet_band(self, params):
        return params["v_on"], params["v_off"]

    def conductance(self, state, v_read, params):
        return 1.0 / self._resistance(self._u(state, params), params)

    def state_bounds(self, params):
        return params["w_on"], params["w_off"]

    def state_for_conductance(self, g, v_read, params):
        r = 1.0 / np.asarray(g, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            u_lin = (r - params["r_on"]) / (params["r_off"] - params["r_on"])
            u_exp = np.log(r / params["r_on"]) / np.log(params["r_off"] / params["r_on"])
        u = np.where(np.asarray(params["iv"]) == 0, u_lin, u_exp)
        return params["w_on"] + u * (params["w_off"] - params["w_on"])
