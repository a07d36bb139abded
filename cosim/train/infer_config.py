"""Inference configs: the training config's physical sections plus ``[deploy]`` (TOML).

Tables: ``[data] [array] [device] [converters] [solver]`` exactly as in a training config
(:mod:`cosim.train.config`; the array spec is passed through unchanged, so any cell kind the
engine supports works), ``[deploy]`` (:class:`DeploySection`) and ``[output]``. Every table is
optional; unknown keys are refused with a did-you-mean.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosim.array.deploy import DeploySpec
from cosim.errors import SpecError
from cosim.schema import SEED_MAX, check_fields, check_keys, did_you_mean, fields_of, param, read_toml
from cosim.train.config import (
    ArrayConfig,
    ConvertersConfig,
    DataConfig,
    DeviceConfig,
    SolverConfig,
    apply_overrides,
    build_section,
    section_dict,
)

PHYSICAL = ("data", "array", "device", "converters", "solver")


@dataclass(frozen=True, kw_only=True, slots=True)
class DeploySection(DeploySpec):
    """[deploy] the programming (:class:`~cosim.array.deploy.DeploySpec`: method, scheme,
    tolerance, max_pulses, max_rounds, t_verify) plus how the deployed network is read:
    w_max: weight of a full window, the same for every layer (> 0), or none: each layer's own
    largest |w| (the whole window used per layer); read_noise: relative std of each device's
    read current (≥ 0); read_time: when the test set is read, s after programming (none: at
    once, no drift; needs a card with [drift]); seed: devices, c2c noise and read noise (≥ 0);
    data_seed: the seeded data split/subsets (use the training run's train.seed, so its test
    images stay unseen); batch: test images per read batch; calibration: training images that
    set the ADC ranges (≥ 1); ideal_reads: also evaluate the same devices through ideal reads
    when the solver has wires."""

    w_max: float | None = param(None, type="float", minimum=0.0, exclusive_min=True)
    read_noise: float = param(0.0, type="float", minimum=0.0, maximum=1.0)
    read_time: float | None = param(None, type="float", minimum=0.0, exclusive_min=True, unit="s")
    seed: int = param(0, type="int", minimum=0, maximum=SEED_MAX)
    data_seed: int = param(0, type="int", minimum=0, maximum=SEED_MAX)
    batch: int = param(2000, type="int", minimum=1)
    calibration: int = param(256, type="int", minimum=1)
    ideal_reads: bool = param(True, type="bool")


@dataclass(frozen=True, kw_only=True, slots=True)
class InferOutput:
    """[output] figures: write PNG figures with metrics.json."""

    figures: bool = param(True, type="bool")

    def __post_init__(self) -> None:
        check_fields(self, "output")


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
    check_keys(name, values, fields_of(SECTIONS[name]))
    return SECTIONS[name](**values)


def validate_inference_config(data: dict[str, Any], *, source: str = "", base_dir: Path | None = None
                              ) -> InferenceConfig:
    """An :class:`InferenceConfig` from a parsed TOML dict (the card is loaded to check it)."""
    from cosim.train.config import load_device_card

    for key in data:
        if key not in SECTIONS:
            raise SpecError(f"[{key}] is not a section of an inference config{did_you_mean(key, SECTIONS)}")
    cfg = InferenceConfig(**{k: _section(k, v, base_dir) for k, v in data.items()}, source=source)
    if (data.get("array") or {}).get("w_max", 1.0) != 1.0:  # 1.0: the default a study's [array] fills in
        raise SpecError.at("array.w_max", "is the training mapping's; deployment scales weights with deploy.w_max")
    card = load_device_card(cfg.device)
    if cfg.deploy.read_time is not None:
        if card.drift is None:
            raise SpecError.at("deploy.read_time", f"needs a card that defines [drift]; {card.name} assumes none")
        if cfg.deploy.read_time < card.drift.t0:
            raise SpecError.at("deploy.read_time", f"must be ≥ the card's drift.t0 = {card.drift.t0:g} s, "
                                                   f"got {cfg.deploy.read_time!r}")
    return cfg


def load_inference_config(path: str | Path | None = None, overrides: list[str] | None = None) -> InferenceConfig:
    """Read a TOML inference config (None: defaults) and apply ``--set section.key=value``."""
    data: dict[str, Any] = {}
    base, source = None, ""
    if path is not None:
        data = read_toml(path)
        base, source = Path(path).resolve().parent, str(path)
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
