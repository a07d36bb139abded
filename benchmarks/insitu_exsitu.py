"""In situ vs ex situ: the README table, from the stored training table and real deployments.

For each case of the training table (digits MLP and CNN, imprecise card, 64×64 tiles, no wires
on the ideal engine or 1 Ω per segment on the nodal engine, seeds 0-2; results in
``benchmarks/results/train_table.jsonl`` from ``benchmarks/train_table.py``):

- the *float* network is the training run's own float reference, reproduced exactly here from
  the run's seed (same initial weights, same mini-batches, same FloatSGD settings) and checked
  against the float accuracy the stored run reported;
- that float network is deployed ex situ onto fresh devices of the same tiles (same card, array,
  wires, converters, engine, seed, test split), open-loop and with write-verify (direct pulses,
  tolerance 2 % of the window), and tested through the same reads as the in-situ runs;
- to show what the card's faulty devices (3.5 %) cost the ex-situ network, write-verify again
  onto the same devices with the faults removed (same d2d and c2c spread);
- beside it, the stored in-situ accuracies of SSM and the baselines (same seeds).

The Fashion-MNIST cases (``fashion-mlp:none``, ``fashion-mlp:wires``) do the same for the
points of ``configs/study_fashion_table_mlp.toml``: the float reference of the SSM point of each
seed (its config resolved from the study, ``--set`` applied as ``benchmarks/fashion_table.py``
applies it) is retrained, deployed and read; the in-situ columns are the done points of the
Fashion table's store (``--fashion-store``).

Results go to ``--results`` (JSON lines, resumable); the Markdown table is printed.

    python benchmarks/insitu_exsitu.py [--cases mlp:none mlp:wires cnn:none cnn:wires] [--seeds 0 1 2] [--report]
    python benchmarks/insitu_exsitu.py --cases fashion-mlp:none fashion-mlp:wires
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
IN_SITU = ["ssm", "sgd-pulse", "manhattan", "mixed-precision"]
EX_SITU = ["open-loop", "write-verify", "write-verify, no faults"]
NO_FAULTS = {"stuck_on": 0.0, "stuck_off": 0.0, "dead": 0.0}
CASES = ("mlp:none", "mlp:wires", "cnn:none", "cnn:wires")  # digits, stored in --train-table
FASHION_CASES = ("fashion-mlp:none", "fashion-mlp:wires")  # stored in --fashion-store


def float_reference(cfg):
    """The float reference network of ``run_training(cfg)``, trained again alone: (net, weights, data)."""
    from cosim.train.loop import batches, load_data, streams
    from cosim.train.networks import float_layers, make_network
    from cosim.train.optimizers import FloatSGD, FloatSGDConfig

    tr = cfg.train
    ss = streams(tr.seed)
    data = load_data(cfg)
    net = make_network(cfg.network.kind, data.image_shape, data.n_classes, hidden=cfg.network.hidden,
                       activation=cfg.network.activation, pool=cfg.network.pool)
    mats = float_layers(net.init_weights(np.random.default_rng(ss["init"]), cfg.network.init))
    ref = FloatSGD(FloatSGDConfig(lr=tr.reference_lr or tr.lr, beta=tr.reference_beta))
    rng_data = np.random.default_rng(ss["data"])
    for epoch in range(tr.epochs):
        for idx in batches(len(data.y_train), tr.batch, rng_data):
            grads = net.loss_and_grads(mats, data.x_train[idx], data.y_train[idx])[1]
            for li, (m, g) in enumerate(zip(mats, grads)):
                m.update(ref.step(li, g, lr=(tr.reference_lr or tr.lr) * tr.lr_decay ** epoch))
    return net, [m.w for m in mats], data


def deploy_one(key: tuple) -> list[dict]:
    """The ex-situ rows of one digits case and seed: ``key`` = (net, wires, seed, epochs, r_wire)."""
    from train_table import config_for

    net_kind, wires, seed, epochs, r_wire = key
    return deploy(config_for(net_kind, wires, "ssm", seed, epochs, r_wire), net_kind, wires, seed)


def deploy(cfg, net_kind: str, wires: str, seed: int) -> list[dict]:
    """The float reference of training config ``cfg`` deployed each way of EX_SITU onto its tiles."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)  # device-clipping notices would flood the output
    try:  # main() also runs in-process (tests): leave logging as found
        return _deploy(cfg, net_kind, wires, seed)
    finally:
        logging.disable(before)


