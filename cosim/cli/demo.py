"""``cosim demo [--output-dir DIR]``: the main job on embedded defaults (what ``make demo`` runs).

A small design study (see :mod:`cosim.study.demo`) swept on a local Dask cluster into
``DIR/demo.sqlite``, then its report in ``DIR/report/``. Rerunning resumes: finished points
are kept.
"""

from __future__ import annotations

import argparse
import os

from cosim.cli import sweep


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the demo study (digits MLP on 16..128 tiles, 0 and 2.5 Ω wires, SSM vs sgd-pulse)",
        description="Run a small design study on embedded defaults and write its report: a digits MLP "
                    "trained in situ on N×N tiles (N = 16..128), with and without 2.5 Ω wire segments, by "
                    "SSM and by naive pulse SGD. A few minutes on 2 cores. Rerunning resumes.")
    p.add_argument("--output-dir", "-o", default="cosim-demo", metavar="DIR",
                   help="folder for study.toml, demo.sqlite and report/ (default: cosim-demo)")
    sweep.add_cluster_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cosim.errors import InputError
    from cosim.study.demo import write_demo_config
    from cosim.study.report import write_report

    out = args.output_dir
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--output-dir {out}: exists and is not a folder")
    config = write_demo_config(out)
    store = os.path.join(out, "demo.sqlite")
    print(f"demo study config: {config}", flush=True)
    status = sweep.sweep(str(config), store, workers=args.workers, scheduler=args.scheduler,
                         connect_timeout=args.connect_timeout, retry_failed=True)
    files = write_report(store, os.path.join(out, "report"))
    print(summary_table(store))
    print(f"report: {files.html}")
    return status


def summary_table(store_path: str) -> str:
    """Final test accuracy (parasitic read) and pulses per tile size, wire setting and optimizer."""
    from cosim.study.store import Store

    with Store(store_path, create=False) as st:
        rows = [r for r in st.rows() if r.status == "done"]
    cells: dict[tuple, dict] = {}
    for r in rows:
        c, m = r.config, r.metrics
        key = (c["array"]["rows"], c["array"]["r_row"])
        cells.setdefault(key, {})[c["optimizer"]["name"]] = m
    opts = sorted({o for v in cells.values() for o in v}, key=lambda o: (o != "ssm", o))
    head = f"{'tile':>9} {'wire Ω':>7} " + " ".join(f"{o + ' acc %':>15} {o + ' pulses':>17}" for o in opts)
    lines = [head]
    for (n, rw), per in sorted(cells.items()):
        parts = []
        for o in opts:
            m = per.get(o)
            parts.append(f"{100 * m['accuracy_parasitic']:>15.1f} {m['pulses']:>17.0f}" if m else f"{'-':>15} {'-':>17}")
        lines.append(f"{f'{n}×{n}':>9} {rw:>7g} " + " ".join(parts))
    return "\n".join(lines)
