"""Make the synthetic "measured" pulse curves in this folder from known cards (seeded).

    .venv/bin/python models/examples/make_synthetic.py        # rewrites the two CSV files

Each curve is what a pulse measurement of one nominal device would record: a read before any
pulse, then one read after every pulse of a SET sweep and a RESET sweep at the card's
programming pulses, with Gaussian read noise of ``NOISE`` × the device window added to every
read (seed ``SEED``). The devices are simulated with :class:`cosim.devices.DevicePopulation`
(one device, no variation), the same code path a tile uses, so the fitter (which has its own
simulation loop) is checked against an independent driver of the same model.

- ``pulse_nl_synthetic.csv``: ``models/cards/imprecise.toml`` without its variation (true
  g_min 1 µS, g_max 100 µS, a_p 26.907, a_d 8.1362; 100 SET then 60 RESET pulses).
- ``vteam_synthetic.csv``: ``models/cards/vteam_default.toml`` (true r_on 50 Ω, r_off 1 kΩ,
  k_on −10 m/s, k_off 5e-4 m/s; 100 SET then 150 RESET pulses, 99 % of the window each way).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from cosim.devices import DevicePopulation, load_card
from cosim.devices.cards import VariationSpec

HERE = Path(__file__).resolve().parent
CARDS = HERE.parent / "cards"
SEED = 20240611
NOISE = 0.003  # read noise, fraction of the device window (0.3 %)
CURVES = {  # file stem: (card, SET pulses, RESET pulses)
    "pulse_nl_synthetic": ("imprecise", 100, 60),
    "vteam_synthetic": ("vteam_default", 100, 150),
}


def curve_text(card_name: str, n_set: int, n_reset: int, seed: int = SEED) -> str:
    """The CSV text of one synthetic curve."""
    card = dataclasses.replace(load_card(CARDS / f"{card_name}.toml"), variation=VariationSpec())
    pop = DevicePopulation.create(card, (1,), seed=0, backend="numpy")
    g_lo, g_hi = (float(b[0]) for b in pop.window())
    rng = np.random.default_rng(seed)
    rows = [(0, pop.conductance()[0], "none")]
    for k in range(n_set + n_reset):
        d = 1 if k < n_set else -1
        pop.apply_pulses(np.array([d]), rng=None)
        rows.append((k + 1, pop.conductance()[0], "set" if d > 0 else "reset"))
    noise = NOISE * (g_hi - g_lo) * rng.standard_normal(len(rows))
    lines = [f"# synthetic pulse curve: {card_name}.toml, read noise {NOISE:g} x window, seed {seed}",
             "pulse,g_S,direction"]
    lines += [f"{p},{float(g + e)!r},{d}" for (p, g, d), e in zip(rows, noise)]
    return "\n".join(lines) + "\n"


def main() -> int:
    for stem, (card_name, n_set, n_reset) in CURVES.items():
        path = HERE / f"{stem}.csv"
        path.write_text(curve_text(card_name, n_set, n_reset), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
