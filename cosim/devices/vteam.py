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

    def state_rate(self, state, v, params):
        u = self._u(state, params)
        v = np.asarray(v, dtype=float)
        two_p = 2.0 * np.asarray(params["p_win"], dtype=float)
        stp = np.where(v <= 0.0, 1.0, 0.0)
        # An integrator's trial stage may probe a state far outside the bounds (a 1 V pulse on a
        # 0.2 V card); the window then overflows to -inf and the step is rejected, as it should.
        with np.errstate(over="ignore"):
            f = np.where(np.asarray(params["window"]) == 0,
                         1.0 - np.abs(u - stp) ** two_p,
                         1.0 - np.abs(2.0 * u - 1.0) ** two_p)
        with np.errstate(invalid="ignore", over="ignore"):  # the unused branch may take a negative base
            off = params["k_off"] * (v / params["v_off"] - 1.0) ** params["alpha_off"] * f
            on = params["k_on"] * (v / params["v_on"] - 1.0) ** params["alpha_on"] * f
        rate = np.where(v > params["v_off"], off, np.where(v < params["v_on"], on, 0.0))
        return np.broadcast_to(rate, np.broadcast_shapes(u.shape, v.shape)).astype(float)

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
