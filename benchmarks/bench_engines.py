"""Nodal engine against ngspice on the same netlist, and against scipy's spsolve on the same matrix.

Arrays are n×n, 1 Ω wire segments, 1 Ω drivers and sense resistors, devices drawn uniformly from
1–100 µS (seeded), one input vector of 0–0.3 V (batch B = 1: ngspice runs one ``op`` per vector
and spsolve factorises per call, so B = 1 is the fair unit).

The nodal engine runs with ``method="auto"`` (the method it picked is printed); its error
against the direct references is that method's tolerance (``SolverOptions.rtol``).

Part 1, nodal vs ngspice (16, 32, 64; 128 with ``--with-128``, minutes): the nodal engine
(``prepare`` + ``solve``: assembly, factorisation, solve) against the spice engine on the deck
the writer produces (shared libngspice: load + ``op`` + reading the vectors back).

Part 2, nodal vs scipy (128, 256, 512; 1024 with ``--with-1024``, about a minute): the nodal
engine (everything, as above) against ``scipy.sparse.linalg.spsolve(A, b)`` with its defaults
(SuperLU, COLAMD) on the reduced nodal matrix ``A`` that cosim assembles (matrix given: its
assembly is not timed for scipy).

Each measurement runs in a fresh child process: time is the median of ``--repeats`` runs,
memory the rise of the child's peak resident set (``ru_maxrss``) over its resident set just
before the first run (so it covers C allocations: SuperLU, ngspice), in MiB; libraries a
long-lived process loads once (ngspice's, the nodal engine's compiled kernels) are loaded before
that, and the kernels' one-time load is printed under each table. "rel err" is the
largest difference of the output currents from the other path's, over the largest current.

    python benchmarks/bench_engines.py [--sizes 16 32 64] [--mat-sizes 128 256 512]
                                       [--with-128] [--with-1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _case(n: int):
    from cosim.circuit import CrossbarSpec, build_circuit

    rng = np.random.default_rng(1000 + n)
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (n, n)), r_row=1.0, r_col=1.0,
                        r_driver=1.0, r_sense=1.0)
    return build_circuit(spec), rng.uniform(0.0, 0.3, (1, n))


def child(kind: str, n: int, repeats: int) -> dict:
    """One measurement in this (fresh) process; returns times, memory and the currents."""
    import scipy.sparse.linalg as spla

    from cosim.circuit import SolverOptions, get_engine
    from cosim.circuit.mna import assemble_nodal

    circuit, v = _case(n)
    info = {"method": "spsolve"}
    if kind == "spsolve":
        system = assemble_nodal(circuit, dense=False)  # SuperLU is what is timed
        rhs, vk = system.rhs(circuit.source_values(v))
        rhs = rhs[:, 0]

        def run():
            x = spla.spsolve(system.a, rhs)
            _, branch, _ = system.recover(x[:, None], vk)
            return circuit.outputs_from_branches(branch)
    else:
        engine = "nodal" if kind == "nodal" else "spice"
        opts = SolverOptions(engine=engine, ngspice="shared")
        if engine == "spice":  # load the library before measuring, as a long-lived process would
            from cosim.circuit.engines.spice import shared_instance

            shared_instance()
        else:  # likewise the compiled solver kernels (numba); their one-time cost is reported
            r0 = _rss_mib()
            t0 = time.perf_counter()
            get_engine("nodal").warm_up()
            info["load_s"], info["load_mib"] = time.perf_counter() - t0, _rss_mib() - r0

        def run():
            result = get_engine(engine).prepare(circuit, opts).solve(v)
            info["method"] = result.info.get("method", result.info.get("mode", "?"))
            return result.currents

    rss0 = _rss_mib()
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"time": statistics.median(times), "runs": repeats, "mem": max(peak - rss0, 0.0),
            "currents": np.asarray(out)[0].tolist(), **info}


def measure(kind: str, n: int, repeats: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(n), str(repeats)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} n={n} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rel_err(a: dict, b: dict) -> float:
    x, y = np.asarray(a["currents"]), np.asarray(b["currents"])
    return float(np.abs(x - y).max() / np.abs(y).max())


def table(title: str, ref_name: str, rows: list[tuple[int, dict, dict]]) -> None:
    print(f"\n{title}")
    head = (f"{'n':>6} {'nodal s':>10} {ref_name + ' s':>12} {'ratio':>8} "
            f"{'nodal MiB':>10} {ref_name + ' MiB':>12} {'runs':>5} {'rel err':>10}  nodal method")
    # runs: repeats of the reference path (the nodal path runs --repeats times, fewer at 512+)
    print(head)
    print("-" * len(head))
    for n, nod, ref in rows:
        print(f"{n:>6} {nod['time']:>10.4f} {ref['time']:>12.4f} {ref['time'] / nod['time']:>8.1f} "
              f"{nod['mem']:>10.1f} {ref['mem']:>12.1f} {ref['runs']:>5} {rel_err(nod, ref):>10.2e}  {nod['method']}")
    loads = [nod for _, nod, _ in rows if "load_s" in nod]
    if loads:
        print(f"(nodal: compiled kernels loaded once per process before timing, like the ngspice library: "
              f"{max(x['load_s'] for x in loads):.2f} s, +{max(x['load_mib'] for x in loads):.0f} MiB resident)")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        kind, n, repeats = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(child(kind, n, repeats)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--mat-sizes", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--with-128", action="store_true", help="add n=128 to the ngspice table (minutes)")
    ap.add_argument("--with-1024", action="store_true", help="add n=1024 to the scipy table (~1 min)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-spice", action="store_true")
    ap.add_argument("--skip-scipy", action="store_true")
    args = ap.parse_args()
    sizes = args.sizes + ([128] if args.with_128 else [])
    mat_sizes = args.mat_sizes + ([1024] if args.with_1024 else [])
    print("n×n crossbar, 1 Ω segments/driver/sense, devices 1–100 µS (seeded), batch B = 1; "
          "time = median wall time per read, ratio = reference time / nodal time")
    if not args.skip_spice:
        rows = []
        for n in sizes:
            # ngspice's op grows steeply (≈3 s at 64², minutes at 128²): fewer repeats there
            reps = args.repeats if n <= 32 else (3 if n <= 64 else 1)
            rows.append((n, measure("nodal", n, args.repeats), measure("spice", n, reps)))
        table("nodal engine vs ngspice (shared library) on the same netlist", "ngspice", rows)
    if not args.skip_scipy:
        rows = []
        for n in mat_sizes:
            reps = args.repeats if n <= 256 else (3 if n <= 512 else 1)
            rows.append((n, measure("nodal", n, reps), measure("spsolve", n, reps)))
        table("nodal engine vs scipy spsolve (defaults) on the same reduced matrix", "spsolve", rows)


if __name__ == "__main__":
    main()
