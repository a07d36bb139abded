"""The in-situ training loop end to end (small networks, few steps).

Budget: ~35 s. Truths: float SGD (and float sign-SGD for Manhattan) on the same batches from
the same start, for an ideal, linear, noise-free device with zero wires and ideal converters;
the ideal engine against the nodal engine; the pulse log against the tiles' own counters.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.train import PulseLog, convergence_epoch, load_config, run_training
from cosim.train.ablation import ABLATIONS, ablation_config, format_table
from cosim.train.curves import nominal_steps
from cosim.train.loop import batches, load_data, streams
from cosim.train.networks import float_layers, make_network

# An ideal device: NeuroSim curve with A = 1e6 pulses over 500 levels (NL ≈ 5e-4, i.e. linear to
# 0.05 %), no c2c, no d2d, no faults; zero wires; converters without quantisation.
IDEAL = ['device.card="pulse_nl_taox_hfox"', "device.params={a_p=1e6, a_d=1e6, p_max_p=500.0, p_max_d=500.0}",
         "device.variation={c2c=0.0}", "converters.dac_bits=none", "converters.adc_bits=none"]
SMALL = ["data.subset=320", "data.test_subset=200", "network.hidden=[16]", "train.epochs=3", "array.rows=32",
         "array.cols=32", "array.w_max=1.5", "train.lr=0.3", "train.reference_lr=0.3"]


def _float_weights(cfg, w0, rule):
    """Float training on the loop's batches (same data stream) from ``w0`` with ``rule(i, g)``."""
    data = load_data(cfg)
    net = make_network("mlp", data.image_shape, 10, hidden=cfg.network.hidden)
    mats = float_layers(w0)
    rng = np.random.default_rng(streams(cfg.train.seed)["data"])
    for _ in range(cfg.train.epochs):
        for idx in batches(len(data.y_train), cfg.train.batch, rng):
            grads = net.loss_and_grads(mats, data.x_train[idx], data.y_train[idx])[1]
            for i, (m, g) in enumerate(zip(mats, grads)):
                m.update(rule(i, g))
    return [m.w for m in mats]


def _rel(a, b, start):
    return [float(np.linalg.norm(x - y) / np.linalg.norm(y - s)) for x, y, s in zip(a, b, start)]


# Tolerances: one pulse moves a weight by 1.5/500 = 0.003; a step's update is ~0.3·|g| (1e-3 …
# 3e-2) and the weights move by ~0.1–0.3 in 30 steps. Stochastic rounding drifts by ~√30/2
# pulses of zero-mean noise on the busiest weights, deterministic rounding drops sub-half-pulse
# updates, accumulate-and-fire lags by < 1 pulse: measured 0.03 (ssm), 0.05 (sgd-pulse), 0.08
# (mixed-precision) relative to the change; 0.15 bounds them with room for the network's
# amplification of the difference, and accuracy agrees to 3 points.
@pytest.mark.parametrize("name, beta", [("ssm", 0.9), ("sgd-pulse", None), ("mixed-precision", None)])
def test_ideal_device_training_matches_float_sgd(name, beta):
    cfg = load_config(None, IDEAL + SMALL + [f'optimizer.name="{name}"',
                                            f"train.reference_beta={beta if beta else 'none'}"])
    res = run_training(cfg, progress=False)
    w0 = [res.layers[k].wmap.scale * (a[0] - a[1]) for k, a in enumerate(res.conductances["initial"])]
    errs = _rel(res.weights, res.float_weights, w0)
    assert max(errs) < 0.15, errs
    m = res.metrics
    assert abs(m["final_test_acc"] - m["float_final_test_acc"]) <= 0.03
    assert m["pulses_total"] > 1000  # it really trained through pulses
    assert m["saturated_high"] == 0.0


def test_manhattan_is_sign_sgd_on_an_ideal_device():
    """Manhattan fires n_pulses per weight by the gradient's sign; on a linear device that is
    float sign-SGD with step n·Δw (Δw the weight of one nominal pulse). Over 10 steps the measured
    relative difference is 2.3e-4, the curve's ±2.5e-4 step non-uniformity (A = 1e6 over 500
    levels); 2e-3 allows for that. (Over many more steps the sign of some near-zero gradient
    entry eventually flips between the two runs, and sign-SGD has no restoring force.)"""
    cfg = load_config(None, IDEAL + SMALL + ['optimizer.name="manhattan"', "optimizer.n_pulses=2", "train.epochs=1"])
    res = run_training(cfg, progress=False)
    layer = res.layers[0]
    step = 2 * layer.wmap.scale * nominal_steps(layer.curve)[0]
    w0 = [layer.wmap.scale * (a[0] - a[1]) for a in res.conductances["initial"]]
    float_w = _float_weights(cfg, w0, lambda i, g: -step * np.sign(g))
    errs = _rel(res.weights, float_w, w0)
    assert max(errs) < 2e-3, errs


