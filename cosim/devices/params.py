"""Parameter specifications: unit, valid range and meaning of every compact-model parameter.

A model lists its parameters as :class:`ParamSpec` rows; :func:`check_value` and
:func:`check_params` refuse anything outside the stated range with a :class:`SpecError` naming the
field (``params.k_off must be > 0 m/s, got -1.0``). Ranges are physical-plausibility bounds, wide
enough for any published device and narrow enough to catch unit mistakes (nm typed as m).

This stays apart from :mod:`cosim.schema` (which checks config fields, the card's [variation],
[drift] and [programming] included) because a model parameter is a different thing: its range
is also a device mask over arrays (:meth:`ParamSpec.ok`, used to redraw out-of-range devices),
it is exported to Verilog-A, and a model's set is checked as a whole with cross-parameter
constraints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cosim.errors import SpecError


@dataclass(frozen=True, kw_only=True, slots=True)
class ParamSpec:
    """One model parameter.

    Attributes:
        name: identifier used in cards, in the Verilog-A file and in params dicts.
        unit: SI unit text for messages ("" for dimensionless).
        lo, hi: valid range; ``lo_open``/``hi_open`` make an end exclusive.
        doc: what the parameter is, for messages and docs.
        integer: a mode switch taking integer values only (no device-to-device variation).
        default: value taken when a card omits the parameter (None: the card must give it);
            for optional model features whose default switches them off.
    """

    name: str
    unit: str
    lo: float
    hi: float
    doc: str
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    default: float | None = None

    def range_text(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        unit = f" {self.unit}" if self.unit else ""
        return f"{left}{self.lo:g}, {self.hi:g}{right}{unit}"

    def ok(self, value: np.ndarray | float) -> np.ndarray:
        """Boolean mask of the values inside the valid range."""
        x = np.asarray(value, dtype=float)
        good = np.isfinite(x)
        good &= (x > self.lo) if self.lo_open else (x >= self.lo)
        good &= (x < self.hi) if self.hi_open else (x <= self.hi)
        if self.integer:
            good &= x == np.round(x)
        return good


def check_value(spec: ParamSpec, value: object, where: str) -> float:
    """Return ``value`` as a float, or raise naming ``where`` (e.g. ``card.toml: params.k_off``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{where} must be a number ({spec.doc}, {spec.range_text()}), got {value!r}")
    x = float(value)
    if not bool(spec.ok(x)):
        kind = "an integer in " if spec.integer else "in "
        raise SpecError(f"{where} must be {kind}{spec.range_text()} ({spec.doc}), got {x!r}")
    return x


def check_params(specs: tuple[ParamSpec, ...], params: Mapping[str, object], where: str) -> dict[str, float]:
    """Validate a complete parameter set: every spec present, no unknown names, all in range."""
    known = {s.name for s in specs}
    unknown = sorted(set(params) - known)
    if unknown:
        raise SpecError(f"{where}.{unknown[0]} is not a parameter of this model; expected one of "
                        f"{', '.join(s.name for s in specs)}")
    out: dict[str, float] = {}
    for spec in specs:
        if spec.name not in params and spec.default is not None:
            out[spec.name] = spec.default
            continue
        if spec.name not in params:
            raise SpecError(f"{where}.{spec.name} is missing ({spec.doc}, {spec.range_text()})")
        out[spec.name] = check_value(spec, params[spec.name], f"{where}.{spec.name}")
    return out


def finite_or_raise(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise SpecError(f"{name} must be finite, got {value!r}")
    return value
