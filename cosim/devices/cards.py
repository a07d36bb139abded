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
params.k_off must be in (0, 1e+06] m/s (OFF rate constant (> 0)), got -1.0``). The [variation],
[drift] and [programming] tables are frozen dataclasses on the shared toolkit (:mod:`cosim.schema`,
``param``/``check_fields``/``check_keys``); ``params`` follows the model's own
:class:`~cosim.devices.params.ParamSpec` rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from cosim.devices.pulse import Pulse
from cosim.devices.registry import MODELS
from cosim.errors import SpecError
from cosim.schema import Field, check_field, check_fields, check_keys, fields_of, param, read_toml

C2CMode = Literal["state", "conductance"]
D2DDistribution = Literal["lognormal", "normal"]


_FRACTION = dict(type="float", minimum=0.0, maximum=1.0, interval=True)
_REL_STD = dict(type="float", minimum=0.0, maximum=1.0, exclusive_max=True, interval=True)
#: rule of each per-parameter entry of [variation.d2d]
D2D_STD = Field(**_REL_STD, doc="relative std of a per-device multiplier")


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

    c2c: float = param(0.0, **_REL_STD, doc="cycle-to-cycle relative std")
    c2c_mode: C2CMode = param("state", type="str", choices=("state", "conductance"), interval=True)
    d2d: Mapping[str, float] = param({}, type="table", doc="relative std per parameter name")
    d2d_distribution: D2DDistribution = param("lognormal", type="str", choices=("lognormal", "normal"),
                                              interval=True)
    stuck_on: float = param(0.0, **_FRACTION, doc="fraction of devices stuck at g_max")
    stuck_off: float = param(0.0, **_FRACTION, doc="fraction of devices stuck at g_min")
    dead: float = param(0.0, **_FRACTION, doc="fraction of devices reading 0 S")

    def __post_init__(self) -> None:
        check_fields(self, "variation")
        d2d = {name: check_field(f"variation.d2d.{name}", D2D_STD, std) for name, std in self.d2d.items()}
        if self.stuck_on + self.stuck_off + self.dead > 1.0:
            raise SpecError.at("variation.stuck_on", "+ stuck_off + dead must be ≤ 1")
        object.__setattr__(self, "d2d", MappingProxyType(d2d))


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftSpec:
    """Conductance drift after programming, G(t) = G(t0)·(t/t0)^(−ν) for t ≥ t0, the power law
    used for phase-change memory (Ielmini et al., IEEE TED 54(2):308, 2007) and for RRAM
    relaxation; each device draws its own ν ~ N(nu, nu_std²), floored at 0 (no device grows).

    Attributes:
        nu: mean drift exponent (≥ 0, < 1). nu_std: its device-to-device std (≥ 0, absolute).
        t0: time after programming at which G was set, s (> 0).
    """

    nu: float = param(**_REL_STD, doc="mean drift exponent")
    nu_std: float = param(0.0, **_REL_STD, doc="device-to-device std of the exponent")
    t0: float = param(1.0, type="float", minimum=0.0, exclusive_min=True, unit="s",
                      doc="time after programming at which G was set")

    def __post_init__(self) -> None:
        check_fields(self, "drift")


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

    amplitude_set: float = param(type="float", unit="V", doc="signed SET amplitude")
    amplitude_reset: float = param(type="float", unit="V", doc="signed RESET amplitude")
    width: float = param(type="float", minimum=0.0, exclusive_min=True, unit="s", doc="flat-top width")
    rise: float = param(0.0, type="float", minimum=0.0, unit="s", doc="rise ramp")
    fall: float = param(0.0, type="float", minimum=0.0, unit="s", doc="fall ramp")
    v_read: float = param(type="float", unit="V", doc="read voltage")

    def __post_init__(self) -> None:
        check_fields(self, "programming")
        if self.v_read == 0:
            raise SpecError.at("programming.v_read", "must be non-zero V")

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


_TOP = ("model", "description", "params", "variation", "programming", "drift")
_TABLE = Field(type="table")


def _section(data: Mapping[str, object], key: str, cls: type) -> dict:
    """The [key] table checked for unknown and missing fields of ``cls`` (values: by ``cls``)."""
    raw = check_field(key, _TABLE, data.get(key, {}))
    declared = fields_of(cls)
    check_keys(key, raw, declared, what=f"{key} field")
    for name, rule in declared.items():
        if rule.required and name not in raw:
            raise SpecError.at(f"{key}.{name}", "is missing")
    return raw


def _parts(data: Mapping[str, object]) -> dict:
    for key in data:
        if key not in _TOP:
            raise SpecError(f"unknown top-level key {key!r}; expected {', '.join(sorted(_TOP))}", path=str(key),
                            reason="is not a top-level key")
    for key in ("model", "params", "programming"):
        if key not in data:
            raise SpecError.at(key, "is missing")
    model = data["model"]
    if not isinstance(model, str):
        raise SpecError.at("model", f"must be a string, got {model!r}")
    if model not in MODELS:
        raise SpecError(f"model {model!r} is unknown; expected one of {', '.join(MODELS)}", path="model",
                        reason="is unknown")
    params = check_field("params", _TABLE, data["params"])
    programming = ProgrammingSpec(**_section(data, "programming", ProgrammingSpec))
    variation = VariationSpec(**_section(data, "variation", VariationSpec))
    drift = DriftSpec(**_section(data, "drift", DriftSpec)) if "drift" in data else None
    return dict(model=model, params=params, programming=programming, variation=variation, drift=drift,
                description=str(data.get("description", "")))


def card_from_dict(data: Mapping[str, object], source: str = "") -> DeviceCard:
    """Build a :class:`DeviceCard` from parsed TOML; errors name ``source`` and the field."""
    try:
        parts = _parts(data)
    except SpecError as exc:
        raise exc.prefixed(source) if source else exc from None
    return DeviceCard(**parts, name=Path(source).stem if source else "", source=source)


def load_card(path: str | Path) -> DeviceCard:
    """Read and validate a device card TOML file."""
    return card_from_dict(read_toml(path, "device card"), str(path))
