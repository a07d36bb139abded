"""05 — Programming through the circuit: V/2 vs V/3 half-select disturb.

An 8×8 array of ``imprecise``-card devices (switching thresholds 0.8 V), all placed at 50 µS, on
2.5 Ω wire segments. Four cells on the anti-diagonal, from (7, 0) next to both the row drivers
(left) and the sense amplifiers (bottom) to (0, 7) farthest from both, each get 3 SET pulses of
2.0 V, one cell per pulse, under the two classic bias schemes:

- V/2: unselected rows and columns at 1.0 V. Half-selected cells (sharing the target's row or
  column) see 1.0 V, above the 0.8 V threshold, so they are disturbed; the rest see ~0 V.
- V/3: unselected rows at 0.67 V, unselected columns at 1.33 V. Half-selected cells see 0.67 V
  and the others -0.67 V, both below threshold: nothing but the targets moves.

Every pulse is one nodal solve of the whole array (wires included) giving the voltage each
device really sees, which is then applied to every device through its compact model. Noise is
off (rng=None) so only the bias scheme differs between the two runs.

Run:  python examples/05_programming_disturb.py
"""

import numpy as np

from cosim.array import ArraySpec
from cosim.array.program import compare_schemes
from cosim.devices import DevicePopulation, load_card
from cosim.devices.paths import models_dir

SHAPE = (8, 8)
V_WRITE = 2.0  # V

card = load_card(models_dir() / "cards" / "imprecise.toml")
pop = DevicePopulation.create(card, SHAPE, seed=6)
pop.set_conductance(np.full(SHAPE, 50e-6))  # S; stuck and dead devices keep their own values
targets = np.zeros(SHAPE, dtype=bool)
targets[[7, 5, 2, 0], [0, 2, 5, 7]] = True
array = ArraySpec(rows=SHAPE[0], cols=SHAPE[1], r_row=2.5, r_col=2.5)

reports = compare_schemes(array, pop, targets, schemes=("v/2", "v/3"), n_pulses=3,
                          amplitude=V_WRITE, rng=None)
for rep in reports.values():
    print(rep.summary())
print()
print(f"{'scheme':<7}{'target mean dG (uS)':>21}{'half-sel. |V| max':>19}{'disturbed cells':>17}"
      f"{'max disturb (% window)':>24}")
for name, rep in reports.items():
    d = rep.disturb()
    moved = d["half_selected"]["moved"] + d["unselected"]["moved"]
    worst = max(d["half_selected"]["max_rel"], d["unselected"]["max_rel"])
    print(f"{name:<7}{1e6 * rep.delta_g[targets].mean():>21.3f}{d['half_selected']['v_max']:>17.3f} V"
          f"{moved:>17d}{100 * worst:>23.3f}%")
