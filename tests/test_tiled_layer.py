"""TiledLayer: tiling + digital partial sums against the untiled product, converter bounds,
the reference column, estimates vs truth.

Budget: ~5 s. Truths: x·W and δ·Wᵀ with W read back from the devices (zero wires, ideal
converters); the quantisation error bound of a uniform DAC/ADC derived in the test.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.array import ArraySpec, Converters, TiledLayer, WeightMap, quantize_uniform, tile_blocks
from cosim.circuit import SolverOptions
from cosim.devices import PulseTable, load_card
from cosim.devices.paths import models_dir
from cosim.errors import InputError, SpecError

CARD = load_card(models_dir() / "cards" / "imprecise.toml")
IDEAL = Converters(dac_bits=None, adc_bits=None)


def _layer(shape, rows=8, cols=8, mapping="differential", conv=IDEAL, engine="ideal", seed=1, **kw):
    table = PulseTable.from_card(CARD)
    wmap = WeightMap(g_min=table.g_min, g_max=table.g_max, w_max=1.0, mapping=mapping)
    return TiledLayer.create(shape, array=ArraySpec(rows=rows, cols=cols, **kw), card=CARD,
                             options=SolverOptions(engine=engine), converters=conv, wmap=wmap, curve=table,
                             seed=seed)


def _program_random(layer, rng):
    w = rng.uniform(-0.8, 0.8, layer.shape)
    gp, gm = layer.wmap.to_conductances(w)
    layer.program(gp, gm)
    return layer.weights()


def test_tile_blocks_cover_the_matrix_once():
    blocks = tile_blocks((37, 21), 8, 5)
    hit = np.zeros((37, 21), dtype=int)
    for b in blocks:
        hit[b.rows, b.cols] += 1
        assert b.shape[0] <= 8 and b.shape[1] <= 5
    assert np.all(hit == 1) and len(blocks) == 5 * 5


@pytest.mark.parametrize("mapping", ["differential", "reference"])
@pytest.mark.parametrize("engine", ["ideal", "nodal"])
def test_tiles_and_partial_sums_reproduce_the_matrix_product(mapping, engine, rng):
    """A 37×21 matrix on 8×8 tiles (5×3 blocks, ragged edges; 7 weight columns per tile with a
    reference column) gives x·W and δ·Wᵀ of the weights the devices hold, to round-off (1e-12),
    and so does the same matrix on one large tile."""
    layer = _layer((37, 21), mapping=mapping, engine=engine)
    w = _program_random(layer, rng)
    x = rng.uniform(0, 1, (6, 37))
    d = rng.normal(size=(6, 21))
    np.testing.assert_allclose(layer.forward(x), x @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.backward(d), d @ w.T, rtol=1e-12, atol=1e-12)
    big = _layer((37, 21), rows=40, cols=24, mapping=mapping, engine=engine)
    w_big = _program_random(big, np.random.default_rng(5))
    np.testing.assert_allclose(big.forward(x), x @ w_big, rtol=1e-12, atol=1e-12)
    assert len(layer.pairs) == 5 * 3 and len(big.pairs) == 1


def test_quantize_uniform_bounds(rng):
    x = rng.uniform(-2, 2, 10_000)
    q = quantize_uniform(x, 1.0, 6)
    lsb = 1.0 / (2**5 - 1)
    inside = np.abs(x) <= 1.0
    assert np.max(np.abs(q[inside] - x[inside])) <= lsb / 2 + 1e-15
    np.testing.assert_array_equal(q[~inside], np.sign(x[~inside]))
    assert len(np.unique(q)) == 2 * (2**5 - 1) + 1
    np.testing.assert_array_equal(quantize_uniform(x, 1.0, None), x)


@pytest.mark.parametrize("adc_range", ["batch", "calibrated"])
def test_converter_error_stays_within_its_bound(adc_range, rng):
    """With a b-bit DAC (LSB Δv = v_read/(2^(b−1)−1)) and ADC (full scale F per tile pair), each
    tile pair's output current errs by at most Σ_i |G⁺_ij − G⁻_ij|·Δv/2 + F/(2(2^(b−1)−1));
    after scaling back (w_per_s·x_max/v_read) and summing the blocks, y does too. The
    calibrated ADC takes F from the first batch, so a later batch may clip: the bound is
    checked on the first."""
    conv = Converters(dac_bits=6, adc_bits=7, adc_range=adc_range)
    layer = _layer((20, 9), rows=8, cols=8, conv=conv)
    w = _program_random(layer, rng)
    x = rng.uniform(0, 1, (16, 20))
    y = layer.forward(x)
    exact = x @ w
    x_max = np.abs(x).max()
    back = layer.wmap.scale * x_max / conv.v_read
    dv = conv.v_read / (2**5 - 1)
    bound = np.zeros(9)
    for p in layer.pairs:
        b = p.block
        dg = np.abs(w[b.rows, b.cols]) / layer.wmap.scale
        fs = p.fwd_range if adc_range == "calibrated" else None
        if fs is None:  # batch ranging: the largest |ΔI| of this batch, bounded by the exact one + DAC error
            fs = np.max(np.abs(x[:, b.rows] @ (w[b.rows, b.cols] / back))) + dg.sum(axis=0).max() * dv
        bound[b.cols] += back * (dg.sum(axis=0) * dv / 2 + fs / (2 * (2**6 - 1)))
    err = np.abs(y - exact)
    assert np.all(err <= bound[None, :] * (1 + 1e-9)), (err.max(axis=0), bound)
    assert err.max() > 0  # the converters really quantise


def test_calibrated_adc_counts_the_outputs_it_clips(rng):
    """A calibrated ADC keeps the full scale of its first read: a later batch's outputs beyond it
    clip, and the layer counts them. One tile pair, ideal reads and DAC, so each output is
    x·W (W read back) and the full scale is the first batch's largest |x·W| (both batches reach
    max |x| = 1, so the DAC maps them alike). After a new calibration the same batch sets its
    own scale and nothing clips; an auto-ranging ADC never clips."""
    layer = _layer((6, 5), conv=Converters(dac_bits=None, adc_bits=7))
    w = _program_random(layer, rng)
    x1, x2 = rng.uniform(0, 0.4, (8, 6)), rng.uniform(0.4, 1.0, (8, 6))
    x1[0, 0] = x2[0, 0] = 1.0
    layer.forward(x1)
    assert (layer.adc_conversions, layer.adc_clipped) == (40, 0)
    layer.forward(x2)
    expect = int(np.count_nonzero(np.abs(x2 @ w) > np.abs(x1 @ w).max()))
    assert 0 < expect < 40 and (layer.adc_conversions, layer.adc_clipped) == (80, expect)
    layer.calibrate()
    layer.forward(x2)
    assert (layer.adc_conversions, layer.adc_clipped) == (120, expect)
    auto = _layer((6, 5), conv=Converters(dac_bits=None, adc_bits=7, adc_range="batch"))
    _program_random(auto, rng)
    auto.forward(x1), auto.forward(x2)
    assert (auto.adc_conversions, auto.adc_clipped) == (80, 0)


def test_estimates_track_open_loop_and_truth_drifts(rng):
    """Estimates advance along the nominal curve; the imprecise devices (d2d, c2c) do not follow
    them exactly, and apply_pulses counts every pulse on both sides."""
    layer = _layer((10, 6))
    gp, gm = layer.wmap.to_conductances(np.zeros(layer.shape))
    layer.program(gp + 2e-5, gm + 2e-5)
    n_p = rng.integers(0, 3, layer.shape)
    n_m = rng.integers(-2, 1, layer.shape)
    before = layer.g_plus_est.copy()
    rep = layer.apply_pulses(n_p, n_m, np.random.default_rng(0))
    assert rep.set_pulses == n_p.sum() and rep.reset_pulses == -n_m.sum()
    expect = np.clip(before + layer.curve.delta_g(before, n_p), layer.curve.g_min, layer.curve.g_max)
    np.testing.assert_allclose(layer.g_plus_est, expect, rtol=1e-12)
    true_p, _ = layer.read_pairs()
    assert np.max(np.abs(true_p - layer.g_plus_est)) > 1e-7 and layer.refresh_reads == 1


def test_reference_mapping_rules(rng):
    layer = _layer((5, 4), mapping="reference")
    assert layer.n_devices == 20
    g = layer.pairs[0].plus.conductances()
    healthy = ~layer.pairs[0].plus.faults()[:, layer.ref_col]
    np.testing.assert_allclose(g[healthy, layer.ref_col], layer.wmap.g_ref, rtol=1e-12)
    with pytest.raises(InputError, match="plus-only"):
        layer.apply_pulses(np.zeros((5, 4), int), np.ones((5, 4), int), None)
    with pytest.raises(SpecError, match="tile_cols"):  # 8 columns leave 7 for weights
        TiledLayer.create((5, 4), array=ArraySpec(rows=8, cols=8), card=CARD, options=SolverOptions(engine="ideal"),
                          converters=IDEAL, wmap=layer.wmap, curve=layer.curve, seed=0, block_cols=8)


def test_locate_maps_weights_to_tiles():
    layer = _layer((37, 21))
    assert layer.locate(0, 0) == (0, 0, 0, 0)
    assert layer.locate(36, 20) == (4, 2, 4, 4)
    assert layer.locate(9, 17) == (1, 2, 1, 1)
