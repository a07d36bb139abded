"""A Tile joins the two bottom layers: one physical crossbar whose devices are compact models.

Reads go through a circuit engine on the tile's *current* conductances (so wire resistance and
sneak paths act on every training read); updates go to the devices as pulses. The circuit is
prepared lazily, only after the conductances changed: with the nodal engine the forward and
transpose reads share one preparation (``for_circuit``) and an update is a warm-started
``update_conductances`` of the previous one (``reuse=False`` prepares from scratch, the reference
path). A batch whose input vectors are all identical (a tile holding only a bias row) is solved
once and repeated (a DC read is a pure function of its inputs); other batches are solved whole.
No state is shared between tiles.

Updates (``update``):

- ``"model"``: :meth:`DevicePopulation.apply_pulses` integrates every pulse through each
  device's own compact model (d2d parameters, c2c noise, faults): the exact path.
- ``"table"``: the fast path. The card's nominal :class:`PulseTable` is stretched onto each
  device's own conductance window (so d2d windows and faults stay; d2d *shape* spread does not),
  advanced by ``n`` pulses with the table's c2c noise, and written back with
  ``set_conductance``.
- ``"auto"``: "model" when the model has a closed-form pulse (cheap per pulse), else "table".

Energy proxy of a pulse train: ``|n|·V²·G·t_pulse`` (J) with V the card's SET/RESET amplitude,
G the device's conductance before the train and t_pulse the card's pulse width.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cosim.array.cells import access_card_for, check_cell_fields, compose, population_law
from cosim.catalog import ARRAY_FIELDS, CELL_FIELDS, NONLINEAR_CELLS, TILE_FIELDS
from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, get_engine
from cosim.circuit.engines.base import Prepared, prepare_again
from cosim.errors import InputError, SpecError
from cosim.schema import check_fields, declare, param

log = logging.getLogger(__name__)

UpdateMode = Literal["auto", "model", "table"]
UPDATE_MODES = ("auto", "model", "table")


@dataclass(frozen=True, kw_only=True, slots=True)
class ArraySpec:
    """The physical array a tile is built on (the parts of CrossbarSpec that are not devices).

    Attributes:
        rows, cols: array size (integers ≥ 1).
        r_row, r_col: wire resistance per segment, Ω ≥ 0.
        r_driver, r_sense: periphery resistances, Ω ≥ 0.
        drive, sense, cell, r_access: as in :class:`CrossbarSpec`.
        access_card, v_gate: the access element of 1S1R and 1T1R-mos cells (a card under
            models/cards/cells or a path; the gate voltage overriding the card's), refused for
            the other kinds.

    Every field but the size is declared once, in :data:`cosim.catalog.ARRAY_FIELDS`; errors
    name them ``array.<field>``.
    """

    rows: int = param(64, type="int", minimum=1, doc="word lines N")
    cols: int = param(64, type="int", minimum=1, doc="bit lines M")
    r_row: float = declare(ARRAY_FIELDS["r_row"])
    r_col: float = declare(ARRAY_FIELDS["r_col"])
    r_driver: float = declare(ARRAY_FIELDS["r_driver"])
    r_sense: float = declare(ARRAY_FIELDS["r_sense"])
    drive: str = declare(ARRAY_FIELDS["drive"])
    sense: str = declare(ARRAY_FIELDS["sense"])
    cell: str = declare(ARRAY_FIELDS["cell"])
    r_access: float = declare(ARRAY_FIELDS["r_access"])
    access_card: str | None = declare(ARRAY_FIELDS["access_card"])
    v_gate: float | None = declare(ARRAY_FIELDS["v_gate"])

    def __post_init__(self) -> None:
        check_fields(self, "array")
        check_cell_fields(self.cell, self.access_card, self.v_gate)

    @property
    def nonlinear(self) -> bool:
        """Whether the cells are read through their I–V law (Newton) rather than a conductance."""
        return self.cell in NONLINEAR_CELLS

    @property
    def has_wires(self) -> bool:
        """Whether any series resistance makes reads differ from V·G."""
        return any(getattr(self, k) > 0 for k in ("r_row", "r_col", "r_driver", "r_sense")) or (
            self.cell == "1T1R" and self.r_access > 0)

    def tile_fields(self) -> dict:
        """The physical fields (those of :data:`~cosim.catalog.TILE_FIELDS`) as a dict."""
        return {k: getattr(self, k) for k in ("rows", "cols", *TILE_FIELDS, *CELL_FIELDS)}

    def crossbar(self, g: np.ndarray, law=None) -> CrossbarSpec:
        """The CrossbarSpec of this array holding conductances ``g`` (S) and, for the nonlinear
        cells, the devices' I–V ``law`` (the access element is added here)."""
        if self.nonlinear:
            if law is None:
                raise SpecError.at("array.cell", f"{self.cell!r} cells need the devices' I-V law, not only conductances")
            law = self.cell_law(law, np.shape(g))
        return CrossbarSpec(conductances=g, law=law, **{k: getattr(self, k) for k in TILE_FIELDS})

    def cell_law(self, device_law, shape: tuple[int, int]):
        """The law of this array's (nonlinear) cells whose devices obey ``device_law``: the
        device alone or in series with the access element of :attr:`access_card`."""
        return compose(self.cell, device_law, access_card_for(self.cell, self.access_card, self.v_gate), shape)

    def replace(self, **changes) -> ArraySpec:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class PulseReport:
    """What one :meth:`Tile.apply_pulses` call sent: counts, devices touched, energy proxy (J)."""

    set_pulses: int
    reset_pulses: int
    devices: int
    energy: float


@dataclass(slots=True)
class TileStats:
    """Cumulative counters and wall times (s) of one tile."""

    reads: int = 0
    transposed_reads: int = 0
    vectors: int = 0
    prepares: int = 0
    set_pulses: int = 0
    reset_pulses: int = 0
    programmed: int = 0
    target_clipped: int = 0
    energy: float = 0.0
    read_time: float = 0.0
    prepare_time: float = 0.0
    update_time: float = 0.0
    extra: dict = field(default_factory=dict)


class Tile:
    """One crossbar of ``array.rows × array.cols`` devices, read through ``options.engine``.

    ``population`` is a device population of shape (rows, cols) (cosim.devices). Cells outside
    the block a layer uses stay at their initial conductance and still load the wires.
    ``table`` (a PulseTable of the population's card) is needed for ``update="table"``.
    ``reuse`` lets the engine share one preparation between the read directions and update it
    after a write (off: prepare from scratch every time, the reference path).
    """

    def __init__(self, array: ArraySpec, population, options: SolverOptions, *,
                 update: UpdateMode = "auto", table=None, name: str = "", reuse: bool = True) -> None:
        if tuple(population.shape) != (array.rows, array.cols):
            raise SpecError(f"tile population shape {tuple(population.shape)} != array ({array.rows}, {array.cols})")
        if update not in UPDATE_MODES:
            raise SpecError(f"device.update must be one of {', '.join(UPDATE_MODES)}, got {update!r}")
        if update == "auto":
            update = "model" if getattr(population.model, "has_exact_pulse", False) or table is None else "table"
        if update == "table" and table is None:
            raise SpecError("device.update = 'table' needs the card's PulseTable")
        self.array = array
        self.population = population
        self.options = options
        self.update = update
        self.table = table
        self.name = name
        self.stats = TileStats()
        get_engine(options.engine).warm_up()  # one-time solver set-up belongs to the array's set-up
        self._prepared: dict[bool, Prepared] = {}
        self._stale: set[bool] = set()
        self.reuse = reuse
        self._g: np.ndarray | None = None
        self._window: tuple[np.ndarray, np.ndarray] | None = None
        self._noise: tuple[float, np.random.Generator] | None = None
        prog = population.card.programming
        self._amp = (float(prog.amplitude_set), float(prog.amplitude_reset))
        self._width = float(prog.width)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.array.rows, self.array.cols)

    # -- state -------------------------------------------------------------------------------
    def conductances(self) -> np.ndarray:
        """The devices' true conductances at the read voltage, S (what the circuit sees); a copy."""
        if self._g is None:
            self._g = self.population.conductance()
        return self._g.copy()

    def crossbar_spec(self) -> CrossbarSpec:
        """The CrossbarSpec the tile's reads solve: its conductances and, for nonlinear cells,
        its devices' I–V at their present states."""
        g = self.conductances()
        return self.array.crossbar(g, population_law(self.population) if self.array.nonlinear else None)

    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """Each device's own (g_lo, g_hi) window, S (fixed by its d2d parameters)."""
        if self._window is None:
            self._window = self.population.window()
        return self._window

    def faults(self) -> np.ndarray:
        """Boolean (rows, cols): stuck-on, stuck-off or dead devices."""
        return ~np.asarray(self.population.healthy).reshape(self.shape)

    def _changed(self) -> None:
        self._g = None
        self._stale = {False, True}

    def invalidate(self) -> None:
        """Forget cached conductances and preparations after the population was changed from
        outside the tile (e.g. by :func:`~cosim.array.program.program_cells`)."""
        self._changed()

    def set_read_noise(self, sigma: float, rng: np.random.Generator | None) -> None:
        """Read noise on every later forward read: each device's current fluctuates with relative
        std ``sigma`` (≥ 0; e.g. RTN/1-f noise integrated over the sense window), independently per
        read, so column j's current gets σ·√(Σ_i (V_i·G_ij)²)·N(0, 1) (A), from the drive
        voltages and conductances (the ideal cell currents: with wires, an upper bound)."""
        if not (np.isfinite(sigma) and sigma >= 0):
            raise SpecError(f"read noise must be a relative std ≥ 0, got {sigma!r}")
        if sigma > 0 and rng is None:
            raise SpecError("read noise needs a random generator (seed)")
        self._noise = (float(sigma), rng) if sigma > 0 else None

    # -- reads -------------------------------------------------------------------------------
    def _prepare(self, transpose: bool):
        """The prepared read of one direction on the current conductances.

        :func:`~cosim.circuit.engines.base.prepare_again` brings a stale read up to date the
        cheapest way the engine offers (the nodal engine: warm-started, the two directions
        sharing one preparation); ``reuse=False`` prepares from scratch. Either way only after
        the conductances changed.
        """
        prep = self._prepared.get(transpose)
        if prep is not None and transpose not in self._stale:
            return prep
        t0 = time.perf_counter()
        other = self._prepared.get(not transpose)
        fresh_other = other if other is not None and (not transpose) not in self._stale else None
        g = self.conductances()
        # the spec only when a circuit is built: an updated preparation needs only g
        law = (lambda: self.array.cell_law(population_law(self.population), g.shape)) if self.array.nonlinear else None
        prep = prepare_again(self.options, g, lambda: build_circuit(self.crossbar_spec(), transpose=transpose),
                             previous=prep if self.reuse else None, partner=fresh_other if self.reuse else None,
                             law=law)
        self._prepared[transpose] = prep
        self._stale.discard(transpose)
        self.stats.prepares += 1
        self.stats.prepare_time += time.perf_counter() - t0
        return prep

    def read(self, v: np.ndarray, outputs: np.ndarray | None = None) -> np.ndarray:
        """Column currents (B, cols), A, for row voltages (B, rows), V; with ``outputs`` (column
        indices) only those columns (B, len(outputs)), which the engine may read for less."""
        return self._solve(False, v, outputs)

    def read_transposed(self, v: np.ndarray, outputs: np.ndarray | None = None) -> np.ndarray:
        """Row currents (B, rows), A, for column voltages (B, cols), V (backpropagation read);
        with ``outputs`` (row indices) only those rows."""
        return self._solve(True, v, outputs)

    def _solve(self, transpose: bool, v: np.ndarray, outputs: np.ndarray | None = None) -> np.ndarray:
        prep = self._prepare(transpose)
        t0 = time.perf_counter()
        v = np.asarray(v, dtype=float)
        if outputs is not None:
            outputs = np.arange(self.shape[0 if transpose else 1])[outputs]
        if v.ndim == 2 and v.shape[0] > 1 and prep.repeat_identical and (v == v[:1]).all():
            # A DC read is a pure function of its inputs: a tile holding only a bias row sees the
            # same vector for every sample, and solves it once. Only a batch of one repeated
            # vector is looked for: a general search for repeated rows (np.unique) cost 7 % of
            # a digits epoch.
            out = np.repeat(self._currents(prep, v[:1], outputs), v.shape[0], axis=0)
        else:
            out = self._currents(prep, v, outputs)
        if self._noise is not None and not transpose:
            sigma, rng = self._noise
            g2 = self.conductances() ** 2
            v2 = np.atleast_2d(v) ** 2
            # drawn for every column, so a seed gives the same noise whichever columns are kept
            noise = sigma * np.sqrt(v2 @ g2) * rng.standard_normal((v2.shape[0], self.shape[1]))
            out = out + (noise if outputs is None else noise[:, outputs]).reshape(np.shape(out))
        self.stats.read_time += time.perf_counter() - t0
        if transpose:
            self.stats.transposed_reads += 1
        else:
            self.stats.reads += 1
        self.stats.vectors += int(np.shape(v)[0]) if np.ndim(v) == 2 else 1
        return out

    @staticmethod
    def _currents(prep: Prepared, v: np.ndarray, outputs: np.ndarray | None) -> np.ndarray:
        return prep.solve(v).currents if outputs is None else prep.solve_outputs(v, outputs)

    # -- writes ------------------------------------------------------------------------------
    def apply_pulses(self, n: np.ndarray, rng: np.random.Generator | None) -> PulseReport:
        """Send signed pulse counts (rows, cols) to the devices; n > 0 SET, n < 0 RESET.

        ``rng`` drives the cycle-to-cycle noise (None: the nominal, noise-free response).
        """
        n = np.asarray(n)
        if n.shape != self.shape:
            raise InputError(f"tile {self.name}: pulses must have shape {self.shape}, got {n.shape}")
        if not n.any():
            return PulseReport(0, 0, 0, 0.0)
        t0 = time.perf_counter()
        n = n.astype(np.int64)
        g0 = self.conductances()
        v2 = np.where(n > 0, self._amp[0] ** 2, self._amp[1] ** 2)
        energy = float(np.sum(np.abs(n) * v2 * g0) * self._width)
        if self.update == "model":
            self.population.apply_pulses(n, rng=rng)
        else:
            self.population.set_conductance(self._table_step(g0, n, rng))
        self._changed()
        report = PulseReport(int(n[n > 0].sum()), int(-n[n < 0].sum()), int(np.count_nonzero(n)), energy)
        st = self.stats
        st.set_pulses += report.set_pulses
        st.reset_pulses += report.reset_pulses
        st.energy += energy
        st.update_time += time.perf_counter() - t0
        return report

    def _table_step(self, g: np.ndarray, n: np.ndarray, rng) -> np.ndarray:
        """The nominal table stretched onto each device's window (see the module docstring)."""
        t = self.table
        lo, hi = self.window()
        span = np.where(hi > lo, hi - lo, 1.0)
        u = np.clip((g - lo) / span, 0.0, 1.0)
        g_nom = t.g_min + u * (t.g_max - t.g_min)
        u_new = (np.asarray(t.apply(g_nom, n, rng)) - t.g_min) / (t.g_max - t.g_min)
        return np.where(n != 0, lo + u_new * span, g)

    def set_conductances(self, g: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Program devices to target conductances (S) with write-verify; ``mask`` limits which.

        Faulty devices keep their fixed values. A target outside a device's own (d2d) window
        lands on the window's edge, as a verify loop would stop there; such targets are counted
        in ``stats.target_clipped``.
        """
        g = np.asarray(g, dtype=float)
        if g.shape != self.shape:
            raise InputError(f"tile {self.name}: targets must have shape {self.shape}, got {g.shape}")
        t0 = time.perf_counter()
        lo, hi = self.window()
        healthy = ~self.faults()
        sel = healthy if mask is None else healthy & mask
        self.stats.target_clipped += int(np.count_nonzero(sel & ((g < lo) | (g > hi))))
        g = np.clip(g, lo, hi)
        if mask is not None:
            g = np.where(mask, g, self.conductances())
        self.population.set_conductance(g)
        self.stats.programmed += int(self.shape[0] * self.shape[1] if mask is None else np.count_nonzero(mask))
        self._changed()
        self.stats.update_time += time.perf_counter() - t0
