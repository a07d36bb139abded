"""Exact nonlinear reads (Newton on the line blocks) against the ohmic read and against ngspice.

Part 1, nonlinear vs ohmic (issue 12 target: a 1024×1024 Stanford–PKU read with 1 Ω segments
within 5× the ohmic read of the same array): n×n arrays, 1 Ω wire segments, drivers and sense
resistors; Stanford–PKU cells (models/cards/stanford_pku_default.toml) at gaps drawn uniformly
in [g_min, g_max] (seeded), read with one input vector of 0–0.3 V. The ohmic read is the nodal
engine's (``method="pcg"``, prepared per call) on the cells' chord conductance at 0.1 V; the
nonlinear read is ``read_nonlinear`` (ohmic start with the small-signal conductance, then
Newton). Both certified to ``rtol`` 1e-9. Printed: median times, the ratio, Newton steps, total
PCG iterations and how far the nonlinear outputs sit from the ohmic chord read (the error a
linearised simulator makes).

Part 2, nonlinear vs ngspice (target: a 128×128 1S1R read with every row driven ≥ 500× faster
than ngspice on the exported netlist, same answer to 1e-6): the same arrays with the selector of
models/cards/cells/selector_default.toml in series, ngspice on the deck of
``cosim.circuit.netlist_cells`` (one ``ngspice -b`` op, process start included) against
``read_nonlinear``. Sizes up to 64 by default; 128 with ``--with-128`` (ngspice takes minutes).

Part 3, training through nonlinear cells (target: a digits MLP epoch on 64×64 tiles with 1 Ω
wires and device I–V cells ≤ 2× the ohmic nodal epoch): the digits MLP 64-64-10 with SSM, batch
32, one epoch on the full training set and the test-set evaluation, Stanford–PKU devices
(``device.card = stanford_pku_default``), nodal engine, 1 Ω row and column segments; once with
``array.cell = "0T1R"`` (each device its read conductance at 0.1 V: the ohmic nodal epoch) and
once with ``"device"`` (every read solves the cells' sinh I–V: the compiled per-vector Newton of
``sinhnewton``, started from the drops the tile's previous batch predicts). Same seed, same
process, the cell kinds in turn within each of ``--repeats`` rounds (after one untimed round that
loads the compiled kernels). Printed: median epoch time, read time (preparation + solves) and test
accuracy per cell kind, the median over the rounds of each round's epoch time over that round's
0T1R epoch (with every round's ratio: a shared machine's drift over a run moves both epochs of a
round alike), and the thread count each size of read settled on (kernels.plan_chunks;
``--fixed-threads``: the earlier fixed rule).
``--skip-train`` leaves it out; ``--set SECTION.KEY=VALUE`` changes the config of both epochs
(e.g. ``solver.rtol=1e-6``: how much of the gap the read tolerance explains).

Part 4, where a device-cell read's time goes (run it with ``COSIM_THREADS=1`` for per-core
figures): the batches that part 3's device epoch reads from a predicted start are captured; the
compiled per-vector Newton (``sinhnewton.solve``) is timed on them (µs per vector, Newton and CG
steps per vector), and one captured vector's sweep (``sinhpasses._sweep``) in a compiled loop with
its parts switched on one by one: cell law and node balances, + factorisation at the new slopes,
+ Schur right-hand side, + the previous step's row correction. A CG step's cost is what a
one-thread read leaves after its sweeps (a first sweep with factorisation and right-hand side, one
full sweep per further step, a last one with law, balances and correction), per CG step. What
fresh drop arrays cost (why ``sinhnewton.scratch`` exists): the captured batches read into fresh
(B, N, M) arrays and into reusable ones, batch by batch in turn. What the work slabs' spacing
saves (``sinhnewton.SLAB_PAD``): the batches read with the slabs N·M values apart and padded, batch
by batch in turn. How a batch splits over the cores: the
captured 32-vector batches and the test-set ones (≥ 400 vectors) on one thread and on all, in
turn (the speed-up a core count gives a batch; part 4 otherwise runs as ``COSIM_THREADS`` sets);
what the batches' last vectors cost two threads, by a model of each vector's steps; and how this
machine's two cores share their resources (latency-bound, division-bound and cache- or
memory-bound loops on one thread and on two).
Last, what a better start could save: a third of the batches read from their own converged drops
scaled by 1 + ε (ε = 0.1 … 1e-4) against the predicted start.

Part 5, batch reads through the engine at strong IR drop: part 1's arrays (n ∈ ``--batch-sizes``,
N·M·r·g 20 / 81 / 322 at 256² / 512² / 1024²) read with ``cell = "device"`` for a batch of
``--batch`` input vectors (2 at 1024²) by the nodal engine's compiled per-vector Newton
(``sinhnewton``) and, on the same prepared array, by the path it took before
(``NewtonPrepared.compiled = False``: the chord iteration, then the damped Newton for the vectors
it leaves), and the ohmic read of the same inputs (the cells' chord conductance at 0.1 V). Printed:
median times, the method each took, certified bounds and the difference of the two nonlinear
answers.

Part 6, this code against another checkout in one process (``--against DIR``, e.g. a ``git
worktree`` of an earlier commit): the compiled Newton's modules of DIR (``kernels``' compiled
helpers, ``coldread``, ``sinhpasses``, ``sinhnewton``) are loaded beside this code's, and a ninth
of the batches part 4 captures are read by both, each batch by the one and then the other, one
thread, ``--rounds`` times. Printed: µs per vector of each and this code's time over DIR's per round, with the
median. Interleaving batch by batch cancels the drift of a shared machine that separate runs
(±5–10 %) cannot.

The machine may be shared: ratios are within one run, medians of ``--repeats``.

    python benchmarks/bench_nonlinear.py [--sizes 64 128 256 512] [--with-1024] [--spice-sizes 16 32 64]
                                         [--with-128] [--repeats 3] [--skip-train] [--train-cells device 1S1R]
                                         [--set solver.rtol=1e-6]
    COSIM_THREADS=1 python benchmarks/bench_nonlinear.py --parts 4
    python benchmarks/bench_nonlinear.py --parts 5 [--batch-sizes 256 512 1024] [--batch 4]
    COSIM_THREADS=1 python benchmarks/bench_nonlinear.py --parts 6 --against /tmp/old-checkout [--rounds 8]
"""

