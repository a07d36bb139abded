"""Inference configs: the training config's physical sections plus ``[deploy]`` (TOML).

Tables: ``[data] [array] [device] [converters] [solver]`` exactly as in a training config
(:mod:`cosim.train.config`; the array spec is passed through unchanged, so any cell kind the
engine supports works), ``[deploy]`` (:class:`DeploySection`) and ``[output]``. Every table is
optional; unknown keys are refused with a did-you-mean.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosim.array.deploy import DeploySpec
from cosim.errors import SpecError
from cosim.train.config import (
    ArrayConfig,
    ConvertersConfig,
    DataConfig,
    DeviceConfig,
    SolverConfig,
    _bool,
    _hint,
    _num,
    apply_overrides,
    build_section,
    section_dict,
)

PHYSICAL = ("data", "array", "device", "converters", "solver")


@dataclass(frozen=True, kw_only=True, slots=True)
class DeploySection:
    """[deploy] method: "ideal" | "open-loop" | "write-verify"; scheme: "direct" | "v/2" | "v/3" |
    "row-parallel"; tolerance (fraction of the window), max_pulses, max_rounds, t_verify (s):
    write-verify (see cosim.array.deploy); w_max: weight of a full window per layer, "auto"
    (the layer's largest |w|) or a number > 0; read_noise: relative std of each device's read
    current (≥ 0); seed: devices, c2c noise and read noise (≥ 0); data_seed: the seeded data
    split/subsets (use the training run's train.seed, so its test images stay unseen); batch: test images per read
    batch; calibration: training images that set the ADC ranges (≥ 1); ideal_reads: also
    evaluate the same devices through ideal reads when the solver has wires."""

    method: str = "write-verify"
    scheme: str = "direct"
    tolerance: float = 0.02
    max_pulses: int = 500
    max_rounds: int = 30
    t_verify: float = 100e-9
    w_max: Any = "auto"
    read_noise: float = 0.0
    seed: int = 0
    data_seed: int = 0
    batch: int = 2000
    calibration: int = 256
    ideal_reads: bool = True

    def __post_init__(self) -> None:
        self.spec()  # validates method, scheme and the write-verify numbers
        if self.w_max != "auto":
            _num("deploy.w_max", self.w_max, lo=0, lo_open=True)
        _num("deploy.read_noise", self.read_noise, lo=0, hi=1)
        for k in ("seed", "data_seed"):
            _num(f"deploy.{k}", getattr(self, k), lo=0, integer=True)
        for k in ("batch", "calibration"):
            _num(f"deploy.{k}", getattr(self, k), lo=1, integer=True)
        _bool("deploy.ideal_reads", self.ideal_reads)

    def spec(self) -> DeploySpec:
        return DeploySpec(method=self.method, scheme=self.scheme, tolerance=self.tolerance,
                          max_pulses=self.max_pulses, max_rounds=self.max_rounds, t_verify=self.t_verify)


@dataclass(frozen=True, kw_only=True, slots=True)
class InferOutput:
    """[output] figures: write PNG figures with metrics.json."""

    figures: bool = True

    def __post_init__(self) -> None:
        _bool("output.figures", self.figures)


SECTIONS: dict[str, type] = {"data": DataConfig, "array": ArrayConfig, "device": DeviceConfig,
                             "converters": ConvertersConfig, "solver": SolverConfig, "deploy": DeploySection,
                             "output": InferOutput}


@dataclass(frozen=True, kw_only=True, slots=True)
class InferenceConfig:
    """A validated inference config; ``source`` names its file."""

    data: DataConfig = field(default_factory=DataConfig)
    array: ArrayConfig = field(default_factory=ArrayConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    converters: ConvertersConfig = field(default_factory=ConvertersConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    deploy: DeploySection = field(default_factory=DeploySection)
    output: InferOutput = field(default_factory=InferOutput)
    source: str = ""

    def replace(self, **sections) -> InferenceConfig:
        return dataclasses.replace(self, **sections)


def _section(name: str, values, base: Path | None):
    if name in PHYSICAL:
        return build_section(name, values, base)
    if not isinstance(values, dict):
        raise SpecError(f"[{name}] must be a table, got {values!r}")
    values = {k: None if isinstance(v, str) and v.lower() == "none" else v for k, v in values.items()}
    names = [f.name for f in dataclasses.fields(SECTIONS[name])]
    for key in values:
        if key not in names:
            raise SpecError(f"{name}.{key} is not a field of [{name}]{_hint(key, names)}")
    return SECTIONS[name](**values)


def validate_inference_config(data: dict[str, Any], *, source: str = "", base_dir: Path | None = None
                              ) -> InferenceConfig:
    """An :class:`InferenceConfig` from a parsed TOML dict (the card is loaded to check it)."""
    from cosim.train.config import load_device_card

    for key in data:
        if key not in SECTIONS:
            raise SpecError(f"[{key}] is not a section of an inference config{_hint(key, SECTIONS)}")
    cfg = InferenceConfig(**{k: _section(k, v, base_dir) for k, v in data.items()}, source=source)
    load_device_card(cfg.device)
    return cfg


def load_inference_config(path: str | Path | None = None, overrides: list[str] | None = None) -> InferenceConfig:
    """Read a TOML inference config (None: defaults) and apply ``--set section.key=value``."""
    data: dict[str, Any] = {}
    base, source = None, ""
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SpecError(f"config file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read config {p}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{p}: invalid TOML: {exc}") from None
        base, source = p.resolve().parent, str(p)
    data = apply_overrides(data, overrides or [])
    try:
        return validate_inference_config(data, source=source, base_dir=base)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}" if source else str(exc)) from None


def inference_config_dict(cfg: InferenceConfig) -> dict[str, dict[str, Any]]:
    """Plain nested dict of every section, JSON-able."""
    out = {}
    for name in SECTIONS:
        sec = getattr(cfg, name)
        out[name] = section_dict(name, sec) if name in PHYSICAL else dataclasses.asdict(sec)
    return out
