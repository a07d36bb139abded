"""Values of single elements as ngspice computes them for a DC operating point.

Resistors follow ngspice-39's ``RESupdate_conduct`` (checked on small decks against ngspice):
``R`` is the value given, else ``rsh·(l − 2·short)/(w − 2·narrow)`` from an ``R`` model with
``rsh`` > 0 (``l`` and ``w`` default to 10 µm, ``w`` to the model's ``defw`` first), else the model's ``r``, else 1 mΩ (which
is also what a value of exactly 0 becomes, as in ngspice). Then, with ``ΔT = (temp or the
circuit temperature) + dtemp − tnom`` (tnom from the model, else ``.options tnom``, 27 °C),
``factor = 1.01^(tce·ΔT)`` when a ``tce`` is given (instance or model), else
``1 + tc1·ΔT + tc2·ΔT²``, and ``G = m / (R · factor · scale)``. Negative resistors are legal.

Independent sources: the DC value when one is given (``dc v``, ``dc=v`` or a bare first
value), else the value of the transient function at t = 0 (ngspice's rule for ``.op``), else 0.
"""

from __future__ import annotations

import math
import re

from cosim.circuit.netlist_defs import Scope
from cosim.errors import NetlistError

TNOM_DEFAULT = 27.0  # °C, ngspice's default nominal and circuit temperature
GEOMETRY_DEFAULT = 10e-6  # m: ngspice-39's l and w of a model resistor given neither (measured)
R_MIN = 1e-3  # Ω: ngspice's value for a resistor of 0 Ω or no value ("resistance to low")
_R_INSTANCE = {"r", "resistance", "m", "scale", "tc1", "tc2", "tce", "temp", "dtemp", "l", "w",
               "ac", "noisy", "bv_max", "tc", "model"}
_R_MODEL = {"rsh", "narrow", "short", "tc1", "tc2", "tce", "tnom", "defw", "r", "res", "kf", "af",
            "lf", "wf", "ef", "bv_max", "noisy"}
_FUNC = re.compile(r"(sin|pulse|exp|pwl|sffm|am|trnoise|trrandom|distof1|distof2|external)\s*(\(|$)")


def _kv(token: str) -> tuple[str, str, str]:
    """``key=expr`` split like str.partition, but an expression token ({…}, '…') is never split."""
    if token[:1] in "{'\"":
        return token, "", ""
    return token.partition("=")


def _finite(value: float, what: str, where: str) -> float:
    if not math.isfinite(value):
        raise NetlistError(f"{where}: {what} is {value!r}; a finite number is needed")
    return value


def resistance(toks: list[str], where: str, scope: Scope, temp: float, tnom: float) -> float:
    """Conductance (S) of resistor line ``toks``; ``temp``/``tnom`` are the circuit's, °C."""
    name = toks[0]
    value = None
    model = None
    inst: dict[str, float] = {}
    for t in toks[3:]:
        key, eq, expr = _kv(t)
        if not eq:
            if model is None and scope.model(t) is not None:
                model = t
            elif value is None:
                value = scope.element_value(t, where)
            else:
                raise NetlistError(f"{where}: unexpected {t!r} after the value of {name}")
            continue
        if key not in _R_INSTANCE:
            raise NetlistError(f"{where}: unsupported resistor parameter {key!r} on {name}")
        if key == "model":
            model = expr
        elif key in ("r", "resistance"):
            value = scope.element_value(expr, where)
        elif key == "tc":
            raise NetlistError(f"{where}: tc= on {name}: write tc1= and tc2=")
        elif key not in ("ac", "noisy", "bv_max"):  # AC resistance, noise, SOA: not DC
            inst[key] = scope.element_value(expr, where)
    mp: dict[str, float] = {}
    if model is not None:
        found = scope.model(model)
        if found is None:
            raise NetlistError(f"{where}: {name} uses model {model!r}, which is not defined")
        kind, params, _ = found
        if kind not in ("r", "res"):
            raise NetlistError(f"{where}: {name} uses model {model!r} of type {kind}, not r")
        for key, (expr, w) in params.items():
            if key not in _R_MODEL:
                raise NetlistError(f"{w}: unsupported resistor model parameter {key!r} in {model}")
            mp[key] = scope.element_value(expr, w)
    elif value is None:
        raise NetlistError(f"{where}: resistor {name} has no value")
    if value is not None:
        _finite(value, f"the resistance of {name}", where)
    for key, x in (*inst.items(), *mp.items()):
        _finite(x, f"{key} of {name}", where)
    if value == 0:  # an explicit 0 is ngspice's 1 mΩ, even with a model (checked)
        value = R_MIN
    elif value is None:  # absent: geometry, the model's r, else ngspice's 1 mΩ
        rsh = mp.get("rsh", 0.0)
        length, width = inst.get("l", GEOMETRY_DEFAULT), inst.get("w", mp.get("defw", GEOMETRY_DEFAULT))
        if length * width * rsh > 0:
            w_eff = width - 2 * mp.get("narrow", 0.0)
            if w_eff == 0:
                raise NetlistError(f"{where}: {name}'s effective width w − 2·narrow is 0")
            value = (length - 2 * mp.get("short", 0.0)) / w_eff * rsh
        else:
            value = mp.get("r", mp.get("res", 0.0)) or R_MIN
    t_dev = inst["temp"] if "temp" in inst else temp + inst.get("dtemp", 0.0)
    dt = t_dev - mp.get("tnom", tnom)
    if "tce" in inst or "tce" in mp:
        try:
            factor = 1.01 ** (inst.get("tce", mp.get("tce", 0.0)) * dt)
        except OverflowError:
            factor = math.inf  # refused below with the resistance it gives
    else:
        tc1, tc2 = inst.get("tc1", mp.get("tc1", 0.0)), inst.get("tc2", mp.get("tc2", 0.0))
        factor = (tc2 * dt + tc1) * dt + 1.0
    m = inst.get("m", 1.0)
    if m <= 0:
        raise NetlistError(f"{where}: m= of {name} must be > 0, got {m!r}")
    r_eff = value * factor * inst.get("scale", 1.0)
    g = m / r_eff if r_eff else math.inf
    if r_eff == 0 or not math.isfinite(g) or g == 0:
        raise NetlistError(f"{where}: {name} evaluates to {r_eff!r} Ω (value × temperature factor "
                           f"{factor!r} × scale); cosim needs a finite non-zero resistance")
    return g