from __future__ import annotations

import argparse
import contextlib
import os

import numpy as np
from bench_scale import median_time  # a sibling script (benchmarks/ is on sys.path)

from cosim.array.cells import device_law, load_access_card
from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, read
from cosim.circuit.cells import SeriesCell
from cosim.circuit.netlist_cells import ngspice_read
from cosim.circuit.solvers import kernels
from cosim.circuit.solvers.newton import read_nonlinear
from cosim.devices import get_model, load_card
from cosim.devices.paths import models_dir


def arrays(n: int, seed: int = 0):
    card = load_card(models_dir() / "cards" / "stanford_pku_default.toml")
    p = dict(card.params)
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(p["g_min"], p["g_max"], (n, n))
    model = get_model("stanford_pku")
    law = device_law(model, gaps, p)
    spec = CrossbarSpec(conductances=model.conductance(gaps, 0.1, p), r_row=1.0, r_col=1.0, r_driver=1.0,
                        r_sense=1.0)
    x = rng.uniform(0.0, 0.3, (1, n))
    return spec, law, x


def part1(sizes, repeats):
    print("part 1: Stanford-PKU cells, nonlinear (Newton) vs ohmic read, 1 Ω segments, B = 1")
    print(f"{'n':>6} {'ohmic s':>9} {'newton s':>9} {'ratio':>6} {'steps':>5} {'pcg its':>7} {'chord err':>9}")
    opts = SolverOptions(method="pcg", rtol=1e-9)
    for n in sizes:
        spec, law, x = arrays(n)
        t_lin, lin = median_time(lambda: read(spec, x, engine="nodal", options=opts), repeats)  # noqa: B023
        t_nl, nl = median_time(lambda: read_nonlinear(spec, law, x, opts), repeats)  # noqa: B023
        err = float(np.abs(nl.currents - lin.currents).max() / np.abs(nl.currents).max())
        print(f"{n:>6} {t_lin:>9.3f} {t_nl:>9.3f} {t_nl / t_lin:>6.2f} {nl.info['newton_steps']:>5} "
              f"{nl.info['iterations']:>7} {err:>9.2e}")