def test_ideal_and_nodal_engines_train_identically():
    """Zero wire resistance: the nodal engine's reads equal V·G to round-off, and every random
    stream is independent of the engine, so the same seed gives the same pulses, the same
    accuracy and the same weights (1e-9 relative) on the imprecise card with 8-bit converters."""
    common = ["data.subset=160", "data.test_subset=100", "network.hidden=[12]", "train.epochs=2", "array.rows=24",
              "array.cols=24", "train.reference=false"]
    runs = [run_training(load_config(None, common + [f'solver.engine="{e}"']), progress=False)
            for e in ("ideal", "nodal")]
    a, b = runs
    for side in ("+", "-"):
        for x, y in zip(a.pulse_log.train_set[side] + a.pulse_log.train_reset[side],
                        b.pulse_log.train_set[side] + b.pulse_log.train_reset[side]):
            np.testing.assert_array_equal(x, y)
    assert a.metrics["pulses_total"] == b.metrics["pulses_total"] > 0
    assert [r["test_acc"] for r in a.epochs] == [r["test_acc"] for r in b.epochs]
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)
    assert b.metrics["engine"] == "nodal"


def test_metrics_and_pulse_log_are_consistent(tmp_path):
    cfg = load_config(None, ["data.subset=96", "data.test_subset=60", "network.hidden=[8]", "train.epochs=2",
                             "array.rows=16", "array.cols=16", 'train.pulse_log="events"', 'output.pulse_log="both"',
                             "optimizer.refresh_threshold=0.5", "train.refresh_every=2"])
    res = run_training(cfg, progress=False, output_dir=tmp_path)
    m, plog = res.metrics, res.pulse_log
    tot = plog.totals()
    assert m["pulses_set"] == tot["pulses_set"] == sum(r["pulses_set"] for r in res.epochs)
    assert m["pulses_reset"] == tot["pulses_reset"] == sum(r["pulses_reset"] for r in res.epochs)
    tiles = [t for layer in res.layers for t in layer.tiles()]
    assert sum(t.stats.set_pulses + t.stats.reset_pulses for t in tiles) == tot["pulses_set"] + tot[
        "pulses_reset"] + tot["program_pulses"]
    ev = plog.events()
    assert int(np.abs(ev["n"]).sum()) == m["pulses_total"] > 0
    assert m["refresh_reads"] > 0 and tot["verify_writes"] > m["weight_devices"]  # refreshes wrote pairs
    with np.load(tmp_path / "pulses.npz") as z:
        assert sum(int(z[k].sum()) for k in z.files if k.startswith("train_")) == m["pulses_total"]
        assert int(np.abs(z["events_n"]).sum()) == m["pulses_total"]
    import csv

    with open(tmp_path / "pulses.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(int(r["set_pulses"]) + int(r["reset_pulses"]) for r in rows) == m["pulses_total"]
    assert all(0 <= int(r["cell_row"]) < 16 and 0 <= int(r["cell_col"]) < 16 for r in rows)
    assert 0 < m["sparsity"] < 1 and m["energy_J"] > 0 and m["weight_devices"] == 2 * (65 * 8 + 9 * 10)


def test_pulse_log_and_convergence_units():
    log = PulseLog([(2, 3)], events=True)
    log.record(0, "+", np.array([[1, 0, -2], [0, 3, 0]]), step=0)
    log.record(0, "-", np.array([[0, 0, 1], [0, 0, 0]]), step=1)
    log.record(0, "+", np.array([[5, 0, 0], [0, 0, 0]]), step=1, kind="program")
    assert log.totals() == {"pulses_set": 5, "pulses_reset": 2, "program_pulses": 5, "verify_writes": 0}
    ev = log.events()
    assert ev["n"].tolist() == [1, -2, 3, 1] and ev["side"].tolist() == [0, 0, 0, 1]
    assert convergence_epoch([0.5, 0.8, 0.9, 0.95], 0.97) == 3
    assert convergence_epoch([0.5, 0.6], 0.97) is None


def test_ablation_removes_one_part_each():
    cfg = load_config(None, ["optimizer.beta=0.95"])
    for variant, off in ABLATIONS.items():
        opt = ablation_config(cfg, variant, seed=7).optimizer.build()
        for part in ("stochastic", "momentum", "reinit", "compensation"):
            assert getattr(opt.config, part) == (part not in off)
        assert opt.config.beta == 0.95
    rows = [{"variant": "ssm", "final_test_acc": 0.9, "pulses_total": 10, "sparsity": 0.01, "convergence_epoch": 2,
             "float_final_test_acc": 0.95},
            {"variant": "ssm", "final_test_acc": 0.8, "pulses_total": 20, "sparsity": 0.03, "convergence_epoch": None,
             "float_final_test_acc": 0.95}]
    text = format_table(rows)
    assert "85.0 ± 7.1" in text and "15 ± 7" in text and "2.0 (1× never)" in text
    one = format_table(rows[:1])  # a single seed has no spread to show
    assert "90.0" in one and "±" not in one



def test_a_refresh_keeps_every_weight_stuck_devices_included():
    # The imprecise card has 3 % stuck devices and a 10-20 % spread of each device's window. Pairs
    # driven near the top are refreshed: every healthy pair moves down, and every weight (read
    # from the true conductances) stays, those with a stuck device too (repair_plan).
    from cosim.train import loop

    cfg = load_config(None, ["data.subset=64", "data.test_subset=32", "network.hidden=[24]", "array.rows=32",
                             "array.cols=32", 'device.card="imprecise"', "optimizer.refresh_threshold=0.5"])
    run = loop._set_up(cfg)
    rng = np.random.default_rng(3)
    for layer in run.layers:
        hi = run.curve.g_min + 0.95 * (run.curve.g_max - run.curve.g_min)
        layer.program(hi - rng.uniform(0, 4e-5, layer.shape), hi - rng.uniform(0, 4e-5, layer.shape))
    before = [layer.weights() for layer in run.layers]
    stuck = [np.logical_or(*layer.device_arrays(lambda t: t.faults())) for layer in run.layers]
    assert sum(s.sum() for s in stuck) > 0
    g_before = [layer.read_pairs() for layer in run.layers]
    loop._refresh(run, 0)
    for layer, w, s, (gp, gm) in zip(run.layers, before, stuck, g_before):
        np.testing.assert_allclose(layer.weights(), w, atol=1e-9 * np.abs(w).max())
        gp1, gm1 = layer.read_pairs()
        moved = np.minimum(gp1, gm1) < np.minimum(gp, gm) - 1e-6
        assert moved[~s].mean() > 0.9  # the healthy pairs were re-centred


def test_a_tile_keeping_refresh_keeps_what_the_tiles_deliver_through_the_wires():
    # Pairs driven near the top of their windows on 32×32 tiles with 5 Ω wire segments: a
    # refresh that keeps the devices' weights moves what the tiles deliver (the common mode, and
    # with it the drops, falls); with refresh_keep = "tiles" the delivered weights come back to
    # within KEEP_TILES_TOL of the largest, but for pairs holding a stuck device. The unit-row
    # read it verifies with is checked against a forward pass without converters.
    from cosim.train import loop
    from cosim.train.optimizers.reinit import KEEP_TILES_TOL

    base = ["data.subset=64", "data.test_subset=32", "network.hidden=[24]", "array.rows=32", "array.cols=32",
            'device.card="imprecise"', "optimizer.refresh_threshold=0.5", 'solver.engine="nodal"',
            "array.r_row=5", "array.r_col=5", "converters.dac_bits=none", "converters.adc_bits=none"]
    moved = {}
    for keep in ("devices", "tiles"):
        run = loop._set_up(load_config(None, [*base, f'optimizer.refresh_keep="{keep}"']))
        rng = np.random.default_rng(3)
        hi = run.curve.g_min + 0.95 * (run.curve.g_max - run.curve.g_min)
        for layer in run.layers:
            layer.program(hi - rng.uniform(0, 4e-5, layer.shape), hi - rng.uniform(0, 4e-5, layer.shape))
        layer = run.layers[0]
        x = rng.uniform(0, 1, (5, layer.shape[0]))
        up, um = layer.read_unit_rows()
        w_before = layer.wmap.scale * (up - um)
        np.testing.assert_allclose(layer.forward(x), x @ w_before, rtol=1e-9, atol=1e-12 * np.abs(w_before).max())
        stuck = np.logical_or(*layer.device_arrays(lambda t: t.faults()))
        writes = run.plog.verify_writes
        loop._refresh(run, 0)
        up, um = layer.read_unit_rows()
        off = np.abs(layer.wmap.scale * (up - um) - w_before) / np.abs(w_before).max()
        moved[keep] = (off[~stuck].max(), run.plog.verify_writes - writes)
    assert moved["devices"][0] > 20 * KEEP_TILES_TOL  # the effect is there to be undone
    assert moved["tiles"][0] <= KEEP_TILES_TOL * 1.01
    assert moved["tiles"][1] > moved["devices"][1]  # the verify rounds cost writes


def test_training_with_circuit_reads_runs_blas_on_one_thread_unless_the_environment_says(monkeypatch):
    from threadpoolctl import threadpool_info

    from cosim.train import loop

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    for name in loop.BLAS_ENV:
        monkeypatch.delenv(name, raising=False)
    outside = blas_threads()
    if max(outside, default=1) < 2:
        pytest.skip("BLAS runs one thread here already")
    with loop._blas_threads("nodal"):
        assert blas_threads() == {1}
    with loop._blas_threads("ideal"):
        assert blas_threads() == outside
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with loop._blas_threads("nodal"):
        assert blas_threads() == outside


def test_adc_calibration_schedule_and_clipping_report(monkeypatch, caplog):
    """train.calibrate_every recalibrates every layer's ADCs every N global steps besides each
    epoch's start (96 samples, batch 32: 3 steps an epoch; N = 2 over 2 epochs: steps 2, 4, 6,
    so 2 + 3 calibrations per layer); each epoch row's adc_clipped is the share of that epoch's
    conversions the layers counted as clipped, the run's metric the worst epoch's; an epoch over
    ADC_CLIP_WARN is named in one warning line."""
    import logging

    from cosim.array import layer as layer_mod
    from cosim.train import loop

    calls, counts = {}, []
    calibrate, adc_counts = layer_mod.TiledLayer.calibrate, loop._adc_counts

    def counted(self):
        calls[id(self)] = calls.get(id(self), 0) + 1
        calibrate(self)

    def recorded(layers):
        counts.append(adc_counts(layers))
        return counts[-1]

    monkeypatch.setattr(layer_mod.TiledLayer, "calibrate", counted)
    monkeypatch.setattr(loop, "_adc_counts", recorded)
    monkeypatch.setattr(loop, "ADC_CLIP_WARN", -1.0)  # every epoch warns: the line's form
    base = ["data.subset=96", "data.test_subset=40", "network.hidden=[8]", "train.epochs=2", "array.rows=16",
            "array.cols=16", "train.reference=false", "train.batch=32"]
    with caplog.at_level(logging.WARNING, logger="cosim.train.loop"):
        res = run_training(load_config(None, [*base, "train.calibrate_every=2"]), progress=False)
    assert len(calls) == len(res.layers) and set(calls.values()) == {5}
    fractions = [(c1 - c0) / (m1 - m0) for (m0, c0), (m1, c1) in zip(counts[::2], counts[1::2])]
    assert [r["adc_clipped"] for r in res.epochs] == fractions and all(m1 > m0 for (m0, _), (m1, _) in
                                                                          zip(counts[::2], counts[1::2]))
    assert res.metrics["adc_clipped"] == max(fractions)
    lines = [r.getMessage() for r in caplog.records if "ADC conversions clipped" in r.getMessage()]
    assert len(lines) == 2 and "calibrated every 2 steps" in lines[0] and "train.calibrate_every" in lines[0]
    calls.clear()
    run_training(load_config(None, base), progress=False)
    assert set(calls.values()) == {2}  # the default: each epoch's start only


def test_refresh_at_epoch_start_follows_the_test(monkeypatch):
    """train.refresh_at = "epoch_start" moves the once-an-epoch refresh check after the previous
    epoch's test: 3 epochs make 2 checks (at the starts of epochs 2 and 3) where "epoch_end"
    makes 3, the training in between is the same (a test reads the array and moves no device,
    so every epoch's loss and training accuracy match to the bit), and the first epoch's test
    reads the network before any refresh, as a run without refresh does. With refresh_every set,
    either value is refused, naming the field."""
    from cosim.errors import SpecError
    from cosim.train import loop

    checks = []
    refresh = loop._refresh

    def counted(run, step):
        checks.append(step)
        refresh(run, step)

    monkeypatch.setattr(loop, "_refresh", counted)
    base = ["data.subset=96", "data.test_subset=40", "network.hidden=[8]", "train.epochs=3", "array.rows=16",
            "array.cols=16", "train.reference=false", "train.batch=32", "optimizer.refresh_threshold=0.05"]
    end = run_training(load_config(None, base), progress=False)
    assert checks == [3, 6, 9] and end.metrics["refresh_reads"] > 0
    checks.clear()
    start = run_training(load_config(None, [*base, 'train.refresh_at="epoch_start"']), progress=False)
    assert checks == [3, 6]
    for a, b in zip(end.epochs, start.epochs):
        assert (a["loss"], a["train_acc"]) == (b["loss"], b["train_acc"])
    none = run_training(load_config(None, [*base[:-1], "optimizer.refresh_threshold=none"]), progress=False)
    assert start.epochs[0]["test_acc"] == none.epochs[0]["test_acc"]
    assert any(not np.array_equal(a, b) for a, b in zip(end.weights, start.weights))  # no refresh after epoch 3
    with pytest.raises(SpecError, match="train.refresh_at"):
        load_config(None, [*base, 'train.refresh_at="epoch_start"', "train.refresh_every=2"])
    with pytest.raises(SpecError, match="train.refresh_at"):  # nor read as "also at each epoch's end"
        load_config(None, [*base, 'train.refresh_at="epoch_end"', "train.refresh_every=2"])
