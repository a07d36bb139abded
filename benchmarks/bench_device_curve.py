"""Pulse curves and curve fits on long inputs: cosim's simulate_curve against a plain loop that
integrates every pulse (what it did before issue 15), in one run, with the largest difference.

simulate_curve skips the rest of a run of pulses once one leaves the state exactly where it was
(a fixed point of the deterministic pulse map) and, for pulse-number models (pulse_nl), moves a
whole run along its curve in one closed form. Rows: the card, pulses per direction, seconds of
the loop and of simulate_curve (median of --repeats), their ratio, and max |ΔG| / window.
Then `cosim device fit` end to end on a 10,000- and a 100,000-row CSV (wall time of the
command, interpreter start and imports included), and the vteam fit of a 10,000-row curve in
process, pulse by pulse (every pulse integrated: before issue 15's last round) against the flow
(a run of equal pulses as one ODE solve, VTEAM.pulse_steps/advance), with the largest relative
difference of the fitted parameters.

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


class PulseByPulse:
    """A model without its whole-run form: simulate_curve then integrates every pulse."""

    def __init__(self, model) -> None:
        self._model = model

    def __getattr__(self, name):
        if name in ("pulse_steps", "advance"):
            raise AttributeError(name)
        return getattr(self._model, name)


def vteam_fit_rows(n: int) -> None:
    """Fit vteam to a 2n+1-row curve from a card off the default (k_on ×3, k_off ×0.3, r_on ×1.2,
    0.2 % read noise, seeded), both ways, from the default card."""
    from cosim.devices.fit import fit_curve

    base = dataclasses.replace(load_card(models_dir() / "cards" / "vteam_default.toml"), variation=VariationSpec())
    p = base.params
    truth = dataclasses.replace(base, params={**p, "k_on": 3 * p["k_on"], "k_off": 0.3 * p["k_off"],
                                              "r_on": 1.2 * p["r_on"]})
    direction = np.r_[0, np.ones(n, int), -np.ones(n, int)]
    curve = MeasuredCurve(pulse=np.arange(2 * n + 1), g=np.zeros(2 * n + 1), direction=direction, source="c.csv")
    g = simulate_curve(truth, curve)[0] * (1 + 0.002 * np.random.default_rng(0).standard_normal(2 * n + 1))
    curve = dataclasses.replace(curve, g=g)
    t_new, new = timed(lambda: fit_curve(curve, "vteam", base), 1)
    flow = MODELS["vteam"]
    MODELS["vteam"] = PulseByPulse(flow)
    try:
        t_old, old = timed(lambda: fit_curve(curve, "vteam", base), 1)
    finally:
        MODELS["vteam"] = flow
    diff = max(abs(new.fitted[k] / old.fitted[k] - 1) for k in new.fitted)
    print(f"{'vteam fit':<12} {2 * n + 1:>8} {t_old:>14.1f} {t_new:>9.1f} {t_old / t_new:>8.1f} {diff:>14.1e} "
          f"{old.nfev:>5}/{new.nfev:<5}")


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
    print()
    print(f"{'':<12} {'rows':>8} {'pulse-by-pulse':>14} {'flow s':>9} {'ratio':>8} {'max dparam':>14} {'nfev':>11}")
    vteam_fit_rows(5000)


if __name__ == "__main__":
    main()
