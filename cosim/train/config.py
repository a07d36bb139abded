"""Training configs: frozen, typed sections read from TOML, checked before any work starts.

A config has the tables ``[data] [network] [array] [device] [converters] [solver] [optimizer]
[train] [output]``; every one is optional (:data:`DEFAULTS` fill the rest, so an empty config
trains the digits MLP on the imprecise card). Each problem raises :class:`SpecError` naming the
dotted field (``array.tile_rows must lie in 1..64 …``), with a did-you-mean for unknown keys.

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
import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosim.errors import SpecError

DATASETS = ("digits", "mnist", "fashion")
IMAGE_SHAPES = {"digits": (8, 8, 1), "mnist": (28, 28, 1), "fashion": (28, 28, 1)}
IDX_STEMS = ("train-images", "train-labels", "t10k-images", "t10k-labels")


def _hint(word: str, choices) -> str:
    near = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean {near[0]!r}?" if near else f"; expected one of {', '.join(map(str, choices))}"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(where: str, v, *, lo=None, hi=None, lo_open=False, unit="", none=False, integer=False):
    if v is None and none:
        return None
    if integer:
        if not _is_int(v):
            raise SpecError(f"{where} must be an integer{' or none' if none else ''}, got {v!r}")
    elif isinstance(v, bool) or not isinstance(v, int | float) or v != v or v in (float("inf"), float("-inf")):
        raise SpecError(f"{where} must be a finite number{' or none' if none else ''}, got {v!r}")
    u = f" {unit}" if unit else ""
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise SpecError(f"{where} must be {'>' if lo_open else '≥'} {lo:g}{u}, got {v!r}")
    if hi is not None and v > hi:
        raise SpecError(f"{where} must be ≤ {hi:g}{u}, got {v!r}")
    return v if integer else float(v)


def _choice(where: str, v, choices, none=False):
    if v is None and none:
        return None
    if v not in choices:
        raise SpecError(f"{where} must be one of {', '.join(map(str, choices))}, got {v!r}{_hint(v, choices)}")
    return v


def _bool(where: str, v) -> bool:
    if not isinstance(v, bool):
        raise SpecError(f"{where} must be true or false, got {v!r}")
    return v


def _set(obj, name, value) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, kw_only=True, slots=True)
class DataConfig:
    """[data] name: "digits" | "mnist" | "fashion"; dir: folder of the four IDX files (mnist,
    fashion); subset / test_subset: seeded sample counts kept (≥ 1) or none; test_fraction: digits
    test share in (0, 1)."""

    name: str = "digits"
    dir: str | None = None
    subset: int | None = None
    test_subset: int | None = None
    test_fraction: float = 0.25

    def __post_init__(self) -> None:
        _choice("data.name", self.name, DATASETS)
        for k in ("subset", "test_subset"):
            _num(f"data.{k}", getattr(self, k), lo=1, none=True, integer=True)
        _set(self, "test_fraction", _num("data.test_fraction", self.test_fraction, lo=0, hi=0.99, lo_open=True))
        if self.name == "digits":
            if self.dir is not None:
                raise SpecError("data.dir applies to mnist/fashion; digits ship with scikit-learn")
            return
        if not isinstance(self.dir, str) or not self.dir:
            raise SpecError(f"data.dir must name the folder with the {self.name} IDX files (or pass --data DIR)")
        d = Path(self.dir).expanduser()
        if not d.is_dir():
            raise SpecError(f"data.dir: no such directory: {d}")
        for stem in IDX_STEMS:
            if not any(d.glob(f"{stem}[-.]idx*")):
                raise SpecError(f"data.dir: {d} has no {stem}-idx… file (expected the four MNIST IDX files)")


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkConfig:
    """[network] kind: "mlp" | "cnn" | "lenet5"; hidden: MLP widths (list of ints ≥ 1) or none
    (64 for digits, 100 for 28×28); activation: relu | tanh | sigmoid; pool: max | avg; init:
    he | xavier | none (by activation)."""

    kind: str = "mlp"
    hidden: tuple[int, ...] | None = None
    activation: str = "relu"
    pool: str = "max"
    init: str | None = None

    def __post_init__(self) -> None:
        _choice("network.kind", self.kind, ("mlp", "cnn", "lenet5"))
        if self.hidden is not None:
            if not isinstance(self.hidden, list | tuple) or not self.hidden:
                raise SpecError(f"network.hidden must be a list of layer widths, got {self.hidden!r}")
            for k, h in enumerate(self.hidden):
                _num(f"network.hidden[{k}]", h, lo=1, integer=True)
            if self.kind != "mlp":
                raise SpecError(f"network.hidden applies to kind 'mlp' only, not {self.kind!r}")
            _set(self, "hidden", tuple(self.hidden))
        _choice("network.activation", self.activation, ("relu", "tanh", "sigmoid"))
        _choice("network.pool", self.pool, ("max", "avg"))
        _choice("network.init", self.init, ("he", "xavier"), none=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class ArrayConfig:
    """[array] rows, cols: physical array size; tile_rows, tile_cols: block of a weight matrix
    per tile (≤ the array; none = all of it); r_row, r_col, r_driver, r_sense, r_access (Ω ≥ 0),
    drive, sense, cell: as CrossbarSpec; mapping: "differential" | "reference"; w_max: weight
    of a full conductance window (> 0)."""

    rows: int = 64
    cols: int = 64
    tile_rows: int | None = None
    tile_cols: int | None = None
    r_row: float = 0.0
    r_col: float = 0.0
    r_driver: float = 0.0
    r_sense: float = 0.0
    drive: str = "left"
    sense: str = "bottom"
    cell: str = "0T1R"
    r_access: float = 0.0
    mapping: str = "differential"
    w_max: float = 1.0

    def __post_init__(self) -> None:
        for k in ("rows", "cols"):
            _num(f"array.{k}", getattr(self, k), lo=1, integer=True)
        for k in ("r_row", "r_col", "r_driver", "r_sense", "r_access"):
            _set(self, k, _num(f"array.{k}", getattr(self, k), lo=0, unit="Ω"))
        _choice("array.drive", self.drive, ("left", "right", "both"))
        _choice("array.sense", self.sense, ("bottom", "top", "both"))
        _choice("array.cell", self.cell, ("0T1R", "1T1R"))
        _choice("array.mapping", self.mapping, ("differential", "reference"))
        _set(self, "w_max", _num("array.w_max", self.w_max, lo=0, lo_open=True))
        max_cols = self.cols - (self.mapping == "reference")
        for k, limit, what in (("tile_rows", self.rows, "array.rows"),
                               ("tile_cols", max_cols, "array.cols" + (" − 1 (reference column)"
                                                                       if self.mapping == "reference" else ""))):
            v = _num(f"array.{k}", getattr(self, k), lo=1, none=True, integer=True)
            if v is not None and v > limit:
                raise SpecError(f"array.{k} = {v} is larger than the array ({what} = {limit})")
        if max_cols < 1:
            raise SpecError("array.cols must be ≥ 2 with the reference mapping (one column is the reference)")

    def spec_fields(self) -> dict:
        return {k: getattr(self, k) for k in ("rows", "cols", "r_row", "r_col", "r_driver", "r_sense", "drive",
                                              "sense", "cell", "r_access")}


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceConfig:
    """[device] card: card name under models/cards or a TOML path; update: "auto" | "model"
    (compact model per pulse) | "table" (nominal pulse table stretched per device); backend:
    "numpy" (the reference equations; fastest for reads) | "compiled" (verilogae) | "auto";
    params, variation, programming: tables overriding those of the card."""

    card: str = "imprecise"
    update: str = "auto"
    backend: str = "numpy"
    params: Mapping[str, Any] = field(default_factory=dict)
    variation: Mapping[str, Any] = field(default_factory=dict)
    programming: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.card, str) or not self.card:
            raise SpecError(f"device.card must be a card name or a path, got {self.card!r}")
        _choice("device.update", self.update, ("auto", "model", "table"))
        _choice("device.backend", self.backend, ("numpy", "compiled", "auto"))
        for k in ("params", "variation", "programming"):
            if not isinstance(getattr(self, k), Mapping):
                raise SpecError(f"device.{k} must be a table, got {getattr(self, k)!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ConvertersConfig:
    """[converters] v_read: DAC full scale, V (none = the card's read voltage); dac_bits, adc_bits:
    2..24 or none (ideal); adc_headroom ≥ 1; adc_range: "calibrated" (per epoch) | "batch"."""

    v_read: float | None = None
    dac_bits: int | None = 8
    adc_bits: int | None = 8
    adc_headroom: float = 1.0
    adc_range: str = "calibrated"

    def __post_init__(self) -> None:
        _set(self, "v_read", _num("converters.v_read", self.v_read, lo=0, lo_open=True, unit="V", none=True))
        for k in ("dac_bits", "adc_bits"):
            _num(f"converters.{k}", getattr(self, k), lo=2, hi=24, none=True, integer=True)
        _set(self, "adc_headroom", _num("converters.adc_headroom", self.adc_headroom, lo=1))
        _choice("converters.adc_range", self.adc_range, ("calibrated", "batch"))


@dataclass(frozen=True, kw_only=True, slots=True)
class SolverConfig:
    """[solver] engine: "ideal" | "nodal" | "spice" (tiny arrays only); method, rtol, maxiter:
    as SolverOptions (nodal numerics)."""

    engine: str = "ideal"
    method: str = "auto"
    rtol: float = 1e-10
    maxiter: int = 500

    def __post_init__(self) -> None:
        _choice("solver.engine", self.engine, ("ideal", "nodal", "spice"))
        if not isinstance(self.method, str):
            raise SpecError(f"solver.method must be a string, got {self.method!r}")
        _set(self, "rtol", _num("solver.rtol", self.rtol, lo=0, lo_open=True))
        _num("solver.maxiter", self.maxiter, lo=1, integer=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class OptimizerConfig:
    """[optimizer] name: sgd-pulse | manhattan | mixed-precision | ssm | tiki-taka; options: the method's
    own fields (checked against its config class)."""

    name: str = "ssm"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from cosim.train.optimizers import make_optimizer

        if "lr" in self.options:
            raise SpecError("optimizer.lr is not used; set the learning rate as train.lr")
        make_optimizer(self.name, **self.options)  # validates names, types and ranges

    def build(self):
        from cosim.train.optimizers import make_optimizer

        return make_optimizer(self.name, **self.options)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainSection:
    """[train] epochs ≥ 1; batch ≥ 1; lr > 0 (weight units per gradient unit); lr_decay in
    (0, 1] per epoch; seed ≥ 0; reference: also train the float software network; reference_lr
    (none = lr; default 0.5, tuned for digits) and reference_beta (EMA momentum in [0, 1) or
    none) of that float run;
    refresh_every: steps between refresh checks (0 = end of each epoch); pulse_log: "totals"
    (per-device counts) | "events" (also every step's pulses)."""

    epochs: int = 20
    batch: int = 32
    lr: float = 0.1
    lr_decay: float = 1.0
    seed: int = 0
    reference: bool = True
    reference_lr: float | None = 0.5
    reference_beta: float | None = 0.9
    refresh_every: int = 0
    pulse_log: str = "totals"

    def __post_init__(self) -> None:
        _num("train.epochs", self.epochs, lo=1, integer=True)
        _num("train.batch", self.batch, lo=1, integer=True)
        _set(self, "lr", _num("train.lr", self.lr, lo=0, lo_open=True))
        _set(self, "lr_decay", _num("train.lr_decay", self.lr_decay, lo=0, hi=1, lo_open=True))
        _num("train.seed", self.seed, lo=0, integer=True)
        _bool("train.reference", self.reference)
        _set(self, "reference_lr", _num("train.reference_lr", self.reference_lr, lo=0, lo_open=True, none=True))
        beta = _num("train.reference_beta", self.reference_beta, lo=0, none=True)
        if beta is not None and beta >= 1:
            raise SpecError(f"train.reference_beta must be < 1, got {beta!r}")
        _set(self, "reference_beta", beta)
        _num("train.refresh_every", self.refresh_every, lo=0, integer=True)
        _choice("train.pulse_log", self.pulse_log, ("totals", "events"))


@dataclass(frozen=True, kw_only=True, slots=True)
class OutputConfig:
    """[output] dir: where results go (none: nothing written unless the CLI names one);
    figures: write PNG figures; pulse_log: "npz" | "csv" | "both" | "none"."""

    dir: str | None = None
    figures: bool = True
    pulse_log: str = "npz"

    def __post_init__(self) -> None:
        if self.dir is not None and not (isinstance(self.dir, str) and self.dir):
            raise SpecError(f"output.dir must be a path or none, got {self.dir!r}")
        _bool("output.figures", self.figures)
        if self.pulse_log is None:  # "none" in TOML arrives here as None (see build_section)
            _set(self, "pulse_log", "none")
        _choice("output.pulse_log", self.pulse_log, ("npz", "csv", "both", "none"))


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
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise SpecError(f"{name}.{key} is not a field of [{name}]{_hint(key, names)}")
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
            raise SpecError(f"[{key}] is not a section of a training config{_hint(key, SECTIONS)}")
    sections = {k: build_section(k, data[k], base_dir) for k in data}
    cfg = TrainingConfig(**sections, source=source)
    load_device_card(cfg.device)
    from cosim.train.networks import make_network

    net = cfg.network
    make_network(net.kind, IMAGE_SHAPES[cfg.data.name], 10, hidden=net.hidden, activation=net.activation,
                 pool=net.pool)
    policy = cfg.optimizer.build().config.policy
    if cfg.array.mapping == "reference" and policy != "plus-only":
        raise SpecError(f"array.mapping = 'reference' trains one device per weight: set optimizer.policy = "
                        f"'plus-only' (got {policy!r})")
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
            raise SpecError(f"device.card: no card named {dev.card!r} in {cards}{_hint(dev.card, names)}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"device.card: file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"device.card: cannot read {path}: {exc}") from None
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
        return validate_training_config(data, source=source, base_dir=base)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}" if source else str(exc)) from None


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
    validate.vector_fields = frozenset({"hidden"}) if name == "network" else frozenset()  # type: ignore[attr-defined]
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
