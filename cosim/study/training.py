"""The ``train`` study task: one grid point = one seeded :func:`cosim.train.run_training`.

Registered in :mod:`cosim.study.tasks` with the validators in
:data:`~cosim.train.config.STUDY_SECTIONS`; a study's seeds become ``train.seed``, so
``study.seeds = 3`` trains every grid point three times from three device draws, data orders
and initial weights.

Besides every summary metric of the run (see :func:`cosim.train.loop.summarize`), a point
reports the names the study report plots:

- ``accuracy_parasitic``: final test accuracy read through the configured engine and converters
  (the chip as simulated: wires, sneak paths, DAC/ADC), fraction 0–1;
- ``accuracy_ideal``: final test accuracy of the *same* programmed conductances read ideally
  (I = V·G, exact weights W = scale·(G⁺ − G⁻), no converters), fraction 0–1; the gap between
  the two is what the parasitic read costs the trained network;
- ``pulses``: training pulses, SET + RESET (count); ``convergence``: test accuracy per epoch;
- the IR-drop metrics of :mod:`cosim.study.irdrop` (``ir_err_max``, ``ir_err_mean``,
  ``v_cell_min``, ``v_cell_mean``, ``loss_map``, …) for the trained first layer's tiles, each read
  with its final conductances and the same seeded batch of inputs uniform in [0, v_read]: the
  worst tile's worst error, the tiles' mean, and the loss map of the tile with the lowest cell
  voltage.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cosim.train.config import SECTIONS, validate_training_config

IR_BATCH = 16  # random input vectors per tile for the IR-drop metrics
# The metric names a point returns (what ``study.metrics`` may keep): the report's names, the
# trained tiles' IR drop, and every summary metric of the run (cosim.train.loop.summarize).
REPORT_METRICS = ("accuracy_ideal", "accuracy_parasitic", "pulses", "convergence")
IR_METRICS = ("ir_err_max", "ir_err_mean", "v_cell_min", "v_cell_mean", "i_ideal_max", "loss_map")
RUN_METRICS = ("final_test_acc", "best_test_acc", "final_train_acc", "final_loss", "float_final_test_acc",
               "float_best_test_acc", "convergence_epoch", "float_convergence_epoch", "pulses_set", "pulses_reset",
               "program_pulses", "verify_writes", "pulses_total", "sparsity", "energy_J", "saturated_high",
               "saturated_low", "faulty_devices", "weight_devices", "tiles", "weight_error", "target_clipped",
               "adc_clipped", "refresh_reads", "time_s", "epoch_time_s", "read_time_s", "update_time_s", "reads",
               "optimizer", "engine", "network", "dataset", "seed", "epochs")
METRICS = REPORT_METRICS + IR_METRICS + RUN_METRICS


def point_config(point: dict[str, Any]):
    """The :class:`TrainingConfig` of a study point (its sections; ``seed`` → ``train.seed``)."""
    cfg = validate_training_config({k: v for k, v in point.items() if k in SECTIONS})
    if "seed" in point:  # the study's seed axis
        cfg = cfg.replace(train=dataclasses.replace(cfg.train, seed=int(point["seed"])))
    return cfg.replace(output=dataclasses.replace(cfg.output, dir=None))


def run_training_point(point: dict[str, Any]) -> dict[str, Any]:
    """Metrics of one study point (module docstring); nothing is written. Metrics that do not
    exist for a run (a convergence epoch never reached, no float reference) are NaN."""
    from cosim.train.loop import accuracy, run_training
    from cosim.train.networks import float_layers

    cfg = point_config(point)
    result = run_training(cfg, progress=False, output_dir=None)
    data = result.data
    metrics = {k: float("nan") if v is None else v for k, v in result.metrics.items()}
    metrics.update(
        accuracy_parasitic=result.metrics["final_test_acc"],
        accuracy_ideal=accuracy(result.network, float_layers(result.weights), data.x_test, data.y_test),
        pulses=result.metrics["pulses_total"],
        convergence=[row["test_acc"] for row in result.epochs],
    )
    metrics.update(tile_ir_drop(result.layers[0], seed=cfg.train.seed))
    return metrics


def tile_ir_drop(layer, *, seed: int) -> dict[str, Any]:
    """IR-drop metrics (module docstring) over the tiles of one trained :class:`TiledLayer`."""
    import numpy as np

    from cosim.study.irdrop import ir_drop_metrics

    v_read = layer.converters.v_read
    inputs = np.random.default_rng(seed).uniform(0.0, v_read, size=(IR_BATCH, layer.array.rows))
    per_tile = [ir_drop_metrics(t.crossbar_spec(), inputs, v_read) for t in layer.tiles()]
    worst = min(per_tile, key=lambda m: m["v_cell_min"])
    return {
        "ir_err_max": max(m["ir_err_max"] for m in per_tile),
        "ir_err_mean": float(np.mean([m["ir_err_mean"] for m in per_tile])),
        "v_cell_min": worst["v_cell_min"],
        "v_cell_mean": float(np.mean([m["v_cell_mean"] for m in per_tile])),
        "i_ideal_max": max(m["i_ideal_max"] for m in per_tile),
        "loss_map": worst["loss_map"],
    }


# Cost model of a training point, calibrated on the digits MLP with benchmarks/bench_train.py
# (ideal and nodal epochs, with and without the compiled kernels, COSIM_NUMBA=0): seconds per
# sample of ideal reads; nodal reads add (factor, exponent) × (cells/4096)^exponent of that.
IDEAL_SAMPLE_S = 1e-3
NODAL_COMPILED, NODAL_NUMPY = (0.8, 1.5), (8.0, 0.3)
CNN_FACTOR = 6.0


def estimate_seconds(point: dict[str, Any]) -> float:
    """Rough single-core seconds of a point: reads per epoch × cost per read (the constants
    above). It only has to tell minutes from hours.
    """
    from cosim.circuit.solvers import kernels
    from cosim.train.sizes import data_images

    train, array, data = point["train"], point["array"], point["data"]
    samples = data_images(data["name"], data.get("subset"), None, data["test_fraction"])[0]
    cells = array["rows"] * array["cols"]
    nodal = point["solver"]["engine"] != "ideal"
    k, p = NODAL_COMPILED if kernels.ENABLED else NODAL_NUMPY
    per_sample = IDEAL_SAMPLE_S * (1 + (k if nodal else 0.0) * (cells / 4096) ** p)
    if point["network"]["kind"] == "cnn":
        per_sample *= CNN_FACTOR
    return 1.0 + train["epochs"] * samples * per_sample


# -- the report's section and the export of one point -------------------------------------------
NO_TRAINING = "no training points in this study"


def report(ctx) -> str:
    """The report's training sections (a :class:`~cosim.study.report.ReportContext` hook):
    accuracy vs array size, pulses and convergence per optimizer, tables/training.csv."""
    from cosim.study import figures as F
    from cosim.study.tables import is_number, seed_stats

    parts = ["<h2>Training: accuracy vs array size</h2>"]
    fig = F.accuracy_vs_size(ctx.done)
    parts.append(ctx.figure(fig, "accuracy_vs_size", "test accuracy vs array size") if fig is not None
                 else ctx.note(NO_TRAINING))
    parts.append("<h2>Training: pulses and convergence per optimizer</h2>")
    fig = F.pulses_and_convergence(ctx.done)
    parts.append(ctx.figure(fig, "pulses_convergence", "programming pulses and convergence per optimizer")
                 if fig is not None else ctx.note(NO_TRAINING))
    train_metrics = [m for m in (F.ACC_IDEAL, F.ACC_PARASITIC, F.PULSES) if any(is_number(r.get(m)) for r in ctx.done)]
    if train_metrics:
        stats = seed_stats(ctx.done, ctx.grid, train_metrics)
        ctx.csv("training", stats, [*ctx.grid, *(f"{m}_{s}" for m in train_metrics for s in ("mean", "std")),
                                    f"n_{train_metrics[0]}"])
    return "".join(parts)
