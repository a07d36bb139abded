"""The SSM paper's failure regime: when does naive pulse SGD collapse, and what does SSM recover?

Starts from the shipped regime configs ``configs/paper_regime_<net>_{sgd_pulse,ssm}.toml``
(digits, imprecise card, sgd-pulse at the float network's tuned rate, open-loop, never read
back) and relaxes one condition at a time:

- ``regime``: the configs as shipped;
- ``sgd-pulse's tuned rate``: sgd-pulse at its own tuned rate (sparse updates) instead of the
  float's (SSM unchanged: its rate is already its own);
- ``symmetric LTP/LTD``: the card's depression made a mirror image of its potentiation
  (NL 4.0 over 100 levels both ways);
- ``no d2d spread``: every device-to-device spread of the card set to 0;
- ``read-back refresh``: pairs read back at each epoch's end and re-programmed with write-verify
  once a device passes 90 % of its window (``optimizer.refresh_threshold = 0.9``).

Results are appended to ``--results`` (JSON lines) as each run finishes and runs already there
are skipped, so an interrupted table resumes; the Markdown table is printed at the end (alone
with ``--report``), with the paper's four numbers beside ours.

    .venv/bin/python benchmarks/paper_regime.py [--nets mlp cnn] [--seeds 0 1 2] [--jobs 1] [--report]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SYM = "device.params={a_p=26.907, a_d=26.907, p_max_p=100.0, p_max_d=100.0}"
NO_D2D = "device.variation={d2d={g_min=0.0, g_max=0.0, a_p=0.0, a_d=0.0, p_max_p=0.0, p_max_d=0.0}}"
CONDITIONS = {
    "regime": {},
    "sgd-pulse's tuned rate": {"sgd-pulse": ["train.lr=0.1"]},
    "symmetric LTP/LTD": {"*": [SYM]},
    "no d2d spread": {"*": [NO_D2D]},
    "read-back refresh": {"*": ["optimizer.refresh_threshold=0.9"]},
}
METHODS = {"sgd-pulse": "sgd_pulse", "ssm": "ssm"}
# Wang et al., Neurocomputing 407 (2020) 270-280 (abstract; research note ssm_paper.md).
PAPER = {"mlp": {"sgd-pulse": 26.12, "ssm": 90.07, "fewer pulses": 90},
         "cnn": {"sgd-pulse": 65.98, "ssm": 92.38, "fewer pulses": 40}}
PAPER_CONVERGENCE = 3.0  # "3× faster convergence"


def config_for(net: str, method: str, condition: str, seed: int, epochs: int | None):
    import dataclasses

    from cosim.train import load_config

    c = CONDITIONS[condition]
    sets = [f"train.seed={seed}", *c.get("*", []), *c.get(method, [])]
    if epochs is not None:
        sets.append(f"train.epochs={epochs}")
    cfg = load_config(ROOT / "configs" / f"paper_regime_{net}_{METHODS[method]}.toml", sets)
    return dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, dir=None))


def run_one(key: tuple) -> dict:
    logging.disable(logging.WARNING)  # device-clipping notices would flood the output
    from cosim.train import run_training

    net, method, condition, seed, epochs = key
    t0 = time.perf_counter()
    m = run_training(config_for(net, method, condition, seed, epochs), progress=False).metrics
    return {**{k: v for k, v in m.items() if not isinstance(v, dict)}, "net": net, "method": method,
            "condition": condition, "seed": seed, "epochs_arg": epochs, "wall_s": time.perf_counter() - t0}


def load(path: Path) -> list[dict]:
    """The stored runs, the first of each (net, method, condition, seed, epochs) only (two
    invocations sharing a results file may both have run one)."""
    if not path.exists():
        return []
    out: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out.setdefault((r["net"], r["method"], r["condition"], r["seed"], r["epochs_arg"]), r)
    return list(out.values())


def report(rows: list[dict], nets: list[str]) -> str:
    from cosim.train.ablation import fmt, mean_std

    out = ["| network | condition | float (%) | sgd-pulse (%) | SSM (%) | SSM pulses / sgd-pulse's "
           "| convergence epoch sgd-pulse / SSM | sgd-pulse saturated high (%) | seeds |",
           "|---|---|---|---|---|---|---|---|---|"]
    for net in nets:
        p = PAPER[net]
        out.append(f"| {net.upper()} | *paper (Wang et al. 2020)* | – | {p['sgd-pulse']:.2f} | {p['ssm']:.2f} "
                   f"| {1 - p['fewer pulses'] / 100:.2f} | {PAPER_CONVERGENCE:g}× faster | – | – |")
        for cond in CONDITIONS:
            rs = {m: [r for r in rows if r["net"] == net and r["condition"] == cond and r["method"] == m]
                  for m in METHODS}
            if not any(rs.values()):
                out.append(f"| {net.upper()} | {cond} | not run | | | | | | 0 |")
                continue
            ref = [r["float_final_test_acc"] for m in METHODS for r in rs[m]][:max(len(rs["ssm"]), len(rs["sgd-pulse"]))]
            sgd, ssm = rs["sgd-pulse"], rs["ssm"]
            ratio = "–"
            if sgd and ssm:
                ratio = f"{mean_std([r['pulses_total'] for r in ssm])[0] / mean_std([r['pulses_total'] for r in sgd])[0]:.2f}"
            acc = {m: fmt([r["final_test_acc"] for r in rs[m]], 100) if rs[m] else "not run" for m in METHODS}
            conv = " / ".join(fmt([r["convergence_epoch"] for r in rs[m]], 1, 1) if rs[m] else "–" for m in METHODS)
            sat = fmt([r["saturated_high"] for r in sgd], 100) if sgd else "–"
            out.append(f"| {net.upper()} | {cond} | {fmt(ref, 100)} | {acc['sgd-pulse']} | {acc['ssm']} | {ratio} "
                       f"| {conv} | {sat} | {min(len(sgd), len(ssm)) if sgd and ssm else max(len(sgd), len(ssm))} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "paper_regime.jsonl"))
    ap.add_argument("--nets", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs (default: the configs')")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    ap.add_argument("--report", action="store_true", help="only print the table from --results")
    args = ap.parse_args(argv)
    path = Path(args.results)
    done = {(r["net"], r["method"], r["condition"], r["seed"], r["epochs_arg"]) for r in load(path)}
    todo = [(net, m, c, s, args.epochs) for net in args.nets for c in args.conditions for s in args.seeds
            for m in METHODS]
    todo = [k for k in todo if k not in done]
    if not args.report and todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"{len(todo)} runs to do ({len(done)} already in {path})", flush=True)
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_one, k) for k in todo]
            for f in as_completed(futures):
                row = f.result()
                with path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"  {row['net']} {row['condition']:<24} {row['method']:<10} seed {row['seed']}: "
                      f"{100 * row['final_test_acc']:.1f} %, {row['pulses_total']} pulses, {row['wall_s']:.0f} s",
                      flush=True)
    rows = [r for r in load(path) if r["epochs_arg"] == args.epochs]
    print(report(rows, args.nets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
