"""Regenerate the example decks in this folder from the repository's code.

    python netlists/make_examples.py              # rewrite the decks
    python netlists/make_examples.py --reference  # also rerun ngspice -b on tiny_2x3.cir and store
                                                  # its output in tiny_2x3.ngspice.txt

Every deck runs as it is with ``ngspice -b <deck>`` and prints the output currents. The tests
check that this script reproduces the committed decks byte for byte (golden text), that ngspice
prints the currents the nodal engine computes, and that tiny_2x3.ngspice.txt holds what ngspice
printed for tiny_2x3.cir. Conductances are seeded draws of 1–100 µS (siemens), inputs in volts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from cosim.circuit import CrossbarSpec, build_circuit
from cosim.circuit.netlist_write import save_text, write_netlist

HERE = Path(__file__).resolve().parent
REFERENCE = "tiny_2x3.ngspice.txt"


def examples() -> dict[str, tuple[CrossbarSpec, np.ndarray]]:
    """{deck file name: (spec, first input vector in V)}; forward reads."""
    tiny = CrossbarSpec(
        conductances=np.array([[1e-5, 2e-5, 5e-6], [4e-5, 1e-6, 3e-5]]),
        r_row=[2.0, 3.0], r_col=1.5, r_driver=10.0, r_sense=5.0,
    )
    rng = np.random.default_rng(2024)
    out = {"tiny_2x3.cir": (tiny, np.array([0.2, -0.1]))}
    for n, extra in ((8, {"r_driver": 2.0, "r_sense": 0.0}),
                     (32, {"r_driver": 1.0, "r_sense": 1.0, "drive": "both"})):
        g = rng.uniform(1e-6, 1e-4, (n, n))
        out[f"xbar_{n}x{n}.cir"] = (CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0, **extra),
                                   np.round(rng.uniform(0.0, 0.3, n), 4))
    g = rng.uniform(1e-6, 1e-4, (8, 8))
    out["xbar_1t1r_8x8.cir"] = (
        CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0, r_driver=2.0, r_sense=2.0, cell="1T1R",
                     r_access=2e3, selected_rows=[0, 2, 3, 5, 6], unselected="grounded"),
        np.round(rng.uniform(0.0, 0.3, 8), 4),
    )
    return out


def deck_text(name: str) -> str:
    """The text this script writes for deck ``name``."""
    spec, v = examples()[name]
    return write_netlist(build_circuit(spec), inputs=v, spec=spec,
                         title=f"cosim example {name[:-4]}: {spec.n_rows}x{spec.n_cols} {spec.cell} forward read")


def main(argv: list[str]) -> int:
    for name in examples():
        save_text(deck_text(name), HERE / name)
        print(f"wrote {HERE / name}")
    if "--reference" in argv:
        proc = subprocess.run(["ngspice", "-b", "tiny_2x3.cir"], cwd=HERE, capture_output=True,
                              text=True, check=True)
        save_text(proc.stdout, HERE / REFERENCE)
        print(f"wrote {HERE / REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
