"""Training epoch time with nodal (parasitic) reads relative to ideal reads, and where it goes.

Cases (SSM on the imprecise card, 8-bit converters, float reference off so only the hardware
training is timed):

- digits MLP 64-64-10 on 64×64 tiles (8 tiles), batch 32, full training set (1347 samples);
- MNIST-format MLP 784-100-10 on ``--tiles`` n×n tiles (default 128×128, 16 tiles), batch 64, a ``--subset`` of the
  training set and ``--test-subset`` of the test set (default: Debian's Fashion-MNIST in
  /usr/share/datasets/fashion-mnist — same format and shapes as MNIST; ``--data DIR`` for
  MNIST itself). Skipped with a note when no IDX files are found. ``--networks mlp cnn`` adds
  the LeNet-like CNN (conv3×3→8, pool, conv3×3→16, pool, dense) on the same data and tiles.

Both engines run the same config and seed; the nodal one has ``--r-wire`` Ω per wire segment
and ``--r-periphery`` Ω in each row driver and sense amplifier (default 0: ideal ports; the ideal
engine ignores both by definition). Per engine: the median epoch time over
``--repeats`` runs of ``--epochs`` epochs (epoch times exclude setup: data, device draws,
initial programming), split into reads (circuit preparation + solves, tile counters), updates
(device pulses and writes) and bookkeeping (the rest: DAC/ADC, network algebra, optimizer,
estimates, metrics). The ratio is nodal/ideal in the same process.

The compiled reads use every core unless ``COSIM_THREADS`` says otherwise (the line under each
case says how many). ``--blas-threads N`` limits BLAS (numpy's matmuls) to N threads in both
runs: on a shared machine the ideal epoch's small matmuls otherwise wait for descheduled BLAS
threads, which inflates the reference and flatters the ratio (docs/speed.md). The nodal
run trains on one BLAS thread whatever ``--blas-threads`` says (``run_training`` limits it under
circuit reads unless ``OPENBLAS_NUM_THREADS`` or the like is set in the environment).

    .venv/bin/python benchmarks/bench_train.py [--repeats 1] [--epochs 1] [--r-wire 1.0] [--r-periphery 0]
        [--data DIR] [--subset 2048] [--test-subset 500] [--tiles 128 256] [--skip-mnist]
        [--blas-threads 1] [--networks mlp cnn] [--fixed-threads]

Reads between kernels.PROBE_MIN_WORK and PARALLEL_MIN_WORK cell-vectors run on one thread or on
all, whichever measured faster so far in the process (kernels.plan_chunks); each case ends with
what each size of read settled on. ``--fixed-threads`` restores the earlier rule (all of them on
one thread) for comparison.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path

FASHION = Path("/usr/share/datasets/fashion-mnist")


def load() -> str:
    return "load avg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def run(cfg, epochs: int, blas_threads: int | None) -> dict:
    from cosim.train import run_training

    cpu0 = time.process_time()
    if blas_threads is None:
        res = run_training(cfg, progress=False)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=blas_threads, user_api="blas"):
            res = run_training(cfg, progress=False)
    cpu = time.process_time() - cpu0
    tiles = [t for layer in res.layers for t in layer.tiles()]
    epoch = sum(r["time_s"] for r in res.epochs) / epochs
    reads = sum(t.stats.read_time + t.stats.prepare_time for t in tiles) / epochs
    updates = sum(t.stats.update_time for t in tiles) / epochs
    solves = sum(t.stats.reads + t.stats.transposed_reads for t in tiles) / epochs
    return {"epoch": epoch, "reads": reads, "updates": updates, "book": epoch - reads - updates, "solves": solves,
            "acc": res.metrics["final_test_acc"], "tiles": len(tiles), "cpu": cpu}


def case(name: str, base: list[str], args) -> None:
    from cosim.train import load_config

    out = {}
    for engine in ("ideal", "nodal"):
        sets = base + [f'solver.engine="{engine}"', f"train.epochs={args.epochs}", "train.reference=false"]
        if engine == "nodal":
            sets += [f"array.r_row={args.r_wire}", f"array.r_col={args.r_wire}",
                     f"array.r_driver={args.r_periphery}", f"array.r_sense={args.r_periphery}"]
        runs = [run(load_config(None, sets), args.epochs, args.blas_threads) for _ in range(args.repeats)]
        out[engine] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    i, n = out["ideal"], out["nodal"]
    print(f"\n{name}: {i['tiles']:.0f} tiles, {n['solves']:.0f} tile reads per epoch, {args.epochs} epoch(s), "
          f"median of {args.repeats}")
    print(f"{'engine':<8}{'epoch s':>9}{'reads s':>9}{'updates s':>11}{'bookkeeping s':>15}{'test acc':>10}")
    for engine, r in out.items():
        print(f"{engine:<8}{r['epoch']:>9.2f}{r['reads']:>9.2f}{r['updates']:>11.2f}{r['book']:>15.2f}"
              f"{100 * r['acc']:>9.1f}%")
    from cosim.circuit.solvers import kernels

    print(f"nodal / ideal epoch time: {n['epoch'] / i['epoch']:.1f}× "
          f"(reads {n['reads'] / max(i['reads'], 1e-9):.0f}×; r = {args.r_wire:g} Ω/segment, "
          f"{args.r_periphery:g} Ω driver and sense; compiled reads on "
          f"{kernels.threads()} thread(s); BLAS threads {args.blas_threads or 'default'}; {load()})")
    # CPU time (all threads) of the whole run, set-up and evaluation included: on a shared machine
    # far less inflated by other jobs than wall time, which they deschedule.
    print(f"CPU time of the whole run (set-up, {args.epochs} epoch(s), evaluation): ideal {i['cpu']:.1f} s, "
          f"nodal {n['cpu']:.1f} s: {n['cpu'] / i['cpu']:.1f}×")
    for line in kernels.thread_choices():
        print("  threads:", line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--r-wire", type=float, default=1.0)
    ap.add_argument("--r-periphery", type=float, default=0.0, help="driver and sense resistance, Ω (nodal run)")
    ap.add_argument("--data", help="MNIST-format IDX folder (default: Debian's Fashion-MNIST if installed)")
    ap.add_argument("--subset", type=int, default=2048)
    ap.add_argument("--test-subset", type=int, default=500)
    ap.add_argument("--tiles", type=int, nargs="+", default=[128], help="tile sizes n (n×n) of the MNIST case")
    ap.add_argument("--skip-mnist", action="store_true")
    ap.add_argument("--skip-digits", action="store_true")
    ap.add_argument("--blas-threads", type=int, help="limit BLAS to this many threads (the nodal run trains on one unless the environment sets it)")
    ap.add_argument("--networks", nargs="+", choices=["mlp", "cnn"], default=["mlp"],
                    help="networks of the MNIST-format case")
    ap.add_argument("--fixed-threads", action="store_true",
                    help="the earlier thread rule: reads under kernels.PARALLEL_MIN_WORK on one thread, none measured")
    args = ap.parse_args()
    if args.fixed_threads:
        from cosim.circuit.solvers import kernels

        kernels.PROBE_MIN_WORK = kernels.PARALLEL_MIN_WORK
    logging.disable(logging.WARNING)
    if not args.skip_digits:
        case("digits MLP 64-64-10, 64×64 tiles, batch 32", ["array.rows=64", "array.cols=64"], args)
    if args.skip_mnist:
        return
    data = Path(args.data) if args.data else FASHION
    if not data.is_dir():
        print(f"\nMNIST-format case skipped: no IDX folder ({data}); pass --data DIR")
        return
    kind = "fashion" if data == FASHION else "mnist"
    names = {"mlp": "MLP 784-100-10", "cnn": "CNN conv3×3→8, pool, conv3×3→16, pool, dense"}
    for net in args.networks:
        for n in args.tiles:
            case(f"{kind} {names[net]}, {n}×{n} tiles, batch 64, {args.subset} training samples",
                 [f'data.name="{kind}"', f'data.dir="{data}"', f"data.subset={args.subset}",
                  f"data.test_subset={args.test_subset}", f"array.rows={n}", f"array.cols={n}", "train.batch=64",
                  f'network.kind="{net}"'], args)


if __name__ == "__main__":
    main()
