"""Inference of a trained network deployed ex situ onto crossbar tiles.

:func:`run_inference` (a pure function of the model, the config and its seed):

1. the data set, and the network with its float weights (:func:`load_model`: an ONNX file, or
   a training run's folder, whose ``model.onnx`` holds the weights read back from the trained
   devices and ``float_model.onnx`` the float reference's);
2. one :class:`~cosim.array.TiledLayer` per weight matrix on fresh devices drawn from
   ``deploy.seed``, with a per-layer :class:`WeightMap` whose full window spans ``w_max``
   ("auto": the layer's largest |w|, so every layer uses the whole window);
3. ex-situ programming (:func:`cosim.array.deploy.deploy_layer`): error, pulses, time, energy;
4. with ``deploy.read_time``, every device drifted to that time after programming (the card's
   ``[drift]`` power law; cards without one assume no drift and refuse a read_time);
5. the ADC ranges calibrated on ``deploy.calibration`` training images, then the test set read
   through the configured engine (DAC → circuit → ADC), optionally with read noise; with wires,
   the same devices also through ideal reads. The nodal engine's ``auto`` method uses the exact
   transfer matrix of each (static) tile for large batches, which makes a test set cheap;
6. per tile, the IR-drop error of its forward read (largest |I − I_ideal| over the largest
   |I_ideal|, on the first calibration images).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim.array import ArraySpec, Converters, TiledLayer, WeightMap
from cosim.array.deploy import deploy_layer, summarize_writes
from cosim.array.layer import TilePair
from cosim.array.tile import Tile
from cosim.circuit import SolverOptions
from cosim.errors import InputError, SpecError
from cosim.train.config import load_device_card
from cosim.train.infer_config import InferenceConfig
from cosim.train.networks import Network, float_layers
from cosim.train.networks.base import FloatLayerWeights, RecordingMatVec
from cosim.train.sizes import check_inference_memory

log = logging.getLogger(__name__)


def load_model(source: str | Path, *, float_weights: bool = False):
    """(network, weights, description) from an ONNX file or a training run's output folder."""
    from cosim.train.onnx_model import load_onnx

    p = Path(source)
    if p.is_dir():
        name = "float_model.onnx" if float_weights else "model.onnx"
        if not (p / name).is_file():
            raise InputError(f"{p}: no {name} (a training run's output folder, written by cosim train)")
        p = p / name
    elif float_weights:
        raise InputError("--float picks float_model.onnx of a training run folder; give the folder")
    m = load_onnx(p)
    return m.network, m.weights, str(p)


def _options(cfg: InferenceConfig, engine: str | None = None) -> SolverOptions:
    s = cfg.solver
    return SolverOptions(engine=engine or s.engine, method=s.method, rtol=s.rtol, maxiter=s.maxiter)


def build_deployed(net: Network, weights: list[np.ndarray], cfg: InferenceConfig, card, curve,
                   seed: np.random.SeedSequence) -> list[TiledLayer]:
    """Fresh tiled layers for ``weights`` (one WeightMap per layer)."""
    a, c = cfg.array, cfg.converters
    array = ArraySpec(**a.spec_fields())
    conv = Converters(v_read=c.v_read or abs(card.programming.v_read), dac_bits=c.dac_bits, adc_bits=c.adc_bits,
                      adc_headroom=c.adc_headroom, adc_range=c.adc_range)
    layers = []
    for k, (w, sd) in enumerate(zip(weights, seed.spawn(len(weights)))):
        w_max = float(np.max(np.abs(w))) if cfg.deploy.w_max is None else float(cfg.deploy.w_max)
        wmap = WeightMap(g_min=curve.g_min, g_max=curve.g_max, w_max=w_max if w_max > 0 else 1.0, mapping=a.mapping)
        layers.append(TiledLayer.create(w.shape, array=array, card=card, options=_options(cfg), converters=conv,
                                        wmap=wmap, curve=curve, seed=sd, block_rows=a.tile_rows,
                                        block_cols=a.tile_cols, update=cfg.device.update, backend=cfg.device.backend,
                                        name=f"L{k}"))
    return layers


