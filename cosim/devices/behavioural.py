"""Behavioural SPICE subcircuits of the compact models, for ngspice transients (pure text).

Debian's ngspice 39 has no OSDI, so the Verilog-A files in ``models/`` cannot be loaded there.
Each model is written instead with built-in elements only, from the same equations as its numpy
twin (:mod:`cosim.devices.vteam`, :mod:`~cosim.devices.pulse_nl`, :mod:`~cosim.devices.stanford_pku`):

- the state lives on an internal node ``x`` as ``V(x) = state / scale`` (``scale`` is the model's
  ``va_state_scale``: 1 nm for VTEAM and Stanford–PKU, 1 for pulse_nl, so the node voltage is of
  order 1 V and SPICE's tolerances fit it), across a 1 F capacitor ``cx`` whose ``ic`` is the
  initial state; a B-source pushes the current ``d state/dt / scale`` into it, so
  ``dV(x)/dt`` is the state rate;
- a B-source ``bd`` from ``p`` to ``n`` carries the device current I(state, V(p, n));
- thresholds, windows and hard stops are written with ngspice's ``a ? b : c``, ``&&`` and ``||``
  (the models are piecewise, like their numpy twins); ``pow`` bases are guarded with ``max`` so
  that a branch ngspice evaluates but does not select never yields NaN. The device current uses
  the state clamped to its bounds, so a time-step overshoot past a hard stop cannot show up in I.

Parameters are subcircuit parameters (``params:``), so an array netlist can give every instance
its own device-to-device values; mode switches (VTEAM ``window`` and ``iv``) pick the expression
when the text is generated and cannot be overridden per instance. Start a transient with ``uic``
(every state is an equilibrium at 0 V; the capacitor's ``ic={x0}`` sets it).

Nothing here runs ngspice or imports :mod:`cosim.circuit`; :mod:`cosim.array.transient` runs
decks and builds array netlists from these subcircuits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cosim.devices.pulse import Pulse
from cosim.devices.registry import MODELS
from cosim.devices.stanford_pku import KB_OVER_Q
from cosim.errors import SpecError

# Guard for pow() bases: positive and tiny, so pow(base, y ≥ 0) is finite with a finite slope.
_TINY = "1e-300"


def num(x: float) -> str:
    """A float in shortest round-trip text, which ngspice reads exactly (no SI suffixes)."""
    x = float(x)
    if not math.isfinite(x):
        raise SpecError(f"cannot write the non-finite value {x!r} into a SPICE deck")
    return repr(x)


def subckt_name(model_name: str) -> str:
    """Name of the behavioural subcircuit of ``model_name`` (``cosim_vteam``, ...)."""
    _model(model_name)
    return f"cosim_{model_name}"


def state_scale(model_name: str) -> float:
    """State units per volt on the state node: state = V(x) · scale."""
    return float(_model(model_name).va_state_scale)


def _model(name: str):
    if name not in MODELS:
        raise SpecError(f"model {name!r} has no behavioural subcircuit; expected one of {', '.join(MODELS)}")
    return MODELS[name]


# -- the equations, one function per model -----------------------------------------------------
def _vteam(p: Mapping[str, float]) -> list[str]:
    v = "V(p,n)"
    u = "V(u)"
    if int(p["iv"]) == 0:
        r = f"({{r_on}} + {{dr}}*max(min({u}, 1), 0))"
    else:
        r = f"({{r_on}}*exp({{lam}}*max(min({u}, 1), 0)))"
    if int(p["window"]) == 0:  # Biolek: stp = 1 for v <= 0, 0 for v > 0
        f_off = f"(1 - pow(abs({u}), {{two_p}}))"
        f_on = f"(1 - pow(abs({u} - 1), {{two_p}}))"
    else:  # Joglekar
        f_off = f_on = f"(1 - pow(abs(2*{u} - 1), {{two_p}}))"
    off = f"{{k_off}}*pow(max({v}/{{v_off}} - 1, {_TINY}), {{alpha_off}})*{f_off}"
    on = f"{{k_on}}*pow(max({v}/{{v_on}} - 1, {_TINY}), {{alpha_on}})*{f_on}"
    return [
        ".param two_p={2*p_win}",
        ".param dr={r_off-r_on}",
        ".param lam={ln(r_off/r_on)}",
        ".param dw={w_off-w_on}",
        "* u: normalised state (w - w_on)/(w_off - w_on), as a node voltage",
        "bu u 0 V = (V(x)*1e-9 - {w_on})/{dw}",
        f"bd p n I = {v}/{r}",
        f"bx 0 x I = ({v} > {{v_off}} ? {off} : ({v} < {{v_on}} ? {on} : 0))/1e-9",
    ]


def _pulse_nl(p: Mapping[str, float]) -> list[str]:
    v = "V(p,n)"
    # v_nl is a mode switch here (like VTEAM's iv): ohmic or sinh picked when the text is written.
    iv = f"{{v_nl}}*sinh({v}/{{v_nl}})" if float(np.max(p.get("v_nl", 0.0))) > 0 else v
    s_p = f"pow(max(({v} - {{v_th_p}})/{{dv_p}}, {_TINY}), {{alpha_v}})"
    s_d = f"pow(max((-{v} - {{v_th_d}})/{{dv_d}}, {_TINY}), {{alpha_v}})"
    up = f"{s_p}*(1 - {{c_p}}*V(x))/{{tau_p}}"
    down = f"-{s_d}*(1 - {{c_d}}*(1 - V(x)))/{{tau_d}}"
    return [
        ".param c_p={1-exp(-p_max_p/a_p)}",
        ".param c_d={1-exp(-p_max_d/a_d)}",
        ".param tau_p={a_p*c_p*t_ref}",
        ".param tau_d={a_d*c_d*t_ref}",
        ".param dv_p={v_p-v_th_p}",
        ".param dv_d={v_d-v_th_d}",
        ".param dg={g_max-g_min}",
        f"bd p n I = ({{g_min}} + {{dg}}*max(min(V(x), 1), 0))*{iv}",
        f"bx 0 x I = ({v} > {{v_th_p}} && V(x) < 1) ? {up} : "
        f"(({v} < -{{v_th_d}} && V(x) > 0) ? {down} : 0)",
    ]


def _stanford_pku(p: Mapping[str, float]) -> list[str]:
    v = "V(p,n)"
    gap = "max(min(V(x), {gmax_n}), {gmin_n})*1e-9"
    gam = "V(gm)"
    field = f"({gam}*abs({v})/{{tox}} < {{f_min}} ? 0 : {gam})"
    return [
        ".param gmin_n={g_min/1e-9}",
        ".param gmax_n={g_max/1e-9}",
        "* helper nodes (voltages carrying other quantities): ii = device current (A),",
        "* kt = kB T/q (V) with self-heating, gm = field enhancement gamma, r = raw gap rate (m/s)",
        f"bi ii 0 V = {{i0}}*exp(-{gap}/{{g0}})*sinh({v}/{{v0}})",
        "bd p n I = V(ii)",
        f"bk kt 0 V = {num(KB_OVER_Q)}*({{t0}} + abs({v}*V(ii))*{{rth}})",
        "bg gm 0 V = {gamma0} - {beta}*pow(max(V(x), 0), 3)",
        f"br r 0 V = -{{vel0}}*exp(-{{ea}}/V(kt))*sinh({field}*{{a0}}/{{tox}}*{v}/V(kt))",
        "bx 0 x I = ((V(x) <= {gmin_n} && V(r) < 0) || (V(x) >= {gmax_n} && V(r) > 0)) ? 0 : V(r)/1e-9",
    ]


_EQUATIONS = {"vteam": _vteam, "pulse_nl": _pulse_nl, "stanford_pku": _stanford_pku}


def spice_subckt(model_name: str, params: Mapping[str, float], *, name: str | None = None) -> str:
    """``.subckt <name> p n params: ...`` of ``model_name`` with ``params`` as defaults.

    ``params`` must be a complete, valid nominal set (as in a card); the instance parameter
    ``x0`` (initial state on the node, state/scale) defaults to the low-conductance bound.
    """
    model = _model(model_name)
    if model_name not in _EQUATIONS:
        raise SpecError(f"model {model_name!r} has no behavioural subcircuit yet")
    checked = model.validate(dict(params), "params")
    name = name or subckt_name(model_name)
    scale = model.va_state_scale
    x0 = float(model.bound_toward(-1, checked)) / scale
    plist = " ".join(f"{k}={num(checked[k])}" for k in checked if not model.spec(k).integer)
    lines = [
        f"* {model_name} behavioural subcircuit written by cosim: {model.reference}",
        f"* state {model.state_name} ({model.state_unit or 'unitless'}) = V(x) * {num(scale)}; "
        "dV(x)/dt = state rate / scale",
        "* mode switches fixed in this text: "
        + (", ".join(f"{s.name}={int(checked[s.name])}" for s in model.specs if s.integer) or "none"),
        f".subckt {name} p n params: {plist} x0={num(x0)}",
        "cx x 0 1 ic={x0}",
        *_EQUATIONS[model_name](checked),
        f".ends {name}",
    ]
    return "\n".join(_wrap(line) for line in lines) + "\n"


def instance(ref: str, p: str, n: str, model_name: str, *, state: float,
             params: Mapping[str, float] | None = None) -> str:
    """An instance line ``x<ref> p n cosim_<model> [overrides] x0=...`` starting at ``state``.

    ``params`` overrides continuous parameters of this instance (device-to-device values).
    """
    model = _model(model_name)
    over = ""
    if params:
        known = {s.name for s in model.specs if not s.integer}
        bad = sorted(set(params) - known)
        if bad:
            raise SpecError(f"instance parameter {bad[0]!r} is not a continuous parameter of {model_name}")
        over = " " + " ".join(f"{k}={num(v)}" for k, v in params.items())
    x0 = num(float(state) / model.va_state_scale)
    return _wrap(f"x{ref} {p} {n} {subckt_name(model_name)}{over} x0={x0}")


def _wrap(line: str, width: int = 100) -> str:
    """Break long lines at spaces with SPICE ``+`` continuations (not inside B expressions)."""
    if len(line) <= width or line.lstrip().startswith(("b", "*")):
        return line
    out, cur = [], ""
    for word in line.split(" "):
        if cur and len(cur) + 1 + len(word) > width:
            out.append(cur)
            cur = "+ " + word
        else:
            cur = f"{cur} {word}" if cur else word
    out.append(cur)
    return "\n".join(out)


# -- a one-device pulse-train deck -------------------------------------------------------------
def pulse_train_deck(model_name: str, params: Mapping[str, float], *, state: float, pulse: Pulse,
                     n_pulses: int, period: float, r_series: float = 0.0, out_file: str = "out.txt",
                     max_step: float | None = None, reltol: float = 1e-7) -> str:
    """An ngspice deck driving one device with ``n_pulses`` copies of ``pulse`` every ``period``.

    The source ``vin`` makes the trapezoid (rise, flat ``width``, fall; a zero ramp is written as
    1e-3 of the width, since a SPICE source cannot jump), through an optional series resistor
    ``rs`` (Ω) and an ammeter ``vam``; the first pulse starts at t = period/4. The ``.control``
    block runs the transient with ``uic`` and ``wrdata``s time, V(in), V(a), the device current
    i(vam) (A, into the device) and the state node v(xd.x) to ``out_file`` with 16 digits.

    Args:
        state: initial state in model units. period: s, ≥ the pulse duration.
        max_step: largest time step, s (default: 1/100 of the shortest pulse piece, ramps
            shorter than width/20 counted as width/20; ngspice steps onto every corner anyway).
        reltol: ngspice RELTOL (the state-node accuracy follows from it).
    """
    if n_pulses < 1:
        raise SpecError(f"n_pulses must be ≥ 1, got {n_pulses!r}")
    if np.ndim(pulse.amplitude):
        raise SpecError("pulse_train_deck drives one device: pulse.amplitude must be a scalar")
    edge = 1e-3 * pulse.width
    rise, fall = pulse.rise or edge, pulse.fall or edge
    if period < rise + pulse.width + fall:
        raise SpecError(f"period must be ≥ the pulse duration {rise + pulse.width + fall!r} s, got {period!r}")
    if r_series < 0:
        raise SpecError(f"r_series must be ≥ 0 Ω, got {r_series!r}")
    delay = period / 4.0
    t_stop = delay + n_pulses * period
    h = max_step or min(pulse.width, max(min(rise, fall), pulse.width / 20.0)) / 100.0
    src = (f"vin in 0 PULSE(0 {num(pulse.amplitude)} {num(delay)} {num(rise)} {num(fall)} "
           f"{num(pulse.width)} {num(period)} {n_pulses})")
    series = f"rs in a {num(r_series)}" if r_series > 0 else "vrs in a 0"
    return "\n".join([
        f"cosim {model_name} pulse train: {n_pulses} x {num(pulse.amplitude)} V",
        spice_subckt(model_name, params).rstrip("\n"),
        src,
        series,
        "vam a d 0",
        instance("d", "d", "0", model_name, state=state),
        f".options reltol={num(reltol)} abstol=1e-18 vntol=1e-12 chgtol=1e-20 method=gear",
        f".tran {num(h)} {num(t_stop)} 0 {num(h)} uic",
        ".control",
        "set wr_singlescale",
        "set wr_vecnames",
        "set numdgt=16",
        "run",
        f"wrdata {out_file} v(in) v(a) i(vam) v(xd.x)",
        "quit",
        ".endc",
        ".end",
        "",
    ])
