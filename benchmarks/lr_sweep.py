"""Each method at its own best learning rate, from a learning-rate sweep study's store.

The stores come from the shipped sweep configs (``configs/study_lr_*.toml``), run with ``cosim sweep``;
this script only reads them (read-only), so it can be rerun at any time, also while a sweep is
still filling its store (it reports what is there, and says how many points each rate has).

For every method it prints, per rate: mean ± std over seeds of the final test accuracy and of the
training pulses (SET + RESET, fast array included for Tiki-taka); then the tuned table (each
method at the rate with the best mean accuracy) and the pulses each method needs to reach a
common accuracy (``--target``, default: the tuned SSM accuracy less one point, and the tuned
sgd-pulse accuracy), so that "SSM spends fewer pulses" is checked at equal accuracy. The float reference's curve comes from the
sgd-pulse points, which train it at the same rate (``train.reference_lr = "none"``).

``--output DIR`` writes ``lr_sweep.png`` (accuracy and pulses against the rate, one column per
method, the dotted line at its tuned rate, the dashed one at the float reference's tuned
accuracy), ``lr_sweep.csv`` and ``tuned.md``.

    .venv/bin/python benchmarks/lr_sweep.py benchmarks/results/lr_digits_mlp.sqlite \
        --output benchmarks/results/lr_digits_mlp
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHOD_ORDER = ("float", "sgd-pulse", "manhattan", "mixed-precision", "ssm", "tiki-taka")
RATE_LABEL = {"manhattan": "threshold (|dL/dW| below which no pulse)",
              "ssm": "train.lr (largest step, weight units)", "float": "train.lr (weight / gradient units)"}


def load(store_path: str) -> list[dict]:
    """Done points of a sweep store as flat records (config fields dotted, metrics)."""
    from cosim.errors import InputError
    from cosim.study.store import Store
    from cosim.study.tables import records

    if not Path(store_path).is_file():
        raise InputError(f"{store_path}: no such store (run the sweep first: cosim sweep configs/study_lr_….toml "
                         f"--store {store_path})")
    with Store(store_path, create=False) as store:
        return records(store.rows("done"))


def samples(recs: list[dict]) -> list[dict]:
    """One sample per (method, rate, seed): accuracy and pulses; the float reference from the
    points that trained it at their own rate."""
    out = []
    seen = set()
    for r in recs:
        method = r["optimizer.name"]
        if method == "manhattan" and r.get("optimizer.n_pulses", 1) != 1:
            continue  # the sweep varies its threshold at one pulse per update (the rate it has)
        rate = r.get("optimizer.threshold", 0.0) if method == "manhattan" else r["train.lr"]
        if (method, rate, r["seed"]) in seen:  # one setting written two ways (a default spelled out)
            continue
        seen.add((method, rate, r["seed"]))
        out.append({"method": method, "rate": float(rate), "seed": r["seed"], "acc": r["final_test_acc"],
                    "pulses": r["pulses_total"], "conv": r.get("convergence_epoch")})
        if method == "sgd-pulse" and r.get("train.reference_lr") is None and r.get("float_final_test_acc") is not None:
            out.append({"method": "float", "rate": float(r["train.lr"]), "seed": r["seed"],
                        "acc": r["float_final_test_acc"], "pulses": None, "conv": r.get("float_convergence_epoch")})
    return out


def _ms(vals: list) -> tuple[float, float, int]:
    vals = [float(v) for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan, math.nan, 0
    m = sum(vals) / len(vals)
    s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, s, len(vals)


def curves(smp: list[dict]) -> dict[str, list[dict]]:
    """Method → rows (rate, acc mean/std, pulses mean/std, seeds), rates ascending."""
    out: dict[str, list[dict]] = {}
    for method in [m for m in METHOD_ORDER if any(s["method"] == m for s in smp)]:
        rows = []
        for rate in sorted({s["rate"] for s in smp if s["method"] == method}):
            pts = [s for s in smp if s["method"] == method and s["rate"] == rate]
            acc, acc_s, n = _ms([p["acc"] for p in pts])
            pul, pul_s, _ = _ms([p["pulses"] for p in pts])
            never = sum(p["conv"] is None or (isinstance(p["conv"], float) and math.isnan(p["conv"])) for p in pts)
            conv, _, _ = _ms([p["conv"] for p in pts])
            rows.append({"rate": rate, "acc": acc, "acc_std": acc_s, "pulses": pul, "pulses_std": pul_s, "seeds": n,
                         "conv": conv, "never": never})
        out[method] = rows
    return out


def tuned(cur: dict[str, list[dict]]) -> dict[str, dict]:
    """Method → its row at the best mean accuracy (fewer pulses break a tie)."""
    return {m: max(rows, key=lambda r: (r["acc"], -(r["pulses"] if not math.isnan(r["pulses"]) else 0)))
            for m, rows in cur.items() if rows}


def _pct(m: float, s: float) -> str:
    return "–" if math.isnan(m) else f"{100 * m:.1f} ± {100 * s:.1f}"


def _count(m: float, s: float) -> str:
    return "–" if math.isnan(m) else f"{m:,.0f} ± {s:,.0f}"


def _rate(method: str, rate: float) -> str:
    return f"threshold = {rate:g}" if method == "manhattan" else f"{rate:g}"


def report(cur: dict[str, list[dict]], targets: list[float] | None = None) -> str:
    lines = ["| method | rate | test accuracy (%) | training pulses | convergence epoch | seeds |",
             "|---|---|---|---|---|---|"]
    for m, rows in cur.items():
        for r in rows:
            conv = "never" if r["never"] == r["seeds"] else f"{r['conv']:.1f}" + (f" ({r['never']}× never)" if r["never"] else "")
            lines.append(f"| {m} | {_rate(m, r['rate'])} | {_pct(r['acc'], r['acc_std'])} "
                         f"| {_count(r['pulses'], r['pulses_std'])} | {conv} | {r['seeds']} |")
    best = tuned(cur)
    lines += ["", "Each method at its tuned rate (best mean test accuracy):", "",
              "| method | tuned rate | test accuracy (%) | training pulses | seeds |", "|---|---|---|---|---|"]
    for m, r in best.items():
        lines.append(f"| {m} | {_rate(m, r['rate'])} | {_pct(r['acc'], r['acc_std'])} "
                     f"| {_count(r['pulses'], r['pulses_std'])} | {r['seeds']} |")
    targets = list(targets or [])
    if not targets:  # SSM's tuned accuracy less a point, and sgd-pulse's tuned accuracy
        targets = [best[m]["acc"] - d for m, d in (("ssm", 0.01), ("sgd-pulse", 0.0)) if m in best]
    for target in targets:
        lines += ["", f"Fewest pulses at a mean accuracy ≥ {100 * target:.1f} % (any rate of the grid):", ""]
        for m, rows in cur.items():
            if m == "float":
                continue
            ok = [r for r in rows if r["acc"] >= target]
            if ok:
                r = min(ok, key=lambda r: r["pulses"])
                lines.append(f"- {m}: {r['pulses']:,.0f} pulses at {_rate(m, r['rate'])} ({100 * r['acc']:.1f} %)")
            else:
                lines.append(f"- {m}: never reaches it (best {100 * best[m]['acc']:.1f} %)")
    return "\n".join(lines)


def figure(cur: dict[str, list[dict]], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    methods = list(cur)
    fig = Figure(figsize=(2.6 * len(methods), 5.2), layout="constrained")
    axes = fig.subplots(2, len(methods), squeeze=False, sharey="row", sharex="col")
    best = tuned(cur)
    ref = best.get("float")
    for k, m in enumerate(methods):
        rows = cur[m]
        x = [r["rate"] for r in rows]
        top, bottom = axes[0][k], axes[1][k]
        top.errorbar(x, [100 * r["acc"] for r in rows], yerr=[100 * r["acc_std"] for r in rows], marker="o",
                     capsize=3)
        top.axvline(best[m]["rate"], color="grey", lw=0.8, ls=":")
        if ref is not None and m != "float":
            top.axhline(100 * ref["acc"], color="grey", lw=0.8, ls="--", label="float at its tuned rate")
        top.set_title(m)
        if m != "float":
            bottom.errorbar(x, [r["pulses"] for r in rows], yerr=[r["pulses_std"] for r in rows], marker="o",
                            capsize=3, color="C1")
            bottom.set_yscale("log")
        else:
            bottom.text(0.5, 0.5, "no pulses\n(software)", ha="center", va="center", transform=bottom.transAxes)
        for ax in (top, bottom):
            if m == "manhattan":  # its grid starts at threshold 0 (fire on every nonzero gradient)
                ax.set_xscale("symlog", linthresh=min([r["rate"] for r in rows if r["rate"] > 0] or [1e-3]))
            else:
                ax.set_xscale("log")
            ax.grid(alpha=0.3)
        bottom.set_xlabel(RATE_LABEL.get(m, "train.lr (weight / gradient units)"), fontsize=8)
    axes[0][0].set_ylabel("final test accuracy (%)")
    if ref is not None and len(methods) > 1:
        axes[0][1].legend(fontsize=7, loc="lower left")
    axes[1][0].set_ylabel("training pulses")
    fig.suptitle(title)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    from cosim.errors import CosimError

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("store", help="SQLite store of a learning-rate sweep (cosim sweep configs/study_lr_*.toml)")
    ap.add_argument("--output", help="folder for lr_sweep.png, lr_sweep.csv and tuned.md")
    ap.add_argument("--target", type=float, nargs="+", help="accuracies (fractions) for the equal-accuracy pulse "
                    "check (default: tuned SSM's less 0.01, and tuned sgd-pulse's)")
    ap.add_argument("--title", help="figure title (default: the store's name)")
    args = ap.parse_args(argv)
    try:
        cur = curves(samples(load(args.store)))
    except CosimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not cur:
        print(f"error: {args.store} holds no finished points yet", file=sys.stderr)
        return 2
    text = report(cur, args.target)
    print(text)
    if args.output:
        from cosim.study.tables import atomic_write, write_csv

        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        figure(cur, out / "lr_sweep.png", args.title or Path(args.store).stem)
        write_csv(out / "lr_sweep.csv", [{"method": m, **r} for m, rows in cur.items() for r in rows],
                  ["method", "rate", "acc", "acc_std", "pulses", "pulses_std", "conv", "never", "seeds"])
        atomic_write(out / "tuned.md", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