def _twin(t: Tile, options: SolverOptions) -> Tile:
    return Tile(t.array, t.population, options, update=t.update, table=t.table, name=t.name)


def with_engine(layer: TiledLayer, options: SolverOptions) -> TiledLayer:
    """The same devices read through another engine (new tiles sharing the populations)."""
    pairs = [TilePair(p.block, _twin(p.plus, options), None if p.minus is None else _twin(p.minus, options))
             for p in layer.pairs]
    out = TiledLayer(layer.shape, array=layer.array, wmap=layer.wmap, converters=layer.converters,
                     curve=layer.curve, pairs=pairs, name=layer.name)
    out.set_estimates(layer.g_plus_est, layer.g_minus_est)
    return out


def evaluate(net: Network, layers, x_cal: np.ndarray, x: np.ndarray, y: np.ndarray, batch: int
             ) -> tuple[float, np.ndarray]:
    """Accuracy (fraction) and predictions through ``layers`` after calibrating every ADC on
    ``x_cal`` (one forward pass)."""
    for layer in layers:
        if hasattr(layer, "calibrate"):
            layer.calibrate()
    net.predict(layers, x_cal)
    pred = np.concatenate([net.predict(layers, x[k:k + batch]).argmax(axis=1) for k in range(0, len(y), batch)])
    return float(np.mean(pred == y)) if len(y) else 0.0, pred


def apply_drift(layers: list[TiledLayer], card, t: float, rng: np.random.Generator) -> None:
    """Move every healthy device's conductance to where the card's drift puts it ``t`` s after
    programming (faulty devices keep their values; a device cannot drift below its own window)."""
    from cosim.devices.drift import drift_factors

    if card.drift is None:
        raise SpecError(f"card {card.name} defines no [drift]: conductance drift is not modelled for it")
    for layer in layers:
        for tile in layer.tiles():
            g = tile.conductances() * drift_factors(card.drift, tile.shape, t, rng)
            tile.population.set_conductance(np.maximum(g, tile.window()[0]))
            tile.invalidate()


def tile_irdrop(net: Network, weights, layers: list[TiledLayer], x: np.ndarray) -> list[dict[str, Any]]:
    """Per tile, the IR-drop error of its forward read for the layer inputs the float network
    produces from ``x``: max |I − V·G| / max |V·G| over the batch and columns."""
    rec = [RecordingMatVec(FloatLayerWeights(w)) for w in weights]
    net.predict(rec, x)
    out = []
    for li, (layer, r) in enumerate(zip(layers, rec)):
        volts = layer.row_voltages(r.x)
        for p, v in zip(layer.pairs, volts):
            for side, t in (("+", p.plus), ("-", p.minus)):
                if t is None:
                    continue
                i_ideal = v @ t.conductances()
                i = t.read(v)
                scale = float(np.max(np.abs(i_ideal)))
                out.append({"layer": li, "bi": p.block.bi, "bj": p.block.bj, "side": side,
                            "irdrop": float(np.max(np.abs(i - i_ideal)) / scale) if scale > 0 else 0.0})
    return out


@dataclass
class InferenceResult:
    """What :func:`run_inference` returns: JSON-able ``metrics``, per-tile IR drop, the
    programming errors (per healthy device, (G − target)/window) and the deployed layers."""

    metrics: dict[str, Any]
    tiles: list[dict[str, Any]]
    errors: np.ndarray
    layers: list[TiledLayer] = field(repr=False)
    network: Network = field(repr=False)
    data: Any = field(repr=False)


def run_inference(net: Network, weights: list[np.ndarray], cfg: InferenceConfig, *, model: str = "",
                  data=None) -> InferenceResult:
    """Deploy ``weights`` ex situ and measure test accuracy (see the module docstring)."""
    from cosim.train.loop import _DeviceNotices

    notices = _DeviceNotices()  # c2c clipping at window edges is routine while programming
    device_log = logging.getLogger("cosim.devices.population")
    device_log.addFilter(notices)
    try:
        return _run_inference(net, weights, cfg, model=model, data=data)
    finally:
        device_log.removeFilter(notices)


