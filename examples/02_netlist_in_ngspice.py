"""02 — One circuit, three solvers: the nodal engine, ngspice, and the netlist read back.

A 16×16 array (1 Ω wire segments, 10 Ω drivers, 5 Ω sense inputs) is written as an ngspice deck
(the file runs as is with ``ngspice -b``), solved by the spice engine (ngspice's DC operating
point on that same deck text), and read back from the file by cosim's netlist reader and solved
by the nodal engine. The sense currents — the column sources ``vs0 … vs15`` — must agree to
rounding: the deck carries every value in shortest round-trip text.

If ngspice is not installed the spice part is skipped with the reason printed; the netlist is
still written, read back and checked.

Run:  python examples/02_netlist_in_ngspice.py [OUT_DIR]
      (deck written to OUT_DIR, else $COSIM_EXAMPLES_OUT, else a new temporary folder)
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from cosim.circuit import (
    CrossbarSpec,
    SolverOptions,
    build_circuit,
    get_engine,
    operating_point,
    read_netlist,
    save_text,
    write_netlist,
)
from cosim.errors import EngineError

N = M = 16


def out_dir() -> Path:
    given = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("COSIM_EXAMPLES_OUT")
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="cosim-example-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference relative to the largest current."""
    return float(np.abs(a - b).max() / np.abs(b).max())


rng = np.random.default_rng(2)
spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, size=(N, M)),  # S
                    r_row=1.0, r_col=1.0, r_driver=10.0, r_sense=5.0)  # Ω
v = rng.uniform(0.0, 0.2, size=N)  # row inputs, V

# 1. The nodal engine on the circuit built from the spec (the reference).
circuit = build_circuit(spec)
i_nodal = get_engine("nodal").prepare(circuit, SolverOptions()).solve(v).currents[0]

# 2. The deck: the port sources carry the input voltages.
deck = out_dir() / f"xbar_{N}x{M}.cir"
save_text(write_netlist(circuit, inputs=v, spec=spec, title=f"example 02: {N}x{M} read"), deck)
print(f"netlist: {deck} ({len(deck.read_text().splitlines())} lines)")

# 3. Read the file back (a flat circuit whose voltage sources are its outputs) and solve it.
back = read_netlist(deck)
op = operating_point(back, engine="nodal")
i_back = np.array([op.branches[f"vs{j}"] for j in range(M)])  # A, into each sense amplifier

print(f"sense currents, nodal:           {1e6 * i_nodal.min():8.3f} .. {1e6 * i_nodal.max():8.3f} uA")
print(f"read back + nodal vs nodal:      max rel diff {rel_diff(i_back, i_nodal):.2e}")

# 4. ngspice through the spice engine, if it is installed.
try:
    spice = get_engine("spice").prepare(circuit, SolverOptions(engine="spice"))
except EngineError as exc:
    print(f"spice skipped: {exc}")
else:
    i_spice = spice.solve(v).currents[0]
    print(f"spice vs nodal:                  max rel diff {rel_diff(i_spice, i_nodal):.2e}")
    print(f"spice vs read back + nodal:      max rel diff {rel_diff(i_spice, i_back):.2e}")
