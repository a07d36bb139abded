"""01 — Ideal vs parasitic read: how wire resistance turns V·G into something else.

A 64×64 passive array of 1–10 µS devices is read with a batch of random 0–0.2 V inputs by the
ideal engine (I = V·G) and by the nodal engine (every wire segment, exact sparse MNA) while the
row/column segment resistance grows from 0 to 5 Ω. Printed: the worst output-current error
relative to the largest ideal current. Then, with every row driven at 0.2 V and 2.5 Ω segments,
the cell-voltage loss map (intended 0.2 V minus what each device really sees) and its worst cell.

Run:  python examples/01_ideal_vs_parasitic.py [OUT_DIR]
      (figure written to OUT_DIR, else $COSIM_EXAMPLES_OUT, else a new temporary folder)
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from cosim.circuit import CrossbarSpec, read

N = M = 64
V_READ = 0.2  # V
R_WIRES = (0.0, 0.5, 1.0, 2.5, 5.0)  # Ω per segment, rows and columns alike


def out_dir() -> Path:
    given = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("COSIM_EXAMPLES_OUT")
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="cosim-example-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


rng = np.random.default_rng(1)
g = rng.uniform(1e-6, 10e-6, size=(N, M))  # S
v = rng.uniform(0.0, V_READ, size=(16, N))  # 16 input vectors, V

print(f"{N}x{M} array, devices 1-10 uS, 16 random inputs of 0-{V_READ} V")
i_ideal = read(CrossbarSpec(conductances=g), v, engine="ideal").currents
for r in R_WIRES:
    spec = CrossbarSpec(conductances=g, r_row=r, r_col=r)
    i_nodal = read(spec, v, engine="nodal").currents
    err = np.abs(i_nodal - i_ideal).max() / np.abs(i_ideal).max()
    print(f"r_wire {r:4.1f} ohm: IR-drop error {100 * err:.3g} % of full scale")

# The loss map: all rows at V_READ, one wire value, device voltages from the cell currents.
r = 2.5
spec = CrossbarSpec(conductances=g, r_row=r, r_col=r)
res = read(spec, np.full(N, V_READ), engine="nodal", want_cells=True)
v_cell = res.cell_currents[0] / g  # V across each device (row node minus column node)
loss = V_READ - v_cell
# Far from both the drivers (left) and the sense amplifiers (bottom) loses most; the exact worst
# cell also depends on how much current its own row carries.
i, j = np.unravel_index(np.argmax(loss), loss.shape)
print(f"cell-voltage loss at r_wire {r} ohm: mean {1e3 * loss.mean():.2f} mV, "
      f"worst cell ({i}, {j}) loses {1e3 * loss[i, j]:.2f} mV of {1e3 * V_READ:.0f} mV "
      f"({100 * loss[i, j] / V_READ:.2f} %)")

import matplotlib  # noqa: E402  (only needed for the figure)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(4.5, 3.8))
im = ax.imshow(1e3 * loss, cmap="viridis")
ax.set(title=f"Cell-voltage loss, {N}x{M}, {r} ohm segments", xlabel="column j (drivers on the left)",
       ylabel="row i (sense amplifiers at the bottom)")
fig.colorbar(im, label="mV")
fig.tight_layout()
path = out_dir() / "01_cell_voltage_loss.png"
fig.savefig(path, dpi=100)
print(f"figure: {path}")