def _run_inference(net: Network, weights: list[np.ndarray], cfg: InferenceConfig, *, model: str,
                   data) -> InferenceResult:
    from cosim.devices import PulseTable
    from cosim.train.config import TrainingConfig, TrainSection
    from cosim.train.loop import load_data

    t0 = time.perf_counter()
    d = cfg.deploy
    check_inference_memory(cfg, [w.shape for w in weights], int(np.prod(net.input_shape)))
    if data is None:  # the split a training run with seed data_seed used (no test image seen in training)
        data = load_data(TrainingConfig(data=cfg.data, train=TrainSection(seed=d.data_seed)))
    n_in = int(np.prod(net.input_shape))
    if data.x_test.shape[1] != n_in:
        raise SpecError(f"the network takes {n_in} inputs, data set {data.name} has {data.x_test.shape[1]} features")
    card = load_device_card(cfg.device)
    curve = PulseTable.from_card(card)
    s_dev, s_prog, s_noise, s_drift = np.random.SeedSequence(d.seed).spawn(4)
    layers = build_deployed(net, weights, cfg, card, curve, s_dev)
    rng_prog = np.random.default_rng(s_prog)
    spec = d.spec()
    writes = []
    for layer, w in zip(layers, weights):
        writes += deploy_layer(layer, w, spec, rng_prog)
    t_prog = time.perf_counter() - t0
    if d.read_time is not None:
        apply_drift(layers, card, d.read_time, np.random.default_rng(s_drift))
    if d.read_noise > 0:
        rng_noise = np.random.default_rng(s_noise)
        for layer in layers:
            for t in layer.tiles():
                t.set_read_noise(d.read_noise, rng_noise)
    x_cal = data.x_train[:d.calibration]
    float_acc, float_pred = evaluate(net, float_layers(weights), x_cal, data.x_test, data.y_test, d.batch)
    t1 = time.perf_counter()
    acc, pred = evaluate(net, layers, x_cal, data.x_test, data.y_test, d.batch)
    t_read = time.perf_counter() - t1
    has_wires = ArraySpec(**cfg.array.spec_fields()).has_wires and cfg.solver.engine != "ideal"
    metrics: dict[str, Any] = {
        "model": model, "network": net.name, "dataset": data.name, "test_images": int(len(data.y_test)),
        "engine": cfg.solver.engine, "accuracy": acc, "float_accuracy": float_acc,
        "agreement_with_float": float(np.mean(pred == float_pred)) if len(pred) else 1.0,
        "tiles": sum(len(layer.tiles()) for layer in layers), "read_time_s": t_read,
        "programming": summarize_writes(writes, spec),
        "weight_error": [float(np.linalg.norm(layer.weights() - w) / max(np.linalg.norm(w), 1e-300))
                         for layer, w in zip(layers, weights)],
        "w_max": [layer.wmap.w_max for layer in layers], "read_noise": d.read_noise, "seed": d.seed,
        "read_time_after_programming_s": d.read_time,
        "drift": None if card.drift is None else {"nu": card.drift.nu, "nu_std": card.drift.nu_std,
                                                  "t0": card.drift.t0},
    }
    if has_wires and d.ideal_reads:
        ideal = [with_engine(layer, _options(cfg, "ideal")) for layer in layers]
        if d.read_noise > 0:
            rng_noise = np.random.default_rng(s_noise)
            for layer in ideal:
                for t in layer.tiles():
                    t.set_read_noise(d.read_noise, rng_noise)
        metrics["accuracy_ideal_reads"] = evaluate(net, ideal, x_cal, data.x_test, data.y_test, d.batch)[0]
    tiles = tile_irdrop(net, weights, layers, x_cal[:64]) if has_wires else []
    metrics["irdrop_max"] = max((t["irdrop"] for t in tiles), default=0.0)
    metrics["time_s"] = time.perf_counter() - t0
    metrics["programming_wall_s"] = t_prog
    log.info("deployed %s: accuracy %.4f (float %.4f)", net.name, acc, float_acc)
    errors = np.concatenate([w.error for w in writes]) if writes else np.zeros(0)
    return InferenceResult(metrics=metrics, tiles=tiles, errors=errors, layers=layers, network=net, data=data)
