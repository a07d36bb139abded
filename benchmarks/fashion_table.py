"""The Fashion-MNIST results table: every method at its tuned rate plus the SSM ablations, MLP
and CNN on 128×128 tiles, ideal reads and 1 Ω wire segments (nodal), seeds — from stored runs.

The runs are the points of a design study (``configs/study_fashion_table_{mlp,cnn}.toml``), kept in
one SQLite store, so the table can be produced in pieces: each invocation runs the points of the
cases it is given that the store does not hold yet (Ctrl-C keeps what finished), then prints the
table of the config's points stored (points of an earlier version of the config, e.g. before a
rate was retuned, stay in the store but out of the table). ``--methods`` and ``--seeds`` narrow
a piece further. ``--report`` only prints.

    .venv/bin/python benchmarks/fashion_table.py --cases mlp:none             # ideal reads first
    .venv/bin/python benchmarks/fashion_table.py --cases mlp:wires cnn:none   # later pieces
    .venv/bin/python benchmarks/fashion_table.py --cases mlp:wires --methods ssm sgd-pulse --seeds 0
    .venv/bin/python benchmarks/fashion_table.py --report

While a run is in progress keep ``--store`` out of git's way (e.g. a copy outside the work
tree, copied back with SQLite's backup when done): a rebase or checkout that rewrites the tracked
store replaces the file under the open connection, and the running sweep's results are lost.

The data are Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``,
the default ``--data``) or any folder of the four IDX files, gzip or plain; nothing is
downloaded. ``--set section.key=value`` changes every point (e.g. a smaller ``data.subset`` for
a quick look; such points get their own keys in the store and their own table).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
INSTALL = "install Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist) or pass --data DIR"
METHODS = ["sgd-pulse", "manhattan", "mixed-precision", "tiki-taka", "ssm", "ssm − stochastic", "ssm − momentum",
           "ssm − reinit", "ssm − compensation"]
CASES = ("mlp:none", "mlp:wires", "cnn:none", "cnn:wires")


def refuse_own(prog: str, overrides: list[str], own: dict[str, str]) -> str | None:
    """The one-line error for a ``--set SECTION.KEY=...`` of a field a probe sets itself (``own``:
    field → the probe's option for it; an override would be dropped or misreported), else None."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key in own:
            return f"{prog}: error: --set {key} is the probe's own ({own[key]})"
    return None


def check_data(directory: str) -> str | None:
    """None when ``directory`` holds the four IDX files, else the one-line reason."""
    from cosim.train.config import IDX_STEMS

    d = Path(directory).expanduser()
    if not d.is_dir():
        return f"no Fashion-MNIST folder at {d}: {INSTALL}"
    missing = [s for s in IDX_STEMS if not any(d.glob(f"{s}[-.]idx*"))]
    if missing:
        return f"{d} lacks {', '.join(m + '-idx…' for m in missing)}: {INSTALL}"
    return None


def method_label(opt: dict) -> str:
    """'ssm − momentum' for SSM with that part off; the optimizer's name otherwise."""
    from cosim.train.ablation import ABLATIONS

    if opt.get("name") != "ssm":
        return str(opt.get("name"))
    off = {k for k in ("stochastic", "momentum", "reinit", "compensation") if opt.get(k) is False}
    for label, parts in ABLATIONS.items():
        if set(parts) == off:
            return label
    return "ssm (" + ", ".join(sorted(f"−{k}" for k in off)) + ")"


def case_of(point: dict) -> str:
    net = point["network"]["kind"]
    return f"{'cnn' if net != 'mlp' else 'mlp'}:{'wires' if point['array']['r_row'] > 0 else 'none'}"


def study_plan(net: str, data: str, sets: list[str]):
    """The planned study of ``configs/study_fashion_table_<net>.toml`` with data.dir and ``sets`` applied."""
    import tomllib

    from cosim.study.config import parse_study
    from cosim.study.grid import plan
    from cosim.train.config import apply_overrides

    path = ROOT / "configs" / f"study_fashion_table_{net}.toml"
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    doc = apply_overrides(doc, [f'data.dir="{Path(data).expanduser().resolve()}"', *sets])
    return plan(parse_study(doc, source=str(path), base_dir=path.parent))


def records(store_path: Path, points=None) -> list[dict]:
    """The finished points of the store; with ``points`` (the config's current plan) only those
    that are one of them, each under today's key (a point stored before a null field was added
    to the config is the same run: ``cosim.study.grid.renamed_keys``, which a sweep applies to
    the store). Points of an earlier version of the config, e.g. before a rate was retuned, stay
    stored but out of the table."""
    from cosim.study.grid import renamed_keys
    from cosim.study.store import Store

    if not store_path.is_file():
        return []
    with Store(store_path, create=False) as store:
        rows = list(store.rows("done"))
    if points is None:
        return [{"key": r.key, "config": r.config, **r.metrics} for r in rows]
    today = dict(renamed_keys((r.key, r.config) for r in rows))
    keys = {p.key for p in points}
    out, taken = [], set()
    for r in sorted(rows, key=lambda r: r.key in today):  # a point stored under today's key first
        key = today.get(r.key, r.key)
        if key in keys and key not in taken:
            taken.add(key)
            out.append({"key": key, "config": r.config, **r.metrics})
    return out


def _data_line(cfg: dict) -> str:
    d, t = cfg["data"], cfg["train"]
    n = "every" if d.get("subset") is None else f"{d['subset']:,}"
    m = "every" if d.get("test_subset") is None else f"{d['test_subset']:,}"
    return f"{n} training / {m} test image(s) of the folder, {t['epochs']} epoch(s), batch {t['batch']}"


def report(recs: list[dict], cases: list[str]) -> str:
    from cosim.train.ablation import fmt

    out = ["| network | wires | method | rate | test accuracy (%) | training pulses | devices pulsed / step (%) "
           "| convergence epoch | seeds |", "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for case in cases:
        rs = [r for r in recs if case_of(r["config"]) == case]
        net, wires = case.split(":")
        w = "1 Ω/segment (nodal)" if wires == "wires" else "0 (ideal)"
        if not rs:
            out.append(f"| {net.upper()} | {w} | (all) | | not run | | | | 0 |")
            continue
        ref = {r["config"]["seed"]: r["float_final_test_acc"] for r in rs}
        conv = [r["float_convergence_epoch"] for r in rs if method_label(r["config"]["optimizer"]) == "ssm"]
        lr_ref = rs[0]["config"]["train"]["reference_lr"]
        out.append(f"| {net.upper()} | {w} | float software | {lr_ref:g} | {fmt(list(ref.values()), 100)} | – | – "
                   f"| {fmt(conv, 1, 1)} | {len(ref)} |")
        for method in METHODS:
            ms = [r for r in rs if method_label(r["config"]["optimizer"]) == method]
            if not ms:
                out.append(f"| {net.upper()} | {w} | {method} | | not run | | | | 0 |")
                continue
            o, t = ms[0]["config"]["optimizer"], ms[0]["config"]["train"]
            rate = f"threshold = {o['threshold']:g}" if method == "manhattan" else f"{t['lr']:g}"
            out.append(f"| {net.upper()} | {w} | {method} | {rate} | {fmt([r['final_test_acc'] for r in ms], 100)} "
                       f"| {fmt([r['pulses_total'] for r in ms], 1, 0)} | {fmt([r['sparsity'] for r in ms], 100, 2)} "
                       f"| {fmt([r['convergence_epoch'] for r in ms], 1, 1)} | {len(ms)} |")
        notes.append(f"- {net.upper()}, wires {w}: {_data_line(rs[0]['config'])}")
    return "\n".join(out + ["", "Data per case:"] + notes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=str(ROOT / "benchmarks" / "results" / "fashion_table.sqlite"))
    ap.add_argument("--data", default=DEFAULT_DATA, help=f"folder of the Fashion-MNIST IDX files (default {DEFAULT_DATA})")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--methods", nargs="+", choices=METHODS, metavar="METHOD",
                    help="run only these methods' points (default all: " + ", ".join(METHODS) + ")")
    ap.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="run only these seeds' points (default all)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a field of every point (repeatable)")
    ap.add_argument("--workers", type=int, default=0, help="Dask workers (0: run in this process, the default)")
    ap.add_argument("--retry-failed", action="store_true", help="run failed points again")
    ap.add_argument("--report", action="store_true", help="only print the table from --store")
    args = ap.parse_args(argv)
    from cosim.errors import CosimError

    store_path = Path(args.store)
    try:
        nets = dict.fromkeys(c.split(":")[0] for c in args.cases)
        problem = check_data(args.data)
        if problem and not args.report:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        # The table keeps to the config's current points (keys include the resolved data folder, so
        # a report without the folder shows every stored point)
        points = [] if problem else [pt for net in nets for pt in study_plan(net, args.data, args.sets).points]
        if not args.report:
            from cosim.study.runner import run_study
            from cosim.study.store import Store

            quiet = logging.getLogger("cosim")
            level = quiet.level
            quiet.setLevel(logging.ERROR)  # device-clipping notices would flood the output
            try:  # main() also runs in-process (tests): leave the logger as found
                plans = []
                for net in nets:
                    p = study_plan(net, args.data, args.sets)
                    pts = [pt for pt in p.points if case_of(pt.config) in args.cases
                           and (not args.methods or method_label(pt.config["optimizer"]) in args.methods)
                           and (not args.seeds or pt.config["seed"] in args.seeds)]
                    plans.append(dataclasses.replace(p, points=pts))
                store_path.parent.mkdir(parents=True, exist_ok=True)
                with Store(store_path) as store:
                    for p in plans:
                        if p.points:
                            print(f"{p.config.name}: {len(p.points)} points for {', '.join(args.cases)}", flush=True)
                            run_study(p, store, workers=args.workers, progress=False, retry_failed=args.retry_failed)
            finally:
                quiet.setLevel(level)
        print(report(records(store_path, points or None), args.cases))
    except CosimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished points are stored; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