def _args(text: str, where: str, scope: Scope) -> list[float]:
    items = re.findall(r"\{[^}]*\}|'[^']*'|[^\s,()]+", text)
    return [_finite(scope.element_value(x, where), "a transient source value", where) for x in items]


def _at_zero(kind: str, args: list[float], where: str, name: str) -> float:
    """ngspice's value of a transient source function at t = 0 (checked against ngspice-39)."""
    if not args and kind != "am":
        raise NetlistError(f"{where}: {kind}() of {name} has no values")
    if kind in ("pulse", "exp"):
        return args[0]
    if kind == "sin":
        vo, va = args[0], args[1] if len(args) > 1 else 0.0
        phase = args[5] if len(args) > 5 else 0.0
        return vo + va * math.sin(math.radians(phase))
    if kind == "pwl":
        times, values = args[0::2], args[1::2]
        if len(times) != len(values):
            raise NetlistError(f"{where}: pwl() of {name} needs time-value pairs")
        if times[0] >= 0 or len(times) == 1:
            return values[0]
        for k in range(1, len(times)):
            if times[k] >= 0:
                t0, t1, v0, v1 = times[k - 1], times[k], values[k - 1], values[k]
                return v0 + (v1 - v0) * (0 - t0) / (t1 - t0)
        return values[-1]
    if kind in ("sffm", "am") and len(args) <= 5:
        return args[0] if kind == "sffm" else 0.0
    raise NetlistError(f"{where}: {kind}() on {name} is not supported at DC by cosim "
                       "(give the source a DC value)")


def source_value(toks: list[str], where: str, scope: Scope) -> float:
    """DC value (V or A) of an independent source line, multiplied by ``m=`` for current sources."""
    name = toks[0]
    rest = toks[3:]
    dc, t0, mult, k = None, None, 1.0, 0
    while k < len(rest):
        t = rest[k]
        fm = _FUNC.match(t)
        if fm:
            text = " ".join(rest[k:])
            open_ = text.find("(")
            close = text.find(")")
            if open_ < 0 or close < open_:
                raise NetlistError(f"{where}: {fm.group(1)} on {name} needs its values in parentheses")
            t0 = _at_zero(fm.group(1), _args(text[open_ + 1:close], where, scope), where, name)
            after = text[close + 1:].split()
            # pwl's r= and td= follow the parentheses; td delays, so t = 0 stays before the first point
            for extra in after:
                key = extra.partition("=")[0]
                if fm.group(1) != "pwl" or key not in ("r", "td"):
                    raise NetlistError(f"{where}: unexpected {extra!r} after {fm.group(1)}() on {name}")
            break
        if t in ("dc", "ac"):
            nxt = rest[k + 1] if k + 1 < len(rest) else None
            takes = nxt is not None and nxt not in ("dc", "ac") and not _FUNC.match(nxt) and not _kv(nxt)[1]
            if t == "dc" and takes:
                dc = scope.element_value(nxt, where)
            k += 2 if takes else 1
            if t == "ac" and takes and k < len(rest) and rest[k] not in ("dc", "ac") \
                    and not _FUNC.match(rest[k]) and not _kv(rest[k])[1]:
                k += 1  # the AC phase
            continue
        key, eq, expr = _kv(t)
        if eq and key == "dc":
            dc = scope.element_value(expr, where)
        elif eq and key == "ac":
            pass
        elif eq and key == "m" and name[0] == "i":
            mult = scope.element_value(expr, where)
        elif k == 0 and not eq:
            dc = scope.element_value(t, where)
        else:
            raise NetlistError(f"{where}: unsupported {t!r} on source {name}")
        k += 1
    value = dc if dc is not None else t0 if t0 is not None else 0.0
    return _finite(value * mult, f"the value of {name}", where)


def gain(toks: list[str], count: int, where: str, scope: Scope) -> float:
    """The linear gain of a controlled source line whose value is token ``count``."""
    name = toks[0]
    if any(t.startswith(("poly", "value", "table", "vol", "cur", "laplace", "freq")) for t in toks[3:]):
        raise NonlinearDeck(f"{where}: {name} is a nonlinear controlled source (poly/value/table)")
    if len(toks) != count + 1:
        raise NetlistError(f"{where}: {name} needs {count - 1} nodes/names and a gain, got {' '.join(toks[1:])!r}")
    g = toks[count]
    if _kv(g)[1]:
        key, _, g = g.partition("=")
        if key != "gain":
            raise NetlistError(f"{where}: unsupported {key}= on {name}")
    return _finite(scope.element_value(g, where), f"the gain of {name}", where)


class NonlinearDeck(NetlistError):
    """The deck holds elements the linear reader does not solve (ngspice can: --engine auto)."""
