"""Ex-situ deployment and inference (cosim.array.deploy, cosim.train.infer).

Truths checked:
- ideal devices (no variation, no faults), zero wires, ideal converters (quantisation switched
  off): the deployed network's logits equal the float network's to round-off (1e-9 relative:
  the weight → conductance → weight maps are linear, a few float64 operations each), so every
  prediction is the same, for the ideal and the nodal engine (a 0 Ω nodal read is V·G);
- write-verify on healthy devices (no faults, variation but targets inside every window) ends
  with every device within the tolerance; with faults, the faulty devices are counted and the
  devices it could not bring in are reported (unmet > 0 when the budget is too small);
- open-loop with a noise-free nominal device lands on the nominal curve's rounding (error
  ≤ half a pulse step), and is worse than write-verify on the imprecise card;
- through a circuit scheme the same targets are met by write-verify, and the half-selected
  neighbours are disturbed only by what the scheme lets through (counted).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cosim.array import ArraySpec, Converters, TiledLayer, WeightMap
from cosim.array.deploy import DeploySpec, deploy_layer, summarize_writes
from cosim.circuit import SolverOptions
from cosim.devices import PulseTable
from cosim.errors import SpecError
from cosim.train.config import DeviceConfig, load_device_card
from cosim.train.data import load_digits_split
from cosim.train.infer import run_inference
from cosim.train.infer_config import validate_inference_config
from cosim.train.networks import MLP, float_layers

CLEAN = {"card": "imprecise", "variation": {"c2c": 0.0, "stuck_on": 0.0, "stuck_off": 0.0, "dead": 0.0,
                                           "d2d": {k: 0.0 for k in ("g_min", "g_max", "a_p", "a_d", "p_max_p",
                                                                    "p_max_d")}}}


def _layer(card, shape=(20, 12), rows=16, cols=8, update="model"):
    curve = PulseTable.from_card(card)
    wmap = WeightMap(g_min=curve.g_min, g_max=curve.g_max, w_max=1.0)
    return TiledLayer.create(shape, array=ArraySpec(rows=rows, cols=cols), card=card,
                             options=SolverOptions(engine="ideal"), converters=Converters(dac_bits=None, adc_bits=None),
                             wmap=wmap, curve=curve, seed=3, update=update), curve


@pytest.fixture(scope="module")
def trained():
    ds = load_digits_split(seed=0)
    net = MLP([64, 16, 10])
    mats = float_layers(net.init_weights(np.random.default_rng(0)))
    for _ in range(5):
        for k in range(0, len(ds.y_train), 32):
            _, g, _ = net.loss_and_grads(mats, ds.x_train[k:k + 32], ds.y_train[k:k + 32])
            for m, gg in zip(mats, g):
                m.update(-0.3 * gg)
    return net, [m.w for m in mats], ds


@pytest.mark.parametrize("engine", ["ideal", "nodal"])
def test_ideal_deployment_reproduces_float_predictions(trained, engine):
    net, w, ds = trained
    cfg = validate_inference_config({"device": CLEAN, "converters": {"dac_bits": "none", "adc_bits": "none"},
                                     "solver": {"engine": engine}, "array": {"rows": 32, "cols": 32},
                                     "deploy": {"method": "ideal"}})
    res = run_inference(net, w, cfg, data=ds)
    assert res.metrics["tiles"] > 2  # the layers really are split over tiles
    x = ds.x_test
    np.testing.assert_allclose(net.predict(res.layers, x), net.predict(float_layers(w), x), rtol=1e-9, atol=1e-12)
    assert res.metrics["agreement_with_float"] == 1.0
    assert res.metrics["accuracy"] == res.metrics["float_accuracy"]


HEALTHY = {"stuck_on": 0.0, "stuck_off": 0.0, "dead": 0.0, "d2d": {"g_min": 0.0, "g_max": 0.0}}


def test_write_verify_meets_tolerance_on_healthy_devices():
    # c2c noise (3.5 % of the window per pulse, more than the tolerance) and d2d curve shapes
    # stay; the window edges do not spread, so every target lies inside every device's window
    card = load_device_card(DeviceConfig(card="imprecise", variation=HEALTHY))
    layer, curve = _layer(card)
    rng = np.random.default_rng(1)
    w = rng.uniform(-1, 1, layer.shape)
    spec = DeploySpec(method="write-verify", tolerance=0.02, max_pulses=2000, max_rounds=60)
    writes = deploy_layer(layer, w, spec, rng)
    s = summarize_writes(writes, spec)
    assert s["faulty"] == 0 and s["unmet"] == 0 and s["out_of_window"] == 0
    assert s["error_max"] <= 0.02 and s["within_tolerance"] == 1.0
    assert s["set_pulses"] > 0 and s["verify_reads"] >= s["devices"] and s["energy_J"] > 0 and s["time_s"] > 0
    gp, gm = layer.read_pairs()
    tp, tm = layer.wmap.to_conductances(w)
    assert np.max(np.abs(gp - tp)) <= 0.02 * (curve.g_max - curve.g_min)


def test_write_verify_reports_devices_it_cannot_program():
    card = load_device_card(DeviceConfig(card="imprecise"))  # 3.5 % faulty devices
    layer, _ = _layer(card, shape=(40, 12))
    rng = np.random.default_rng(2)
    w = rng.uniform(-0.8, 0.8, layer.shape)
    spec = DeploySpec(method="write-verify", tolerance=0.02, max_pulses=2000, max_rounds=60)
    s = summarize_writes(deploy_layer(layer, w, spec, rng), spec)
    assert s["faulty"] > 0  # counted apart: faulty devices are not in the error statistics
    # the devices that missed are those whose own (d2d) window does not reach their target
    assert 0 < s["out_of_window"] and s["unmet"] == s["out_of_window"]
    layer2, _ = _layer(card, shape=(40, 12))
    tight = DeploySpec(method="write-verify", tolerance=0.002, max_pulses=3, max_rounds=2)
    s2 = summarize_writes(deploy_layer(layer2, w, tight, np.random.default_rng(2)), tight)
    assert s2["unmet"] > 0 and s2["within_tolerance"] < 1.0


def test_open_loop_is_the_nominal_curve_rounded():
    card = load_device_card(DeviceConfig(**CLEAN))
    layer, curve = _layer(card)
    w = np.random.default_rng(4).uniform(-1, 1, layer.shape)
    spec = DeploySpec(method="open-loop")
    s = summarize_writes(deploy_layer(layer, w, spec, None), spec)
    step = np.max(np.diff(curve.g_set)) * curve.samples_per_pulse / (curve.g_max - curve.g_min)
    assert s["error_max"] <= 0.5 * step + 1e-9 and s["reset_pulses"] == 0 and s["verify_reads"] == 0


def test_open_loop_worse_than_write_verify_on_imprecise_card():
    card = load_device_card(DeviceConfig(card="imprecise"))
    w = np.random.default_rng(5).uniform(-1, 1, (20, 12))
    out = {}
    for method in ("open-loop", "write-verify"):
        layer, _ = _layer(card)
        spec = DeploySpec(method=method)
        out[method] = summarize_writes(deploy_layer(layer, w, spec, np.random.default_rng(6)), spec)["error_rms"]
    assert out["write-verify"] < 0.5 * out["open-loop"]


def test_write_verify_through_the_circuit():
    card = load_device_card(DeviceConfig(card="imprecise", variation=HEALTHY))
    curve = PulseTable.from_card(card)
    wmap = WeightMap(g_min=curve.g_min, g_max=curve.g_max, w_max=1.0)
    layer = TiledLayer.create((4, 3), array=ArraySpec(rows=6, cols=4, r_row=2.0, r_col=2.0), card=card,
                              options=SolverOptions(engine="nodal"), converters=Converters(), wmap=wmap,
                              curve=curve, seed=1, update="model")
    w = np.random.default_rng(7).uniform(-0.6, 0.6, (4, 3))
    spec = DeploySpec(method="write-verify", scheme="row-parallel", tolerance=0.03, max_pulses=1000, max_rounds=40)
    s = summarize_writes(deploy_layer(layer, w, spec, np.random.default_rng(8)), spec)
    assert s["unmet"] == 0 and s["error_max"] <= 0.03
    assert s["time_s"] > 0


def test_bad_deploy_fields_are_one_line():
    with pytest.raises(SpecError, match="deploy.method must be one of"):
        validate_inference_config({"deploy": {"method": "magic"}})
    with pytest.raises(SpecError, match="deploy.tolerance must be < 1"):
        validate_inference_config({"deploy": {"tolerance": 2}})
    with pytest.raises(SpecError, match="deploy.toleranse is not a field.*tolerance"):
        validate_inference_config({"deploy": {"toleranse": 0.1}})


def test_cli_infer_writes_outputs(tmp_path, trained):
    from cosim.cli import main
    from cosim.train.onnx_model import save_onnx

    net, w, _ = trained
    model = save_onnx(tmp_path / "m.onnx", net, w)
    out = tmp_path / "out"
    rc = main(["infer", "--model", str(model), "--engine", "nodal", "--set", "array.r_row=1.0",
               "--set", "array.rows=32", "--set", "array.cols=32", "--set", 'deploy.method="open-loop"',
               "--output-dir", str(out)])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert 0.5 < m["accuracy"] <= 1.0 and m["programming"]["method"] == "open-loop"
    assert m["accuracy_ideal_reads"] is not None and m["irdrop_max"] > 0
    assert (out / "irdrop_map.png").is_file() and (out / "programming_error.png").is_file()
    assert main(["infer", "--model", str(tmp_path / "none.onnx")]) == 2


def test_drift_power_law_and_refusal(trained):
    from cosim.train.infer import apply_drift

    net, w, ds = trained
    card = load_device_card(DeviceConfig(card="imprecise"))
    assert card.drift is not None
    import dataclasses

    card = dataclasses.replace(card, drift=dataclasses.replace(card.drift, nu_std=0.0))
    layer, _ = _layer(card)
    deploy_layer(layer, np.random.default_rng(3).uniform(-1, 1, layer.shape), DeploySpec(method="ideal"), None)
    tile = layer.tiles()[0]
    g0, lo = tile.conductances(), tile.window()[0]
    apply_drift([layer], card, 100.0, np.random.default_rng(0))
    want = np.maximum(g0 * 100.0 ** (-card.drift.nu), lo)
    healthy = ~tile.faults()
    np.testing.assert_allclose(tile.conductances()[healthy], want[healthy], rtol=1e-9)
    np.testing.assert_array_equal(tile.conductances()[~healthy], g0[~healthy])
    with pytest.raises(SpecError, match="deploy.read_time needs a card that defines"):
        validate_inference_config({"device": {"card": "pulse_nl_default"}, "deploy": {"read_time": 10.0}})
    cfg = validate_inference_config({"deploy": {"read_time": 1e4, "method": "ideal"}})
    later = run_inference(net, w, cfg, data=ds).metrics
    assert later["read_time_after_programming_s"] == 1e4 and later["drift"]["nu"] == 0.02


def test_read_noise_has_the_stated_spread():
    # Column current noise σ·√(Σ_i (V_i G_ij)²): over 4000 repeated reads of one vector the sample
    # std must match it within 5 % (the std of a sample std of n normals is ≈ σ/√(2n) = 1.1 %).
    card = load_device_card(DeviceConfig(**CLEAN))
    layer, _ = _layer(card, shape=(16, 8))
    deploy_layer(layer, np.random.default_rng(9).uniform(-1, 1, layer.shape), DeploySpec(method="ideal"), None)
    tile = layer.tiles()[0]
    v = np.random.default_rng(1).uniform(0, 0.2, (1, tile.shape[0]))
    clean = tile.read(v)
    tile.set_read_noise(0.05, np.random.default_rng(2))
    reads = tile.read(np.repeat(v, 4000, axis=0))
    want = 0.05 * np.sqrt((v ** 2) @ tile.conductances() ** 2)[0]
    np.testing.assert_allclose(reads.std(axis=0, ddof=1), want, rtol=0.05)
    np.testing.assert_allclose(reads.mean(axis=0), clean[0], atol=4 * want.max() / np.sqrt(4000))
    with pytest.raises(SpecError, match="read noise needs a random generator"):
        tile.set_read_noise(0.1, None)
