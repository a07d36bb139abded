"""03 — Sneak paths: reading one high-resistance cell of a small passive array.

An 8×8 0T1R array holds a random pattern of ON (100 µS) and OFF (1 µS) devices; cell (2, 5) is
OFF, the hard case for a read. The cell is read at 0.2 V with the other lines floating (the
classic sneak-path read) and then grounded. The report counts and ranks the sneak paths (networkx)
and takes every current from the exact nodal solve, wires (2 Ω per segment) included.

Closed form to keep in mind: with grounded unselected lines and no wire resistance, every other
cell of column j has 0 V across it, so the sneak current is exactly zero; the small sneak share
printed for "grounded" comes from the wires alone (column j's wire lifts its nodes a little above
0 V, so a little current even leaks out into the grounded rows).

Run:  python examples/03_sneak_paths.py
"""

import numpy as np

from cosim.circuit import CrossbarSpec
from cosim.circuit.sneak import sneak_report

N = M = 8
G_ON, G_OFF = 100e-6, 1e-6  # S
CELL = (2, 5)

rng = np.random.default_rng(3)
g = np.where(rng.random((N, M)) < 0.5, G_ON, G_OFF)
g[CELL] = G_OFF
spec = CrossbarSpec(conductances=g, r_row=2.0, r_col=2.0)  # Ω per segment

floating = sneak_report(spec, *CELL, v_read=0.2, max_cells=5, top=3, unselected="floating")
print(floating.format())
print()

grounded = sneak_report(spec, *CELL, v_read=0.2, max_cells=5, top=3, unselected="grounded")
print(f"{'unselected':<11}{'I_cell (uA)':>12}{'I_sneak (uA)':>14}{'sneak share':>13}{'margin':>9}")
for rep in (floating, grounded):
    print(f"{rep.unselected:<11}{1e6 * rep.i_cell:>12.4f}{1e6 * rep.i_sneak:>14.4f}"
          f"{100 * rep.sneak_share:>12.2f}%{100 * rep.margin:>8.2f}%")
print(f"ideal margin (g_on - g_off) / g_on: {100 * floating.margin_ideal:.2f}%")
