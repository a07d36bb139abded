"""Why an end-of-epoch refresh costs accuracy with wires: one probe.

Trains the Fashion MLP of ``configs/fashion_mlp_ssm_wires.toml`` (or ``--config``'s network) for
one epoch on a subset with no refresh, then applies the refresh the config's
``refresh_threshold`` would (write-verify of the pairs with a device past that fraction of the
window, keeping each pair's weight) and reports, before and after it: the test accuracy read
through the tiles (the config's engine: 1 Ω wires, nodal, in both shipped configs), the
test accuracy of the devices' true weights in software (no wires, no converters), how many
pairs were refreshed, how far their weights moved and how far their common mode g⁺ + g⁻ fell.

If the software accuracy holds while the tile accuracy falls, the refresh keeps the weights but
not what the wires make of them: the network trained through the wires' IR drop, which depends
on the line currents and so on the common mode the refresh lowers. That is what the full set
shows (docs/fashion-mnist.md; raw: benchmarks/results/fashion_mlp_wires_10ep/probe_refresh_*):
after one epoch of 60,000 images the refresh keeps the weights and the software accuracy but
costs the tiles 5 points; after 12,000 images, with less common mode built up, nothing. Those
figures predate the config's ``optimizer.residual_limit = 0.04``: rerun them with
``--set optimizer.residual_limit=1``. The CNN of ``configs/fashion_cnn_ssm.toml`` after one
full-set epoch (``--config`` it, ``--subset none --test 10000``): tiles 83.0 → 74.6 % (seed 0) and
84.4 → 81.0 % (seed 1), software 69.1 → 68.6 % and 75.3 → 75.5 % (probe_refresh_cnn_seed*.txt in
benchmarks/results/fashion_cnn_full/). ``--keep tiles`` (``optimizer.refresh_keep``) keeps what
the tiles deliver too: seed 0's tiles 83.0 → 83.2 % with 2.3× the write-verify writes
(probe_refresh_cnn_seed0_keep_*.txt).

    python benchmarks/probe_refresh.py [--config configs/fashion_mlp_ssm_wires.toml] [--subset 6000]
        [--test 2000] [--threshold 0.5] [--seed 2] [--keep devices|tiles] [--set SECTION.KEY=VALUE ...]

``--subset none`` trains on the full set; ``--config configs/fashion_cnn_ssm.toml`` probes the CNN.
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
from cosim.train.config import OptimizerConfig, load_config  # noqa: E402
from cosim.train.networks.base import float_layers  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from fashion_table import DEFAULT_DATA, check_data, refuse_own  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "fashion_mlp_ssm_wires.toml"))
    ap.add_argument("--subset", default="6000", help="training images (none: the full set)")
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--keep", choices=("devices", "tiles"), default="devices",
                    help="what the refresh keeps (optimizer.refresh_keep): the devices' weights, or also "
                         "the weights the tiles deliver")
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder of Fashion-MNIST IDX files")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override one field of the config (repeatable), as in cosim train")
    a = ap.parse_args(argv)
    if (why := check_data(a.data)) is not None:
        print(f"probe_refresh: error: {why}", file=sys.stderr)
        return 2
    fixed = {"data.dir": "--data", "data.subset": "--subset", "data.test_subset": "--test",
             "optimizer.refresh_threshold": "--threshold", "optimizer.refresh_keep": "--keep",
             "train.epochs": "one epoch", "train.seed": "--seed"}
    if (why := refuse_own("probe_refresh", a.overrides, fixed)) is not None:
        print(why, file=sys.stderr)
        return 2
    subset = '"none"' if a.subset == "none" else a.subset
    sets = [f"data.dir={a.data}", f"data.subset={subset}", f"data.test_subset={a.test}",
            *a.overrides, "optimizer.refresh_threshold=none", "optimizer.refresh_keep=none", "train.epochs=1",
            f"train.seed={a.seed}"]
    try:
        cfg = load_config(a.config, sets)
        run = loop._set_up(cfg)
        res = probe(run, a.threshold, a.keep)
    except CosimError as exc:
        print(f"probe_refresh: error: {exc}", file=sys.stderr)
        return 2
    print(f"# {Path(a.config).name}: {cfg.data.name} {cfg.network.kind.upper()}, {cfg.solver.engine} reads, "
          f"{len(run.data.y_train)} training / {len(run.data.y_test)} test images, seed {a.seed}, "
          f"one epoch of SSM without refresh; then a refresh at threshold {a.threshold} keeping the {a.keep}' weights")
    print(f"before: tiles {100 * res['tiles'][0]:.1f} %, true weights in software {100 * res['soft'][0]:.1f} %")
    for li, ly in enumerate(res["layers"]):
        print(f"layer {li}: {ly['refreshed']} of {ly['pairs']} pairs refreshed; their |Δw| max {ly['dw_max']:.2e}, "
              f"mean {ly['dw_mean']:.2e} (weights up to {ly['w_max']:.2f}); their g⁺ + g⁻ "
              f"{ly['common'][0] * 1e6:.1f} → {ly['common'][1] * 1e6:.1f} µS on average; "
              f"{ly['writes']} write-verify writes")
    print(f"after:  tiles {100 * res['tiles'][1]:.1f} %, true weights in software {100 * res['soft'][1]:.1f} %")
    return 0


def probe(run, threshold: float, keep: str = "devices") -> dict:
    """One epoch of ``run`` (a :func:`loop._set_up` run), then one refresh at ``threshold``
    keeping ``keep``'s weights (``optimizer.refresh_keep``), as the training loop would apply it;
    accuracies (tiles, software) before and after and, per layer, the refreshed pairs' weight
    changes and mean common mode g⁺ + g⁻ (S) before and after, and the verify writes. Both are
    checked as the optimizer's fields are (SpecError)."""
    opt = run.cfg.optimizer
    refresher = OptimizerConfig(name=opt.name, options={**opt.options, "refresh_threshold": threshold,
                                                        "refresh_keep": keep}).build()
    loop._epoch(run, 0, 0, None)
    x, y = run.data.x_test, run.data.y_test

    def measure() -> tuple[float, float]:
        soft = float_layers([layer.weights() for layer in run.layers])
        return loop.accuracy(run.net, run.layers, x, y), loop.accuracy(run.net, soft, x, y)

    tiles0, soft0 = measure()
    layers = []
    for li, layer in enumerate(run.layers):
        gp, gm = layer.read_pairs()
        w0 = layer.weights()
        plan = refresher.refresh(gp, gm, run.curve, layer.wmap.scale)
        mask = np.zeros(gp.shape, dtype=bool) if plan is None else plan.mask
        writes = run.plog.verify_writes
        if plan is not None:
            loop.apply_refresh(run, li, plan, 0, keep=keep)
        gp1, gm1 = layer.read_pairs()
        dw = np.abs(layer.weights() - w0)[mask]
        cm0, cm1 = (gp + gm)[mask], (gp1 + gm1)[mask]
        layers.append({"refreshed": int(mask.sum()), "pairs": mask.size,
                       "dw_max": float(dw.max(initial=0.0)), "dw_mean": float(dw.mean()) if dw.size else 0.0,
                       "w_max": float(np.abs(w0).max()),
                       "common": (float(cm0.mean()) if cm0.size else 0.0, float(cm1.mean()) if cm1.size else 0.0),
                       "writes": run.plog.verify_writes - writes})
    tiles1, soft1 = measure()
    return {"tiles": (tiles0, tiles1), "soft": (soft0, soft1), "layers": layers}


if __name__ == "__main__":
    raise SystemExit(main())