def _deploy(cfg, net_kind: str, wires: str, seed: int) -> list[dict]:
    from cosim.train.config import section_dict
    from cosim.train.infer import run_inference
    from cosim.train.infer_config import validate_inference_config
    from cosim.train.loop import accuracy
    from cosim.train.networks import float_layers

    t0 = time.perf_counter()
    net, w, data = float_reference(cfg)
    float_acc = accuracy(net, float_layers(w), data.x_test, data.y_test)
    rows = []
    for method in EX_SITU:
        array = section_dict("array", cfg.array)
        array.pop("w_max")
        device = section_dict("device", cfg.device)
        if method.endswith("no faults"):  # the same devices less the card's faulty ones: what faults cost
            device["variation"] = {**device["variation"], **NO_FAULTS}
        icfg = validate_inference_config({
            "data": section_dict("data", cfg.data), "array": array, "device": device,
            "converters": section_dict("converters", cfg.converters), "solver": section_dict("solver", cfg.solver),
            "deploy": {"method": method.split(",")[0], "seed": seed, "data_seed": seed}})
        m = run_inference(net, w, icfg, data=data).metrics
        p = m["programming"]
        rows.append({"net": net_kind, "wires": wires, "seed": seed, "method": method, "float_acc": float_acc,
                     "accuracy": m["accuracy"], "accuracy_ideal_reads": m.get("accuracy_ideal_reads"),
                     "pulses": p["set_pulses"] + p["reset_pulses"], "verify_reads": p["verify_reads"],
                     "error_rms": p["error_rms"], "unmet": p["unmet"], "wall_s": time.perf_counter() - t0})
    return rows