def part2(sizes, repeats):
    print("part 2: 1S1R (Stanford-PKU + sinh selector), every row driven: read_nonlinear vs ngspice -b")
    print(f"{'n':>6} {'cosim s':>9} {'ngspice s':>10} {'speed-up':>9} {'rel err':>9}")
    sel = load_access_card("selector_default")
    opts = SolverOptions(rtol=1e-9)
    for n in sizes:
        spec, law, x = arrays(n)
        cell = SeriesCell(law, sel.law(np.ones(n, bool), (n, n)))
        t_co, co = median_time(lambda: read_nonlinear(spec, cell, x, opts), repeats)  # noqa: B023
        t_sp, sp = median_time(lambda: ngspice_read(build_circuit(spec), cell, x), 1)  # noqa: B023
        err = float(np.abs(co.currents - sp).max() / np.abs(sp).max())
        print(f"{n:>6} {t_co:>9.3f} {t_sp:>10.2f} {t_sp / t_co:>9.0f} {err:>9.2e}")


def part3(cells, repeats, overrides=()):
    import logging
    import statistics

    from cosim.train import load_config, run_training

    print("part 3: digits MLP 64-64-10, 64x64 tiles, 1 Ω wires, Stanford-PKU card, nodal engine, one epoch")
    if overrides:
        print("  with " + " ".join(overrides))
    print(f"{'cell':<10}{'epoch s':>9}{'reads s':>9}{'test acc':>10}{'vs 0T1R':>9}")
    logging.disable(logging.WARNING)
    base = [*TRAIN_SETS, *overrides]
    kinds = ["0T1R", *cells]
    runs = {cell: [] for cell in kinds}
    for rnd in range(-1, repeats):  # the kinds in turn within each round: a drifting machine moves both
        for cell in kinds:
            res = run_training(load_config(None, [*base, f'array.cell="{cell}"']), progress=False)
            if rnd < 0:  # round −1 loads (or compiles) every kernel the epochs use
                continue
            tiles = [t for layer in res.layers for t in layer.tiles()]
            runs[cell].append((res.epochs[0]["time_s"], sum(t.stats.read_time + t.stats.prepare_time for t in tiles),
                               res.metrics["final_test_acc"]))
    for cell in kinds:
        epoch, reads, acc = (statistics.median(r[k] for r in runs[cell]) for k in range(3))
        ratios = [r[0] / o[0] for r, o in zip(runs[cell], runs["0T1R"])]
        print(f"{cell:<10}{epoch:>9.2f}{reads:>9.2f}{100 * acc:>9.1f}%{statistics.median(ratios):>8.2f}x"
              + ("" if cell == "0T1R" else "   per round " + " ".join(f"{x:.2f}" for x in ratios)))
    print("load avg {:.2f} {:.2f} {:.2f} (the machine is shared)".format(*os.getloadavg()))
    for line in kernels.thread_choices():
        print("  threads:", line)


def _captured_batches():
    """The batches one device-cell epoch of part 3 reads by the compiled Newton from a predicted
    start: (blocks, law, shifts, out_ports, keyword arguments) each; and per kind of read
    (forward, transposed, warm) the epoch's (calls, input vectors, seconds in ``sinhnewton.solve``)."""
    import logging
    import time

    from cosim.circuit.solvers import sinhnewton
    from cosim.train import load_config, run_training

    logging.disable(logging.WARNING)
    solve, caps, tally = sinhnewton.solve, [], {}

    def keep(blocks, cell, shifts, out_ports, **kw):
        if kw.get("prior") is not None:
            caps.append((blocks, cell, shifts, out_ports, kw))
        t0 = time.perf_counter()
        res = solve(blocks, cell, shifts, out_ports, **kw)
        # a forward read drives rows (columns at 0 V), a transpose read columns; x0: the same inputs again
        kind = ("warm" if kw.get("x0") is not None else "forward" if np.any(shifts[0]) else "transposed")
        calls, vectors, seconds = tally.get(kind, (0, 0, 0.0))
        tally[kind] = (calls + 1, vectors + shifts[0].shape[0], seconds + time.perf_counter() - t0)
        return res

    sinhnewton.solve = keep
    try:
        run_training(load_config(None, [*TRAIN_SETS, 'array.cell="device"']), progress=False)
    finally:
        sinhnewton.solve = solve
    return caps, tally


