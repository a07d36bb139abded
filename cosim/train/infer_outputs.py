"""The files ``cosim infer`` leaves behind (each written atomically):

- ``metrics.json``: accuracy (deployed, float, agreement, ideal reads), programming summary
  (error, pulses, modelled time in s, energy proxy in J, devices that missed), per-tile IR drop,
  the config that ran;
- ``tiles.csv``: per tile, its layer, block and IR-drop error;
- ``programming_error.png``: histogram of (G − target)/window over healthy programmed devices;
- ``irdrop_map.png``: per layer, the grid of tiles coloured by their forward-read IR-drop error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.errors import InputError
from cosim.io import save_figure
from cosim.train.infer_config import inference_config_dict
from cosim.train.metrics import write_csv, write_json


def plot_irdrop_map(tiles: list[dict], ax_or_path, title: str = "") -> None:
    """Per layer a (row blocks × column blocks) map of each pair's worse tile IR-drop error (%)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = sorted({t["layer"] for t in tiles})
    fig, axes = plt.subplots(1, max(len(layers), 1), figsize=(3.2 * max(len(layers), 1), 3.2), squeeze=False)
    vmax = max((t["irdrop"] for t in tiles), default=0.0) * 100 or 1.0
    im = None
    for ax, li in zip(axes[0], layers):
        sel = [t for t in tiles if t["layer"] == li]
        grid = np.zeros((max(t["bi"] for t in sel) + 1, max(t["bj"] for t in sel) + 1))
        for t in sel:
            grid[t["bi"], t["bj"]] = max(grid[t["bi"], t["bj"]], 100 * t["irdrop"])
        im = ax.imshow(grid, cmap="magma", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(f"layer {li}", fontsize=9)
        ax.set_xlabel("column block")
        ax.set_ylabel("row block")
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), label="IR-drop error (% of max ideal current)")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, Path(ax_or_path), dpi=110)
    plt.close(fig)


def plot_errors(errors: np.ndarray, tolerance: float, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    if errors.size:
        ax.hist(100 * errors, bins=80, color="tab:blue")
    ax.axvline(-100 * tolerance, color="k", ls=":", lw=1)
    ax.axvline(100 * tolerance, color="k", ls=":", lw=1, label="write-verify tolerance")
    ax.set_xlabel("programming error (G − target), % of window")
    ax.set_ylabel("devices")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def write_inference_outputs(result, cfg, out: Path) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output-dir: cannot create {out}: {exc}") from None
    write_json(out / "metrics.json", {**result.metrics, "tiles_irdrop": result.tiles,
                                      "config": inference_config_dict(cfg)})
    if result.tiles:
        write_csv(out / "tiles.csv", result.tiles, ["layer", "bi", "bj", "side", "irdrop"])
    if cfg.output.figures:
        d = cfg.deploy
        title = f"{result.metrics['network']} · {d.method} ({d.scheme}) · {cfg.device.card} · {cfg.solver.engine}"
        plot_errors(result.errors, d.tolerance, out / "programming_error.png", title)
        if result.tiles:
            plot_irdrop_map(result.tiles, out / "irdrop_map.png", title)
    return out
