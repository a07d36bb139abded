"""Pulse-domain nonlinear LTP/LTD model (NeuroSim; Chen, Peng, Yu, IEEE TCAD 37(12), 2018, eq. 1).

NeuroSim writes the conductance as a function of the pulse number P:

    G_LTP(P) = B_p (1 - exp(-P/a_p)) + g_min,              B_p = (g_max - g_min)/(1 - exp(-p_max_p/a_p))
    G_LTD(P) = g_max - B_d (1 - exp((P - p_max_d)/a_d)),   B_d = (g_max - g_min)/(1 - exp(-p_max_d/a_d))

so p_max_p pulses take g_min to g_max and p_max_d pulses take g_max back to g_min; a_p and a_d
(pulses, > 0) set each direction's nonlinearity (small A: strongly saturating; large A: linear).
cosim keeps one state for both directions, x = (G - g_min)/(g_max - g_min) in [0, 1], on which
both curves have a linear slope:

    LTP: dx/dP = (1 - c_p x)/(a_p c_p),   LTD: dx/dP = (1 - c_d (1 - x))/(a_d c_d),   c = 1 - exp(-p_max/A)

and makes it a time-domain model by letting P advance at dP/dt = s(V)/t_ref while V exceeds the
direction's threshold (potentiation: V > v_th_p; depression: V < -v_th_d), with the overdrive
factor s = ((|V| - v_th)/(v_nom - v_th))^alpha_v. alpha_v = 0 is NeuroSim (any supra-threshold
amplitude counts as one pulse per t_ref); alpha_v > 0 makes weaker pulses (IR drop) do less. The
state stops at 0 and 1 (``hard_bounds``, NeuroSim clips G likewise).

Read current: I = G·V (ohmic) by default; with the optional card parameter ``v_nl`` > 0 an I–V
nonlinearity I = G·v_nl·sinh(V/v_nl), the odd symmetric tunnelling form of Stanford–PKU's read
law (Jiang et al., IEEE TED 63(5):1884, 2016, eq. 1) scaled so that G stays the small-signal
conductance dI/dV at 0 V: ohmic behaviour is the limit v_nl → ∞ (and v_nl = 0, the default,
means ohmic). Its half-bias nonlinearity is I(V)/I(V/2) = 2·cosh(V/(2·v_nl)). The read
conductance at v_read is the chord I(v_read)/v_read = G·sinh(u)/u, u = v_read/v_nl.

:meth:`PulseNL.exact_pulse` is the closed form of one trapezoidal pulse: it moves P by
``m = s(|A|) [width + (rise + fall)(1 - v_th/|A|)/(alpha_v + 1)] / t_ref`` along the curve,
which equals the integrated time-domain model (tested). Same equations as ``models/pulse_nl.va``.
"""

from __future__ import annotations

import numpy as np

from cosim.devices.base import DeviceModel, Params, sinhc
from cosim.devices.params import ParamSpec
from cosim.devices.pulse import Pulse


def _p(name, unit, lo, hi, doc, **kw) -> ParamSpec:
    return ParamSpec(name=name, unit=unit, lo=lo, hi=hi, doc=doc, **kw)


