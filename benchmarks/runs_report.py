"""The README's tables of whole training runs, from the runs' own output folders.

Each folder is what ``cosim train --output-dir DIR`` writes (``epochs.csv`` and ``config.toml``;
``metrics.json``, when there, for the run's total write-verify writes, which include the initial
re-initialisation that no epoch row counts).
Without ``--epochs``: one row per run (seed, last and best test accuracy, the float reference's
last, the points between them, SET pulses, write-verify writes, minutes) and a mean ± std row.
With ``--epochs``: one run's accuracy, pulses and loss epoch by epoch.

    python benchmarks/runs_report.py benchmarks/results/fashion_mlp_wires_10ep/seed*_residual0.04
    python benchmarks/runs_report.py --epochs benchmarks/results/fashion_mlp_wires_10ep/seed2_...
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tomllib
from pathlib import Path

#: The epochs.csv columns the tables use.
COLUMNS = ("epoch", "test_acc", "float_test_acc", "pulses_set", "verify_writes", "loss", "time_s")


def _one(x: float) -> str:
    """x to one decimal, without the sign of a negative zero (SSM a few hundredths above float)."""
    text = f"{x:.1f}"
    return "0.0" if text == "-0.0" else text


def load(run: Path) -> tuple[int, list[dict[str, float]]]:
    """(seed, epoch rows as floats) of one run folder; ValueError names the folder and what is
    missing, including a float reference (a run trained with ``train.reference = false``)."""
    epochs, config = run / "epochs.csv", run / "config.toml"
    for f in (epochs, config):
        if not f.is_file():
            raise ValueError(f"{run}: no {f.name} (not a cosim train output folder)")
    with epochs.open(newline="") as fh:
        raw = list(csv.DictReader(fh))
    if not raw:
        raise ValueError(f"{epochs}: no epochs")
    if missing := [c for c in COLUMNS if c not in raw[0]]:
        raise ValueError(f"{epochs}: no column {', '.join(missing)}")
    if any(r["float_test_acc"] == "" for r in raw):
        raise ValueError(f"{run}: no float reference to compare with (trained with train.reference = false)")
    try:
        rows = [{c: float(r[c]) for c in COLUMNS} for r in raw]
        seed = int(tomllib.loads(config.read_text())["train"]["seed"])
    except (ValueError, KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{run}: unreadable epochs.csv or config.toml ({exc!r})") from None
    return seed, rows


def summary(runs: list[Path]) -> str:
    """Markdown rows: one per run, then the mean ± std of the columns that vary from seed to seed."""
    head = ("| seed | SSM, last epoch (%) | SSM, best epoch (%) | float, last epoch (%) | points below float "
            "| SET pulses (M) | write-verify writes (M) | run time (min) |\n|---|---|---|---|---|---|---|---|")
    lines, cols = [head], []
    for run in runs:
        seed, rows = load(run)
        last, best = 100 * rows[-1]["test_acc"], 100 * max(r["test_acc"] for r in rows)
        ref = 100 * rows[-1]["float_test_acc"]
        pulses = sum(r["pulses_set"] for r in rows) / 1e6
        metrics = run / "metrics.json"
        writes = (json.loads(metrics.read_text())["verify_writes"] if metrics.is_file()
                  else sum(r["verify_writes"] for r in rows)) / 1e6
        minutes = sum(r["time_s"] for r in rows) / 60
        cols.append((last, best, ref, ref - last, pulses, writes))
        lines.append(f"| {seed} | {last:.1f} | {best:.1f} | {ref:.1f} | {_one(ref - last)} | {pulses:.1f} "
                     f"| {writes:.2f} | {minutes:.1f} |")
    if len(cols) > 1:
        stats = [(statistics.mean(c), statistics.stdev(c)) for c in zip(*cols)]
        cells = [f"{_one(m)} ± {s:.1f}" for m, s in stats[:4]] + [f"{stats[4][0]:.1f}", f"{stats[5][0]:.2f}"]
        lines.append("| mean ± std | " + " | ".join(cells) + " | |")
    return "\n".join(lines)


def per_epoch(run: Path) -> str:
    """Markdown table of one run, a column per epoch."""
    _, rows = load(run)
    line = lambda name, f: f"| {name} | " + " | ".join(f(r) for r in rows) + " |"  # noqa: E731
    return "\n".join([
        line("epoch", lambda r: f"{r['epoch']:.0f}"),
        "|---|" + "---|" * len(rows),
        line("SSM test accuracy (%)", lambda r: f"{100 * r['test_acc']:.1f}"),
        line("float reference (%)", lambda r: f"{100 * r['float_test_acc']:.1f}"),
        line("SET pulses (thousands)", lambda r: f"{r['pulses_set'] / 1e3:,.0f}"),
        line("training loss", lambda r: f"{r['loss']:.3f}"),
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="output folders of cosim train")
    ap.add_argument("--epochs", action="store_true", help="the first run epoch by epoch instead")
    a = ap.parse_args(argv)
    try:
        print(per_epoch(a.runs[0]) if a.epochs else summary(a.runs))
    except (ValueError, KeyError) as exc:  # KeyError: metrics.json without verify_writes
        print(f"runs_report: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
