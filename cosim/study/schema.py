"""Declarative section validators for study configs: typed fields, units, did-you-mean errors.

A task registers one validator per config section (``array``, ``device``, ``train`` …). A
validator is any callable ``validate(values: dict, ctx: Context) -> dict`` that returns the
section normalised (defaults filled in, ints turned into floats where a float is meant) or raises
:class:`SpecError` naming the dotted field. :class:`Section` builds such a callable from
:class:`Field` declarations; a task may hand-write its own instead.

A validator may expose ``vector_fields`` (names whose *value* is a list, e.g. layer widths): the
grid then reads a list of lists there as an axis, and a flat list as one value.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cosim.errors import SpecError

FieldType = Literal["int", "float", "str", "bool", "path", "list[int]", "list[float]", "list[str]"]
_REQUIRED = object()


def did_you_mean(name: str, choices) -> str:
    """'; did you mean X?' when ``name`` is close to one of ``choices``, else the list of choices."""
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of {', '.join(choices)}" if choices else ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    """What a validator may need beyond the values: where relative paths are resolved from."""

    base_dir: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True, kw_only=True, slots=True)
class Field:
    """One config field.

    Attributes:
        type: value type; "float" accepts TOML integers, "path" is a file resolved against the
            config's folder and required to exist.
        default: value when absent; leave unset for a required field (None is a valid default
            meaning "not given").
        unit: SI unit shown in error messages ("Ω", "S", "V", "s"; "" when unitless).
        doc: one line for error messages and docs.
        choices: the allowed values, for string fields.
        minimum / maximum: inclusive numeric bounds; ``exclusive_min`` makes the lower bound strict.
    """

    type: FieldType
    default: Any = _REQUIRED
    unit: str = ""
    doc: str = ""
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    @property
    def vector(self) -> bool:
        return self.type.startswith("list[")


def _scalar(name: str, ftype: str, value: Any, ctx: Context) -> Any:
    if ftype == "bool":
        if not isinstance(value, bool):
            raise SpecError(f"{name} must be true or false, got {value!r}")
        return value
    if ftype == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise SpecError(f"{name} must be an integer, got {value!r}")
        return value
    if ftype == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise SpecError(f"{name} must be finite, got {value!r}")
        return float(value)
    if ftype == "str":
        if not isinstance(value, str):
            raise SpecError(f"{name} must be a string, got {value!r}")
        return value
    if ftype == "path":
        if not isinstance(value, str) or not value:
            raise SpecError(f"{name} must be a file path (string), got {value!r}")
        path = Path(value).expanduser()
        path = path if path.is_absolute() else ctx.base_dir / path
        if not path.is_file():
            raise SpecError(f"{name}: file not found: {path}")
        return str(path.resolve())
    raise SpecError(f"{name}: unknown field type {ftype!r}")  # a task's schema bug, named


def check_field(name: str, spec: Field, value: Any, ctx: Context) -> Any:
    """``value`` converted to ``spec.type`` and range-checked; :class:`SpecError` names ``name``."""
    if spec.vector:
        if not isinstance(value, list):
            raise SpecError(f"{name} must be a list of {spec.type[5:-1]} values, got {value!r}")
        return [_bounded(f"{name}[{k}]", spec, _scalar(f"{name}[{k}]", spec.type[5:-1], v, ctx))
                for k, v in enumerate(value)]
    return _bounded(name, spec, _scalar(name, spec.type, value, ctx))


def _bounded(name: str, spec: Field, value: Any) -> Any:
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.choices is not None and value not in spec.choices:
        raise SpecError(f"{name} must be one of {', '.join(map(str, spec.choices))}, got {value!r}")
    if spec.minimum is not None:
        low_bad = value <= spec.minimum if spec.exclusive_min else value < spec.minimum
        if low_bad:
            op = ">" if spec.exclusive_min else "≥"
            raise SpecError(f"{name} must be {op} {spec.minimum:g}{unit}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise SpecError(f"{name} must be ≤ {spec.maximum:g}{unit}, got {value!r}")
    return value


class Section:
    """A validator built from field declarations, with an optional cross-field check.

    ``normalize(values, name) -> values`` runs after the fields are checked, for rules that tie
    fields together (``g_min < g_max``) or expand shorthands.
    """

    def __init__(self, name: str, fields: Mapping[str, Field], *,
                 normalize: Callable[[dict, str], dict] | None = None, doc: str = ""):
        self.name = name
        self.fields = dict(fields)
        self.normalize = normalize
        self.doc = doc
        self.vector_fields = frozenset(k for k, f in self.fields.items() if f.vector)

    def __call__(self, values: Mapping[str, Any], ctx: Context | None = None) -> dict:
        ctx = ctx or Context()
        if not isinstance(values, Mapping):
            raise SpecError(f"{self.name} must be a table, got {values!r}")
        for key in values:
            if key not in self.fields:
                raise SpecError(f"{self.name}.{key} is not a field of [{self.name}]"
                                f"{did_you_mean(key, self.fields)}")
        out: dict[str, Any] = {}
        for key, spec in self.fields.items():
            dotted = f"{self.name}.{key}"
            if key in values:
                out[key] = check_field(dotted, spec, values[key], ctx)
            elif spec.required:
                raise SpecError(f"{dotted} is required ({spec.doc or spec.type})")
            else:
                out[key] = spec.default
        return self.normalize(out, self.name) if self.normalize else out
