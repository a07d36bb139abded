"""06 — Read margin against array size: passive (0T1R) vs selector (1S1R) vs 1T1R cells, floating/V/2/V/3.

The figure designers size passive arrays with. For each N×N array (1 Ω wire segments) the far
corner cell (row 0, last column: farthest from the drivers on the left and the sense amplifiers
at the bottom) is read in its two worst cases: selected ON with every other cell OFF (I_on) and
selected OFF with every other cell ON (I_off). The read margin is (I_on − I_off)/I_on; the
unselected lines float, or sit at V/2 or V/3. Devices: 100 µS ON, 1 µS OFF (small-signal).

Five cell kinds, every current from the exact nonlinear (Newton) solve of the whole array:
- 0T1R ohmic devices, read at 1 V;
- 0T1R devices with a sinh I–V (I = g·v_nl·sinh(V/v_nl), v_nl = 0.25 V), read at 1 V;
- 1S1R: the ohmic devices in series with the published TaOx selector card
  (models/cards/cells/selector_taox_luo2017.toml, Luo et al., Nano Res. 2017), read at 2 V;
- 1S1R with the constructed selector card (selector_default.toml: half-bias nonlinearity ~500
  at 1 V, a 0.1 nA/V leakage floor), read at 1 V: a weaker selector, for contrast;
- 1T1R-mos: the ohmic devices in series with a level-1 access transistor (nmos_l1_default.toml,
  0.5 um NMOS, Razavi Table 2.1) whose gate is the word line: 3.3 V in the selected row, 0 V in
  the others, read at 1 V.

Run:  python examples/06_read_margin_vs_size.py [OUT_DIR]
      (figure written to OUT_DIR, else $COSIM_EXAMPLES_OUT, else a new temporary folder;
      $COSIM_EXAMPLE_MAX_N caps the array size, default 512, about two minutes on the shared 2-core machine; 1024 takes longer)
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cosim.array.cells import load_access_card
from cosim.circuit import CrossbarSpec
from cosim.circuit.cells import Ohmic, Sinh
from cosim.circuit.margin import MARGIN_SCHEMES, read_margin

G_ON, G_OFF = 100e-6, 1e-6  # S
MAX_N = int(os.environ.get("COSIM_EXAMPLE_MAX_N", "512"))
SIZES = [n for n in (4, 8, 16, 32, 64, 128, 256, 512, 1024) if n <= MAX_N]
SELECTOR = load_access_card("selector_taox_luo2017")
KINDS = {  # label → (ON law, OFF law, selector or None, read voltage V)
    "0T1R ohmic": (Ohmic(G_ON), Ohmic(G_OFF), None, 1.0),
    "0T1R sinh device": (Sinh.from_small_signal(G_ON, 0.25), Sinh.from_small_signal(G_OFF, 0.25), None, 1.0),
    "1S1R (TaOx selector)": (Ohmic(G_ON), Ohmic(G_OFF), SELECTOR, 2.0),
    "1S1R (constructed)": (Ohmic(G_ON), Ohmic(G_OFF), load_access_card("selector_default"), 1.0),
    "1T1R-mos (0.5 um NMOS)": (Ohmic(G_ON), Ohmic(G_OFF), load_access_card("nmos_l1_default"), 1.0),
}


def out_dir() -> Path:
    given = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("COSIM_EXAMPLES_OUT")
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="cosim-example-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


t0 = time.perf_counter()
margins = {(k, s): [] for k in KINDS for s in MARGIN_SCHEMES}
bound = 0.0
print(f"{'cells':<24}{'unselected':<11}" + "".join(f"{f'{n}x{n}':>10}" for n in SIZES))
for kind, (on, off, card, v_read) in KINDS.items():
    for scheme in MARGIN_SCHEMES:
        for n in SIZES:
            spec = CrossbarSpec(conductances=np.ones((n, n)), r_row=1.0, r_col=1.0)
            access = card.law(np.ones(n, dtype=bool), (n, n)) if card else None
            rep = read_margin(spec, on, off, access=access, v_read=v_read, unselected=scheme)
            margins[kind, scheme].append(rep.margin)
            bound = max(bound, rep.error_bound)
        print(f"{kind:<24}{scheme:<11}" + "".join(f"{100 * m:>9.1f}%" for m in margins[kind, scheme]))
print(f"largest certified relative error bound of these currents: {bound:.1e}")
print(f"largest N with margin >= 10 %, per cell kind and scheme ({time.perf_counter() - t0:.0f} s):")
for (kind, scheme), ms in margins.items():
    ok = [n for n, m in zip(SIZES, ms) if m >= 0.1]
    print(f"  {kind:<24}{scheme:<10}{ok[-1] if ok else 'none (< ' + str(SIZES[0]) + ')'}")

import matplotlib  # noqa: E402  (only needed for the figure)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(6.4, 4.6))
colors = dict(zip(KINDS, ("tab:red", "tab:orange", "tab:blue", "tab:green", "tab:purple")))
styles = dict(zip(MARGIN_SCHEMES, ("-", "--", ":")))
for (kind, scheme), ms in margins.items():
    ax.plot(SIZES, 100 * np.array(ms), styles[scheme], marker="o", ms=3, color=colors[kind],
            label=f"{kind}, {scheme}")
ax.axhline(10, color="grey", lw=0.8)
ax.set_xscale("log", base=2)
ax.set_xticks(SIZES, [str(n) for n in SIZES])
ax.set_ylim(-50, 103)
ax.set(xlabel="array size N (N x N)", ylabel="worst-case read margin (%)",
       title="Read margin vs size: 100/1 uS devices, 1 ohm wires")
ax.legend(fontsize=6, ncol=2, loc="lower left")
fig.tight_layout()
path = out_dir() / "06_read_margin_vs_size.png"
fig.savefig(path, dpi=110)
print(f"figure: {path}")
