"""Pulse curves and curve fits on long inputs: cosim's simulate_curve against a plain loop that
integrates every pulse (what it did before issue 15), in one run, with the largest difference.

simulate_curve skips the rest of a run of pulses once one leaves the state exactly where it was
(a fixed point of the deterministic pulse map) and, for pulse-number models (pulse_nl), moves a
whole run along its curve in one closed form. Rows: the card, pulses per direction, seconds of
the loop and of simulate_curve (median of --repeats), their ratio, and max |ΔG| / window.
Then `cosim device fit` end to end on a 10,000- and a 100,000-row CSV (wall time of the
command, interpreter start and imports included).

Run: python benchmarks/bench_device_curve.py [--repeats 3]. The machine may be shared: read the
ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cosim.devices import MODELS, load_card
from cosim.devices.cards import VariationSpec
from cosim.devices.fit import _NUMERICS, MeasuredCurve, simulate_curve
from cosim.devices.integrate import integrate_pulse
from cosim.devices.paths import models_dir


def loop_curve(card, curve) -> np.ndarray:
    """The reference: every pulse integrated, one read per row."""
    model = MODELS[card.model]
    p = dict(card.params)
    first = int(next((d for d in curve.direction if d), 1))
    x = np.atleast_1d(np.asarray(model.bound_toward(-first, p), float)).copy()
    pulses = {d: card.programming.pulse(d) for d in (1, -1)}
    out = np.empty(curve.g.size)
    for r, (n, d) in enumerate(zip(curve.steps, curve.direction)):
        for _ in range(int(n) if d else 0):
            x = integrate_pulse(model, x, p, pulses[int(d)], _NUMERICS)
        out[r] = model.conductance(x, card.programming.v_read, p)[0]
    return out


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cards = models_dir() / "cards"
    print(f"{'card':<22} {'pulses/dir':>10} {'loop s':>9} {'cosim s':>9} {'ratio':>8} {'max |dG|/window':>16}")
    for stem, n in (("vteam_default", 2000), ("vteam_default", 20000), ("pulse_nl_default", 5000),
                    ("stanford_pku_default", 1000)):
        card = dataclasses.replace(load_card(cards / f"{stem}.toml"), variation=VariationSpec())
        direction = np.r_[0, np.ones(n, int), -np.ones(n, int)]
        curve = MeasuredCurve(pulse=np.arange(2 * n + 1), g=np.zeros(2 * n + 1), direction=direction)
        t_ref, g_ref = timed(lambda c=card, s=curve: loop_curve(c, s), 1)
        t_new, g_new = timed(lambda c=card, s=curve: simulate_curve(c, s)[0], args.repeats)
        lo, hi = MODELS[card.model].g_window(card.programming.v_read, dict(card.params))
        err = float(np.max(np.abs(g_new - g_ref)) / (hi - lo))
        print(f"{stem:<22} {n:>10} {t_ref:>9.3f} {t_new:>9.3f} {t_ref / t_new:>8.1f} {err:>16.2e}")
    print()
    print(f"{'cosim device fit (end to end)':<34} {'rows':>8} {'seconds':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (5000, 50000):
            csv = Path(tmp) / f"c{n}.csv"
            subprocess.run([sys.executable, "-m", "cosim.cli", "device", "curve", "--card",
                            str(cards / "pulse_nl_default.toml"), "--pulses", str(n), "--output", str(csv)],
                           check=True, capture_output=True)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cosim.cli", "device", "fit", str(csv), "--model", "pulse_nl"],
                           check=True, capture_output=True)
            print(f"{'pulse_nl':<34} {2 * n + 1:>8} {time.perf_counter() - t0:>9.1f}")


if __name__ == "__main__":
    main()
