"""Wall time of `cosim solve` on a 10-element deck, interpreter start included, against floors.

Prints the median of --repeat runs (fresh processes) of: a bare interpreter, importing what the
solve path cannot avoid (numpy), importing scipy.sparse.linalg (what SuperLU would add; a small
deck is solved dense and never loads it), `cosim solve` on the deck, and ngspice on the same
file. The solve path loads no scipy, compiled kernels, networkx or PySpice (tests/test_cli_solve.py
and tests/test_mna_dense.py check that), so what is left above the numpy floor is cosim itself.

    python benchmarks/bench_latency.py --repeat 11
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DECK = ("ten elements\nv1 a 0 1\nr1 a n1 1k\nr2 n1 0 2k\nr3 a n2 1k\nr4 n2 0 1k\nr5 n2 n1 3k\n"
        "r6 a n3 1k\nr7 n3 0 1k\nr8 n3 n2 1k\ni1 0 n3 1m\n.op\n.end\n")


def wall(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        deck = Path(tmp) / "ten.cir"
        deck.write_text(DECK)
        cases = {
            "python -c pass": [py, "-c", "pass"],
            "import numpy": [py, "-c", "import numpy"],
            "import numpy, scipy.sparse.linalg": [py, "-c", "import numpy, scipy.sparse.linalg"],
            "cosim solve ten.cir": [py, "-c", "import sys; from cosim.cli import main; sys.exit(main())",
                                    "solve", str(deck)],
        }
        if shutil.which("ngspice"):
            cases["ngspice -b ten.cir"] = ["ngspice", "-b", str(deck)]
        for name, cmd in cases.items():
            times = [wall(cmd, env) for _ in range(args.repeat)]
            print(f"{name:<36} median {statistics.median(times):.3f} s  (min {min(times):.3f}, "
                  f"{args.repeat} runs)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
