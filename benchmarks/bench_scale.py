"""Scale of the nodal engine's line-block solvers: the targets of the scale issue, as ratios.

Arrays are n×n with 1 Ω wire segments, ideal periphery (0 Ω drivers and sense), devices drawn
uniformly from 1–100 µS (seeded); inputs uniform 0–0.3 V. Every ratio is measured in this run
against a reference on the same array; times are medians of ``--repeats`` runs unless a line
says "1 run". "err" is the relative ℓ1 error of the output currents against the reference
(‖ΔI‖₁/‖I‖₁), "bound" the error bound the solver certified and reported.

1. read-1024: one exact read (``method="auto"``; prepare + solve from the built circuit) against
   ``scipy.sparse.linalg.spsolve(A, b)`` with its defaults (SuperLU, COLAMD) on the reduced
   nodal matrix cosim assembles (assembly not timed for scipy; 1 run, ~1 min).
2. read-big: one read of a 4096² array (33.5 million unknowns) in a fresh process: build,
   prepare, solve, and the peak resident set of that process. No reference can run at this
   size; the certified bound is the accuracy statement.
3. batch-256: 10,000 inputs through a 256² array with fixed conductances: the exact transfer
   (built once, then each read is a matmul) against the ideal numpy matmul ``v @ G``;
   error checked against the direct factorisation on 32 of the inputs.
4. train-64: 20 steps of read (32 inputs) → update 5% of the devices → read on a 64² tile,
   per method (direct refactorisation, warm-started pcg, warm-started transfer) against the
   same loop with ideal reads; error against a fresh direct solve after the last step.
5. ir: PCG iterations against the IR-drop parameter N·M·r·g (n ∈ {128, 256, 512}, r from
   0.1 to 100 Ω), with the direct time (measured up to 256², modelled above) and what "auto"
   picks: where the iteration count makes PCG dearer than the LU, auto switches to direct.
6. warm: the Galerkin warm start of PCG reads after an update (3 % of the devices ±2 %, read
   n/2 inputs forward and transposed), forced on against forced off in the same run, for fresh
   inputs and for repeated ones (n ∈ {64, 128}, r ∈ {1, 10, 100} Ω); what pcg.warm_pays picks.

7. kernels: the compiled (numba) solver against its numpy twin on training-like tiles
   (devices 0–22 µS, mean 11 µS as trained digits tiles; 1 Ω; 32 inputs 0–0.2 V): one cold read
   per size with both paths in the same run (min of ``--repeats``·5), its time per input vector
   and per cell-iteration; the line blocks of new devices (``LineBlocks.with_devices``, compiled
   against numpy) and one vector's balance pass (``coldread._leave``) at 128² and 256²; then the
   small-array crossover (prepare + one 32-input read, direct
   against compiled pcg), and the transfer's port response after a 2 % update of a 64² tile,
   warm-started against cold.

8. reads: the compiled read on 1 and 2 threads (a 64-input read of a 128² training-like tile,
   wall and CPU time); one small read (256², 1–10 µS, one vector: prepare, whole solve and the
   part outside the compiled kernel); 64 zero-mean inputs through it (outputs that cancel, so
   some vectors need the general loop's refinement, in cache-sized chunks and, for comparison,
   all at once); a 512² array at N·M·r·g ≈ 5 read in one stage and with the rebase that such
   arrays took before (pcg.NO_REBASE_MAX_CELLS); the same 256² array with 1 Ω driver and sense resistors, one
   and 64 inputs (their line-end nodes are free unknowns, which once sent a 256² array down the
   numpy loop); a batch of 64 inputs against one input through the same prepared array
   (n ∈ {256, 512, 1024}, 1–100 µS; 1024²: 1 run); batches of 2 to 8 inputs through the lanes
   against the per-vector path (where the lanes start: multirhs.MIN_BATCH).

    python benchmarks/bench_scale.py [--parts read-1024 read-big batch-256 train-64 ir warm kernels reads]
                                     [--big 4096] [--repeats 3]

The machine has 2 cores shared with other work; the load average is printed with each part.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit
from cosim.circuit.engines import nodal
from cosim.circuit.mna import assemble_nodal

PARTS = ("read-1024", "read-big", "batch-256", "train-64", "ir", "warm", "kernels", "reads")


def spec_of(n: int, *, r: float = 1.0, seed: int = 0) -> CrossbarSpec:
    rng = np.random.default_rng(seed + n)
    return CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (n, n)), r_row=r, r_col=r)


def rel_l1(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b).sum(axis=1) / np.abs(b).sum(axis=1)))


def load() -> str:
    return "load avg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def median_time(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def read_once(circuit, v, options):
    prepared = nodal.ENGINE.prepare(circuit, options)
    return prepared.solve(v)


def part_read_1024(repeats: int) -> None:
    import scipy.sparse.linalg as spla

    n = 1024
    spec = spec_of(n)
    circuit = build_circuit(spec)
    v = np.random.default_rng(1).uniform(0.0, 0.3, (1, n))
    t_ours, res = median_time(lambda: read_once(circuit, v, SolverOptions(rtol=1e-9)), repeats)
    system = assemble_nodal(circuit, dense=False)  # SuperLU is what is timed
    rhs, vk = system.rhs(circuit.source_values(v))
    t0 = time.perf_counter()
    x = spla.spsolve(system.a, rhs[:, 0])
    t_ref = time.perf_counter() - t0
    _, branch, _ = system.recover(x[:, None], vk)
    ref = circuit.outputs_from_branches(branch)
    print(f"read-1024  ({load()})")
    print(f"  {n}x{n}: nodal auto -> {res.info['method']} ({res.info.get('iterations', '-')} iterations): "
          f"{t_ours:.2f} s  |  scipy spsolve (1 run): {t_ref:.1f} s  |  speed-up {t_ref / t_ours:.1f}x  |  "
          f"err {rel_l1(res.currents, ref):.1e}  bound {res.info.get('error_bound', 0.0):.1e}")


def child_big(n: int) -> dict:
    """One read of an n×n array in this (fresh) process: times and peak memory."""
    t0 = time.perf_counter()
    spec = spec_of(n)
    circuit = build_circuit(spec)
    t1 = time.perf_counter()
    v = np.random.default_rng(1).uniform(0.0, 0.3, (1, n))
    prepared = nodal.ENGINE.prepare(circuit, SolverOptions(rtol=1e-9))
    t2 = time.perf_counter()
    res = prepared.solve(v)
    t3 = time.perf_counter()
    return {"build": t1 - t0, "prepare": t2 - t1, "solve": t3 - t2, "method": res.info["method"],
            "iterations": res.info.get("iterations"), "bound": res.info.get("error_bound"),
            "ir": res.info.get("ir_parameter"), "unknowns": res.info["unknowns"],
            "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def part_read_big(n: int) -> None:
    out = subprocess.run([sys.executable, __file__, "--child-big", str(n)], check=True,
                         capture_output=True, text=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    total = r["build"] + r["prepare"] + r["solve"]
    print(f"read-big  ({load()}; 1 run, fresh process)")
    print(f"  {n}x{n} ({r['unknowns'] / 1e6:.1f} M free unknowns, N·M·r·g = {r['ir']:.0f}): {r['method']}, "
          f"{r['iterations']} iterations, bound {r['bound']:.1e}")
    print(f"  build {r['build']:.1f} s + prepare {r['prepare']:.1f} s + solve {r['solve']:.1f} s = "
          f"{total:.1f} s (target 60 s: {total / 60:.2f}x of it)  |  peak RSS {r['peak_gib']:.2f} GiB "
          f"(budget 24 GiB: {r['peak_gib'] / 24:.2f})")


def part_batch_256(repeats: int) -> None:
    n, bsz = 256, 10_000
    spec = spec_of(n)
    rng = np.random.default_rng(2)
    v = rng.uniform(0.0, 0.3, (bsz, n))
    g = spec.conductances
    t_ideal, _ = median_time(lambda: v @ g, max(repeats, 5))
    prepared = nodal.prepare_spec(spec, SolverOptions(method="transfer", rtol=1e-9))
    t0 = time.perf_counter()
    prepared.transfer()
    t_build = time.perf_counter() - t0
    t_read, res = median_time(lambda: prepared.solve(v), max(repeats, 5))
    sample = rng.choice(bsz, 32, replace=False)
    ref = nodal.prepare_spec(spec, SolverOptions(method="direct")).solve(v[sample]).currents
    print(f"batch-256  ({load()})")
    print(f"  {n}x{n}, B={bsz}: ideal matmul {t_ideal * 1e3:.1f} ms  |  transfer read {t_read * 1e3:.1f} ms "
          f"({t_read / t_ideal:.1f}x ideal, target ≤ 10x)  |  transfer built once in {t_build:.1f} s "
          f"({prepared.shared.response.iterations} iterations, {n + 1} solves; 1 run)")
    print(f"  build + one read = {(t_build + t_read) / t_ideal:.0f}x ideal  |  err vs direct (32 inputs) "
          f"{rel_l1(res.currents[sample], ref):.1e}  bound {res.info['error_bound']:.1e}  "
          f"re-solved by pcg {res.info['resolved_by_pcg']}")


def _train_loop(spec, method: str, steps: int, rng) -> tuple[float, np.ndarray, np.ndarray, int]:
    n = spec.n_rows
    g = spec.conductances.copy()
    v = rng.uniform(0.0, 0.3, (32, n))
    t0 = time.perf_counter()
    if method == "ideal":
        for _ in range(steps):
            _ = v @ g
            hit = rng.random(g.shape) < 0.05
            g[hit] = rng.uniform(1e-6, 1e-4, hit.sum())
            out = v @ g
        return time.perf_counter() - t0, out, g, 0
    pair = nodal.prepare_pair(spec, SolverOptions(method=method, rtol=1e-9))
    iters = 0
    for _ in range(steps):
        pair.forward.solve(v)
        hit = rng.random(g.shape) < 0.05
        g[hit] = rng.uniform(1e-6, 1e-4, hit.sum())
        pair = pair.update_conductances(g)
        res = pair.forward.solve(v)
        iters += res.info.get("iterations", 0) if method == "pcg" else 0
        out = res.currents
    if method == "transfer":
        iters = pair.forward.shared.response.iterations
    return time.perf_counter() - t0, out, g, iters


def part_train_64(steps: int = 20) -> None:
    spec = spec_of(64)
    t_ideal, _, _, _ = _train_loop(spec, "ideal", steps, np.random.default_rng(3))
    print(f"train-64  ({load()}; {steps} steps of read 32 inputs → update 5% → read)")
    print(f"  ideal reads: {t_ideal / steps * 1e3:.2f} ms/step")
    for method in ("direct", "pcg", "transfer"):
        t, out, g, iters = _train_loop(spec, method, steps, np.random.default_rng(3))
        ref = nodal.prepare_spec(spec.replace(conductances=g), SolverOptions(method="direct")).solve(
            np.random.default_rng(3).uniform(0.0, 0.3, (32, 64))).currents
        extra = {"pcg": f", {iters / steps:.1f} iterations/step (warm)",
                 "transfer": f", last rebuild {iters} iterations (warm)"}.get(method, "")
        print(f"  {method:8s}: {t / steps * 1e3:7.2f} ms/step = {t / t_ideal:6.0f}x ideal{extra}  |  "
              f"err vs fresh direct {rel_l1(out, ref):.1e}")


def part_ir(repeats: int) -> None:
    print(f"ir  ({load()}; rtol 1e-9; direct measured up to 256², modelled (C_LU·u^1.5) above)")
    print("      n     r/Ω   N·M·r·g  iterations   pcg s  direct s  auto picks (model: pcg s / direct s)")
    pcg = SolverOptions(method="pcg", rtol=1e-9, maxiter=5000)
    for n in (128, 256, 512):
        for r in (0.1, 1.0, 10.0, 100.0, 1e3, 1e4):
            spec = spec_of(n, r=r)
            circuit = build_circuit(spec)
            v = np.random.default_rng(4).uniform(0.0, 0.3, (1, n))
            t_pcg, res = median_time(lambda c=circuit, v=v: read_once(c, v, pcg), repeats)
            if n <= 256:
                t_lu, _ = median_time(lambda c=circuit, v=v: read_once(c, v, SolverOptions(method="direct")), 1)
                lu = f"{t_lu:8.3f}"
            else:
                lu = "       -"
            name, reason, blocks = nodal.choose_method(circuit, SolverOptions())
            e_lu, e_pcg, _ = nodal.estimate_times(blocks)
            print(f"  {n:5d} {r:7.1f} {res.info['ir_parameter']:9.3g} {res.info['iterations']:11d} "
                  f"{t_pcg:7.3f} {lu}  {name:6s} ({e_pcg:.3g} / {e_lu:.3g})")


def _warm_loop(n: int, r: float, fresh: bool, warm: bool | None, steps: int = 6):
    from cosim.circuit.solvers import pcg

    rng = np.random.default_rng(5)
    g = rng.uniform(1e-6, 1e-4, (n, n))
    policy = pcg.warm_pays
    if warm is not None:
        pcg.warm_pays = lambda *a: warm
    try:
        pair = nodal.prepare_pair(spec_of(n, r=r).replace(conductances=g), SolverOptions(method="pcg"))
        v, d = rng.uniform(0, 0.2, (n // 2, n)), rng.uniform(-0.2, 0.2, (n // 2, n))
        t, its, used = 0.0, [], []
        for _ in range(steps):
            if fresh:
                v, d = rng.uniform(0, 0.2, (n // 2, n)), rng.uniform(-0.2, 0.2, (n // 2, n))
            t0 = time.perf_counter()
            res = [pair.forward.solve(v), pair.transpose.solve(d)]
            g = np.where(rng.random((n, n)) < 0.03, g * rng.uniform(0.98, 1.02, (n, n)), g)
            pair = pair.update_conductances(g)
            t += time.perf_counter() - t0
            its += [x.info["iterations"] for x in res]
            used += [x.info["warm_start"] for x in res]
    finally:
        pcg.warm_pays = policy
    return t, float(np.mean(its[2:])), float(np.mean(used[2:]))


def part_warm(repeats: int) -> None:
    print(f"warm  ({load()}; rtol 1e-10; 6 steps, times summed, min of {repeats} alternated runs)")
    print("      n    r/Ω  inputs    warm s (its)   cold s (its)  cold/warm  policy warm share")
    for n in (64, 128):
        for r in (1.0, 10.0, 100.0):
            for fresh in (True, False):
                runs = {True: [], False: []}
                for _ in range(repeats):
                    for w in (True, False):
                        runs[w].append(_warm_loop(n, r, fresh, w))
                (tw, iw, _), (tc, ic, _) = min(runs[True]), min(runs[False])
                share = _warm_loop(n, r, fresh, None)[2]
                print(f"  {n:5d} {r:6.0f}  {'fresh' if fresh else 'repeat':6s} {tw:8.3f} ({iw:4.1f}) "
                      f"{tc:8.3f} ({ic:4.1f}) {tc / tw:9.2f}  {share:6.0%}")


def _min_time(fn, repeats: int) -> float:
    fn()  # first call outside the timing (numba dispatch, caches)
    return min(median_time(fn, 1)[0] for _ in range(repeats))


def _compiled_and_numpy(fn, k: int) -> tuple[float, float]:
    """Min times (s) of ``fn()`` over ``k`` calls with the compiled kernels, then with their
    numpy twins (kernels.ENABLED off for the second, restored whatever happens)."""
    from cosim.circuit.solvers import kernels

    t_fast = _min_time(fn, k)
    kernels.ENABLED = False
    try:
        return t_fast, _min_time(fn, k)
    finally:
        kernels.ENABLED = True


def part_kernels(repeats: int) -> None:
    from cosim.circuit.solvers import LineBlocks, PortResponse, kernels, pcg

    if not kernels.ENABLED:
        print("kernels: skipped (numba missing or COSIM_NUMBA=0)")
        return
    kernels.load()
    rng = np.random.default_rng(7)
    print(f"kernels  ({load()}; devices 0–22 µS, 1 Ω, 32 inputs 0–0.2 V, min of {5 * repeats})")
    print("      n  iterations  compiled ms  numpy ms   ratio   µs/vector  ns/cell-iteration")
    for n in (32, 64, 128, 256):
        spec = CrossbarSpec(conductances=rng.uniform(0.0, 2.2e-5, (n, n)), r_row=1.0, r_col=1.0)
        prep = nodal.ENGINE.prepare(build_circuit(spec), SolverOptions(method="pcg"))
        v = rng.uniform(0.0, 0.2, (32, n))
        its = prep.solve(v).info["iterations"]
        t_fast, t_slow = _compiled_and_numpy(lambda p=prep, v=v: p.solve(v), 5 * repeats)
        per = t_fast / 32
        print(f"  {n:5d} {its:11d} {1e3 * t_fast:12.2f} {1e3 * t_slow:9.2f} {t_slow / t_fast:7.1f} "
              f"{1e6 * per:11.0f} {1e9 * per / (n * n * (its + 2)):18.2f}")
    from cosim.circuit.solvers import coldread

    print("  line blocks after new devices (LineBlocks.with_devices), and one vector's balance pass (coldread._leave):")
    print("      n  compiled ms  numpy ms   ratio   balance µs")
    for n in (128, 256):
        g = rng.uniform(0.0, 2.2e-5, (n, n))
        blocks = LineBlocks.from_circuit(build_circuit(CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)))
        g2 = g * rng.uniform(0.9, 1.1, g.shape)
        t_fast, t_slow = _compiled_and_numpy(lambda b=blocks, g=g2: b.with_devices(g), 5 * repeats)
        args = (*(rng.uniform(0.0, 1e-3, (n, n)) for _ in range(2)), rng.uniform(0.0, 0.2, n), np.zeros(n),
                *blocks.kernel_args(), np.empty(2 * n))
        t_leave = _min_time(lambda a=args: coldread._leave(*a), 50 * repeats)
        print(f"  {n:5d} {1e3 * t_fast:12.2f} {1e3 * t_slow:9.2f} {t_slow / t_fast:7.1f} {1e6 * t_leave:12.1f}")
    print("  small arrays, prepare + one 32-input read:")
    print("      n   direct ms  compiled pcg ms   ratio")
    for n in (8, 16, 32, 64):
        circuit = build_circuit(CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (n, n)), r_row=2.5, r_col=2.5))
        v = rng.uniform(0.0, 0.2, (32, n))
        t = {m: _min_time(lambda m=m, c=circuit, v=v: read_once(c, v, SolverOptions(method=m)), 5 * repeats)
             for m in ("direct", "pcg")}
        print(f"  {n:5d} {1e3 * t['direct']:10.2f} {1e3 * t['pcg']:16.2f} {t['direct'] / t['pcg']:7.1f}")
    g = rng.uniform(0.0, 2.2e-5, (64, 64))
    blocks = LineBlocks.from_circuit(build_circuit(CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)))
    old = PortResponse.compute(blocks, rtol=2.5e-11, maxiter=500, label="bench")
    hit = rng.random(g.shape) < 0.02
    new = blocks.with_devices(np.where(hit, g * rng.uniform(0.9, 1.1, g.shape), g))
    t = {}
    for warm in (True, False):
        # The policy (pcg.warm_can_pay) declines the warm start here; force it to measure it.
        policy = pcg.warm_can_pay
        pcg.warm_can_pay = lambda b, w=warm: w
        try:
            t[warm] = _min_time(lambda: PortResponse.compute(new, rtol=2.5e-11, maxiter=500, label="bench",
                                                             warm=old), repeats)
        finally:
            pcg.warm_can_pay = policy
    print(f"  port response of a 64² tile (64 excitations) after a 2 % update: warm-started {1e3 * t[True]:.1f} ms, "
          f"cold {1e3 * t[False]:.1f} ms (policy: {'warm' if pcg.warm_can_pay(new) else 'cold'})")


def _wall_cpu(fn, repeats: int):
    """(median wall s, min CPU s of this process, last result) of ``repeats`` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), min(cpus), out


