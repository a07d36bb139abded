"""Study throughput: points per minute on 1 and 2 local Dask workers, against a plain loop.

For the same ir_drop points, each measured run starts from an empty store:

- loop:      ``run_point`` over the points in this process (no store, no Dask): the reference;
- inline:    ``run_study(workers=0)``: the same loop plus the SQLite store (one commit per point);
- dask-1/2:  ``run_study`` on a LocalCluster of 1 or 2 single-threaded worker processes,
             already started and warmed up (start-up is reported on its own line).

Prints the median of ``--reps`` runs, points per minute, and the ratio of each path's wall time
to the loop's (overhead for 1 worker, speed-up for 2), plus the largest difference between the
metrics Dask returned and the loop's (seeded, so it should be 0). The machine has 2 cores shared
with whatever else runs: read the ratios, not the absolute numbers.

    python benchmarks/bench_study.py [--sizes 32 96] [--seeds 6] [--reps 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.runner import close_client, make_client, run_study
from cosim.study.store import Store
from cosim.study.tasks import run_point


def build(size: int, seeds: int):
    return plan(parse_study({"study": {"seeds": seeds}, "task": {"kind": "ir_drop"},
                             "array": {"size": size, "r_wire": [1.0, 2.5]}, "read": {"batch": 16}}))


def timed_study(p, **kw) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "s.sqlite") as st:
            t0 = time.perf_counter()
            s = run_study(p, st, progress=False, **kw)
            dt = time.perf_counter() - t0
            assert s.done == len(p.points), s.line()
            return dt, {r.key: r.metrics for r in st.rows()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 96], help="array sizes N (N×N)")
    ap.add_argument("--seeds", type=int, default=6, help="seeds per size (points = 2 wires × seeds)")
    ap.add_argument("--reps", type=int, default=3, help="runs per path; the median is shown")
    args = ap.parse_args()
    import distributed  # noqa: F401  (sets up its loggers on import; keep the table readable)

    logging.getLogger("distributed").setLevel(logging.ERROR)
    print(f"cores: {os.cpu_count()}; ir_drop points, batch 16, r_wire 1 and 2.5 Ω, {args.seeds} seeds")

    clients = {}
    for n in (1, 2):
        t0 = time.perf_counter()
        clients[n] = make_client(workers=n)
        started = time.perf_counter() - t0
        timed_study(build(8, n * 2), client=clients[n])  # warm-up: workers import cosim, numpy, scipy
        print(f"LocalCluster with {n} worker(s): start-up {started:.2f} s (not in the timings below)")

    header = f"{'N':>5} {'points':>6} {'path':<7} {'median s':>9} {'points/min':>11} {'÷ loop':>7} {'max |Δmetric|':>14}"
    print(header)
    print("-" * len(header))
    try:
        for size in args.sizes:
            p = build(size, args.seeds)
            n = len(p.points)
            loop_times = []
            ref = {}
            for _ in range(args.reps):
                t0 = time.perf_counter()
                ref = {q.key: run_point(q.config) for q in p.points}
                loop_times.append(time.perf_counter() - t0)
            t_loop = statistics.median(loop_times)
            rows = [("loop", t_loop, 0.0)]
            for label, kw in (("inline", {"workers": 0}), ("dask-1", {"client": clients[1]}),
                              ("dask-2", {"client": clients[2]})):
                times, diff = [], 0.0
                for _ in range(args.reps):
                    dt, got = timed_study(p, **kw)
                    times.append(dt)
                    diff = max(diff, max(abs(got[k]["ir_err_max"] - ref[k]["ir_err_max"]) for k in ref))
                rows.append((label, statistics.median(times), diff))
            for label, t, diff in rows:
                print(f"{size:>5} {n:>6} {label:<7} {t:>9.3f} {60 * n / t:>11.1f} {t / t_loop:>7.2f} {diff:>14.3g}")
    finally:
        for c in clients.values():
            close_client(c)


if __name__ == "__main__":
    main()
