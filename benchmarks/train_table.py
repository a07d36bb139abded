"""The README training table: every method on digits, MLP and CNN, imprecise card, 64×64 tiles,
without and with wire resistance, 3 seeds, mean ± std — from real runs of ``run_training``.

Methods: the float software reference (reported by every run), sgd-pulse, manhattan,
mixed-precision, SSM, and SSM with each part removed. Each (network, wires) case starts from the
shipped config ``configs/digits_<net>_<method>.toml`` (the ablations from the SSM one); "wires"
sets ``array.r_row = array.r_col = --r-wire`` Ω per segment and the nodal engine, "none" keeps
zero wire resistance on the ideal engine (identical to nodal there: tests/test_train_loop.py).

Results are appended to ``--results`` (JSON lines) as each run finishes, and runs already there
are skipped, so an interrupted table resumes. The Markdown table is printed at the end (or
alone with ``--report``), with the target checks (SSM vs float and vs sgd-pulse).

    .venv/bin/python benchmarks/train_table.py [--results benchmarks/results/train_table.jsonl] [--jobs 2]
        [--cases mlp:none cnn:none mlp:wires cnn:wires] [--seeds 0 1 2] [--epochs 10]
        [--report]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["sgd-pulse", "manhattan", "mixed-precision", "ssm", "ssm − stochastic", "ssm − momentum",
           "ssm − reinit", "ssm − compensation"]
FILES = {"sgd-pulse": "sgd_pulse", "manhattan": "manhattan", "mixed-precision": "mixed_precision", "ssm": "ssm"}


def config_for(net: str, wires: str, method: str, seed: int, epochs: int, r_wire: float):
    from cosim.train import load_config
    from cosim.train.ablation import ablation_config

    base = "ssm" if method.startswith("ssm") else method
    sets = [f"train.seed={seed}", f"train.epochs={epochs}"]
    if wires == "wires":
        sets += [f"array.r_row={r_wire}", f"array.r_col={r_wire}", 'solver.engine="nodal"']
    cfg = load_config(ROOT / "configs" / f"digits_{net}_{FILES[base]}.toml", sets)
    if method.startswith("ssm"):
        cfg = ablation_config(cfg, method)
    return dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, dir=None))


def run_one(key: tuple) -> dict:
    logging.disable(logging.WARNING)  # device-clipping notices would flood the table's output
    from cosim.train import run_training

    net, wires, method, seed, epochs, r_wire = key
    t0 = time.perf_counter()
    m = run_training(config_for(net, wires, method, seed, epochs, r_wire), progress=False).metrics
    return {"net": net, "wires": wires, "method": method, "seed": seed, "epochs": epochs, "r_wire": r_wire,
            "wall_s": time.perf_counter() - t0, **{k: v for k, v in m.items() if not isinstance(v, dict)}}


def load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def report(rows: list[dict], cases: list[tuple[str, str]], r_wire: float) -> str:
    from cosim.train.ablation import fmt, mean_std

    out = ["| network | wires | method | test accuracy (%) | training pulses | devices pulsed / step (%) "
           "| convergence epoch | seeds |", "|---|---|---|---|---|---|---|---|"]
    checks = []
    for net, wires in cases:
        case = [r for r in rows if r["net"] == net and r["wires"] == wires]
        if not case:
            continue
        w = f"{r_wire:g} Ω/segment (nodal)" if wires == "wires" else "0 (ideal)"
        ref = [r["float_final_test_acc"] for r in case if r["method"] == "ssm"] or [
            r["float_final_test_acc"] for r in case]
        ref_conv = [r["float_convergence_epoch"] for r in case if r["method"] == "ssm"]
        out.append(f"| {net.upper()} | {w} | float software | {fmt(ref, 100)} | – | – | {fmt(ref_conv, 1, 1)} "
                   f"| {len(ref)} |")
        by = {}
        for method in METHODS:
            rs = [r for r in case if r["method"] == method]
            if not rs:
                out.append(f"| {net.upper()} | {w} | {method} | not run | | | | 0 |")
                continue
            by[method] = rs
            out.append(f"| {net.upper()} | {w} | {method} | {fmt([r['final_test_acc'] for r in rs], 100)} "
                       f"| {fmt([r['pulses_total'] for r in rs], 1, 0)} | {fmt([r['sparsity'] for r in rs], 100, 2)} "
                       f"| {fmt([r['convergence_epoch'] for r in rs], 1, 1)} | {len(rs)} |")
        if "ssm" in by and "sgd-pulse" in by:
            ssm_acc, _, _ = mean_std([r["final_test_acc"] for r in by["ssm"]])
            sgd_acc, _, _ = mean_std([r["final_test_acc"] for r in by["sgd-pulse"]])
            ref_acc, _, _ = mean_std(ref)
            ssm_p, _, _ = mean_std([r["pulses_total"] for r in by["ssm"]])
            sgd_p, _, _ = mean_std([r["pulses_total"] for r in by["sgd-pulse"]])
            ssm_c = mean_std([r["convergence_epoch"] for r in by["ssm"]])
            sgd_c = mean_std([r["convergence_epoch"] for r in by["sgd-pulse"]])
            conv = ("sgd-pulse never converges" if sgd_c[0] is None else
                    "SSM never converges" if ssm_c[0] is None else f"{sgd_c[0] / ssm_c[0]:.1f}× faster")
            checks.append(
                f"- {net.upper()}, wires {w}: SSM {100 * (ssm_acc - ref_acc):+.1f} points vs float "
                f"(target ≥ −3: {'met' if ssm_acc >= ref_acc - 0.03 else 'missed'}), "
                f"{100 * (ssm_acc - sgd_acc):+.1f} points vs sgd-pulse; pulses {ssm_p / sgd_p:.2f}× sgd-pulse's "
                f"(target ≤ 0.5: {'met' if ssm_p <= 0.5 * sgd_p else 'missed'}); convergence {conv} "
                f"(target ≥ 2×: {'met' if sgd_c[0] is None and ssm_c[0] is not None or (ssm_c[0] and sgd_c[0] and sgd_c[0] >= 2 * ssm_c[0]) else 'missed'})")
    return "\n".join(out + ["", "Target checks (means over seeds):"] + checks)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "train_table.jsonl"), help="JSON-lines file of finished runs")
    ap.add_argument("--cases", nargs="+", default=["mlp:none", "cnn:none", "mlp:wires", "cnn:wires"])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--r-wire", type=float, default=1.0, help="wire resistance per segment for 'wires', Ω")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (processes)")
    ap.add_argument("--report", action="store_true", help="only print the table from --results")
    args = ap.parse_args(argv)
    cases = [tuple(c.split(":")) for c in args.cases]
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["net"], r["wires"], r["method"], r["seed"], r["epochs"], r["r_wire"]) for r in load(path)}
    todo = [(net, wires, method, seed, args.epochs, args.r_wire) for net, wires in cases for seed in args.seeds
            for method in args.methods]
    todo = [k for k in todo if k not in done]
    if not args.report and todo:
        print(f"{len(todo)} runs to do ({len(done)} already in {path})", flush=True)
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(run_one, k): k for k in todo}
            for f in as_completed(futures):
                row = f.result()
                with path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"  {row['net']} {row['wires']} {row['method']:<20} seed {row['seed']}: "
                      f"{100 * row['final_test_acc']:.1f} % (float {100 * row['float_final_test_acc']:.1f} %), "
                      f"{row['pulses_total']} pulses, {row['wall_s']:.0f} s", flush=True)
    rows = [r for r in load(path) if r["epochs"] == args.epochs and r["r_wire"] == args.r_wire]
    print(report(rows, cases, args.r_wire))
    return 0


if __name__ == "__main__":
    sys.exit(main())
