"""The files a training run leaves behind, and its figures.

:func:`write_outputs` writes, into one directory (each file atomically):

- ``metrics.json``: the summary metrics plus the config that ran;
- ``epochs.csv``: one row per epoch (accuracies as fractions, pulses, sparsity, energy in J, …);
- ``config.toml``: the config, re-runnable with ``cosim train --config``;
- ``pulses.npz`` / ``pulses.csv``: the per-device pulse log (``output.pulse_log``);
- ``model.onnx`` (the trained weights read back from the devices) and ``float_model.onnx`` (the
  float reference's), loadable by :func:`cosim.train.onnx_model.load_onnx` and ``cosim infer``;
- ``accuracy.png`` (hardware and float test accuracy per epoch), ``pulses.png`` (SET and RESET
  pulses per epoch), ``conductance_hist.png`` (weight-device conductances before/after).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import InputError
from cosim.io import atomic_write, save_figure
from cosim.train.config import config_to_dict, to_toml
from cosim.train.metrics import write_csv, write_json

log = logging.getLogger(__name__)


def plot_accuracy(epochs: list[dict[str, Any]], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = [r["epoch"] for r in epochs]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(e, [100 * r["test_acc"] for r in epochs], "o-", label="hardware (test)")
    ax.plot(e, [100 * r["train_acc"] for r in epochs], ".:", label="hardware (train, running)")
    if epochs and epochs[0].get("float_test_acc") is not None:
        ax.plot(e, [100 * r["float_test_acc"] for r in epochs], "s--", label="float software (test)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_pulses(epochs: list[dict[str, Any]], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.array([r["epoch"] for r in epochs])
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.bar(e - 0.2, [r["pulses_set"] for r in epochs], width=0.4, label="SET")
    ax.bar(e + 0.2, [r["pulses_reset"] for r in epochs], width=0.4, label="RESET")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training pulses")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax2 = ax.twinx()
    ax2.plot(e, [100 * r["sparsity"] for r in epochs], "k.-", label="devices pulsed per step")
    ax2.set_ylabel("devices pulsed per step (%)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_conductances(conductances: dict[str, list], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for when, style in (("initial", "step"), ("final", "stepfilled")):
        g = np.concatenate([a.ravel() for layer in conductances.get(when, []) for a in layer if a is not None])
        if g.size:
            ax.hist(g * 1e6, bins=60, histtype=style, alpha=0.6 if style == "stepfilled" else 1.0, label=when)
    ax.set_xlabel("device conductance (µS)")
    ax.set_ylabel("devices")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def write_outputs(result, out: Path) -> Path:
    """Write every output file of a :class:`~cosim.train.loop.TrainResult` into ``out``."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output.dir: cannot create {out}: {exc}") from None
    cfg = result.config
    write_json(out / "metrics.json", {**result.metrics, "config": config_to_dict(cfg)})
    write_csv(out / "epochs.csv", result.epochs)
    atomic_write(out / "config.toml", to_toml(cfg))
    plog, mode = result.pulse_log, cfg.output.pulse_log
    g0, g1 = result.conductances.get("initial"), result.conductances.get("final")
    if mode in ("npz", "both"):
        extra = {}
        for k, (a, b) in enumerate(zip(g0 or [], g1 or [])):
            for tag, arrs in (("initial", a), ("final", b)):
                for side, arr in zip("pm", arrs):
                    if arr is not None:
                        extra[f"g_{tag}_L{k}_{side}"] = arr
        plog.write_npz(out / "pulses.npz", extra)
    if mode in ("csv", "both"):
        coords = [layer.locate for layer in result.layers + result.fast_layers] if result.layers else None
        names = ["layer", "row", "col", "side", "tile_row", "tile_col", "cell_row", "cell_col", "set_pulses",
                 "reset_pulses", "program_pulses", "g_initial_S", "g_final_S"]
        write_csv(out / "pulses.csv", plog.rows(coords, g0, g1), names)
    if result.network is not None:  # the trained network (weights read back from its devices) as ONNX
        from cosim.train.onnx_model import save_onnx

        save_onnx(out / "model.onnx", result.network, result.weights)
        if result.float_weights is not None:
            save_onnx(out / "float_model.onnx", result.network, result.float_weights)
    if cfg.output.figures:
        title = f"{cfg.network.kind} · {cfg.optimizer.name} · {cfg.device.card} · {cfg.solver.engine}"
        plot_accuracy(result.epochs, out / "accuracy.png", title)
        plot_pulses(result.epochs, out / "pulses.png", title)
        plot_conductances(result.conductances, out / "conductance_hist.png", title)
    log.info("wrote training results to %s", out)
    return out
