"""Weights ↔ conductances, the converters at the array's edge (DAC in, ADC out), and tiling.

The only module where training weights ``w`` and conductances ``g`` meet (STYLE.md item 6).

Differential mapping: ``w = (g⁺ − g⁻) · w_per_s`` with ``w_per_s = w_max / (g_max − g_min)``, so
the full conductance window of one device spans ``w_max`` and a pair spans ``[-w_max, w_max]``.
Reference mapping: ``w = (g − g_ref) · 2·w_per_s`` with one shared reference column held at
``g_ref = (g_min + g_max) / 2``, so a single device spans the same ``[-w_max, w_max]``.
:attr:`WeightMap.scale` is the factor between a weight and the *pair difference* the optimizers
see (``g⁻ = g_ref`` for the reference mapping).

Tiling: a layer's (n_in, n_out) matrix is cut into blocks of at most ``block_rows × block_cols``
(:func:`tile_blocks`); each block sits at the top-left of its own array (or pair of arrays),
and the blocks' digitised partial sums are added digitally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cosim.errors import SpecError
from cosim.schema import check_fields, param

Mapping = Literal["differential", "reference"]
AdcRange = Literal["calibrated", "batch"]
MAPPINGS = ("differential", "reference")


@dataclass(frozen=True, kw_only=True, slots=True)
class WeightMap:
    """Linear map between weight units and siemens for one layer.

    Attributes:
        g_min, g_max: the device window used for weights, S (0 ≤ g_min < g_max).
        w_max: the weight represented by a full window, unitless (> 0).
        mapping: "differential" (two devices per weight) or "reference" (one device per
            weight plus a shared reference column at the mid conductance).
    """

    g_min: float
    g_max: float
    w_max: float = param(type="float", minimum=0.0, exclusive_min=True, doc="weight of a full conductance window")
    mapping: Mapping = param("differential", type="str", choices=MAPPINGS)

    def __post_init__(self) -> None:
        check_fields(self, "array")
        if not (0 <= self.g_min < self.g_max and np.isfinite(self.g_max)):
            raise SpecError(f"mapping needs 0 ≤ g_min < g_max, got g_min={self.g_min!r} S, g_max={self.g_max!r} S")

    @property
    def w_per_s(self) -> float:
        """Weight units per siemens of (g⁺ − g⁻) (differential) or of (g − g_ref)/2 (reference)."""
        return self.w_max / (self.g_max - self.g_min)

    @property
    def scale(self) -> float:
        """Weight units per siemens of the pair difference g⁺ − g⁻ (g⁻ = g_ref for "reference")."""
        return self.w_per_s if self.mapping == "differential" else 2.0 * self.w_per_s

    @property
    def g_ref(self) -> float:
        """Reference-column conductance, S (the window's middle)."""
        return 0.5 * (self.g_min + self.g_max)

    def to_weights(self, g_plus: np.ndarray, g_minus: np.ndarray | None = None) -> np.ndarray:
        """Weights represented by conductances (S); ``g_minus`` defaults to g_ref (reference)."""
        if self.mapping == "differential":
            if g_minus is None:
                raise SpecError("the differential mapping needs both g_plus and g_minus")
            return (np.asarray(g_plus) - g_minus) * self.scale
        ref = self.g_ref if g_minus is None else g_minus
        return (np.asarray(g_plus) - ref) * self.scale

    def to_conductances(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Target conductances (S) for weights; weights beyond ±w_max are clipped.

        Differential targets keep one device of each pair at g_min and put the weight on the
        other (most headroom for SET-only updates); reference targets put g⁻ at g_ref.
        """
        w = np.clip(np.asarray(w, dtype=float), -self.w_max, self.w_max)
        dg = w / self.scale
        if self.mapping == "differential":
            return self.g_min + np.maximum(dg, 0.0), self.g_min + np.maximum(-dg, 0.0)
        return self.g_ref + dg, np.full_like(dg, self.g_ref)


def advance_estimate(g_est: np.ndarray, n: np.ndarray, curve) -> np.ndarray:
    """Open-loop estimate after ``n`` pulses: ĝ + ΔG_nominal(ĝ, n) on the nominal ``curve``
    (anything with ``delta_g`` and a ``g_min``/``g_max`` window), clipped to the window; S."""
    return np.clip(g_est + np.asarray(curve.delta_g(g_est, n), dtype=float), curve.g_min, curve.g_max)


def quantize_uniform(x: np.ndarray, full_scale: float | np.ndarray, bits: int | None) -> np.ndarray:
    """Round ``x`` to a signed uniform grid of ``2**bits - 1`` levels over ±full_scale, clipping.

    ``bits=None`` means an ideal converter (no rounding, no clipping). A zero full scale maps
    everything to 0.
    """
    if bits is None:
        return np.asarray(x, dtype=float)
    levels = 2 ** (bits - 1) - 1
    fs = np.asarray(full_scale, dtype=float)
    safe = np.where(fs > 0, fs, 1.0)
    q = np.rint(np.clip(np.asarray(x, dtype=float) / safe, -1.0, 1.0) * levels) / levels
    return np.where(fs > 0, q * safe, 0.0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Converters:
    """DAC at the inputs and ADC at the outputs of a tile.

    Attributes:
        v_read: DAC full-scale read voltage, V (> 0); the batch's largest |input| maps to it
            (a digital per-batch scale, undone after the ADC).
        dac_bits: DAC resolution in bits (signed, 2..24), or None for ideal.
        adc_bits: ADC resolution in bits (signed, 2..24), or None for ideal.
        adc_headroom: factor on the calibrated current range (≥ 1).
        adc_range: "calibrated": each ADC's full scale is set from the first read after a
            calibration request (the training loop asks at each epoch's start and every
            ``train.calibrate_every`` steps) and later reads clip (the layer counts them);
            "batch": full scale = the batch's own largest |current| (an ideal auto-ranging ADC).
    """

    v_read: float = param(0.2, type="float", minimum=0.0, exclusive_min=True, unit="V")
    dac_bits: int | None = param(8, type="int", minimum=2, maximum=24, none=True)
    adc_bits: int | None = param(8, type="int", minimum=2, maximum=24, none=True)
    adc_headroom: float = param(1.0, type="float", minimum=1.0)
    adc_range: AdcRange = param("calibrated", type="str", choices=("calibrated", "batch"))

    def __post_init__(self) -> None:
        check_fields(self, "converters")

    def to_volts(self, x: np.ndarray, x_max: np.ndarray | float) -> np.ndarray:
        """DAC: signed inputs scaled so |x| = x_max gives v_read volts, then quantised."""
        xm = np.asarray(x_max, dtype=float)
        v = np.asarray(x, dtype=float) * (self.v_read / np.where(xm > 0, xm, 1.0))
        return quantize_uniform(v, self.v_read, self.dac_bits)

    def adc(self, i: np.ndarray, i_range: np.ndarray | float) -> np.ndarray:
        """ADC: currents (A) quantised over ±(i_range·headroom)."""
        return quantize_uniform(i, np.asarray(i_range) * self.adc_headroom, self.adc_bits)


@dataclass(frozen=True, slots=True)
class Block:
    """One tile's share of a weight matrix: block (bi, bj) covers ``rows`` × ``cols``."""

    bi: int
    bj: int
    rows: slice
    cols: slice

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows.stop - self.rows.start, self.cols.stop - self.cols.start)


def tile_blocks(shape: tuple[int, int], block_rows: int, block_cols: int) -> list[Block]:
    """Blocks of at most ``block_rows × block_cols`` covering an (n_in, n_out) matrix, row-major."""
    n_in, n_out = (int(s) for s in shape)
    if n_in < 1 or n_out < 1:
        raise SpecError(f"a weight matrix needs a positive shape, got {shape}")
    if block_rows < 1 or block_cols < 1:
        raise SpecError(f"tile blocks need a positive size, got {block_rows}×{block_cols}")
    out = []
    for bi, r0 in enumerate(range(0, n_in, block_rows)):
        for bj, c0 in enumerate(range(0, n_out, block_cols)):
            out.append(Block(bi, bj, slice(r0, min(r0 + block_rows, n_in)), slice(c0, min(c0 + block_cols, n_out))))
    return out