def part4(repeats):
    import time

    import numba

    from cosim.circuit.solvers import sinhnewton
    from cosim.circuit.solvers.sinhpasses import _applied, _sweep

    caps, tally = _captured_batches()
    print(f"part 4: where a device-cell read goes, {len(caps)} captured digits batches, "
          f"{kernels.threads()} thread(s)")
    print("  the epoch's compiled-Newton reads: " + "; ".join(
        f"{kind} {calls} calls, {vectors} vectors, {seconds:.2f} s"
        for kind, (calls, vectors, seconds) in tally.items()))
    read, newton, cg, third = whole_read(caps, repeats)
    print(f"  whole read: {read:.0f} µs per vector, {newton:.2f} Newton steps, {cg:.2f} CG steps; "
          f"{100 * third:.1f} % of the vectors took three Newton steps or more")
    # The sweep timings below run on one thread: the CG step is what a one-thread read leaves.
    read1 = read if kernels.threads() == 1 else whole_read(caps, repeats, threads=1)[0]
    fresh_drops(caps, repeats)
    slab_padding(caps, repeats)
    thread_scaling(caps, repeats)
    batch_tail(caps)
    machine_scaling(repeats)

    @numba.njit
    def loop(count, flags, uniform, sr, sc, inv_v0, a, a_v0, g_lin, g_floor, gw, gc, gpl, gpr, gpt, gpb, pins_r, pins_c,
             free_r, free_c, wr, offr, wc, offc, gwp, dr, dc, cur, br, wq, w1, acc):
        n, m = cur.shape
        w = sinhnewton.slabs(wq, n, m)  # the kernel's own layout of a thread's work slabs
        for _ in range(count):
            _sweep(flags[0], flags[1], flags[2], uniform, sr, sc, inv_v0, a, a_v0, g_lin, w[12], w[13], g_floor, gw,
                   gwp, gc, gpl, gpr, gpt, gpb, pins_r, pins_c, free_r, free_c, wr, offr, wc, offc, dr, dc, cur, br, w,
                   w1[4, :m], w1[5, :m + 2], w1[6, :m], acc)

    b, cell, shifts, _, kw = caps[len(caps) // 2]
    n, m = b.n, b.m
    sr, sc = (np.ascontiguousarray(x[0], dtype=float) for x in shifts)
    a, v0, inv_v0, a_v0, g_lin, uniform = sinhnewton._law_arrays(cell, n, m)
    _, gw, gc, gpl, gpr, gpt, gpb, _, _, free_r, free_c = b.kernel_args()
    *lines, pins_r, pins_c = sinhnewton._line_constants(b)
    wq, w1 = np.zeros((16, n * m + sinhnewton.SLAB_PAD)), np.zeros((sinhnewton.LINE_ROWS, max(n, m) + 2))
    w = sinhnewton.slabs(wq, n, m)
    _applied(sr, sc, v0, uniform, w1[0, :n], w1[1, :n], w1[2, :m], w1[3, :m], w[12], w[13])
    args = (uniform, sr, sc, inv_v0, a, a_v0, g_lin, float(kw["g_floor"]), gw, gc, gpl, gpr, gpt, gpb, pins_r, pins_c,
            free_r, free_c, *lines, np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m)),
            np.zeros(n + m), wq, w1, np.zeros(3))
    cost = {}
    for name, flags in (("law", (False, False, False)), ("factor", (False, True, False)),
                        ("rhs", (False, True, True)), ("correct", (True, True, True))):
        loop(1, np.array(flags), *args)
        count, t0 = 2000, time.perf_counter()
        loop(count, np.array(flags), *args)
        cost[name] = (time.perf_counter() - t0) / count * 1e6
    law, factor, rhs = cost["law"], cost["factor"] - cost["law"], cost["rhs"] - cost["factor"]
    correct = cost["correct"] - cost["rhs"]
    print(f"  one sweep of a {n}x{m} tile: cell law and node balances {law:.1f} µs, + factorisation {factor:.1f}, "
          f"+ Schur right-hand side {rhs:.1f}, + row correction {correct:.1f}")
    sweeps = (law + factor + rhs) + (newton - 1) * cost["correct"] + (law + correct)
    print(f"  CG step (what a one-thread read, {read1:.0f} µs a vector, leaves after {newton + 1:.1f} sweeps): "
          f"{(read1 - sweeps) / cg:.1f} µs")
    start_quality(caps[::3], repeats)