def load(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def fashion_points(data: str, sets: list[str]) -> dict[tuple, object]:
    """The Fashion table study's points, {(case, method, seed): Point}; case as in this script
    (``fashion-mlp:none``), method as in the Fashion table (``ssm − momentum``)."""
    from fashion_table import case_of, method_label, study_plan

    return {("fashion-" + case_of(p.config), method_label(p.config["optimizer"]), p.config["seed"]): p
            for p in study_plan("mlp", data, sets).points}


def fashion_in_situ(store: Path, points: dict[tuple, object]) -> list[dict]:
    """The done points of the Fashion table store that belong to ``points``, as in-situ rows."""
    from fashion_table import records

    rows = []
    for r in records(store, list(points.values())):
        case, method, seed = next(k for k, p in points.items() if p.key == r["key"])
        net, wires = case.split(":")
        rows.append({"net": net, "wires": wires, "seed": seed, "method": method, **{
            m: r[m] for m in ("final_test_acc", "float_final_test_acc", "pulses_total", "program_pulses")}})
    return rows


def report(ex: list[dict], ins: list[dict], cases) -> str:
    from cosim.train.ablation import fmt

    head = ("| network | wires | float (software) | ex situ open-loop | ex situ write-verify | ex situ write-verify, "
            "no faulty devices | in situ SSM | in situ sgd-pulse | in situ manhattan | in situ mixed-precision "
            "| pulses: write-verify / SSM training |")
    out = [head, "|" + "---|" * 11]
    for net, wires in cases:
        e = [r for r in ex if r["net"] == net and r["wires"] == wires]
        i = [r for r in ins if r["net"] == net and r["wires"] == wires]
        if not e:
            continue
        seeds = sorted({r["seed"] for r in e})
        i = [r for r in i if r["seed"] in seeds]
        w = "1 Ω (nodal)" if wires == "wires" else "0 (ideal)"
        cells = [fmt([r["float_acc"] for r in e if r["method"] == "write-verify"], 100)]
        cells += [fmt([r["accuracy"] for r in e if r["method"] == m], 100) for m in EX_SITU]
        for m in IN_SITU:  # a cell with fewer seeds than the ex-situ columns says so
            acc = [r["final_test_acc"] for r in i if r["method"] == m]
            cells.append("–" if not acc else fmt(acc, 100) + (f" ({len(acc)} of {len(seeds)} seeds)"
                                                              if len(acc) < len(seeds) else ""))
        wv = fmt([r["pulses"] for r in e if r["method"] == "write-verify"], 1, 0)
        ssm = fmt([r["pulses_total"] + r["program_pulses"] for r in i if r["method"] == "ssm"], 1, 0)
        out.append(f"| {net.upper()} | {w} | " + " | ".join(cells) + f" | {wv} / {ssm} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from fashion_table import DEFAULT_DATA, check_data

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(ROOT / "benchmarks/results/insitu_exsitu.jsonl"))
    ap.add_argument("--train-table", default=str(ROOT / "benchmarks/results/train_table.jsonl"))
    ap.add_argument("--fashion-store", default=str(ROOT / "benchmarks/results/fashion_table.sqlite"))
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder of the Fashion-MNIST IDX files")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a field of every Fashion point, as fashion_table.py --set does (repeatable)")
    ap.add_argument("--cases", nargs="+", default=["mlp:none", "mlp:wires", "cnn:none", "cnn:wires"],
                    choices=[*CASES, *FASHION_CASES])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(argv)
    cases = [tuple(c.split(":")) for c in args.cases]
    path = Path(args.results)
    ins = load(Path(args.train_table))
    fashion = {}
    if any(c in FASHION_CASES for c in args.cases):
        if not args.report and (problem := check_data(args.data)):
            print(f"error: {problem}", file=sys.stderr)
            return 2
        fashion = fashion_points(args.data, args.sets)
        ins += fashion_in_situ(Path(args.fashion_store), fashion)
    if not args.report:
        done = {(r["net"], r["wires"], r["seed"]) for r in load(path)}
        for net, wires in cases:
            for seed in args.seeds:
                if (net, wires, seed) in done:
                    continue
                stored = [r for r in ins if (r["net"], r["wires"], r["seed"], r["method"]) == (net, wires, seed, "ssm")]
                if net.startswith("fashion-"):
                    from cosim.study.training import point_config

                    point = fashion.get((f"{net}:{wires}", "ssm", seed))
                    if point is None:
                        print(f"error: the Fashion table study has no seed {seed}", file=sys.stderr)
                        return 2
                    rows = deploy(point_config(point.config), net, wires, seed)
                else:
                    r_wire = stored[0]["r_wire"] if stored else 1.0
                    epochs = stored[0]["epochs"] if stored else 10
                    rows = deploy_one((net, wires, seed, epochs, r_wire))
                if stored and abs(rows[0]["float_acc"] - stored[0]["float_final_test_acc"]) > 1e-12:
                    print(f"warning: {net}/{wires}/seed {seed}: reproduced float accuracy {rows[0]['float_acc']:.4f} "
                          f"!= stored {stored[0]['float_final_test_acc']:.4f}", flush=True)
                with path.open("a") as f:
                    for r in rows:
                        f.write(json.dumps(r) + "\n")
                print(f"{net} {wires} seed {seed}: float {100 * rows[0]['float_acc']:.1f} %, "
                      + ", ".join(f"{r['method']} {100 * r['accuracy']:.1f} %" for r in rows)
                      + f" ({rows[-1]['wall_s']:.0f} s)", flush=True)
    print(report(load(path), ins, cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
