"""The one validation toolkit: typed fields with units and ranges, checked the same way everywhere.

Every config of cosim declares its fields once, as :class:`Field` values, and checks them with
:func:`check_field`; errors are :class:`~cosim.errors.SpecError` carrying the dotted field path
as data (``exc.path``, ``exc.reason``), so a caller renames a field (``spec.r_row`` →
``--r-row``, ``array.r_row``) without parsing text. Two ways to use the declarations:

- frozen dataclasses (``CrossbarSpec``, ``ArraySpec``, the training sections, the optimizer
  configs): each field is ``param(default, type=…, …)`` and ``__post_init__`` calls
  :func:`check_fields` (which converts, range-checks and freezes the values);
- plain-dict sections of a design study: :class:`Section` maps field names to :class:`Field`
  values (:func:`fields_of` takes them from a dataclass), ``section(values, ctx) -> dict``.

:func:`check_keys` is the one did-you-mean for unknown names, :func:`read_toml` the one way to
read a TOML file with a one-line error.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cosim.errors import SpecError

FieldType = Literal["int", "float", "str", "bool", "path", "table", "list[int]", "list[float]", "list[str]"]
_REQUIRED = object()
# The ceiling of an integer field that declares no maximum of its own: every count cosim reads
# (epochs, batch, rows, subset, iterations) is far below it, and a value above it (epochs = 1e30)
# is a typo or a hostile input that would otherwise reach an allocation or a loop.
INT_MAX = 2**31 - 1
# Seeds span what numpy's generators take from the command line (--seed): [0, 2**63).
SEED_MAX = 2**63 - 1
# Beyond 2**53 a float no longer holds every integer: 1e30 is not the integer a user typed.
_EXACT_FLOAT_INT = 2**53


def close_match(name: Any, choices: Iterable) -> str:
    """'; did you mean X?' when ``name`` is close to one of ``choices``, else ''."""
    close = difflib.get_close_matches(str(name), sorted(str(c) for c in choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def did_you_mean(name: Any, choices: Iterable) -> str:
    """'; did you mean X?' when ``name`` is close to one of ``choices``, else the list of choices."""
    choices = sorted(str(c) for c in choices)
    hint = close_match(name, choices)
    if hint or not choices:
        return hint
    return f"; expected one of {', '.join(choices)}"


def check_keys(section: str, values: Mapping[str, Any], known: Iterable[str], what: str = "") -> None:
    """Refuse a key of ``values`` that is not in ``known``, with a did-you-mean.

    The error reads ``section.key is not a field of [section]``, or ``… is not a <what>`` when
    ``what`` is given (``"variation field"``).
    """
    known = list(known)
    for key in values:
        if key not in known:
            noun = what or f"field of [{section}]"
            raise SpecError.at(f"{section}.{key}", f"is not a {noun}{did_you_mean(key, known)}")


def read_toml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A TOML file parsed; one-line :class:`SpecError` naming the file when it cannot be read."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a folder, expected a {what} (.toml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read {what}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    """What a validator may need beyond the values: where relative paths are resolved from."""

    base_dir: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True, kw_only=True, slots=True)
class Field:
    """One config field.

    Attributes:
        type: value type; "float" accepts integers, "int" accepts integral floats, "path" is a
            file resolved against the config's folder and required to exist, "table" a mapping
            checked by its owner.
        default: value when absent; leave unset for a required field (None is a valid default
            meaning "not given", and then None is also accepted as a value).
        unit: SI unit shown in error messages ("Ω", "S", "V", "s"; "" when unitless).
        doc: one line for error messages, help texts and docs.
        choices: the allowed values, for string fields.
        minimum / maximum: inclusive numeric bounds; ``exclusive_min`` / ``exclusive_max`` make
            them strict.
        none: None is accepted although the default is not None ("none" in TOML).
        interval: errors state a two-sided range as an interval (``must be in [0, 1)``) and
            choices as ``'a' or 'b'``, the wording of the device cards' model parameters.
    """

    type: FieldType
    default: Any = _REQUIRED
    unit: str = ""
    doc: str = ""
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False
    none: bool = False
    interval: bool = False

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    @property
    def vector(self) -> bool:
        return self.type.startswith("list[")

    @property
    def nullable(self) -> bool:
        return self.none or self.default is None

    def replace(self, **changes) -> Field:
        return dataclasses.replace(self, **changes)


def _scalar(name: str, ftype: str, value: Any, ctx: Context | None, nullable: bool) -> Any:
    alt = " or none" if nullable else ""
    if ftype == "bool":
        if not isinstance(value, bool | np.bool_):
            raise SpecError.at(name, f"must be true or false{alt}, got {value!r}")
        return bool(value)
    if ftype == "int":
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
            if isinstance(value, float | np.floating) and float(value).is_integer() \
                    and abs(value) <= _EXACT_FLOAT_INT:
                return int(value)
            raise SpecError.at(name, f"must be an integer{alt}, got {value!r}")
        return int(value)
    if ftype == "float":
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
            raise SpecError.at(name, f"must be a finite number{alt}, got {value!r}")
        if not math.isfinite(value):
            raise SpecError.at(name, f"must be finite, got {value!r}")
        return float(value)
    if ftype == "str":
        if not isinstance(value, str):
            raise SpecError.at(name, f"must be a string{alt}, got {value!r}")
        return value
    if ftype == "table":
        if not isinstance(value, Mapping):
            raise SpecError.at(name, f"must be a table, got {value!r}")
        return dict(value)
    if ftype == "path":
        if not isinstance(value, str) or not value:
            raise SpecError.at(name, f"must be a file path (string), got {value!r}")
        path = Path(value).expanduser()
        path = path if path.is_absolute() else (ctx or Context()).base_dir / path
        if not path.is_file():
            raise SpecError.at(name, f": file not found: {path}")
        return str(path.resolve())
    raise SpecError.at(name, f"has an unknown field type {ftype!r}")  # a schema bug, named


def check_field(name: str, spec: Field, value: Any, ctx: Context | None = None) -> Any:
    """``value`` converted to ``spec.type`` and range-checked; :class:`SpecError` names ``name``."""
    if value is None and spec.nullable:
        return None
    if spec.vector:
        if not isinstance(value, list | tuple):
            raise SpecError.at(name, f"must be a list of {spec.type[5:-1]} values, got {value!r}")
        return [_bounded(f"{name}[{k}]", spec, _scalar(f"{name}[{k}]", spec.type[5:-1], v, ctx, False))
                for k, v in enumerate(value)]
    return _bounded(name, spec, _scalar(name, spec.type, value, ctx, spec.nullable))


def _bounded(name: str, spec: Field, value: Any) -> Any:
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.interval:
        _in_interval(name, spec, value, unit)
    if spec.choices is not None and value not in spec.choices:
        hint = close_match(value, spec.choices) if isinstance(value, str) else ""
        raise SpecError.at(name, f"must be one of {', '.join(map(str, spec.choices))}, got {value!r}{hint}")
    if spec.minimum is not None:
        if value <= spec.minimum if spec.exclusive_min else value < spec.minimum:
            op = ">" if spec.exclusive_min else "≥"
            raise SpecError.at(name, f"must be {op} {spec.minimum:g}{unit}, got {value!r}")
    if spec.type in ("int", "list[int]") and spec.maximum is None and abs(value) > INT_MAX:
        raise SpecError.at(name, f"must be ≤ {INT_MAX:,} in size, got {value!r}")
    if spec.maximum is not None:
        if value >= spec.maximum if spec.exclusive_max else value > spec.maximum:
            op = "<" if spec.exclusive_max else "≤"
            raise SpecError.at(name, f"must be {op} {spec.maximum:g}{unit}, got {value!r}")
    return value


def _in_interval(name: str, spec: Field, value: Any, unit: str) -> None:
    if spec.choices is not None and value not in spec.choices:
        names = [repr(c) for c in spec.choices]
        listed = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
        raise SpecError.at(name, f"must be {listed}, got {value!r}")
    if spec.minimum is None or spec.maximum is None:
        return  # one-sided: the usual "must be ≥ x" wording below
    lo, hi = spec.minimum, spec.maximum
    if (value <= lo if spec.exclusive_min else value < lo) or (value >= hi if spec.exclusive_max else value > hi):
        left, right = "(" if spec.exclusive_min else "[", ")" if spec.exclusive_max else "]"
        raise SpecError.at(name, f"must be in {left}{lo:g}, {hi:g}{right}{unit}, got {value!r}")


# -- frozen dataclasses ----------------------------------------------------------------------

def param(default: Any = _REQUIRED, **rules: Any) -> Any:
    """A dataclass field declared with its :class:`Field` rules (``type``, ``unit``, ``minimum``…)."""
    return declare(Field(default=default, **rules))


def declare(spec: Field) -> Any:
    """A dataclass field that follows the declaration ``spec`` (default included).

    A mapping default becomes a ``default_factory`` (an empty table); the declaration is kept in
    the field's metadata, where :func:`check_fields` and :func:`fields_of` find it.
    """
    meta = {"schema": spec}
    if spec.required:
        return field(metadata=meta)
    if isinstance(spec.default, Mapping):
        return field(default_factory=lambda: dict(spec.default), metadata=meta)
    return field(default=spec.default, metadata=meta)


def fields_of(cls: type) -> dict[str, Field]:
    """The :class:`Field` of every declared field of a dataclass (those made with :func:`param`)."""
    return {f.name: f.metadata["schema"] for f in dataclasses.fields(cls) if "schema" in f.metadata}


def check_fields(obj: Any, section: str, ctx: Context | None = None) -> None:
    """Check and normalise every declared field of a frozen dataclass instance in place.

    Call it first in ``__post_init__``; errors name ``section.field``. List values are stored
    as tuples (hashable, frozen).
    """
    for name, spec in fields_of(type(obj)).items():
        value = check_field(f"{section}.{name}", spec, getattr(obj, name), ctx)
        object.__setattr__(obj, name, tuple(value) if spec.vector and value is not None else value)


# -- plain-dict sections (design studies) ----------------------------------------------------

class Section:
    """A validator of one plain TOML table built from field declarations.

    ``normalize(values, name) -> values`` runs after the fields are checked, for rules that tie
    fields together (``g_min < g_max``) or expand shorthands. A validator exposes
    ``vector_fields`` (names whose *value* is a list, e.g. layer widths): a study's grid then
    reads a list of lists there as an axis, and a flat list as one value.
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
        check_keys(self.name, values, self.fields)
        out: dict[str, Any] = {}
        for key, spec in self.fields.items():
            dotted = f"{self.name}.{key}"
            if key in values:
                out[key] = check_field(dotted, spec, values[key], ctx)
            elif spec.required:
                raise SpecError.at(dotted, f"is required ({spec.doc or spec.type})")
            else:
                out[key] = spec.default
        return self.normalize(out, self.name) if self.normalize else out
