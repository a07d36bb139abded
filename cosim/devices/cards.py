"""Device cards: a model name, its nominal parameters, variation and programming defaults (TOML).

Layout of ``models/cards/<name>.toml`` (every number carries a comment citing its source)::

    model = "pulse_nl"                 # a registered model name
    description = "..."                # optional free text

    [params]                           # every parameter of the model, SI (see the model's specs)
    g_min = 1.0e-6                     # S  source ...

    [variation]                        # optional; all zero when absent
    c2c = 0.035                        # relative std of each pulse's effect (see c2c_mode)
    c2c_mode = "conductance"           # "state" | "conductance"
    d2d_distribution = "lognormal"     # "lognormal" | "normal"
    stuck_on = 0.01                    # fractions of devices
    stuck_off = 0.02
    dead = 0.005
    [variation.d2d]                    # relative std per device, per parameter name
    g_max = 0.15

    [drift]                            # optional: conductance drift after programming
    nu = 0.02                          # power-law exponent: G(t) = G(t0)·(t/t0)^-nu
    nu_std = 0.01                      # device-to-device std of nu (absolute)
    t0 = 1.0                           # s, reference time after programming

    [programming]                      # the default pulse
    amplitude_set = 1.6                # V, signed; polarity must raise the conductance
    amplitude_reset = -1.6             # V, signed; opposite polarity
    width = 1e-6                       # s
    rise = 0.0                         # s (optional)
    fall = 0.0                         # s (optional)
    v_read = 0.2                       # V

Every problem raises :class:`SpecError` naming the file and the field (``card.toml:
params.k_off must be in (0, 1e+06] m/s (OFF rate constant (> 0)), got -1.0``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from cosim.devices.pulse import Pulse
from cosim.devices.registry import MODELS
from cosim.errors import SpecError
from cosim.schema import read_toml

C2CMode = Literal["state", "conductance"]
D2DDistribution = Literal["lognormal", "normal"]


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{where} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class VariationSpec:
    """Device non-idealities.

    Attributes:
        c2c: cycle-to-cycle noise, relative std ≥ 0 (< 1). In ``c2c_mode="state"`` each pulse's
            state change is multiplied by (1 + c2c·N(0,1)); in ``"conductance"`` (NeuroSim's
            convention) each effective pulse adds c2c·(g_max - g_min)·N(0,1) siemens.
        c2c_mode: "state" or "conductance".
        d2d: relative std ≥ 0 (< 1) of a per-device multiplier, per parameter name (not
            integer mode switches), drawn once per device.
        d2d_distribution: "lognormal" (mean 1, std as given; keeps signs) or "normal"
            (1 + std·N(0,1), redrawn where a device would leave the valid range).
        stuck_on, stuck_off, dead: fractions of devices in [0, 1], summing to ≤ 1; stuck-on
            devices read their own g_max, stuck-off their g_min, dead ones 0 S.
    """

    c2c: float = 0.0
    c2c_mode: C2CMode = "state"
    d2d: Mapping[str, float] = field(default_factory=dict)
    d2d_distribution: D2DDistribution = "lognormal"
    stuck_on: float = 0.0
    stuck_off: float = 0.0
    dead: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.c2c < 1.0:
            raise SpecError(f"variation.c2c must be in [0, 1) (relative std), got {self.c2c!r}")
        if self.c2c_mode not in ("state", "conductance"):
            raise SpecError(f"variation.c2c_mode must be 'state' or 'conductance', got {self.c2c_mode!r}")
        if self.d2d_distribution not in ("lognormal", "normal"):
            raise SpecError("variation.d2d_distribution must be 'lognormal' or 'normal', "
                            f"got {self.d2d_distribution!r}")
        for name, std in self.d2d.items():
            if not 0.0 <= std < 1.0:
                raise SpecError(f"variation.d2d.{name} must be in [0, 1) (relative std), got {std!r}")
        for name in ("stuck_on", "stuck_off", "dead"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SpecError(f"variation.{name} must be a fraction in [0, 1], got {getattr(self, name)!r}")
        if self.stuck_on + self.stuck_off + self.dead > 1.0:
            raise SpecError("variation.stuck_on + stuck_off + dead must be ≤ 1")
        object.__setattr__(self, "d2d", MappingProxyType(dict(self.d2d)))


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftSpec:
    """Conductance drift after programming, G(t) = G(t0)·(t/t0)^(−ν) for t ≥ t0, the power law
    used for phase-change memory (Ielmini et al., IEEE TED 54(2):308, 2007) and for RRAM
    relaxation; each device draws its own ν ~ N(nu, nu_std²), floored at 0 (no device grows).

    Attributes:
        nu: mean drift exponent (≥ 0, < 1). nu_std: its device-to-device std (≥ 0, absolute).
        t0: time after programming at which G was set, s (> 0).
    """

    nu: float
    nu_std: float = 0.0
    t0: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.nu < 1.0:
            raise SpecError(f"drift.nu must be in [0, 1), got {self.nu!r}")
        if not 0.0 <= self.nu_std < 1.0:
            raise SpecError(f"drift.nu_std must be in [0, 1), got {self.nu_std!r}")
        if not self.t0 > 0:
            raise SpecError(f"drift.t0 must be > 0 s, got {self.t0!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ProgrammingSpec:
    """Default programming pulses and read voltage.

    Attributes:
        amplitude_set: signed SET (conductance-raising) amplitude, V.
        amplitude_reset: signed RESET amplitude, V (opposite sign).
        width: flat-top width, s (> 0).
        rise, fall: ramp durations, s (≥ 0).
        v_read: read voltage, V (non-zero).
    """

    amplitude_set: float
    amplitude_reset: float
    width: float
    rise: float = 0.0
    fall: float = 0.0
    v_read: float

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise SpecError(f"programming.width must be > 0 s, got {self.width!r}")
        for name in ("rise", "fall"):
            if getattr(self, name) < 0:
                raise SpecError(f"programming.{name} must be ≥ 0 s, got {getattr(self, name)!r}")
        if self.v_read == 0:
            raise SpecError("programming.v_read must be non-zero V")

    def pulse(self, direction: int) -> Pulse:
        """The default SET (direction > 0) or RESET (< 0) pulse."""
        amp = self.amplitude_set if direction > 0 else self.amplitude_reset
        return Pulse(amplitude=amp, width=self.width, rise=self.rise, fall=self.fall)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceCard:
    """A validated device card (frozen; change with ``dataclasses.replace`` and re-validate).

    Attributes:
        model: registered model name.
        params: nominal parameters (read-only mapping name → float, SI).
        variation: non-idealities.
        programming: default pulses and read voltage.
        drift: conductance drift after programming, or None (the card assumes none).
        name: card name (file stem); description: free text; source: file it came from.
    """

    model: str
    params: Mapping[str, float]
    variation: VariationSpec = field(default_factory=VariationSpec)
    programming: ProgrammingSpec
    drift: DriftSpec | None = None
    name: str = ""
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        where = f"{self.source}: " if self.source else ""
        if self.model not in MODELS:
            raise SpecError(f"{where}model {self.model!r} is unknown; expected one of {', '.join(MODELS)}")
        model = MODELS[self.model]
        params = model.validate(self.params, f"{where}params")
        for name in self.variation.d2d:
            if name not in params:
                raise SpecError(f"{where}variation.d2d.{name} is not a parameter of {self.model}")
            if model.spec(name).integer:
                raise SpecError(f"{where}variation.d2d.{name} is a mode switch and cannot vary per device")
        prog = self.programming
        pol = model.set_polarity
        if prog.amplitude_set * pol <= 0:
            raise SpecError(f"{where}programming.amplitude_set must have the sign {'+' if pol > 0 else '-'} "
                            f"that raises the conductance of {self.model}, got {prog.amplitude_set!r} V")
        if prog.amplitude_reset * pol >= 0:
            raise SpecError(f"{where}programming.amplitude_reset must have the sign {'-' if pol > 0 else '+'} "
                            f"that lowers the conductance of {self.model}, got {prog.amplitude_reset!r} V")
        object.__setattr__(self, "params", MappingProxyType(params))

    @property
    def hash(self) -> str:
        """SHA-256 (hex, 16 chars) of what sets the pulse response: model, params, variation,
        programming (drift acts after programming and does not enter)."""
        blob = json.dumps({
            "model": self.model, "params": dict(self.params),
            "variation": {**{k: getattr(self.variation, k) for k in
                             ("c2c", "c2c_mode", "d2d_distribution", "stuck_on", "stuck_off", "dead")},
                          "d2d": dict(self.variation.d2d)},
            "programming": {k: getattr(self.programming, k) for k in
                            ("amplitude_set", "amplitude_reset", "width", "rise", "fall", "v_read")},
        }, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_TOP = {"model", "description", "params", "variation", "programming", "drift"}
_DRIFT = ("nu", "nu_std", "t0")
_VARIATION = {"c2c", "c2c_mode", "d2d", "d2d_distribution", "stuck_on", "stuck_off", "dead"}
_PROGRAMMING_REQUIRED = ("amplitude_set", "amplitude_reset", "width", "v_read")
_PROGRAMMING_OPTIONAL = ("rise", "fall")


def card_from_dict(data: Mapping[str, object], source: str = "") -> DeviceCard:
    """Build a :class:`DeviceCard` from parsed TOML; errors name ``source`` and the field."""
    at = f"{source}: " if source else ""
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise SpecError(f"{at}unknown top-level key {unknown[0]!r}; expected {', '.join(sorted(_TOP))}")
    for key in ("model", "params", "programming"):
        if key not in data:
            raise SpecError(f"{at}{key} is missing")
    model = data["model"]
    if not isinstance(model, str):
        raise SpecError(f"{at}model must be a string, got {model!r}")
    if model not in MODELS:
        raise SpecError(f"{at}model {model!r} is unknown; expected one of {', '.join(MODELS)}")
    params = _table(data["params"], f"{at}params")
    prog_raw = _table(data["programming"], f"{at}programming")
    extra = sorted(set(prog_raw) - set(_PROGRAMMING_REQUIRED) - set(_PROGRAMMING_OPTIONAL))
    if extra:
        raise SpecError(f"{at}programming.{extra[0]} is not a programming field")
    prog = {}
    for key in _PROGRAMMING_REQUIRED:
        if key not in prog_raw:
            raise SpecError(f"{at}programming.{key} is missing")
    for key in _PROGRAMMING_REQUIRED + _PROGRAMMING_OPTIONAL:
        if key in prog_raw:
            prog[key] = _number(prog_raw[key], f"{at}programming.{key}")
    var_raw = _table(data.get("variation", {}), f"{at}variation")
    extra = sorted(set(var_raw) - _VARIATION)
    if extra:
        raise SpecError(f"{at}variation.{extra[0]} is not a variation field; expected {', '.join(sorted(_VARIATION))}")
    var = {}
    for key, value in var_raw.items():
        if key == "d2d":
            var[key] = {k: _number(v, f"{at}variation.d2d.{k}") for k, v in _table(value, f"{at}variation.d2d").items()}
        elif key in ("c2c_mode", "d2d_distribution"):
            var[key] = value
        else:
            var[key] = _number(value, f"{at}variation.{key}")
    description = data.get("description", "")
    drift_raw = _table(data["drift"], f"{at}drift") if "drift" in data else None
    if drift_raw is not None:
        extra = sorted(set(drift_raw) - set(_DRIFT))
        if extra:
            raise SpecError(f"{at}drift.{extra[0]} is not a drift field; expected {', '.join(_DRIFT)}")
        if "nu" not in drift_raw:
            raise SpecError(f"{at}drift.nu is missing")
    try:
        variation = VariationSpec(**var)
        programming = ProgrammingSpec(**prog)
        drift = None if drift_raw is None else DriftSpec(
            **{k: _number(v, f"{at}drift.{k}") for k, v in drift_raw.items()})
    except SpecError as exc:
        raise SpecError(f"{at}{exc}") from None
    return DeviceCard(model=model, params=params, variation=variation, programming=programming, drift=drift,
                      name=Path(source).stem if source else "", description=str(description), source=source)


def load_card(path: str | Path) -> DeviceCard:
    """Read and validate a device card TOML file."""
    return card_from_dict(read_toml(path, "device card"), str(path))


def _table(value: object, where: str) -> dict:
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} must be a table, got {value!r}")
    return dict(value)