def whole_read(caps, repeats, threads=None):
    """The captured batches read in turn, ``repeats`` times: µs per input vector (median), the
    mean Newton and CG steps per vector, and the fraction of vectors that took three Newton
    steps or more; on ``threads`` kernel threads (``COSIM_THREADS``) if given."""
    import time

    from cosim.circuit.solvers import sinhnewton

    with _cosim_threads(os.environ.get("COSIM_THREADS") if threads is None else str(threads)):
        runs = []
        for _ in range(repeats):
            t0, nv, steps, third = time.perf_counter(), 0, np.zeros(2), 0
            for blocks, cell, shifts, out_ports, kw in caps:
                counts = sinhnewton.solve(blocks, cell, shifts, out_ports, **kw).counts
                steps += counts.sum(axis=0)
                third += int((counts[:, 0] >= 3).sum())
                nv += shifts[0].shape[0]
            runs.append((time.perf_counter() - t0) / nv * 1e6)
    newton, cg = steps / nv
    return float(np.median(runs)), float(newton), float(cg), third / nv


def fresh_drops(caps, repeats):
    """The captured batches read with their drops into fresh arrays against reusable ones
    (sinhnewton.scratch), in turn batch by batch. Whether a fresh array beyond 128 KiB faults in
    page by page depends on the allocator's state (glibc serves it from mmap or from a heap it
    may have trimmed), so this shows the cost as the process stands after part 3's epoch."""
    import time

    from cosim.circuit.solvers import sinhnewton

    times, nv = np.zeros((repeats, 2)), sum(c[2][0].shape[0] for c in caps)
    for r in range(repeats):
        for b, cell, shifts, outp, kw in caps:
            shape = (shifts[0].shape[0], b.n, b.m)
            for k, out in enumerate((None, tuple(sinhnewton.scratch(s, shape) for s in ("d_r", "d_c")))):
                t0 = time.perf_counter()
                sinhnewton.solve(b, cell, shifts, outp, **{**kw, "out": out})
                times[r, k] += time.perf_counter() - t0
    fresh, lent = np.median(times, axis=0) / nv * 1e6
    print(f"  drops into fresh arrays {fresh:.0f} µs per vector, into reusable ones {lent:.0f}")


def slab_padding(caps, repeats):
    """The captured batches read with each thread's work slabs N·M values apart (a multiple of
    4 KiB at 64×64: the same cell of every slab in one L1 set) against sinhnewton.SLAB_PAD values
    further, in turn batch by batch; on ``kernels.threads()`` threads."""
    import time

    from cosim.circuit.solvers import sinhnewton

    pad, nv = sinhnewton.SLAB_PAD, sum(c[2][0].shape[0] for c in caps)
    times = np.zeros((repeats, 2))
    try:
        for r in range(repeats):
            for b, cell, shifts, outp, kw in caps:
                for k, p in enumerate((0, pad)):
                    sinhnewton.SLAB_PAD = p
                    t0 = time.perf_counter()
                    sinhnewton.solve(b, cell, shifts, outp, **kw)
                    times[r, k] += time.perf_counter() - t0
    finally:
        sinhnewton.SLAB_PAD = pad
    tight, padded = np.median(times, axis=0) / nv * 1e6
    print(f"  work slabs N·M values apart {tight:.0f} µs per vector, {pad} values further {padded:.0f} µs "
          f"({padded / tight:.3f})")


