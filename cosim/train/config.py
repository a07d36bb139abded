"""Training configs: frozen, typed sections read from TOML, checked before any work starts.

A config has the tables ``[data] [network] [array] [device] [converters] [solver] [optimizer]
[train] [output]``; every one is optional (the fields' defaults fill the rest, so an empty config
trains the digits MLP on the imprecise card). Each section declares its fields once with
:func:`cosim.schema.param` (type, unit, range, choices) and checks them with
:func:`cosim.schema.check_fields`; each problem raises :class:`SpecError` naming the dotted field
(``array.tile_rows = 80 is larger than the array …``), with a did-you-mean for unknown keys.

``[optimizer]`` holds ``name`` plus that optimizer's own options (its config dataclass in
:mod:`cosim.train.optimizers`), except the learning rate, which is ``train.lr`` for every method.
The string ``"none"`` stands for None (TOML has no null). ``[device]`` names a card (``card = "imprecise"`` → ``models/cards/imprecise.toml``, or a path)
and may override parts of it in ``[device.params]``, ``[device.variation]``,
``[device.programming]``.

:func:`load_config` reads a file, :func:`validate_training_config` a dict, :func:`apply_overrides`
applies ``--set section.key=value`` strings, :func:`config_to_dict` / :func:`to_toml` go back.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosim.array.mapping import Converters, WeightMap
from cosim.array.tile import UPDATE_MODES, ArraySpec
from cosim.catalog import METHODS
from cosim.circuit import SolverOptions
from cosim.errors import SpecError
from cosim.schema import (
    SEED_MAX,
    check_fields,
    check_keys,
    declare,
    did_you_mean,
    fields_of,
    param,
    read_toml,
)
from cosim.train.networks.models import NETWORK_KINDS

DATASETS = ("digits", "mnist", "fashion")
IMAGE_SHAPES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion": (28, 28, 1)}
IDX_STEMS = ("train-images", "train-labels", "t10k-images", "t10k-labels")


# The converters and the weight mapping are declared once, by the array layer's classes.
_CONVERTERS, _WEIGHT_MAP = fields_of(Converters), fields_of(WeightMap)


@dataclass(frozen=True, kw_only=True, slots=True)
class DataConfig:
    """[data] name: "digits" | "mnist" | "fashion"; dir: folder of the four IDX files (mnist,
    fashion); subset / test_subset: seeded sample counts kept (≥ 1) or none; test_fraction: digits
    test share in (0, 1)."""

    name: str = param("digits", type="str", choices=DATASETS)
    dir: str | None = param(None, type="str")
    subset: int | None = param(None, type="int", minimum=1)
    test_subset: int | None = param(None, type="int", minimum=1)
    test_fraction: float = param(0.25, type="float", minimum=0.0, exclusive_min=True, maximum=0.99)

    def __post_init__(self) -> None:
        check_fields(self, "data")
        if self.name == "digits":
            if self.dir is not None:
                raise SpecError.at("data.dir", "applies to mnist/fashion; digits ship with scikit-learn")
            return
        if not self.dir:
            raise SpecError.at("data.dir", f"must name the folder with the {self.name} IDX files (or pass --data DIR)")
        d = Path(self.dir).expanduser()
        if not d.is_dir():
            raise SpecError.at("data.dir", f": no such directory: {d}")
        for stem in IDX_STEMS:
            if not any(d.glob(f"{stem}[-.]idx*")):
                raise SpecError.at("data.dir", f": {d} has no {stem}-idx… file (expected the four MNIST IDX files)")


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkConfig:
    """[network] kind: "mlp" | "cnn" | "lenet5"; hidden: MLP widths (list of ints ≥ 1) or none
    (64 for digits, 100 for 28×28); activation: relu | tanh | sigmoid; pool: max | avg; init:
    he | xavier | none (by activation)."""

    kind: str = param("mlp", type="str", choices=NETWORK_KINDS)
    hidden: tuple[int, ...] | None = param(None, type="list[int]", minimum=1)
    activation: str = param("relu", type="str", choices=("relu", "tanh", "sigmoid"))
    pool: str = param("max", type="str", choices=("max", "avg"))
    init: str | None = param(None, type="str", choices=("he", "xavier"))

    def __post_init__(self) -> None:
        check_fields(self, "network")
        if self.hidden is not None:
            if not self.hidden:
                raise SpecError.at("network.hidden", "must be a list of layer widths, got []")
            if self.kind != "mlp":
                raise SpecError.at("network.hidden", f"applies to kind 'mlp' only, not {self.kind!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ArrayConfig(ArraySpec):
    """[array] the physical array (rows, cols, r_row, r_col, r_driver, r_sense, r_access in Ω ≥ 0,
    drive, sense, cell: :class:`~cosim.array.ArraySpec`) plus how weights use it: tile_rows,
    tile_cols: block of a weight matrix per tile (≤ the array; none = all of it); mapping:
    "differential" | "reference"; w_max: weight of a full conductance window (> 0)."""

    tile_rows: int | None = param(None, type="int", minimum=1)
    tile_cols: int | None = param(None, type="int", minimum=1)
    mapping: str = declare(_WEIGHT_MAP["mapping"])
    w_max: float = declare(_WEIGHT_MAP["w_max"].replace(default=1.0))

    def __post_init__(self) -> None:
        ArraySpec.__post_init__(self)  # checks every declared field, these included
        max_cols = self.cols - (self.mapping == "reference")
        for k, v, limit, what in (
                ("tile_rows", self.tile_rows, self.rows, "array.rows"),
                ("tile_cols", self.tile_cols, max_cols,
                 "array.cols" + (" − 1 (reference column)" if self.mapping == "reference" else ""))):
            if v is not None and v > limit:
                raise SpecError.at(f"array.{k}", f"= {v} is larger than the array ({what} = {limit})")
        if max_cols < 1:
            raise SpecError.at("array.cols", "must be ≥ 2 with the reference mapping (one column is the reference)")

    def spec_fields(self) -> dict:
        """The fields of the tiles' :class:`~cosim.array.ArraySpec`."""
        return self.tile_fields()


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceConfig:
    """[device] card: card name under models/cards or a TOML path; update: "auto" | "model"
    (compact model per pulse) | "table" (nominal pulse table stretched per device); backend:
    "numpy" (the reference equations; fastest for reads) | "compiled" (verilogae) | "auto";
    params, variation, programming: tables overriding those of the card."""

    card: str = param("imprecise", type="str")
    update: str = param("auto", type="str", choices=UPDATE_MODES)
    backend: str = param("numpy", type="str", choices=("numpy", "compiled", "auto"))
    params: Mapping[str, Any] = param({}, type="table")
    variation: Mapping[str, Any] = param({}, type="table")
    programming: Mapping[str, Any] = param({}, type="table")

    def __post_init__(self) -> None:
        check_fields(self, "device")
        if not self.card:
            raise SpecError.at("device.card", f"must be a card name or a path, got {self.card!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ConvertersConfig:
    """[converters] v_read: DAC full scale, V (none = the card's read voltage); dac_bits, adc_bits:
    2..24 or none (ideal); adc_headroom ≥ 1; adc_range: "calibrated" (per epoch) | "batch"."""

    v_read: float | None = declare(_CONVERTERS["v_read"].replace(default=None))  # None: the card's
    dac_bits: int | None = declare(_CONVERTERS["dac_bits"])
    adc_bits: int | None = declare(_CONVERTERS["adc_bits"])
    adc_headroom: float = declare(_CONVERTERS["adc_headroom"])
    adc_range: str = declare(_CONVERTERS["adc_range"])

    def __post_init__(self) -> None:
        check_fields(self, "converters")


@dataclass(frozen=True, kw_only=True, slots=True)
class SolverConfig:
    """[solver] engine: "ideal" | "nodal" | "spice" (tiny arrays only); method, rtol, maxiter:
    as SolverOptions (nodal numerics)."""

    engine: str = param("ideal", type="str")  # checked against the live engine registry
    method: str = param("auto", type="str", choices=METHODS)
    rtol: float = param(1e-10, type="float", minimum=0.0, exclusive_min=True)
    maxiter: int = param(500, type="int", minimum=1)

    def __post_init__(self) -> None:
        check_fields(self, "solver")
        self.options()

    def options(self) -> SolverOptions:
        """The tiles' :class:`SolverOptions`."""
        return SolverOptions(engine=self.engine, method=self.method, rtol=self.rtol, maxiter=self.maxiter)


@dataclass(frozen=True, kw_only=True, slots=True)
class OptimizerConfig:
    """[optimizer] name: sgd-pulse | manhattan | mixed-precision | ssm | tiki-taka; options: the method's
    own fields (checked against its config class)."""

    name: str = "ssm"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "lr" in self.options:
            raise SpecError.at("optimizer.lr", "is not used; set the learning rate as train.lr")
        if not isinstance(self.name, str):
            from cosim.train.optimizers import OPTIMIZERS

            raise SpecError.at("optimizer.name", f"must be one optimizer name (a string: {', '.join(OPTIMIZERS)}), "
                                                 f"got {self.name!r}")
        self.build()  # validates names, types and ranges

    def build(self):
        from cosim.train.optimizers import make_optimizer

        return make_optimizer(self.name, **self.options)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainSection:
    """[train] epochs ≥ 1; batch ≥ 1; lr > 0 (weight units per gradient unit); lr_decay in
    (0, 1] per epoch; seed ≥ 0; reference: also train the float software network; reference_lr
    (none = lr; default 0.5, tuned for digits) and reference_beta (EMA momentum in [0, 1) or
    none) of that float run;
    refresh_every: steps between refresh checks (0 = once an epoch, where refresh_at says:
    "epoch_end" (none, the default), before the epoch's test, or "epoch_start", after the
    previous epoch's test, so that an epoch of training follows each refresh and the last epoch
    ends without one; with refresh_every > 0 refresh_at is refused);
    calibrate_every: steps between ADC calibrations (none, the default, or 0 = at each epoch's
    start only; with converters.adc_range = "calibrated" an ADC keeps the full scale of its first
    read after one and clips beyond it);
    pulse_log: "totals" (per-device counts) | "events" (also every step's pulses)."""

    epochs: int = param(20, type="int", minimum=1)
    batch: int = param(32, type="int", minimum=1)
    lr: float = param(0.1, type="float", minimum=0.0, exclusive_min=True)
    lr_decay: float = param(1.0, type="float", minimum=0.0, exclusive_min=True, maximum=1.0)
    seed: int = param(0, type="int", minimum=0, maximum=SEED_MAX)
    reference: bool = param(True, type="bool")
    reference_lr: float | None = param(0.5, type="float", minimum=0.0, exclusive_min=True, none=True)
    reference_beta: float | None = param(0.9, type="float", minimum=0.0, maximum=1.0, exclusive_max=True,
                                         none=True)
    refresh_every: int = param(0, type="int", minimum=0)
    # Fields added after studies were stored default to none, the behaviour before them: a point's
    # store key leaves null fields out, so the stored points keep their keys (cosim.study.grid).
    refresh_at: str | None = param(None, type="str", choices=("epoch_end", "epoch_start"), none=True)
    calibrate_every: int | None = param(None, type="int", minimum=0, none=True)
    pulse_log: str = param("totals", type="str", choices=("totals", "events"))

    def __post_init__(self) -> None:
        check_fields(self, "train")
        if self.refresh_every and self.refresh_at is not None:
            raise SpecError.at("train.refresh_at", f"= {self.refresh_at!r} places the once-an-epoch refresh; with "
                               f"refresh_every = {self.refresh_every} the checks run every N steps instead")


@dataclass(frozen=True, kw_only=True, slots=True)
class OutputConfig:
    """[output] dir: where results go (none: nothing written unless the CLI names one);
    figures: write PNG figures; pulse_log: "npz" | "csv" | "both" | "none"."""

    dir: str | None = param(None, type="str")
    figures: bool = param(True, type="bool")
    pulse_log: str = param("npz", type="str", choices=("npz", "csv", "both", "none"), none=True)

    def __post_init__(self) -> None:
        check_fields(self, "output")
        if self.dir is not None and not self.dir:
            raise SpecError.at("output.dir", f"must be a path or none, got {self.dir!r}")
        if self.pulse_log is None:  # "none" in TOML arrives here as None (see build_section)
            object.__setattr__(self, "pulse_log", "none")


SECTIONS: dict[str, type] = {
    "data": DataConfig, "network": NetworkConfig, "array": ArrayConfig, "device": DeviceConfig,
    "converters": ConvertersConfig, "solver": SolverConfig, "optimizer": OptimizerConfig,
    "train": TrainSection, "output": OutputConfig,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainingConfig:
    """A whole, validated training config (one field per section); ``source`` names its file."""

    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    array: ArrayConfig = field(default_factory=ArrayConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    converters: ConvertersConfig = field(default_factory=ConvertersConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainSection = field(default_factory=TrainSection)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: str = ""

    def replace(self, **sections) -> TrainingConfig:
        return dataclasses.replace(self, **sections)


def build_section(name: str, values: Mapping[str, Any], base_dir: Path | None = None):
    """One section's dataclass from its TOML table (unknown keys → did-you-mean)."""
    if not isinstance(values, Mapping):
        raise SpecError(f"[{name}] must be a table, got {values!r}")
    cls = SECTIONS[name]
    # TOML has no null: the string "none" stands for None (an ideal converter, no subset …).
    values = {k: None if isinstance(v, str) and v.lower() == "none" else v for k, v in values.items()}
    if name == "optimizer":
        return OptimizerConfig(name=values.pop("name", "ssm"), options=values)
    check_keys(name, values, fields_of(cls))
    if base_dir is not None:  # relative paths are relative to the config file
        for key in ("dir", "card") if name in ("data", "device") else ():
            v = values.get(key)
            if isinstance(v, str) and (key == "dir" or v.endswith(".toml")) and not Path(v).expanduser().is_absolute():
                values[key] = str(base_dir / v)
    return cls(**values)


def validate_training_config(data: Mapping[str, Any], *, source: str = "", base_dir: Path | None = None
                             ) -> TrainingConfig:
    """A :class:`TrainingConfig` from a parsed TOML dict, with every cross-section rule checked
    (the card loads, the network fits the data, the mapping suits the optimizer's policy)."""
    if not isinstance(data, Mapping):
        raise SpecError(f"a training config must be a table of sections, got {data!r}")
    for key in data:
        if key not in SECTIONS:
            raise SpecError(f"[{key}] is not a section of a training config{did_you_mean(key, SECTIONS)}")
    sections = {k: build_section(k, data[k], base_dir) for k in data}
    cfg = TrainingConfig(**sections, source=source)
    load_device_card(cfg.device)
    from cosim.train.networks import make_network

    net = cfg.network
    make_network(net.kind, IMAGE_SHAPES[cfg.data.name], 10, hidden=net.hidden, activation=net.activation,
                 pool=net.pool)
    policy = cfg.optimizer.build().config.policy
    if cfg.array.mapping == "reference" and policy != "plus-only":
        raise SpecError.at("array.mapping", f"= 'reference' trains one device per weight: set "
                                            f"optimizer.policy = 'plus-only' (got {policy!r})")
    return cfg


def load_device_card(dev: DeviceConfig):
    """The :class:`DeviceCard` a [device] section names, with its overrides applied."""
    from cosim.devices import card_from_dict
    from cosim.devices.paths import models_dir

    cards = models_dir() / "cards"
    path = Path(dev.card).expanduser()
    if not (dev.card.endswith(".toml") or "/" in dev.card):
        path = cards / f"{dev.card}.toml"
        if not path.is_file():
            names = sorted(p.stem for p in cards.glob("*.toml"))
            raise SpecError.at("device.card", f": no card named {dev.card!r} in {cards}{did_you_mean(dev.card, names)}")
    try:
        raw = read_toml(path, "device card")
    except SpecError as exc:
        raise SpecError.at("device.card", f": {exc}") from None
    for k in ("params", "variation", "programming"):
        override = dict(getattr(dev, k))
        if override:
            merged = dict(raw.get(k, {}))
            if k == "variation" and "d2d" in override and isinstance(merged.get("d2d"), Mapping):
                override["d2d"] = {**merged["d2d"], **override["d2d"]}
            merged.update(override)
            raw[k] = merged
    src = str(path) + (" (with [device] overrides)" if any(getattr(dev, k) for k in ("params", "variation",
                                                                                      "programming")) else "")
    card = card_from_dict(raw, src)
    return dataclasses.replace(card, name=path.stem)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainingConfig:
    """Read a TOML config (None: the embedded defaults) and apply ``--set`` overrides."""
    data: dict[str, Any] = {}
    base = None
    source = ""
    if path is not None:
        p = Path(path)
        data = read_toml(p, "config file")
        base, source = p.resolve().parent, str(p)
    data = apply_overrides(data, overrides or [])
    try:
        return validate_training_config(data, source=source, base_dir=base)
    except SpecError as exc:
        raise exc.prefixed(source) if source else exc from None


def apply_overrides(data: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``section.key=value`` strings applied to a config dict (value parsed as TOML, else text)."""
    out = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise SpecError(f"--set expects section.key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        if isinstance(value, str) and value.lower() in ("none", "null"):
            value = None
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SpecError(f"--set {key}: {p} is not a table")
        node[parts[-1]] = value
    return out


def section_dict(name: str, sec) -> dict[str, Any]:
    """One section as a plain dict (None kept)."""
    if name == "optimizer":
        return {"name": sec.name, **dict(sec.options)}
    d = {}
    for f in dataclasses.fields(sec):
        v = getattr(sec, f.name)
        d[f.name] = dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v
    return d


def config_to_dict(cfg: TrainingConfig) -> dict[str, dict[str, Any]]:
    """Plain nested dict of every section (None kept), JSON-able."""
    return {name: section_dict(name, getattr(cfg, name)) for name in SECTIONS}


def _section_validator(name: str):
    def validate(values: Mapping[str, Any], ctx: Any = None) -> dict[str, Any]:
        return section_dict(name, build_section(name, values, getattr(ctx, "base_dir", None)))

    validate.__doc__ = f"Check a [{name}] table; returns it normalised (defaults filled in)."
    validate.vector_fields = frozenset(  # type: ignore[attr-defined]
        k for k, f in fields_of(SECTIONS[name]).items() if f.vector)
    return validate


# Section name → ``validate(values, ctx=None) -> dict``, for a design study's task registry.
# Rules that tie sections together are checked by validate_training_config when a point runs.
STUDY_SECTIONS = {name: _section_validator(name) for name in SECTIONS}


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    raise SpecError(f"cannot write {v!r} to TOML")


def to_toml(cfg: TrainingConfig) -> str:
    """The config as TOML text (None written as the string "none", which reads back as None)."""
    lines = []
    for name, values in config_to_dict(cfg).items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value('none' if v is None else v)}" for k, v in values.items() if v != {}]
        lines.append("")
    return "\n".join(lines)