def part_reads(repeats: int) -> None:
    from cosim.circuit.solvers import coldread, kernels, multirhs, pcg

    nodal.ENGINE.warm_up()
    rng = np.random.default_rng(11)
    print(f"reads  ({load()}; {kernels.threads()} threads available)")
    spec = CrossbarSpec(conductances=rng.uniform(0.0, 2.2e-5, (128, 128)), r_row=1.0, r_col=1.0)
    prep = nodal.ENGINE.prepare(build_circuit(spec), SolverOptions(method="pcg"))
    v = rng.uniform(0.0, 0.2, (64, 128))
    line = "  128², 64 inputs (0–22 µS):"
    for threads in ("1", "2"):
        os.environ["COSIM_THREADS"] = threads
        cpu0 = time.process_time()
        wall = _min_time(lambda: prep.solve(v), 5 * repeats)
        cpu = (time.process_time() - cpu0) / (5 * repeats + 1)
        line += f"  {threads} thread(s) {1e3 * wall:.1f} ms wall ({1e6 * wall / 64:.0f} µs/vector, CPU {1e3 * cpu:.1f} ms)"
    os.environ.pop("COSIM_THREADS")
    print(line)
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-5, (256, 256)), r_row=1.0, r_col=1.0)
    circuit = build_circuit(spec)
    t_prep, prep = median_time(lambda: nodal.ENGINE.prepare(circuit, SolverOptions()), repeats)
    v = rng.uniform(0.0, 0.3, (1, 256))
    inner, real = [], coldread.cold_read

    def timed(*a):
        t0 = time.perf_counter()
        real(*a)
        inner.append(time.perf_counter() - t0)

    coldread.cold_read = timed
    try:
        t_read, c_read, res = _wall_cpu(lambda: prep.solve(v), 10 * repeats)
    finally:
        coldread.cold_read = real
    print(f"  256², 1–10 µS, one input: prepare {1e3 * t_prep:.1f} ms; read {1e3 * t_read:.2f} ms wall (median of "
          f"{10 * repeats}; CPU {1e3 * c_read:.2f} ms, min; target ≤ 5 ms; {res.info['method']}, "
          f"{res.info['iterations']} iterations), of which outside the compiled kernel "
          f"{1e3 * (t_read - statistics.median(inner)):.2f} ms")
    ported = nodal.ENGINE.prepare(build_circuit(spec.replace(r_driver=1.0, r_sense=1.0)), SolverOptions())
    v64 = rng.uniform(0.0, 0.3, (64, 256))
    t1, _, r1 = _wall_cpu(lambda: ported.solve(v), 10 * repeats)
    t64, _, r64 = _wall_cpu(lambda: ported.solve(v64), repeats)
    vz = rng.uniform(-0.3, 0.3, (64, 256))
    general, real_loop, chunk = [], pcg._solve, pcg.FALLBACK_BYTES
    pcg._solve = lambda b, d, *a: general.append(d.shape[0]) or real_loop(b, d, *a)
    try:
        tz, _, rz = _wall_cpu(lambda: prep.solve(vz), repeats)
        general.clear()
        prep.solve(vz)
        refined = sum(general)
        pcg.FALLBACK_BYTES = 2**62  # the refined vectors in one chunk
        t_one, _, _ = _wall_cpu(lambda: prep.solve(vz), repeats)
    finally:
        pcg._solve, pcg.FALLBACK_BYTES = real_loop, chunk
    print(f"  the same, 64 zero-mean inputs (their outputs cancel): {1e3 * tz:.1f} ms wall (median); "
          f"{refined} of them above a single stage's rounding floor, refined by the general loop in "
          f"cache-sized chunks ({1e3 * t_one:.1f} ms all at once); bound {rz.info['error_bound']:.1e}")
    big = nodal.ENGINE.prepare(build_circuit(CrossbarSpec(conductances=rng.uniform(1e-6, 3.6e-5, (512, 512)),
                                                          r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0)),
                               SolverOptions())
    v16, limit, ways = rng.uniform(0.0, 0.3, (16, 512)), pcg.NO_REBASE_MAX_CELLS, []
    try:
        for cells in (limit, 256 * 256):  # one stage, then the rebase it replaced at 512²
            pcg.NO_REBASE_MAX_CELLS = cells
            ways.append([_wall_cpu(lambda x=x: big.solve(x), repeats)[0] for x in (v16[:1], v16)])
    finally:
        pcg.NO_REBASE_MAX_CELLS = limit
    print(f"  512², 1–36 µS, 1 Ω ports (N·M·r·g {big.blocks.ir_parameter():.1f}): one stage {1e3 * ways[0][0]:.1f} / "
          f"{1e3 * ways[0][1]:.0f} ms for 1 / 16 inputs, with the rebase {1e3 * ways[1][0]:.1f} / {1e3 * ways[1][1]:.0f} ms")
    print(f"  the same with 1 Ω driver and sense resistors ({ported.blocks.n_free} free unknowns): one input "
          f"{1e3 * t1:.2f} ms, 64 inputs {1e3 * t64:.1f} ms wall (medians; {r1.info['iterations']} / "
          f"{r64.info['iterations']} iterations, bounds {r1.info['error_bound']:.1e} / {r64.info['error_bound']:.1e})")
    print("  64 inputs through the lanes (multirhs, 8 vectors per pass) against one input, and against the")
    print("  per-vector path (coldread below MIN_CELLS / general loop for large arrays; lanes switched off):")
    print("  (wall: median; CPU: min over the repeats, all threads summed, the measure least moved by other jobs)")
    print("      n   one input s   64 inputs s   ratio  (64 ≤ 8× one: target)   per-vector path s   its  err vs direct  batch path")
    print("          wall / CPU    wall / CPU    wall / CPU                         wall / CPU")
    for n in (128, 256, 512, 1024):
        spec = spec_of(n)
        prep = nodal.ENGINE.prepare(build_circuit(spec), SolverOptions(method="pcg"))
        v = rng.uniform(0.0, 0.3, (64, n))
        t1, c1, _ = _wall_cpu(lambda p=prep, v=v: p.solve(v[:1]), max(repeats, 5))
        t64, c64, res = _wall_cpu(lambda p=prep, v=v: p.solve(v), 1 if n >= 1024 else repeats)
        old = multirhs.MIN_BATCH, multirhs.MIN_CELLS
        multirhs.MIN_BATCH = 10**9
        try:
            t_old, c_old, _ = _wall_cpu(lambda p=prep, v=v: p.solve(v), 1) if n <= 512 else (np.nan, np.nan, None)
        finally:
            multirhs.MIN_BATCH, multirhs.MIN_CELLS = old
        err = "-"
        if n <= 512:
            ref = nodal.prepare_spec(spec, SolverOptions(method="direct")).solve(v[:8]).currents
            err = f"{rel_l1(res.currents[:8], ref):.1e}"
        path = "lanes" if multirhs.pays(prep.blocks, 64) else "coldread (below MIN_CELLS)"
        print(f"  {n:5d} {t1:6.3f} /{c1:6.3f} {t64:6.2f} /{c64:6.2f} {t64 / t1:5.0f} /{c64 / c1:4.0f} {'':22s} "
              f"{t_old:6.2f} /{c_old:6.2f} {res.info['iterations']:5d}  {err}  {path}")
    print("  batches short of a lane block (multirhs.MIN_BATCH): through the lanes (forced) against the per-vector path,")
    print("  ms wall (median), on arrays that take the lanes for a full block")
    old = multirhs.MIN_BATCH
    try:
        for n in (256, 512, 1024):
            spec = spec_of(n) if n > 256 else CrossbarSpec(conductances=rng.uniform(1e-6, 6e-4, (n, n)), r_row=1.0,
                                                            r_col=1.0)  # N·M·r·g 20: it rebases
            prep = nodal.ENGINE.prepare(build_circuit(spec), SolverOptions(method="pcg"))
            line = f"  {n:5d}"
            for b in (2, 4, 6, 8):
                v = rng.uniform(0.0, 0.3, (b, n))
                times = []
                for mb in (2, 10**9):
                    multirhs.MIN_BATCH = mb
                    prep.solve(v)
                    times.append(_wall_cpu(lambda p=prep, v=v: p.solve(v), 1 if n >= 1024 else repeats)[0])
                line += f"   {b} vectors {1e3 * times[0]:7.1f} / {1e3 * times[1]:7.1f}"
            print(line)
    finally:
        multirhs.MIN_BATCH = old


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    ap.add_argument("--big", type=int, default=4096, help="size of the read-big array (n×n)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child-big", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_big:
        print(json.dumps(child_big(args.child_big)))
        return
    for part in args.parts:
        if part == "read-1024":
            part_read_1024(args.repeats)
        elif part == "read-big":
            part_read_big(args.big)
        elif part == "batch-256":
            part_batch_256(args.repeats)
        elif part == "train-64":
            part_train_64()
        elif part == "warm":
            part_warm(args.repeats)
        elif part == "kernels":
            part_kernels(args.repeats)
        elif part == "reads":
            part_reads(args.repeats)
        else:
            part_ir(args.repeats)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
