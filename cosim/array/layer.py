"""A network layer on crossbar tiles: the hardware :class:`MatVec` (forward, backward, weights).

Forward ``y = x·W``: the batch's largest |x| sets the DAC scale, each block's rows are driven
(unused rows at 0 V), each tile pair's column currents are subtracted in analog (I⁺ − I⁻, or
I − I_ref for the reference column), digitised by that pair's ADC, converted back to weight
units and added digitally over the row blocks. Backward ``dx = δ·Wᵀ`` is the same with
transpose reads (columns driven, rows sensed); with the reference mapping the reference
column is driven at −Σδ so each row current is Σ_j δ_j (G_ij − G_ref,i).

The layer keeps two views of its devices apart:

- the **true** state, only in the tiles (read by the circuit; :meth:`read_pairs` and
  :meth:`weights` read it back, a refresh read a chip can make but training normally does not);
- the **estimated** conductances (``g_plus_est``, ``g_minus_est``): what the digital periphery
  believes, set by programming and advanced open-loop along the nominal pulse curve after
  every pulse — what the optimizers (and SSM's compensation) use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cosim.array.mapping import Block, Converters, WeightMap, advance_estimate, tile_blocks
from cosim.array.tile import ArraySpec, PulseReport, Tile, UpdateMode
from cosim.circuit import SolverOptions
from cosim.errors import InputError, SpecError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TilePair:
    """The tiles of one block: ``plus`` and ``minus`` (None with a reference column), and the
    calibrated ADC full scales (A) of its forward and transpose outputs (None until set)."""

    block: Block
    plus: Tile
    minus: Tile | None
    fwd_range: float | None = None
    bwd_range: float | None = None

    def tiles(self) -> list[Tile]:
        return [self.plus] if self.minus is None else [self.plus, self.minus]


@dataclass(frozen=True, slots=True)
class LayerPulses:
    """Totals of one pulse application to a layer (both devices of every pair)."""

    set_pulses: int
    reset_pulses: int
    devices: int
    energy: float


class TiledLayer:
    """One weight matrix (n_in, n_out) on tiles; implements the networks' MatVec protocol.

    Build with :meth:`create`. ``curve`` is the nominal pulse response (a ``PulseTable``) used
    to track the estimates.
    """

    def __init__(self, shape: tuple[int, int], *, array: ArraySpec, wmap: WeightMap, converters: Converters,
                 curve, pairs: list[TilePair], name: str = "") -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.array, self.wmap, self.converters, self.curve = array, wmap, converters, curve
        self.pairs = pairs
        self.name = name
        self.reference = wmap.mapping == "reference"
        self.ref_col = array.cols - 1
        gp, gm = wmap.to_conductances(np.zeros(self.shape))
        self.g_plus_est, self.g_minus_est = gp, gm
        self.refresh_reads = 0
        # ADC conversions made and how many hit the full scale (a calibrated ADC clips what
        # exceeds the range of its calibration read; the training loop reports the fraction).
        self.adc_conversions = 0
        self.adc_clipped = 0
        self.block_rows, self.block_cols = pairs[0].block.shape
        # Rows whose backward outputs someone uses (None: all). A network that folds its bias
        # into the last row drops that row's error, so blocks holding only it are not read.
        self.backward_rows: int | None = None

    def locate(self, row: int, col: int) -> tuple[int, int, int, int]:
        """Where weight (row, col) sits: block (bi, bj) and cell (i, j) inside its tile(s)."""
        return (row // self.block_rows, col // self.block_cols, row % self.block_rows, col % self.block_cols)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def create(cls, shape: tuple[int, int], *, array: ArraySpec, card, options: SolverOptions,
               converters: Converters, wmap: WeightMap, curve, seed: int | np.random.SeedSequence,
               block_rows: int | None = None, block_cols: int | None = None, update: UpdateMode = "auto",
               backend: str = "numpy", name: str = "") -> TiledLayer:
        """Cut ``shape`` into blocks and give each its own tile(s) of devices drawn from ``seed``.

        block_rows/cols default to the whole array (one column less for the reference mapping,
        whose last column is the shared reference, programmed to g_ref with write-verify).
        ``backend`` picks the device equations' implementation ("numpy", "compiled", "auto").
        """
        from cosim.devices import DevicePopulation  # array may import devices; kept off import time

        ref = wmap.mapping == "reference"
        max_cols = array.cols - 1 if ref else array.cols
        block_rows = array.rows if block_rows is None else int(block_rows)
        block_cols = max_cols if block_cols is None else int(block_cols)
        if not 1 <= block_rows <= array.rows:
            raise SpecError(f"array.tile_rows must lie in 1..{array.rows} (the array's rows), got {block_rows}")
        if max_cols < 1 or not 1 <= block_cols <= max_cols:
            what = "the array's columns less the reference column" if ref else "the array's columns"
            raise SpecError(f"array.tile_cols must lie in 1..{max_cols} ({what}), got {block_cols}")
        blocks = tile_blocks(shape, block_rows, block_cols)
        seeds = (seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)).spawn(2 * len(blocks))
        table = curve if update in ("auto", "table") else None
        pairs = []
        for k, b in enumerate(blocks):
            tiles = []
            for side, s in (("+", seeds[2 * k]), ("-", seeds[2 * k + 1])):
                if side == "-" and ref:
                    tiles.append(None)
                    continue
                pop = DevicePopulation.create(card, (array.rows, array.cols), seed=int(s.generate_state(1)[0]),
                                              backend=backend)
                tiles.append(Tile(array, pop, options, update=update, table=table,
                                  name=f"{name}[{b.bi},{b.bj}]{side}"))
            pairs.append(TilePair(b, tiles[0], tiles[1]))
        layer = cls(shape, array=array, wmap=wmap, converters=converters, curve=curve, pairs=pairs, name=name)
        if ref:
            for p in pairs:
                g = p.plus.conductances()
                mask = np.zeros(g.shape, dtype=bool)
                mask[:, layer.ref_col] = True
                p.plus.set_conductances(np.where(mask, wmap.g_ref, g), mask)
        return layer

    # -- MatVec ------------------------------------------------------------------------------
    def tiles(self) -> list[Tile]:
        return [t for p in self.pairs for t in p.tiles()]

    def _check(self, x: np.ndarray, n: int, what: str) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != n:
            raise InputError(f"layer {self.name}: {what} must have shape (B, {n}), got {x.shape}")
        return x

    def _adc(self, pair: TilePair, i: np.ndarray, attr: str) -> np.ndarray:
        c = self.converters
        if c.adc_bits is None:
            return i
        if c.adc_range == "batch":
            fs = float(np.max(np.abs(i))) if i.size else 0.0
        else:
            fs = getattr(pair, attr)
            if fs is None:
                fs = float(np.max(np.abs(i))) if i.size else 0.0
                setattr(pair, attr, fs)
        self.adc_conversions += i.size
        self.adc_clipped += int(np.count_nonzero(np.abs(i) > fs * c.adc_headroom))
        return c.adc(i, fs)

    def row_voltages(self, x: np.ndarray) -> list[np.ndarray]:
        """Per tile pair, the row voltages (B, array.rows), V, that :meth:`forward` applies for
        inputs ``x`` (B, n_in): the DAC scaled by max |x| (all zero for an all-zero input)."""
        x = self._check(x, self.shape[0], "inputs")
        return self._row_voltages(x, float(np.max(np.abs(x))) if x.size else 0.0)

    def _row_voltages(self, x: np.ndarray, x_max: float) -> list[np.ndarray]:
        v_all = self.converters.to_volts(x, x_max) if x_max > 0 else np.zeros(x.shape)
        out = []
        for p in self.pairs:
            v = np.zeros((x.shape[0], self.array.rows))
            v[:, :p.block.shape[0]] = v_all[:, p.block.rows]
            out.append(v)
        return out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """y = x·W (B, n_out) through DAC → tile reads → ADC → digital partial sums."""
        x = self._check(x, self.shape[0], "inputs")
        c = self.converters
        x_max = float(np.max(np.abs(x))) if x.size else 0.0
        y = np.zeros((x.shape[0], self.shape[1]))
        if x_max == 0.0:
            return y
        back = self.wmap.scale * x_max / c.v_read
        for p, v in zip(self.pairs, self._row_voltages(x, x_max)):
            i_plus, i_minus = self._read_pair(p, v)
            y[:, p.block.cols] += self._adc(p, i_plus - i_minus, "fwd_range") * back
        return y

    def _read_pair(self, p: TilePair, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward column currents (A) of pair ``p`` for row voltages ``v`` (B, array.rows): the
        g⁺ tile's (B, k) and its partner's, (B, k) or the reference column's (B, 1). Only the
        columns the block uses are read (the engine may then read them for less)."""
        k = p.block.shape[1]
        if self.reference:
            i = p.plus.read(v, np.r_[0:k, self.ref_col])
            return i[:, :k], i[:, k:]
        return p.plus.read(v, np.arange(k)), p.minus.read(v, np.arange(k))

    def backward(self, delta: np.ndarray) -> np.ndarray:
        """dx = δ·Wᵀ (B, n_in) through transpose reads (columns driven, rows sensed); rows from
        ``backward_rows`` on, when set, are not read and come back as 0."""
        d = self._check(delta, self.shape[1], "errors")
        c = self.converters
        d_max = float(np.max(np.abs(d))) if d.size else 0.0
        out = np.zeros((d.shape[0], self.shape[0]))
        for p in self.pairs:
            b = p.block
            r, k = b.shape
            if self.backward_rows is not None and b.rows.start >= self.backward_rows:
                continue
            v_cols = np.zeros((d.shape[0], self.array.cols))
            v_cols[:, :k] = d[:, b.cols]
            if self.reference:
                v_cols[:, self.ref_col] = -v_cols[:, :k].sum(axis=1)
            scale_max = float(np.max(np.abs(v_cols))) if self.reference else d_max
            if scale_max == 0.0:
                continue
            v = c.to_volts(v_cols, scale_max)
            i = p.plus.read_transposed(v, np.arange(r))
            if not self.reference:
                i = i - p.minus.read_transposed(v, np.arange(r))
            out[:, b.rows] += self._adc(p, i, "bwd_range") * (self.wmap.scale * scale_max / c.v_read)
        return out

    def weights(self) -> np.ndarray:
        """True weights (n_in, n_out) from the devices' real conductances (a diagnostic read)."""
        gp, gm = self._true_pairs()
        return self.wmap.scale * (gp - gm)

    # -- true state ----------------------------------------------------------------------------
    def _true_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        gp = np.empty(self.shape)
        gm = np.empty(self.shape)
        for p in self.pairs:
            b = p.block
            r, k = b.shape
            g = p.plus.conductances()
            gp[b.rows, b.cols] = g[:r, :k]
            gm[b.rows, b.cols] = (np.broadcast_to(g[:r, self.ref_col:self.ref_col + 1], (r, k)) if self.reference
                                  else p.minus.conductances()[:r, :k])
        return gp, gm

    def read_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """True (g⁺, g⁻) of every weight, S, as a refresh read of each device (counted)."""
        self.refresh_reads += 1
        return self._true_pairs()

    def read_unit_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Each weight's two devices as the tiles deliver them, S, (n_in, n_out) each: the
        column current of a unit-row read (that row at ``converters.v_read``, the others at 0 V,
        no converters) over v_read, for the g⁺ device and for its partner (the reference
        column with that mapping). Without wires these are the read conductances; with wires,
        what the circuit makes of them, since the drops depend on every cell's current.

        A verify read of the whole layer (counted in ``refresh_reads``): ohmic reads are linear
        in the row voltages, so scale·(plus − minus) is then exactly the weight matrix the
        forward pass applies before the ADC; for nonlinear cells it is the response at v_read.
        """
        self.refresh_reads += 1
        v_read = self.converters.v_read
        plus, minus = np.empty(self.shape), np.empty(self.shape)
        for p in self.pairs:
            r = p.block.shape[0]
            v = np.zeros((r, self.array.rows))
            v[np.arange(r), np.arange(r)] = v_read
            i_plus, i_minus = self._read_pair(p, v)
            plus[p.block.rows, p.block.cols] = i_plus / v_read
            minus[p.block.rows, p.block.cols] = i_minus / v_read
        return plus, minus

    def device_arrays(self, fn) -> tuple[np.ndarray, np.ndarray | None]:
        """``fn(tile)`` (a (rows, cols) array) gathered over the used blocks, per device side."""
        plus = None
        minus = None
        for p in self.pairs:
            b = p.block
            r, k = b.shape
            a = fn(p.plus)
            if plus is None:
                plus = np.empty(self.shape, dtype=np.asarray(a).dtype)
            plus[b.rows, b.cols] = a[:r, :k]
            if p.minus is not None:
                a = fn(p.minus)
                if minus is None:
                    minus = np.empty(self.shape, dtype=np.asarray(a).dtype)
                minus[b.rows, b.cols] = a[:r, :k]
        return plus, minus

    @property
    def n_devices(self) -> int:
        """Devices that carry weights (the reference column excluded)."""
        return self.shape[0] * self.shape[1] * (1 if self.reference else 2)

    # -- writes ------------------------------------------------------------------------------
    def minus_pulses(self, n_minus: np.ndarray | None) -> np.ndarray | None:
        """``n_minus`` for the g⁻ devices, or None with the reference mapping, which has no g⁻
        devices (the one place that rule lives: a plan's g⁻ phases have nothing to act on)."""
        return None if self.reference else n_minus

    def _split(self, n_minus: np.ndarray | None) -> None:
        if self.reference and n_minus is not None and np.any(n_minus):
            raise InputError(f"layer {self.name}: the reference mapping has no g⁻ devices to pulse "
                             "(use optimizer.policy = 'plus-only')")

    def apply_pulses(self, n_plus: np.ndarray, n_minus: np.ndarray | None, rng: np.random.Generator | None,
                     *, track: bool = True) -> LayerPulses:
        """Send signed pulse counts (n_in, n_out) to the pair devices; ``track`` advances the
        estimates along the nominal curve (open loop). Returns the totals."""
        n_plus = np.asarray(n_plus)
        if n_plus.shape != self.shape or (n_minus is not None and np.shape(n_minus) != self.shape):
            raise InputError(f"layer {self.name}: pulses must have shape {self.shape}")
        self._split(n_minus)
        reports: list[PulseReport] = []
        for p in self.pairs:
            b = p.block
            r, k = b.shape
            for tile, n in ((p.plus, n_plus), (p.minus, n_minus)):
                if tile is None or n is None:
                    continue
                nt = np.zeros(tile.shape, dtype=np.int64)
                nt[:r, :k] = n[b.rows, b.cols]
                reports.append(tile.apply_pulses(nt, rng))
        if track:
            self.g_plus_est = advance_estimate(self.g_plus_est, n_plus, self.curve)
            if n_minus is not None and not self.reference:
                self.g_minus_est = advance_estimate(self.g_minus_est, np.asarray(n_minus), self.curve)
        return LayerPulses(sum(x.set_pulses for x in reports), sum(x.reset_pulses for x in reports),
                           sum(x.devices for x in reports), sum(x.energy for x in reports))

    def program(self, target_plus: np.ndarray, target_minus: np.ndarray | None,
                mask: np.ndarray | None = None) -> int:
        """Write-verify the masked pairs to targets (S) and take the targets as the estimates.

        Returns the number of devices programmed. Faulty devices keep their values (the
        estimates then differ from the truth, as on a chip).
        """
        mask = np.ones(self.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        count = 0
        for p in self.pairs:
            b = p.block
            r, k = b.shape
            m = mask[b.rows, b.cols]
            if not m.any():
                continue
            for tile, target in ((p.plus, target_plus), (p.minus, target_minus)):
                if tile is None:
                    continue
                g = tile.conductances()
                full = np.zeros(tile.shape, dtype=bool)
                full[:r, :k] = m
                g[:r, :k] = np.where(m, target[b.rows, b.cols], g[:r, :k])
                tile.set_conductances(g, full)
                count += int(m.sum())
        self.g_plus_est = np.where(mask, target_plus, self.g_plus_est)
        if not self.reference and target_minus is not None:
            self.g_minus_est = np.where(mask, target_minus, self.g_minus_est)
        return count

    def set_estimates(self, g_plus: np.ndarray, g_minus: np.ndarray) -> None:
        """Replace the digital estimates (S), e.g. after a re-initialisation plan."""
        self.g_plus_est = np.array(g_plus, dtype=float)
        if not self.reference:
            self.g_minus_est = np.array(g_minus, dtype=float)

    def calibrate(self) -> None:
        """Ask every ADC to take its full scale from its next read."""
        for p in self.pairs:
            p.fwd_range = p.bwd_range = None
