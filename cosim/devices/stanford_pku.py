"""Stanford–PKU metal-oxide RRAM gap model (Jiang et al., IEEE TED 63(5):1884, 2016) in numpy.

State: the gap ``g`` (m) between filament tip and electrode, in [g_min, g_max].

- Current, paper eq. (1): I = i0 exp(-g/g0) sinh(V/v0) (tunnelling; strongly nonlinear I–V,
  so the read conductance I(v_read)/v_read depends on v_read).
- Gap rate, paper eqs. (2)-(4): dg/dt = -vel0 exp(-q ea/(kB T)) sinh(gamma a0/tox · qV/(kB T)),
  with the field-enhancement factor gamma = gamma0 - beta (g / 1 nm)^3, set to 0 below the field
  threshold gamma |V| / tox < f_min.
- Self-heating, paper eq. (5): T = t0 + |V I| rth (the positive feedback behind the abrupt SET).
- The gap stops at g_min and g_max (``hard_bounds``): the rate is 0 where it would leave them.

The source's stochastic gap term (deltaGap0) is omitted; cycle-to-cycle noise is drawn per pulse
by :mod:`cosim.devices.population`. ``ea`` is in eV, everything else SI. Positive V raises the
conductance (SET). Same equations as ``models/stanford_pku.va``.
"""

from __future__ import annotations

import numpy as np

from cosim.devices.base import DeviceModel, Params, sinhc
from cosim.devices.params import ParamSpec

KB_OVER_Q = 1.380649e-23 / 1.602176634e-19  # V/K, exact SI 2019 constants (as in the .va file)


def _p(name, unit, lo, hi, doc, **kw) -> ParamSpec:
    return ParamSpec(name=name, unit=unit, lo=lo, hi=hi, doc=doc, **kw)


class StanfordPKU(DeviceModel):
    name = "stanford_pku"
    reference = "Jiang et al., IEEE TED 63(5):1884, 2016, eqs. (1)-(5); Stanford RRAM v1.0.0"
    state_name = "gap"
    state_unit = "m"
    set_polarity = +1
    g_increases_with_state = False
    hard_bounds = True
    va_file = "stanford_pku.va"
    va_state_scale = 1e-9
    va_rate = "dgdt"
    specs = (
        _p("i0", "A", 0.0, 1.0, "current prefactor", lo_open=True),
        _p("g0", "m", 0.0, 1e-8, "gap decay length of the current", lo_open=True),
        _p("v0", "V", 0.0, 10.0, "I–V nonlinearity voltage", lo_open=True),
        _p("vel0", "m/s", 0.0, 1e6, "gap velocity prefactor", lo_open=True),
        _p("beta", "", 0.0, 100.0, "decay of the field enhancement with the gap"),
        _p("gamma0", "", 0.0, 1000.0, "local field enhancement factor", lo_open=True),
        _p("ea", "eV", 0.0, 5.0, "activation energy of oxygen-vacancy generation", lo_open=True),
        _p("a0", "m", 0.0, 1e-8, "atomic hopping distance", lo_open=True),
        _p("tox", "m", 0.0, 1e-6, "oxide thickness", lo_open=True),
        _p("f_min", "V/m", 0.0, 1e11, "minimum field for gap motion"),
        _p("t0", "K", 0.0, 2000.0, "ambient temperature", lo_open=True),
        _p("rth", "K/W", 0.0, 1e9, "thermal resistance"),
        _p("g_min", "m", 0.0, 1e-8, "smallest gap (ON bound)", lo_open=True),
        _p("g_max", "m", 0.0, 1e-8, "largest gap (OFF bound, > g_min)", lo_open=True),
    )

    def constraints(self, params: Params) -> list[tuple[np.ndarray, str]]:
        return [(np.asarray(params["g_max"]) > np.asarray(params["g_min"]), "g_max > g_min")]

    def current(self, state, v, params):
        v = np.asarray(v, dtype=float)
        return params["i0"] * np.exp(-np.asarray(state, dtype=float) / params["g0"]) * np.sinh(v / params["v0"])

    def state_rate(self, state, v, params):
        gap = np.asarray(state, dtype=float)
        v = np.asarray(v, dtype=float)
        i = self.current(gap, v, params)
        kt_q = KB_OVER_Q * (params["t0"] + np.abs(v * i) * params["rth"])
        gam = params["gamma0"] - params["beta"] * (gap / 1e-9) ** 3.0
        gam = np.where(gam * np.abs(v) / params["tox"] < params["f_min"], 0.0, gam)
        rate = -params["vel0"] * np.exp(-params["ea"] / kt_q) * np.sinh(gam * params["a0"] / params["tox"] * v / kt_q)
        stop = ((gap <= params["g_min"]) & (rate < 0.0)) | ((gap >= params["g_max"]) & (rate > 0.0))
        return np.where(stop, 0.0, rate)

    def quiet_band(self, params):
        # gamma ≤ gamma0 (beta ≥ 0), so below F_min·tox/gamma0 the field threshold holds at any gap.
        v = np.asarray(params["f_min"]) * params["tox"] / params["gamma0"]
        return -v, v

    def conductance(self, state, v_read, params):
        # I(v)/v written with sinhc so v_read = 0 gives the small-signal limit i0 exp(-g/g0)/v0.
        x = np.asarray(v_read, dtype=float) / params["v0"]
        return params["i0"] * np.exp(-np.asarray(state, dtype=float) / params["g0"]) * sinhc(x) / params["v0"]

    def state_bounds(self, params):
        return params["g_min"], params["g_max"]

    def state_for_conductance(self, g, v_read, params):
        x = np.asarray(v_read, dtype=float) / params["v0"]
        scale = params["i0"] * sinhc(x) / params["v0"]
        with np.errstate(invalid="ignore", divide="ignore"):
            return -params["g0"] * np.log(np.asarray(g, dtype=float) / scale)
