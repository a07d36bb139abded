"""Read margin of passive (0T1R), selector (1S1R) and transistor (1T1R-mos) arrays, solved exactly.

The read: row ``i`` is driven at ``v_sense + v_read``, column ``j`` is sensed by its virtual-ground
amplifier, and the other lines are floating, at V/2 (rows and columns at v_read/2) or at V/3
(rows at v_read/3, columns at 2·v_read/3). Every current comes from the nonlinear Newton solve of
the whole array (:func:`cosim.circuit.solvers.newton.read_nonlinear`), wires included, so the
cells' I–V laws (a sinh device, a selector in series) act exactly where they sit in the array.

Worst cases, as designers define the read margin (e.g. Zhou, Kim and Lu, IEEE TED 61(5):1369,
2014; Chen, IEEE TED 60(4):1318, 2013):

- reading the ON state: the selected cell ON and every other cell OFF (the smallest current a
  "1" can give: no sneak current helps it);
- reading the OFF state: the selected cell OFF and every other cell ON (the largest current a
  "0" can give: the sneak paths and half-selected cells are as conductive as they get).

The margin is (I_on − I_off) / I_on of the sensed column currents: 1 when the array adds
nothing, ≤ 0 when a "0" can read as high as a "1". Floating lines carry sneak paths (3, 5, …
cells through unselected rows and columns); with V/2 and V/3 the unselected lines are held, so
the column's unwanted current is that of its half-selected cells at V/2 or V/3, which a
selector's half-bias nonlinearity suppresses.

A 1T1R-mos array is read as such arrays are: the access transistor's gate is the word line, on
(at the transistor's ``v_gate``) in the selected row and at 0 V in every other row, so cells of
unselected rows are cut off whatever their lines carry (level-1 has no subthreshold current:
their sneak current is exactly 0, and the margin is that of the selected row alone).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from cosim.circuit.cells import Law, Mosfet, Ohmic, SeriesCell, Sinh
from cosim.circuit.engines.base import SolverOptions
from cosim.circuit.spec import CrossbarSpec
from cosim.errors import SpecError

#: The unselected-line schemes a read margin is defined for.
MARGIN_SCHEMES = ("floating", "v/2", "v/3")

#: Default certified relative error of the sensed currents, looser than the reads' 1e-10: an
#: OFF read senses little current, and a 1e-6 error is far below any margin a designer reads off.
MARGIN_RTOL = 1e-6

#: The certificate (ℓ1 KCL residual over every free node, :mod:`cosim.circuit.solvers.newton`)
#: has a rounding floor: floating lines sit ~1 V from their reference, so each of the 2·N·M
#: nodes carries ~eps·V·g_wire of rounding (measured 5e-13 A at 64×64, 1 Ω wires, 1.5 V: 0.2 of
#: eps·2NM·V·g_wire). Newton steps stop helping there, so an iterate whose residual is below
#: FLOOR_FACTOR times that estimate is accepted, and the bound it certifies is reported
#: (MarginReport.error_bound) instead of a refusal that no solver could avoid.
FLOOR_FACTOR = 1.0


def pattern(on: Law, off: Law, mask: np.ndarray) -> Law:
    """One law for an (N, M) array: ``on`` where ``mask`` is True, ``off`` elsewhere.

    ``on`` and ``off`` are laws of one kind (both Ohmic or both Sinh) with scalar or (N, M)
    parameters; the result's parameters are (N, M) arrays.
    """
    if type(on) is not type(off) or not isinstance(on, Ohmic | Sinh):
        raise SpecError(f"the ON and OFF device laws must be of one kind (Ohmic or Sinh), got "
                        f"{type(on).__name__} and {type(off).__name__}")
    mask = np.asarray(mask, dtype=bool)
    fields = {f.name: np.where(mask, np.asarray(getattr(on, f.name), dtype=float),
                               np.asarray(getattr(off, f.name), dtype=float))
              for f in dataclasses.fields(on)}
    return type(on)(**fields)


def kind_of(access: Law | None) -> str:
    """"0T1R" (device only), "1S1R" (two-terminal selector) or "1T1R-mos" (access transistor)."""
    if access is None:
        return "0T1R"
    return "1T1R-mos" if isinstance(access, Mosfet) else "1S1R"


def relative_margin(i_on: float, i_off: float) -> float:
    """The read margin designers quote, (i_on − i_off) / i_on, unitless (NaN when i_on is 0)."""
    return (i_on - i_off) / i_on if i_on != 0 else math.nan


@dataclass(frozen=True, kw_only=True, slots=True)
class MarginReport:
    """Worst-case read of cell ``cell`` (see the module docstring).

    Attributes:
        shape: (N, M). cell: the selected (i, j). v_read: V. unselected: the scheme.
        kind: "0T1R", "1S1R" or "1T1R-mos".
        i_on: current sensed at column j, selected ON and all others OFF, A.
        i_off: the same, selected OFF and all others ON, A.
        i_cell_on, i_cell_off: the current through the selected cell itself in those reads, A.
        i_alone_on, i_alone_off: the cell's own law at v_read (no array, no wires), A.
        newton_steps: the most Newton steps either read took.
        error_bound: the larger certified relative error bound of the two reads' currents.
    """

    shape: tuple[int, int]
    cell: tuple[int, int]
    v_read: float
    unselected: str
    kind: str
    i_on: float
    i_off: float
    i_cell_on: float
    i_cell_off: float
    i_alone_on: float
    i_alone_off: float
    newton_steps: int
    error_bound: float

    @property
    def margin(self) -> float:
        """(i_on − i_off) / i_on, unitless."""
        return relative_margin(self.i_on, self.i_off)

    @property
    def margin_ideal(self) -> float:
        """(i_alone_on − i_alone_off) / i_alone_on: the margin of the cell alone, unitless."""
        return (self.i_alone_on - self.i_alone_off) / self.i_alone_on

    @property
    def i_sneak_off(self) -> float:
        """Current reaching column j through other cells in the OFF read, A (KCL: i_off − i_cell_off)."""
        return self.i_off - self.i_cell_off

    @property
    def sneak_share_off(self) -> float:
        """i_sneak_off / i_off: how much of a "0" read is not the selected cell, unitless."""
        return self.i_sneak_off / self.i_off if self.i_off != 0 else math.nan


def _cell_law(on: Law, off: Law, access: Law | None, mask: np.ndarray):
    dev = pattern(on, off, mask)
    return dev if access is None else SeriesCell(dev, access)


def _at(law: Law, shape: tuple[int, int], i: int, j: int) -> Law:
    """The law of cell (i, j) alone (scalar parameters)."""
    return type(law)(**{f.name: float(np.broadcast_to(np.asarray(getattr(law, f.name), dtype=float), shape)[i, j])
                        for f in dataclasses.fields(law)})


def _alone(on: Law, access: Law | None, v: float) -> float:
    law = on if access is None else SeriesCell(on, access)
    return float(np.asarray(law.branch(np.asarray(v, dtype=float), np.asarray(0.0))[0]))


def _gate_rows(access: Mosfet, shape: tuple[int, int], i: int) -> Mosfet:
    """The access transistors with only row ``i``'s word line on (others' gates at 0 V)."""
    on = np.zeros(shape, dtype=bool)
    on[i] = True
    return access.gated(on)


def _floor(spec: CrossbarSpec, v_read: float) -> float:
    """Rounding floor of the ℓ1 KCL residual, A (see :data:`FLOOR_FACTOR`)."""
    n, m = spec.shape
    g_wire = max(1.0 / float(np.min(r)) for r in (spec.r_row, spec.r_col) if np.size(r))
    return FLOOR_FACTOR * np.finfo(float).eps * 2 * n * m * g_wire * (abs(spec.v_sense) + v_read)


def _read(spec: CrossbarSpec, law, i: int, j: int, v_read: float, options: SolverOptions):
    from cosim.circuit.solvers.newton import read_nonlinear  # noqa: PLC0415 - solvers load on use

    inputs = np.zeros(spec.shape[0])
    inputs[i] = spec.v_sense + v_read
    res = read_nonlinear(spec, law, inputs, options, want_nodes=False, atol=_floor(spec, v_read))
    return (float(res.currents[0, j]), float(res.cell_currents[0, i, j]), int(res.info["newton_steps"]),
            float(res.info["error_bound"]))


def read_margin(spec: CrossbarSpec, on: Law, off: Law, *, access: Law | None = None,
                cell: tuple[int, int] | None = None, v_read: float = 0.5, unselected: str = "floating",
                options: SolverOptions | None = None) -> MarginReport:
    """Worst-case read margin of cell ``cell`` (default (0, M−1): the top row, farthest from the
    sense amplifiers at the bottom, and the right column, farthest from the left drivers).

    ``spec`` gives the wires, ports and sides (its conductances and selections are replaced);
    ``on``/``off`` are the device laws of the two states (scalar parameters); ``access`` the series
    element of every cell (a selector law for 1S1R; a :class:`Mosfet` for 1T1R-mos, whose
    ``v_gate`` is the *selected* word-line voltage: the read turns every other row's gate to 0 V)
    or None (passive). ``v_read`` in V;
    ``unselected`` one of :data:`MARGIN_SCHEMES`. ``options.rtol`` is the Newton certificate (default :data:`MARGIN_RTOL`).
    """
    n, m = spec.shape
    i, j = (0, m - 1) if cell is None else cell
    if not (isinstance(i, int | np.integer) and isinstance(j, int | np.integer) and 0 <= i < n and 0 <= j < m):
        raise SpecError(f"read_margin cell must be (row, column) inside {n}x{m}, got {cell!r}")
    if unselected not in MARGIN_SCHEMES:
        raise SpecError(f"read_margin unselected must be one of {', '.join(MARGIN_SCHEMES)}, got {unselected!r}")
    if not (np.isfinite(v_read) and v_read > 0):
        raise SpecError(f"read_margin v_read must be a finite voltage > 0, got {v_read!r}")
    if spec.cell != "0T1R":
        raise SpecError("read_margin takes the series element as access=, not spec.cell='1T1R'")
    if spec.v_select is not None:  # the reads drive the selected line at v_sense + v_read
        raise SpecError("read_margin sets the selected line's voltage from v_read; spec.v_select must be None")
    options = options or SolverOptions(rtol=MARGIN_RTOL)
    alone = None if access is None else _at(access, (n, m), i, j)
    i_on_alone, i_off_alone = _alone(on, alone, v_read), _alone(off, alone, v_read)
    if isinstance(access, Mosfet):
        access = _gate_rows(access, (n, m), i)
    if not i_on_alone > i_off_alone:
        raise SpecError(f"the ON law must conduct more than the OFF law at v_read={v_read:g} V "
                        f"({i_on_alone:.3g} A vs {i_off_alone:.3g} A)")
    rows, cols = np.zeros(n, dtype=bool), np.zeros(m, dtype=bool)
    rows[i] = cols[j] = True
    rspec = spec.replace(conductances=np.ones((n, m)), selected_rows=rows, selected_cols=cols,
                         unselected=unselected, v_select=spec.v_sense + v_read)
    mask = np.zeros((n, m), dtype=bool)
    mask[i, j] = True
    i_on, c_on, s_on, b_on = _read(rspec, _cell_law(on, off, access, mask), i, j, v_read, options)
    i_off, c_off, s_off, b_off = _read(rspec, _cell_law(on, off, access, ~mask), i, j, v_read, options)
    return MarginReport(shape=(n, m), cell=(int(i), int(j)), v_read=float(v_read), unselected=unselected,
                        kind=kind_of(access), i_on=i_on, i_off=i_off, i_cell_on=c_on, i_cell_off=c_off,
                        i_alone_on=i_on_alone, i_alone_off=i_off_alone, newton_steps=max(s_on, s_off),
                        error_bound=max(b_on, b_off))


def format_margins(reports: list[MarginReport]) -> str:
    """A table of reports, one line each, for people."""
    lines = [f"{'cells':<9}{'size':>9}  {'unselected':<10}{'I_on (A)':>12}{'I_off (A)':>12}"
             f"{'sneak in I_off':>15}{'margin':>9}{'alone':>8}{'bound':>9}"]
    for r in reports:
        lines.append(f"{r.kind:<9}{f'{r.shape[0]}x{r.shape[1]}':>9}  {r.unselected:<10}{r.i_on:>12.4g}"
                     f"{r.i_off:>12.4g}{100 * r.sneak_share_off:>14.2f}%{100 * r.margin:>8.2f}%"
                     f"{100 * r.margin_ideal:>7.1f}%{r.error_bound:>9.1e}")
    return "\n".join(lines)
