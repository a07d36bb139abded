"""The physical description of a crossbar read: what goes on silicon, not how it is solved.

Conventions (DESIGN.md §2): N rows (word lines) × M columns (bit lines); cell (i, j) joins row
node ``r{i}_{j}`` and column node ``c{i}_{j}``; row 0 is the top (farthest from the bottom sense
amplifiers), column 0 the left (nearest the row drivers). All values are SI: ohm, siemens, volt.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cosim.catalog import ARRAY_FIELDS, CELL_TYPES, DRIVE_SIDES, NONLINEAR_CELLS, SENSE_SIDES, UNSELECTED
from cosim.circuit.cells import Cell, Mosfet, Ohmic, SeriesCell, Sinh
from cosim.errors import SpecError
from cosim.schema import check_fields, declare

DriveSide = Literal["left", "right", "both"]
SenseSide = Literal["bottom", "top", "both"]
CellType = Literal["0T1R", "1T1R", "device", "1S1R", "1T1R-mos"]
Unselected = Literal["driven", "floating", "grounded", "v/2", "v/3"]

__all__ = ["CELL_TYPES", "DRIVE_SIDES", "SENSE_SIDES", "UNSELECTED", "CrossbarSpec"]


def _resistance_array(name: str, value, shape: tuple[int, int], line_axis: int) -> np.ndarray:
    """Broadcast a scalar, a per-segment vector or a full array of resistances to ``shape``.

    ``line_axis`` is the axis along which a 1-D vector runs (segments of one line, shared by
    every line), so ``r_row`` may be given as M-1 segment values shared by all rows.
    """
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        out = np.full(shape, float(arr))
    elif arr.ndim == 1 and arr.shape[0] == shape[line_axis]:
        out = np.broadcast_to(arr if line_axis == 1 else arr[:, None], shape).copy()
    elif arr.shape == shape:
        out = arr.copy()
    else:
        raise SpecError.at(
            f"spec.{name}", f"must be a scalar, a vector of {shape[line_axis]} segments or an array "
            f"of shape {shape}, got shape {arr.shape}")
    _check_finite_nonneg(name, out, "Ω")
    return out


def _line_array(name: str, value, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        out = np.full(n, float(arr))
    elif arr.shape == (n,):
        out = arr.copy()
    else:
        raise SpecError.at(f"spec.{name}", f"must be a scalar or a vector of {n} values, got shape {arr.shape}")
    _check_finite_nonneg(name, out, "Ω")
    return out


def _check_finite_nonneg(name: str, arr: np.ndarray, unit: str) -> None:
    if not np.all(np.isfinite(arr)):
        raise SpecError.at(f"spec.{name}", f"must be finite, got {float(arr[~np.isfinite(arr)].flat[0])!r}")
    if np.any(arr < 0):
        raise SpecError.at(f"spec.{name}", f"must be ≥ 0 {unit}, got {float(arr[arr < 0].flat[0])!r}")


def _mask(name: str, value, n: int) -> np.ndarray:
    if value is None:
        return np.ones(n, dtype=bool)
    arr = np.asarray(value)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise SpecError.at(f"spec.{name}", f"must be a boolean mask of {n} entries, got shape {arr.shape}")
        return arr.copy()
    if arr.size and not (np.issubdtype(arr.dtype, np.integer)
                         or (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)))):
        raise SpecError.at(f"spec.{name}", f"must be a boolean mask or integer indices, got {arr.ravel()[:3]!r}")
    idx = arr.astype(int).ravel()
    if np.any((idx < 0) | (idx >= n)):
        raise SpecError.at(f"spec.{name}", f"indices must lie in 0..{n - 1}")
    out = np.zeros(n, dtype=bool)
    out[idx] = True
    return out


def _law_parts(law) -> list:
    """The elementary laws of ``law`` (a series cell's two, or itself)."""
    return [law.device, law.access] if isinstance(law, SeriesCell) else [law]


def _check_law(cell: str, law, shape: tuple[int, int]) -> None:
    if cell not in NONLINEAR_CELLS:
        if law is not None:
            raise SpecError.at("spec.law", f"applies to the nonlinear cells ({', '.join(NONLINEAR_CELLS)}), "
                                           f"not cell {cell!r}")
        return
    want = {"device": "a two-terminal law (Ohmic or Sinh)", "1S1R": "a SeriesCell with a Sinh selector",
            "1T1R-mos": "a SeriesCell with a Mosfet access transistor"}[cell]
    ok = {"device": isinstance(law, Ohmic | Sinh),
          "1S1R": isinstance(law, SeriesCell) and isinstance(law.access, Sinh),
          "1T1R-mos": isinstance(law, SeriesCell) and isinstance(law.access, Mosfet)}[cell]
    if not ok:
        raise SpecError.at("spec.law", f"must be {want} for cell {cell!r}, got {type(law).__name__}")
    for part in _law_parts(law):
        for f in dataclasses.fields(part):
            a = np.asarray(getattr(part, f.name), dtype=float)
            try:
                np.broadcast_shapes(a.shape, shape)
            except ValueError:
                raise SpecError.at(f"spec.law.{f.name}", f"has shape {a.shape}, which does not broadcast "
                                                          f"to the array's {shape}") from None
            if not np.isfinite(a).all():
                raise SpecError.at(f"spec.law.{f.name}", "must be finite")


def _hash_law(h, law) -> None:
    for part in _law_parts(law):
        h.update(type(part).__name__.encode())
        for f in dataclasses.fields(part):
            a = np.ascontiguousarray(np.asarray(getattr(part, f.name), dtype=float))
            h.update(f.name.encode() + str(a.shape).encode() + a.tobytes())


@dataclass(frozen=True, kw_only=True, slots=True)
class CrossbarSpec:
    """A passive (0T1R) or 1T1R crossbar with its wires and periphery.

    Attributes:
        conductances: (N, M) device conductances in siemens, finite and ≥ 0.
        r_row: row-wire resistance per segment, Ω ≥ 0: scalar, M-1 values shared by all rows, or
            (N, M-1). Segment j joins r{i}_{j} and r{i}_{j+1}.
        r_col: column-wire resistance per segment, Ω ≥ 0: scalar, N-1 values, or (N-1, M).
            Segment i joins c{i}_{j} and c{i+1}_{j}.
        r_driver: driver output resistance, Ω ≥ 0, scalar or one per row.
        r_sense: sense-amplifier input resistance, Ω ≥ 0, scalar or one per column.
        v_sense: virtual-ground potential of the sense amplifiers, V.
        drive: which end(s) of each row the driver reaches ("both" = one driver wired to both).
        sense: which end(s) of each column reach the sense amplifier.
        cell: "0T1R" (each device a resistor of its read conductance), "1T1R" (that in series
            with an access transistor of on-resistance ``r_access``), or a nonlinear cell whose
            I–V is ``law``: "device" (the device's own I(V, state)), "1S1R" (the device in series
            with a two-terminal selector) or "1T1R-mos" (the device in series with a level-1
            access transistor whose gate is the word line).
        r_access: on-resistance of the 1T1R access transistor, Ω ≥ 0 (ignored for 0T1R).
        law: the cells' I–V (:mod:`cosim.circuit.cells`, parameters broadcasting to (N, M)),
            required by the nonlinear cells and refused by the others: a two-terminal law for
            "device", a :class:`SeriesCell` with a :class:`Sinh` selector for "1S1R" or a
            :class:`Mosfet` for "1T1R-mos" (its ``v_gate`` is the *selected* word-line voltage;
            unselected rows are built with the gate at 0 V). :mod:`cosim.array.cells` makes it
            from a device card and state. ``conductances`` then only name the cells' read
            conductances (what the ohmic kinds would use); no nonlinear read uses them.
        selected_rows / selected_cols: boolean masks or index lists of the lines in use; the rest
            are biased by ``unselected``. None selects all.
        unselected: bias of unselected lines: "driven" (held at 0 V / v_sense by their own
            periphery), "floating" (disconnected), "grounded" (tied to 0 V with no series
            resistance), "v/2" (rows and columns at v_select/2), "v/3" (rows at v_select/3,
            columns at 2·v_select/3). Unselected 1T1R rows have their access transistors off.
        v_select: the selected-line voltage the V/2 and V/3 schemes divide, V (required by them).
    """

    conductances: np.ndarray
    r_row: float | np.ndarray = 0.0
    r_col: float | np.ndarray = 0.0
    r_driver: float | np.ndarray = 0.0
    r_sense: float | np.ndarray = 0.0
    v_sense: float = declare(ARRAY_FIELDS["v_sense"])
    drive: DriveSide = declare(ARRAY_FIELDS["drive"])
    sense: SenseSide = declare(ARRAY_FIELDS["sense"])
    cell: CellType = declare(ARRAY_FIELDS["cell"])
    r_access: float = declare(ARRAY_FIELDS["r_access"])
    selected_rows: np.ndarray | None = None
    selected_cols: np.ndarray | None = None
    unselected: Unselected = declare(ARRAY_FIELDS["unselected"])
    v_select: float | None = declare(ARRAY_FIELDS["v_select"])
    law: Cell | None = None
    _key: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        check_fields(self, "spec")  # the scalar fields, declared in cosim.catalog.ARRAY_FIELDS
        g = np.asarray(self.conductances, dtype=float)
        if g.ndim != 2 or g.shape[0] < 1 or g.shape[1] < 1:
            raise SpecError.at("spec.conductances", f"must be a 2-D (rows, cols) array, got shape {g.shape}")
        if np.isnan(g).any():
            i, j = np.argwhere(np.isnan(g))[0]
            raise SpecError.at(f"spec.conductances[{i},{j}]", "is NaN; conductances must be finite S ≥ 0")
        if not np.isfinite(g).all():
            i, j = np.argwhere(~np.isfinite(g))[0]
            raise SpecError.at(f"spec.conductances[{i},{j}]", "is infinite; conductances must be finite S ≥ 0")
        if (g < 0).any():
            i, j = np.argwhere(g < 0)[0]
            raise SpecError.at(f"spec.conductances[{i},{j}]", f"must be ≥ 0 S, got {float(g[i, j])!r}")
        n, m = g.shape
        set_ = object.__setattr__
        set_(self, "conductances", g.copy())
        set_(self, "r_row", _resistance_array("r_row", self.r_row, (n, m - 1), 1))
        set_(self, "r_col", _resistance_array("r_col", self.r_col, (n - 1, m), 0))
        set_(self, "r_driver", _line_array("r_driver", self.r_driver, n))
        set_(self, "r_sense", _line_array("r_sense", self.r_sense, m))
        _check_law(self.cell, self.law, (n, m))
        set_(self, "selected_rows", _mask("selected_rows", self.selected_rows, n))
        set_(self, "selected_cols", _mask("selected_cols", self.selected_cols, m))
        partial = not (self.selected_rows.all() and self.selected_cols.all())
        if partial and self.unselected in ("v/2", "v/3") and self.v_select is None:
            raise SpecError.at("spec.v_select", f"must be set (V) when spec.unselected is {self.unselected!r}")
        for a in (self.conductances, self.r_row, self.r_col, self.r_driver, self.r_sense,
                  self.selected_rows, self.selected_cols):
            a.setflags(write=False)
        set_(self, "_key", "")

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.conductances.shape  # type: ignore[return-value]

    @property
    def n_rows(self) -> int:
        return self.conductances.shape[0]

    @property
    def n_cols(self) -> int:
        return self.conductances.shape[1]

    def replace(self, **changes) -> CrossbarSpec:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        """A stable hash of every physical field, for caches keyed by the frozen spec."""
        if not self._key:
            h = hashlib.sha256()
            for f in dataclasses.fields(self):
                if f.name == "_key":
                    continue
                v = getattr(self, f.name)
                h.update(f.name.encode())
                if isinstance(v, np.ndarray):
                    h.update(str(v.shape).encode() + np.ascontiguousarray(v).tobytes())
                elif f.name == "law" and v is not None:
                    _hash_law(h, v)
                else:
                    h.update(repr(v).encode())
            object.__setattr__(self, "_key", h.hexdigest()[:16])
        return self._key