def thread_scaling(caps, repeats):
    """µs per vector of the captured 32-vector batches and of the test-set batches (≥ 400 vectors)
    on one thread and on all of ``kernels.threads()`` without ``COSIM_THREADS``, in turn: how much
    of the cores a batch's split gives (its last vectors leave a core idle)."""
    import time

    from cosim.circuit.solvers import sinhnewton

    with _cosim_threads(None):
        most = kernels.threads()
    groups = {"32-vector": [c for c in caps if c[2][0].shape[0] == 32],
              ">= 400-vector": [c for c in caps if c[2][0].shape[0] >= 400]}
    for label, batches in groups.items():
        nv, times = sum(c[2][0].shape[0] for c in batches), np.zeros((repeats, 2))
        for r in range(repeats):
            for k, count in enumerate(("1", str(most))):
                with _cosim_threads(count):
                    t0 = time.perf_counter()
                    for b, cell, shifts, outp, kw in batches:
                        sinhnewton.solve(b, cell, shifts, outp, **kw)
                    times[r, k] = time.perf_counter() - t0
        one, all_ = np.median(times, axis=0) / max(nv, 1) * 1e6
        print(f"  {label} batches ({len(batches)}): one thread {one:.0f} µs per vector, {most} threads "
              f"{all_:.0f} µs: {one / all_:.2f}x")


@contextlib.contextmanager
def _cosim_threads(value):
    """``COSIM_THREADS`` set to ``value`` (unset for None) within, as it was after."""
    saved = os.environ.pop("COSIM_THREADS", None)
    if value is not None:
        os.environ["COSIM_THREADS"] = value
    try:
        yield
    finally:
        os.environ.pop("COSIM_THREADS", None)
        if saved is not None:
            os.environ["COSIM_THREADS"] = saved


def batch_tail(caps):
    """What the last vectors of a batch cost two threads, by a model: each captured batch's
    vectors (≥ 2) costed by their own Newton and CG steps (the sweep and CG step times of a
    64×64 tile, part 4's lines: 30 µs a vector, 35 a Newton step, 20 a CG step) and handed one at
    a time to the first free thread, in batch order and costliest first; the makespan over the
    epoch against perfect balance (total cost over two)."""
    import heapq

    from cosim.circuit.solvers import sinhnewton

    def makespan(costs):
        free = [0.0, 0.0]
        for c in costs:
            heapq.heappush(free, heapq.heappop(free) + c)
        return max(free)

    ideal = fifo = lpt = 0.0
    for b, cell, shifts, outp, kw in caps:
        if shifts[0].shape[0] < 2:
            continue
        counts = sinhnewton.solve(b, cell, shifts, outp, **kw).counts
        cost = 30.0 + 35.0 * counts[:, 0] + 20.0 * counts[:, 1]
        ideal += cost.sum() / 2
        fifo += makespan(cost)
        lpt += makespan(np.sort(cost)[::-1])
    print(f"  batch tails on two threads (a cost model): {fifo / ideal:.4f} of perfect balance in batch order, "
          f"{lpt / ideal:.4f} costliest first")


def _chain(n):  # pragma: no cover - compiled by machine_scaling
    x, y = 1.0, 0.5
    for _ in range(n):
        x = x * 0.9999999 + y
        y = y * 0.9999998 + 1e-9
    return x + y


def _divisions(n):  # pragma: no cover - compiled by machine_scaling
    s = 0.0
    for i in range(n):
        s += 1.0 / (1.0 + i)
    return s


def _stream(a, passes):  # pragma: no cover - compiled by machine_scaling
    for _ in range(passes):
        for i in range(a.size):
            a[i] = a[i] * 0.999 + 1e-3
    return a[0]


def machine_scaling(repeats):
    """How this machine's two cores share their resources, for reading the thread-scaling lines
    above: the same work on one Python thread and on two at once (compiled, GIL released), as
    one thread's time over two threads' for twice the work (2.00: the cores share nothing): a
    dependent multiply-add chain (latency bound), independent divisions (the divider's
    throughput) and passes over 256 KiB and 8 MiB per thread (cache and memory bandwidth)."""
    import threading
    import time

    import numba

    chain, divisions, stream = (numba.njit(nogil=True)(f) for f in (_chain, _divisions, _stream))

    def both(fn, args_of):
        best = [np.inf, np.inf]
        for _ in range(repeats):
            for k, count in enumerate((1, 2)):
                threads = [threading.Thread(target=fn, args=args_of()) for _ in range(count)]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                best[k] = min(best[k], time.perf_counter() - t0)
        return 2 * best[0] / best[1]

    chain(10), divisions(10), stream(np.ones(8), 1)
    n = 50_000_000
    parts = [f"multiply-add chain {both(chain, lambda: (n,)):.2f}x", f"divisions {both(divisions, lambda: (n,)):.2f}x"]
    for size in (256 * 2 ** 10, 8 * 2 ** 20):
        words = size // 8
        parts.append(f"{size // 2 ** 10} KiB passes "
                     f"{both(stream, lambda w=words: (np.ones(w), max(1, 100_000_000 // w))):.2f}x")
    print("  this machine, two threads against one (2.00x: nothing shared): " + ", ".join(parts))


