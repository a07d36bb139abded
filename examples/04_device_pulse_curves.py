"""04 — Device pulse-response curves of every shipped card, and one noisy population.

For each card in ``models/cards`` the nominal device (no variation) is driven from its low to its
high bound with the card's SET pulses, and back with its RESET pulses (:class:`PulseTable`).
Printed per card: the conductance window, the levels (pulses whose step is at least 1e-3 of the
window), NeuroSim's nonlinearity label of each curve (> 0 saturating, < 0 accelerating) and the
SET/RESET asymmetry (0 symmetric, 2 at most).

Then 256 devices of the ``imprecise`` card (d2d spread of every parameter, c2c noise, stuck and
dead cells) take 20 SET pulses through their compact model. Two populations drawn from the same
seed hold the same devices; one is pulsed without noise and one with, which separates the
device-to-device spread (noise-free population) from the cycle-to-cycle noise (their difference).

Run:  python examples/04_device_pulse_curves.py [OUT_DIR]
      (figure written to OUT_DIR, else $COSIM_EXAMPLES_OUT, else a new temporary folder)
"""

import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from cosim.devices import DevicePopulation, PulseTable, load_card
from cosim.devices.paths import models_dir

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
N_PULSES = 20
SHAPE = (16, 16)


def out_dir() -> Path:
    given = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("COSIM_EXAMPLES_OUT")
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="cosim-example-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


tables = {}
print(f"{'card':<22}{'model':<14}{'window (S)':<22}{'levels set/reset':>17}{'NL set/reset':>15}{'asymmetry':>11}")
for path in sorted((models_dir() / "cards").glob("*.toml")):
    card = load_card(path)
    t = PulseTable.from_card(card)
    tables[path.stem] = t
    print(f"{path.stem:<22}{card.model:<14}{f'{t.g_min:.3g} .. {t.g_max:.3g}':<22}"
          f"{f'{t.levels[0]} / {t.levels[1]}':>17}{f'{t.nonlinearity[0]:.2f} / {t.nonlinearity[1]:.2f}':>15}"
          f"{t.asymmetry:>11.3f}")

card = load_card(models_dir() / "cards" / "imprecise.toml")
table = tables["imprecise"]
nominal = float(table.apply(np.array(table.g_min), np.array(N_PULSES), rng=None))
clean = DevicePopulation.create(card, SHAPE, seed=4)
noisy = DevicePopulation.create(card, SHAPE, seed=4)  # same seed: the same devices
clean.apply_pulses(np.full(SHAPE, N_PULSES), rng=None)
noisy.apply_pulses(np.full(SHAPE, N_PULSES), rng=np.random.default_rng(5))
ok = clean.healthy.reshape(SHAPE)
g_clean, g_noisy = clean.conductance()[ok], noisy.conductance()[ok]
print(f"\nimprecise, {SHAPE[0]}x{SHAPE[1]} devices ({int((~ok).sum())} stuck or dead), "
      f"{N_PULSES} SET pulses from each device's low bound:")
print(f"  nominal device (pulse table):  {1e6 * nominal:7.2f} uS")
print(f"  d2d only (no noise):   mean    {1e6 * g_clean.mean():7.2f} uS, std {1e6 * g_clean.std():6.2f} uS")
print(f"  c2c on top:            mean    {1e6 * g_noisy.mean():7.2f} uS, std {1e6 * g_noisy.std():6.2f} uS")
print(f"  c2c alone (noisy - clean):     std {1e6 * (g_noisy - g_clean).std():6.2f} uS; "
      f"{noisy.stats.noise_clipped} noisy steps clipped at a window edge")

import matplotlib  # noqa: E402  (only needed for the figure)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, (ax_set, ax_reset, hx) = plt.subplots(1, 3, figsize=(12, 3.6))
for name, t in tables.items():
    span, s = t.g_max - t.g_min, t.samples_per_pulse
    ax_set.plot(np.arange(t.g_set.size) / s, (t.g_set - t.g_min) / span, label=name)
    ax_reset.plot(np.arange(t.g_reset.size) / s, (t.g_reset - t.g_min) / span, label=name)
for a, kind in ((ax_set, "SET"), (ax_reset, "RESET")):
    a.set(xlabel=f"{kind} pulses", ylabel="(G - G_min) / window", title=f"Nominal {kind} response per card")
    a.legend(fontsize=7)
hx.hist(1e6 * g_clean, bins=30, alpha=0.6, label="d2d only")
hx.hist(1e6 * g_noisy, bins=30, alpha=0.6, label="d2d + c2c")
hx.axvline(1e6 * nominal, color="k", lw=1, label="nominal")
hx.set(xlabel="G after 20 SET pulses (uS)", ylabel="devices", title="imprecise card, 256 devices")
hx.legend(fontsize=7)
fig.tight_layout()
path = out_dir() / "04_pulse_curves.png"
fig.savefig(path, dpi=100)
print(f"figure: {path}")
