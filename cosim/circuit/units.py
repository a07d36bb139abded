"""SPICE numbers at the netlist edge: engineering suffixes in, shortest round-trip text out.

SPICE reads a number, then an optional scale factor, then ignores any further letters (so
``10kohm`` is 10 000 and ``1.5V`` is 1.5). The scale factors are the ngspice ones, matched
case-insensitively, longest first:

=======  =========  =======  =========
suffix   factor     suffix   factor
=======  =========  =======  =========
``t``    1e12       ``m``    1e-3 (milli, not mega)
``g``    1e9        ``u``    1e-6
``meg``  1e6        ``n``    1e-9
``k``    1e3        ``p``    1e-12
``mil``  25.4e-6    ``f``    1e-15
=======  =========  =======  =========

Checked against ngspice-39: it reads ``1.5Mohm`` as 1.5 mΩ, ``1F`` as 1e-15 and ``1a``/``1x`` as
1 (no atto, no HSPICE ``x``), and so does :func:`parse_value`.
"""

from __future__ import annotations

import math
import re

from cosim.circuit.expressions import FUNCTIONS, eval_expression  # noqa: F401  (re-exported)
from cosim.errors import NetlistError

SCALE = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6, "m": 1e-3,
         "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}
_EXP10 = {"t": 12, "g": 9, "meg": 6, "k": 3, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15}

# mantissa, optional exponent, then letters (scale factor + ignored unit)
NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?([a-zA-Z_]*)")
_SCALE_RE = re.compile(r"meg|mil|[tgkmunpf]", re.IGNORECASE)


def scale_of(letters: str) -> float:
    """The factor of the letters that follow a SPICE mantissa (1.0 when they carry none)."""
    m = _SCALE_RE.match(letters)
    return SCALE[m.group(0).lower()] if m else 1.0


def parse_value(text: str, *, where: str = "") -> float:
    """The float a SPICE number denotes: ``"10k"`` → 10000.0, ``"1.5meg"`` → 1.5e6, ``".5"`` → 0.5.

    Raises :class:`NetlistError` naming ``where`` (e.g. ``"deck.cir:12"``) when ``text`` is not
    a number.
    """
    m = NUMBER.fullmatch(text.strip())
    if not m:
        at = f"{where}: " if where else ""
        raise NetlistError(f"{at}expected a number such as 10k, 1.5e-3 or 2meg, got {text!r}")
    # A scale factor can only be the first letters; an exponent-less "e" is a unit letter too.
    # Powers of ten join the exponent so the decimal is rounded once: "10u" is exactly 1e-05.
    mantissa, exp, letters = m.group(1), int(m.group(2) or 0), m.group(3)
    if m.group(2) is None and letters[:1] in ("e", "E"):
        letters = letters[1:]  # ngspice: an "e" with no digits is an empty exponent, 10eu is 10u
    sm = _SCALE_RE.match(letters)
    key = sm.group(0).lower() if sm else ""
    if key == "mil":
        return float(f"{mantissa}e{exp}") * SCALE["mil"]
    return float(f"{mantissa}e{exp + _EXP10.get(key, 0)}")


def format_value(x: float) -> str:
    """Shortest text that reads back as exactly ``x`` (Python's repr), without a trailing ``.0``."""
    x = float(x)
    if not math.isfinite(x):
        raise NetlistError(f"cannot write the non-finite value {x!r} into a netlist")
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


def format_resistance(g: float) -> str:
    """Text of the resistance 1/g (Ω) for a conductance ``g`` (S), chosen so that reading it back
    and inverting gives ``g`` exactly when any decimal does: ``1e-5`` S is written ``100000``,
    not ``99999.99999999999``. Otherwise the shortest round-trip text of 1/g (≤ 1 ulp away)."""
    r = 1.0 / float(g)
    # a text that inverts to g lies within ~1 ulp of r: if 6 digits miss r, fewer do too
    short = abs(float(f"{r:.6g}") - r) <= 4e-16 * abs(r)
    for digits in (1, 2, 3, 4, 5, 6, 15, 16, 17) if short else (15, 16, 17):
        text = f"{r:.{digits}g}"
        if 1.0 / float(text) == g:
            return format_value(float(text))
    return format_value(r)