def start_quality(caps, repeats):
    """How much a better start could save: the captured batches read from their converged drops
    scaled by 1 + ε (a uniform relative error, as a wrong scale of the predicted drops makes),
    against the prediction the epoch used."""
    import time

    from cosim.circuit.solvers import sinhnewton

    # the converged drops in arrays of their own (not the epoch's reusable ones, ``out``); the
    # settings common to every batch without the per-batch start, drop arrays and currents
    exact = [sinhnewton.solve(b, cell, shifts, outp, **{**kw, "out": None}) for b, cell, shifts, outp, kw in caps]
    plain = {k: v for k, v in caps[0][4].items() if k not in ("prior", "x0", "out", "ideal")}
    rows = [("the prediction", None)] + [(f"converged drops × (1 + {eps:g})", eps) for eps in (1e-1, 1e-2, 1e-3, 1e-4)]
    print(f"  start quality ({len(caps)} of the batches, {kernels.threads()} thread(s)): µs per vector, Newton and "
          "CG steps")
    for label, eps in rows:
        runs = []
        for _ in range(repeats):
            t0, nv, steps = time.perf_counter(), 0, np.zeros(2)
            for (b, cell, shifts, outp, kw), ex in zip(caps, exact):
                if eps is None:
                    res = sinhnewton.solve(b, cell, shifts, outp, **kw)
                else:
                    x0 = (ex.d_r * (1 + eps), ex.d_c * (1 + eps))
                    res = sinhnewton.solve(b, cell, shifts, outp, x0=x0, **plain)
                steps += res.counts.sum(axis=0)
                nv += shifts[0].shape[0]
            runs.append((time.perf_counter() - t0) / nv * 1e6)
        print(f"    from {label:<32} {np.median(runs):5.0f} µs  {steps[0] / nv:.2f} Newton  {steps[1] / nv:.2f} CG")


def part5(sizes, batch, repeats):
    from cosim.circuit.engines.base import prepare

    print(f"part 5: engine batch reads of Stanford-PKU cells, 1 Ω segments, {batch} inputs (2 at 1024²)")
    print(f"{'n':>6} {'N·M·r·g':>8} {'ohmic s':>8} {'compiled s':>11} {'before s':>9} {'speed-up':>9} "
          f"{'bound':>9} {'before':>14} {'diff':>9}")
    for n in sizes:
        spec, law, _ = arrays(n)
        b = 2 if n >= 1024 else batch
        x = np.random.default_rng(1).uniform(0.0, 0.3, (b, n))
        ohmic = prepare(build_circuit(spec), SolverOptions())
        circuit = build_circuit(spec.replace(cell="device", law=law))
        fast = prepare(circuit, SolverOptions())
        slow = prepare(circuit, SolverOptions())
        slow.compiled = False
        t_oh, _ = median_time(lambda: ohmic.solve(x), repeats)  # noqa: B023
        fast.solve(x[:1])  # compile and fit the start, as a training run would have
        t_f, got = median_time(lambda: fast.solve(x), repeats)  # noqa: B023
        t_s, ref = median_time(lambda: slow.solve(x), 1 if n >= 512 else repeats)  # noqa: B023
        diff = float(np.abs(got.currents - ref.currents).sum(axis=1).max() / np.abs(ref.currents).sum(axis=1).min())
        print(f"{n:>6} {fast.blocks.ir_parameter():>8.0f} {t_oh:>8.3f} {t_f:>11.3f} {t_s:>9.2f} {t_s / t_f:>8.1f}x "
              f"{got.residual:>9.1e} {ref.info['method']:>14} {diff:>9.1e}   ({got.info['method']})")


