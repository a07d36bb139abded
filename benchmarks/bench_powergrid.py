"""Power-grid decks like the IBM benchmarks: cosim solve against ngspice on the same file.

The decks imitate the public IBM power-grid suite (Nassif, "Power grid analysis benchmarks",
ASP-DAC 2008): a two-layer mesh of metal rails (horizontal M1 at the bottom, vertical M2 on
top) as resistors between consecutive crossings, a via resistor at every crossing, C4 pads on
M2 at a regular pitch (a package resistor to a voltage source), and current loads from the M1
nodes to ground, some of them 0 A, as in the originals. Node names follow the suite
(``n1_<x>_<y>``); values carry a seeded ±20 % spread. About 4·n² elements for an n×n mesh.

For each size it prints the deck's elements, cosim's parse and solve times (``cosim solve``'s
own steps: read_netlist, then the operating point by the automatic method, which says which
solver answered), peak memory (a fresh process per size, ru_maxrss), ngspice's time on the same
file (``ngspice -b``, skipped above --ngspice-max elements), the ratio, and the largest node
voltage difference to ngspice, or to the direct factorisation where ngspice is skipped.

    python benchmarks/bench_powergrid.py                   # sizes 100, 200, 300 (≈4e4..4e5 el.)
    python benchmarks/bench_powergrid.py --sizes 500 --ngspice-max 0   # ≈1e6 elements
    python benchmarks/bench_powergrid.py --sizes 500 --ngspice-max 2e6 --ngspice-limit 10  # ≥10× shown

Timings on a shared machine are noisy: ratios are taken within one run, medians of --repeat.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_grid(path: Path, n: int, *, pitch: int = 10, seed: int = 0, vdd: float = 1.8) -> int:
    """Write an n×n two-layer grid deck to ``path``; returns its number of elements."""
    rng = np.random.default_rng(seed)
    lines = [f"* ibmpg-like power grid {n}x{n}, two layers, pads every {pitch} crossings (seed {seed})"]
    k = 0

    def spread(base: float, size: int) -> np.ndarray:
        return base * rng.uniform(0.8, 1.2, size)

    xs, ys = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    # M1: horizontal rails (along x), M2: vertical rails (along y)
    for layer, base, (dx, dy) in ((1, 0.8, (1, 0)), (2, 0.2, (0, 1))):
        a_x, a_y = xs[: n - dx, : n - dy].ravel(), ys[: n - dx, : n - dy].ravel()
        vals = spread(base, a_x.size)
        lines += [f"R{k + i} n{layer}_{x}_{y} n{layer}_{x + dx}_{y + dy} {v:.6g}"
                  for i, (x, y, v) in enumerate(zip(a_x, a_y, vals))]
        k += a_x.size
    vias = spread(0.5, n * n)
    lines += [f"R{k + i} n1_{x}_{y} n2_{x}_{y} {v:.6g}" for i, (x, y, v) in enumerate(zip(xs.ravel(), ys.ravel(), vias))]
    k += n * n
    pads = [(x, y) for x in range(pitch // 2, n, pitch) for y in range(pitch // 2, n, pitch)]
    for p, (x, y) in enumerate(pads):
        lines += [f"R{k} n2_{x}_{y} _X_n2_{x}_{y} {0.01 * rng.uniform(0.8, 1.2):.6g}",
                  f"V{p} _X_n2_{x}_{y} 0 {vdd}"]
        k += 1
    loads = rng.uniform(0, 2e-4, n * n) * (rng.random(n * n) > 0.1)
    lines += [f"iB{i} n1_{x}_{y} 0 {v:.6g}" for i, (x, y, v) in enumerate(zip(xs.ravel(), ys.ravel(), loads))]
    lines += [".op", ".end"]
    path.write_text("\n".join(lines) + "\n")
    return k + len(pads) + n * n


def _cosim(deck: str, method: str) -> None:
    """Child process: read + solve ``deck``; prints JSON timings, peak RSS and the voltages file."""
    from cosim.circuit.engines.base import SolverOptions
    from cosim.circuit.netlist_read import read_netlist
    from cosim.circuit.oppoint import operating_point

    t0 = time.perf_counter()
    circuit = read_netlist(deck)
    t1 = time.perf_counter()
    op = operating_point(circuit, options=SolverOptions(method=method))
    info = op.info
    t2 = time.perf_counter()
    out = Path(deck).with_suffix(f".{method}.npz")
    names = sorted(op.nodes)
    np.savez(out, names=np.array(names), v=np.array([op.nodes[k] for k in names]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"parse": t1 - t0, "solve": t2 - t1, "rss_gib": rss, "file": str(out),
                      "method": info.get("method", "?"), "bound": info.get("bound_volts")}))


def run_cosim(deck: Path, method: str = "auto") -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", str(deck), method],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_ngspice(deck: Path, timeout: float | None = None) -> tuple[float, dict[str, float] | None]:
    """ngspice's wall time and node voltages; (timeout, None) when it had not finished by then."""
    from cosim.circuit.spice_deck import run_deck
    from cosim.errors import EngineError

    t0 = time.perf_counter()
    try:
        nodes, _ = run_deck(deck, deck.read_text(), timeout=timeout)
    except EngineError:
        if timeout is None or time.perf_counter() - t0 < timeout:
            raise
        return timeout, None
    return time.perf_counter() - t0, nodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 300])
    ap.add_argument("--ngspice-max", type=float, default=5e5, help="skip ngspice above this many elements")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--ngspice-limit", type=float, default=None, metavar="FACTOR",
                    help="stop ngspice after FACTOR x cosim's time; the ratio is then reported as '>FACTOR' "
                         "(a measured lower bound) and voltages are checked against the direct factorisation")
    args = ap.parse_args()
    print(f"{'n':>5} {'elements':>9} {'parse s':>8} {'solve s':>8} {'method':>8} {'RSS GiB':>8} "
          f"{'ngspice s':>10} {'ratio':>7} {'max |dV| V':>11}  reference")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            deck = Path(tmp) / f"pg{n}.cir"
            n_el = write_grid(deck, n)
            runs = [run_cosim(deck) for _ in range(args.repeat)]
            best = sorted(runs, key=lambda r: r["parse"] + r["solve"])[len(runs) // 2]
            got = np.load(best["file"])
            ours = dict(zip(got["names"].tolist(), got["v"]))
            t_ng, ratio, ref, nodes = float("nan"), "nan", "direct", None
            if n_el <= args.ngspice_max:
                ours_s = best["parse"] + best["solve"]
                limit = None if args.ngspice_limit is None else args.ngspice_limit * ours_s
                times = []
                for _ in range(args.repeat):
                    t, nodes = run_ngspice(deck, limit)
                    times.append(t)
                    if nodes is None:
                        break
                t_ng = float(np.median(times))
                ratio = f"{t_ng / ours_s:.1f}" if nodes is not None else f">{args.ngspice_limit:g}"
                ref = "ngspice" if nodes is not None else "direct (ngspice stopped at the limit)"
            if nodes is None:
                direct = np.load(run_cosim(deck, "direct")["file"])
                nodes = dict(zip(direct["names"].tolist(), direct["v"]))
            dv = max(abs(ours[k] - v) for k, v in nodes.items())
            print(f"{n:>5} {n_el:>9} {best['parse']:>8.2f} {best['solve']:>8.2f} {best['method']:>8} "
                  f"{best['rss_gib']:>8.2f} {t_ng:>10.2f} {ratio:>7} {dv:>11.2e}  {ref}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _cosim(sys.argv[2], sys.argv[3])
    else:
        main()
