"""How far an epoch outgrows its ADC calibration: one probe.

Trains one epoch of a config (default ``configs/fashion_cnn_ssm.toml`` on the full Fashion
training set) the way the training loop does (no float reference, no refresh: the probe is
about the converters), with every layer's ADCs calibrated at the epoch's start and, with
``--calibrate-every N``, every N steps. Every ``--every`` steps it prints the share of the ADC
conversions since the last line that clipped (all reads, and the forward reads alone) and the
steps' mean loss and accuracy. A ``--set`` of a field the probe sets itself (the seed, the
engine, the data folder, the calibration, the float reference, the refresh) is refused.

An ADC with ``converters.adc_range = "calibrated"`` keeps the full scale of its first read after
a calibration (times ``adc_headroom``, default 1) and clips beyond it. Measured here
(docs/fashion-mnist.md; raw: benchmarks/results/fashion_cnn_full/probe_adc_*.txt): calibrated
once an epoch, the CNN's forward conversions clip 1 % in the first 50 steps, 14 % by step 150 and 40 %
by step 550, while its loss climbs back from 0.90 to 1.17 (seed 1, 1 Ω wires); those of the
MLP of ``configs/fashion_mlp_ssm_wires.toml`` 22 % at the epoch's end (seed 0, ideal reads).

    python benchmarks/probe_adc.py [--config configs/fashion_cnn_ssm.toml] [--seed 1] [--steps 600]
        [--every 50] [--calibrate-every 0] [--engine ideal] [--set SECTION.KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosim.errors import CosimError  # noqa: E402
from cosim.train import loop  # noqa: E402
from cosim.train.config import load_config  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from fashion_table import DEFAULT_DATA, check_data, refuse_own  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "fashion_cnn_ssm.toml"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=600, help="steps at most (an epoch at most)")
    ap.add_argument("--every", type=int, default=50, help="steps per printed line")
    ap.add_argument("--calibrate-every", type=int, default=0, help="steps between calibrations (0: the start only)")
    ap.add_argument("--engine", choices=["ideal", "nodal"], help="the config's engine unless given")
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder of Fashion-MNIST IDX files")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override one field of the config (repeatable), as in cosim train")
    a = ap.parse_args(argv)
    if (why := check_data(a.data)) is not None:
        print(f"probe_adc: error: {why}", file=sys.stderr)
        return 2
    if min(a.steps, a.every) < 1 or a.calibrate_every < 0:
        print("probe_adc: error: --steps and --every must be ≥ 1, --calibrate-every ≥ 0", file=sys.stderr)
        return 2
    own = {"data.dir": "--data", "train.seed": "--seed", "train.calibrate_every": "--calibrate-every",
           "solver.engine": "--engine", "train.reference": "off", "optimizer.refresh_threshold": "off",
           "optimizer.refresh_keep": "off"}
    if (why := refuse_own("probe_adc", a.overrides, own)) is not None:
        print(why, file=sys.stderr)
        return 2
    sets = ['data.subset="none"', f"data.dir={a.data}", *a.overrides, f"train.seed={a.seed}",
            "train.reference=false", "optimizer.refresh_threshold=none", "optimizer.refresh_keep=none"]
    if a.engine:
        sets.append(f'solver.engine="{a.engine}"')
    try:
        cfg = load_config(a.config, sets)
        run = loop._set_up(cfg)
    except CosimError as exc:
        print(f"probe_adc: error: {exc}", file=sys.stderr)
        return 2
    print(f"# {Path(a.config).name}, {cfg.solver.engine} reads, seed {a.seed}, {len(run.data.y_train)} training "
          f"images, batch {cfg.train.batch}; ADCs calibrated at the start"
          + (f" and every {a.calibrate_every} steps" if a.calibrate_every else " only"))
    print(f"{'steps':>11} {'clipped (all)':>14} {'clipped (fwd)':>14} {'loss':>7} {'accuracy':>9}")
    for line in probe(run, a.steps, a.every, a.calibrate_every):
        print(f"{line['from']:>5}–{line['to']:<5} {100 * line['all']:>13.2f}% {100 * line['fwd']:>13.2f}% "
              f"{line['loss']:>7.3f} {100 * line['acc']:>8.1f}%")
    return 0


def probe(run, steps: int, every: int, calibrate_every: int) -> list[dict]:
    """Up to ``steps`` steps (one epoch at most) of ``run`` (a :func:`loop._set_up` run); per
    ``every`` steps, the share of ADC conversions that clipped, over all reads and over the
    forward reads, and the steps' mean loss and accuracy."""
    layers, tr = run.layers, run.cfg.train
    fwd = {"made": 0, "clipped": 0}

    def counted(layer):  # the forward reads' share: the counters' growth over each forward call
        forward = layer.forward

        def wrapped(x):
            m0, c0 = layer.adc_conversions, layer.adc_clipped
            y = forward(x)
            fwd["made"] += layer.adc_conversions - m0
            fwd["clipped"] += layer.adc_clipped - c0
            return y
        layer.forward = wrapped

    for layer in layers:
        counted(layer)
        layer.calibrate()
    out, losses, hits, energy = [], [], [], 0.0
    last = (loop._adc_counts(layers), dict(fwd))
    for step, idx in enumerate(loop.batches(len(run.data.y_train), tr.batch, run.rng_data), start=1):
        x, y = run.data.x_train[idx], run.data.y_train[idx]
        loss, grads, logits = run.net.loss_and_grads(layers, x, y)
        losses.append(loss)
        hits.append(float(np.mean(logits.argmax(axis=1) == y)))
        _, energy = loop._update(run, grads, tr.lr, step - 1, energy)
        if calibrate_every and step % calibrate_every == 0:
            for layer in layers:
                layer.calibrate()
        if step % every == 0 or step == steps:
            (m0, c0), f0 = last
            m1, c1 = loop._adc_counts(layers)
            out.append({"from": step - len(losses) + 1, "to": step, "all": (c1 - c0) / max(m1 - m0, 1),
                        "fwd": (fwd["clipped"] - f0["clipped"]) / max(fwd["made"] - f0["made"], 1),
                        "loss": float(np.mean(losses)), "acc": float(np.mean(hits))})
            last, losses, hits = ((m1, c1), dict(fwd)), [], []
        if step == steps:
            break
    return out


if __name__ == "__main__":
    raise SystemExit(main())