def part6(against, rounds):
    import importlib.util
    import inspect
    import sys
    import tempfile
    import time
    from pathlib import Path

    from cosim.circuit.solvers import sinhnewton

    caps = _captured_batches()[0][::9]
    src = Path(against) / "cosim" / "circuit" / "solvers"
    tmp = Path(tempfile.gettempdir()) / "cosim-bench-against"  # one place: numba caches by file
    tmp.mkdir(exist_ok=True)
    names = {"kernels": "ref_kernels", "coldread": "ref_coldread", "sinhpasses": "ref_sinhpasses",
             "sinhnewton": "ref_sinhnewton"}
    for path in src.glob("*.py"):  # the originals beside the copies: kernels' cache key hashes them
        (tmp / path.name).write_text(path.read_text())
    for name, alias in names.items():  # each module importing the others' compiled helpers from their copies
        text = (src / f"{name}.py").read_text()
        for other, other_alias in names.items():
            text = text.replace(f"cosim.circuit.solvers.{other} ", f"{other_alias} ")
        (tmp / f"{alias}.py").write_text(text)
        spec = importlib.util.spec_from_file_location(alias, tmp / f"{alias}.py")
        sys.modules[alias] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    ref = sys.modules["ref_sinhnewton"]
    # the epoch's reads pass arguments (reusable drop arrays, the ideal currents) that the other
    # code may not take: it gets the ones it does
    takes = set(inspect.signature(ref.solve).parameters)
    nv = sum(c[2][0].shape[0] for c in caps)
    times = np.zeros((rounds, 2))
    for r in range(-1, rounds):  # round −1 compiles both
        for b, cell, shifts, out_ports, kw in caps:
            for k, mod in enumerate((ref, sinhnewton)):
                b._lines = b._law = None  # each module's own line constants and law arrays
                mod._line_constants(b)
                args = kw if mod is sinhnewton else {key: x for key, x in kw.items() if key in takes}
                t0 = time.perf_counter()
                mod.solve(b, cell, shifts, out_ports, **args)
                if r >= 0:
                    times[r, k] += time.perf_counter() - t0
    print(f"part 6: {len(caps)} captured batches ({nv} vectors), this code against {against}, interleaved")
    print(f"  {against}: {np.median(times[:, 0]) / nv * 1e6:.1f} µs per vector; this code "
          f"{np.median(times[:, 1]) / nv * 1e6:.1f}; this code's time over the other's per round: "
          + " ".join(f"{x:.3f}" for x in times[:, 1] / times[:, 0])
          + f" (median {np.median(times[:, 1] / times[:, 0]):.3f})")


TRAIN_SETS = ["array.rows=64", "array.cols=64", 'solver.engine="nodal"', "train.epochs=1", "train.reference=false",
              "array.r_row=1.0", "array.r_col=1.0", 'device.card="stanford_pku_default"']


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--with-1024", action="store_true")
    ap.add_argument("--spice-sizes", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--with-128", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--train-cells", nargs="+", default=["device"], help="cell kinds timed against 0T1R in part 3")
    ap.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 512, 1024], help="part 5's array sizes")
    ap.add_argument("--batch", type=int, default=4, help="part 5's input vectors (2 at 1024²)")
    ap.add_argument("--against", help="part 6: a checkout of other code (its cosim/circuit/solvers is loaded)")
    ap.add_argument("--rounds", type=int, default=8, help="part 6's rounds")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="part 3: one more training-config override for both cell kinds (repeatable), "
                         "e.g. solver.rtol=1e-6")
    ap.add_argument("--fixed-threads", action="store_true",
                    help="the earlier thread rule: reads under kernels.PARALLEL_MIN_WORK on one thread, none measured")
    a = ap.parse_args()
    kernels.load()
    if a.fixed_threads:
        kernels.PROBE_MIN_WORK = kernels.PARALLEL_MIN_WORK
    if 1 in a.parts:
        part1(a.sizes + ([1024] if a.with_1024 else []), a.repeats)
    if 2 in a.parts:
        part2(a.spice_sizes + ([128] if a.with_128 else []), a.repeats)
    if 3 in a.parts and not a.skip_train:
        part3(a.train_cells, a.repeats, a.overrides)
    if 4 in a.parts:
        part4(a.repeats)
    if 5 in a.parts:
        part5(a.batch_sizes, a.batch, a.repeats)
    if 6 in a.parts:
        if not a.against:
            ap.error("part 6 needs --against DIR")
        part6(a.against, a.rounds)


if __name__ == "__main__":
    main()