class PulseNL(DeviceModel):
    name = "pulse_nl"
    reference = "Chen, Peng, Yu, IEEE TCAD 37(12):3067, 2018, eq. (1) (NeuroSim LTP/LTD curves)"
    state_name = "x"
    state_unit = ""
    set_polarity = +1
    g_increases_with_state = True
    hard_bounds = True
    has_exact_pulse = True
    va_file = "pulse_nl.va"
    va_state_scale = 1.0
    va_rate = "dxdt"
    specs = (
        _p("g_min", "S", 0.0, 1.0, "conductance at the low bound"),
        _p("g_max", "S", 0.0, 1.0, "conductance at the high bound (> g_min)", lo_open=True),
        _p("a_p", "pulses", 0.0, 1e6, "LTP nonlinearity A", lo_open=True),
        _p("a_d", "pulses", 0.0, 1e6, "LTD nonlinearity A", lo_open=True),
        _p("p_max_p", "pulses", 1.0, 1e7, "LTP pulses from g_min to g_max"),
        _p("p_max_d", "pulses", 1.0, 1e7, "LTD pulses from g_max to g_min"),
        _p("v_th_p", "V", 0.0, 100.0, "potentiation threshold voltage"),
        _p("v_th_d", "V", 0.0, 100.0, "depression threshold voltage magnitude"),
        _p("v_p", "V", 0.0, 100.0, "nominal potentiation amplitude (> v_th_p)", lo_open=True),
        _p("v_d", "V", 0.0, 100.0, "nominal depression amplitude magnitude (> v_th_d)", lo_open=True),
        _p("alpha_v", "", 0.0, 10.0, "overdrive exponent (0: amplitude-independent, NeuroSim)"),
        _p("t_ref", "s", 0.0, 1.0, "nominal pulse width: one pulse step per t_ref", lo_open=True),
        _p("v_nl", "V", 0.0, 100.0, "I-V nonlinearity voltage, I = G v_nl sinh(V/v_nl) (0: ohmic)", default=0.0),
    )

    def constraints(self, params: Params) -> list[tuple[np.ndarray, str]]:
        a = {k: np.asarray(v) for k, v in params.items()}
        return [
            (a["g_max"] > a["g_min"], "g_max > g_min"),
            (a["v_p"] > a["v_th_p"], "v_p > v_th_p"),
            (a["v_d"] > a["v_th_d"], "v_d > v_th_d"),
            # sinh(V/v_nl) overflows past V/v_nl ≈ 710: 10 mV keeps any write voltage (≤ 7 V) finite.
            ((a["v_nl"] == 0) | (a["v_nl"] >= 0.01), "v_nl = 0 (ohmic) or v_nl >= 0.01 V"),
        ]

    def small_signal(self, state, params) -> np.ndarray:
        """G(x) = g_min + (g_max − g_min)·x: dI/dV at 0 V, S."""
        return params["g_min"] + (params["g_max"] - params["g_min"]) * np.asarray(state, dtype=float)

    @staticmethod
    def _shape(v, params) -> np.ndarray:
        """I/(G·V): sinh(u)/u with u = V/v_nl, or 1 where v_nl = 0 (ohmic) or V = 0."""
        v_nl = np.asarray(params.get("v_nl", 0.0), dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = np.asarray(v, dtype=float) / np.where(v_nl > 0, v_nl, 1.0)
            k = sinhc(u)
        return np.where(v_nl > 0, k, 1.0)

    @staticmethod
    def _ohmic(params) -> bool:
        v_nl = params.get("v_nl", 0.0)
        return np.ndim(v_nl) == 0 and v_nl == 0  # the common case: skip the sinh's array work

    def current(self, state, v, params):
        v = np.asarray(v, dtype=float)
        if self._ohmic(params):
            return self.small_signal(state, params) * v
        return self.small_signal(state, params) * v * self._shape(v, params)

    def state_rate(self, state, v, params):
        x = np.asarray(state, dtype=float)
        v = np.asarray(v, dtype=float)
        c_p = 1.0 - np.exp(-params["p_max_p"] / params["a_p"])
        c_d = 1.0 - np.exp(-params["p_max_d"] / params["a_d"])
        with np.errstate(invalid="ignore", divide="ignore"):  # unused branches may be NaN
            s_p = ((v - params["v_th_p"]) / (params["v_p"] - params["v_th_p"])) ** params["alpha_v"]
            s_d = ((-v - params["v_th_d"]) / (params["v_d"] - params["v_th_d"])) ** params["alpha_v"]
            up = s_p * (1.0 - c_p * x) / (params["a_p"] * c_p * params["t_ref"])
            down = -s_d * (1.0 - c_d * (1.0 - x)) / (params["a_d"] * c_d * params["t_ref"])
        return np.where((v > params["v_th_p"]) & (x < 1.0), up,
                        np.where((v < -params["v_th_d"]) & (x > 0.0), down, 0.0))

    def quiet_band(self, params):
        return -np.asarray(params["v_th_d"]), params["v_th_p"]

    def conductance(self, state, v_read, params):
        if self._ohmic(params):
            return self.small_signal(state, params)
        return self.small_signal(state, params) * self._shape(v_read, params)

    def state_bounds(self, params):
        return 0.0, 1.0

    def state_for_conductance(self, g, v_read, params):
        g_small = np.asarray(g, dtype=float) / (1.0 if self._ohmic(params) else self._shape(v_read, params))
        return (g_small - params["g_min"]) / (params["g_max"] - params["g_min"])

    # -- closed forms --------------------------------------------------------------------------
    def pulse_steps(self, pulse: Pulse, params: Params) -> tuple[np.ndarray, np.ndarray]:
        """(direction, m): +1/-1/0 per device and the pulse-number advance m ≥ 0 of one pulse."""
        amp = np.asarray(pulse.amplitude, dtype=float)
        mag = np.abs(amp)
        up = amp > params["v_th_p"]
        down = amp < -np.asarray(params["v_th_d"])
        v_th = np.where(up, params["v_th_p"], params["v_th_d"])
        v_nom = np.where(up, params["v_p"], params["v_d"])
        alpha = np.asarray(params["alpha_v"], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = ((mag - v_th) / (v_nom - v_th)) ** alpha
            ramps = (pulse.rise + pulse.fall) * (1.0 - v_th / mag) / (alpha + 1.0)
        m = np.where(up | down, s * (pulse.width + ramps) / params["t_ref"], 0.0)
        direction = np.where(up, 1, np.where(down, -1, 0))
        return direction, m

    def advance(self, x: np.ndarray, m: np.ndarray, direction: np.ndarray, params: Params) -> np.ndarray:
        """Move x by m pulse steps along the LTP (direction +1) or LTD (-1) curve, stopping at 0/1."""
        x = np.asarray(x, dtype=float)
        a_p, a_d = params["a_p"], params["a_d"]
        pm_p, pm_d = params["p_max_p"], params["p_max_d"]
        c_p = 1.0 - np.exp(-pm_p / a_p)
        c_d = 1.0 - np.exp(-pm_d / a_d)
        with np.errstate(invalid="ignore", divide="ignore"):
            p_up = np.minimum(-a_p * np.log1p(-c_p * x) + m, pm_p)
            x_up = -np.expm1(-p_up / a_p) / c_p
            p_dn = np.maximum(pm_d + a_d * np.log1p(-c_d * (1.0 - x)) - m, 0.0)
            x_dn = 1.0 + np.expm1((p_dn - pm_d) / a_d) / c_d
        # Land exactly on the bound when P reaches it: the x -> P -> x round trip loses ~1e-12
        # pulses (more for large A), which would otherwise leave x a rounding error short of 1.
        tol = 1e-9 * (1.0 + pm_p)
        x_up = np.where((x >= 1.0) | (p_up >= pm_p - tol), np.maximum(x, 1.0), np.minimum(x_up, 1.0))
        x_dn = np.where((x <= 0.0) | (p_dn <= 1e-9 * (1.0 + pm_d)), np.minimum(x, 0.0), np.maximum(x_dn, 0.0))
        return np.where(direction > 0, x_up, np.where(direction < 0, x_dn, x))

    def exact_pulse(self, state, pulse, params):
        direction, m = self.pulse_steps(pulse, params)
        return self.advance(state, m, direction, params)
