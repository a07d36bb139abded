"""The shipped Stanford-PKU card against an independent integration of the published equations.

Truth: ``scipy.integrate.solve_ivp`` (LSODA, rtol 1e-10) of the gap ODE as written in the
research notes (compact_models.md §2.5), with none of cosim's code: back-to-back rectangular
pulses at 0 V in between are one interval of N·width at the pulse voltage (the rate is 0 at
0 V). Tolerance 1e-6 relative on the read conductance (cosim's pulse integrator runs at rtol
1e-9; the two agreed to about 1e-8). Also: the RESET of the card stops at the field threshold
the card's comment states, and a branch that does not move is reported, not refused.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cosim.devices import load_card
from cosim.devices.cards import VariationSpec
from cosim.devices.fit import MeasuredCurve, simulate_curve
from cosim.devices.paths import models_dir

KB = 8.617333262e-5  # Boltzmann constant, eV/K
CARD = models_dir() / "cards" / "stanford_pku_default.toml"


def _rate(p, g, v):
    g = min(max(g, p["g_min"]), p["g_max"])
    i = p["i0"] * np.exp(-g / p["g0"]) * np.sinh(v / p["v0"])
    temp = p["t0"] + abs(v * i) * p["rth"]
    gamma = p["gamma0"] - p["beta"] * (g / 1e-9) ** 3
    if gamma * abs(v) / p["tox"] < p["f_min"]:
        gamma = 0.0
    r = -p["vel0"] * np.exp(-p["ea"] / (KB * temp)) * np.sinh(gamma * p["a0"] / p["tox"] * v / (KB * temp))
    return 0.0 if (g <= p["g_min"] and r < 0) or (g >= p["g_max"] and r > 0) else r


def reference(p, g_start, v, n, width):
    sol = solve_ivp(lambda t, y: [_rate(p, y[0], v)], (0.0, n * width), [g_start], method="LSODA",
                    rtol=1e-10, atol=1e-22, max_step=width)
    g = min(max(sol.y[0, -1], p["g_min"]), p["g_max"])
    return p["i0"] * np.exp(-g / p["g0"]) * np.sinh(0.1 / p["v0"]) / 0.1  # read at 0.1 V


@pytest.fixture(scope="module")
def card():
    c = load_card(CARD)
    return dataclasses.replace(c, variation=VariationSpec())


@pytest.mark.parametrize(("direction", "n"), [(1, 50), (-1, 100)])
def test_pulse_trains_match_an_independent_integration(card, direction, n):
    p = {k: float(v) for k, v in card.params.items()}
    curve = MeasuredCurve(pulse=np.array([0, n]), g=np.zeros(2), direction=np.array([0, direction]))
    got = simulate_curve(card, curve)[0, -1]
    prog = card.programming
    v = prog.amplitude_set if direction > 0 else prog.amplitude_reset
    start = p["g_max"] if direction > 0 else p["g_min"]
    np.testing.assert_allclose(got, reference(p, start, v, n, prog.width), rtol=1e-6)


def test_reset_stops_at_the_stated_field_threshold(card):
    p = {k: float(v) for k, v in card.params.items()}
    v = abs(card.programming.amplitude_reset)
    g_stop = ((p["gamma0"] - p["f_min"] * p["tox"] / v) / p["beta"]) ** (1 / 3) * 1e-9
    g_read = p["i0"] * np.exp(-g_stop / p["g0"]) * np.sinh(0.1 / p["v0"]) / 0.1
    assert abs(g_stop - 1.357e-9) < 1e-12 and abs(g_read - 18.0e-6) < 0.05e-6  # the card's comment
    curve = MeasuredCurve(pulse=np.array([0, 3000]), g=np.zeros(2), direction=np.array([0, -1]))
    end = simulate_curve(card, curve)[0, -1]
    # approaches the threshold and stops there (an integration step may cross it by ~1e-7)
    assert (1 - 1e-6) * g_read < end < 1.01 * g_read


def test_curve_with_a_branch_that_does_not_move_is_a_result(capsys):
    from cosim.cli import main

    assert main(["device", "curve", "--card", str(CARD), "--pulses", "50"]) == 0
    out = capsys.readouterr().out
    assert "SET   50 pulses: 4.575e-06 -> 8.341e-06 S" in out
    assert "RESET 50 pulses: does not move from 8.341e-06 S" in out and "levels 0" in out
    assert "asymmetry undefined (the RESET branch does not move)" in out and "nan" not in out


def test_curve_below_both_thresholds_reports_both(capsys):
    from cosim.cli import main

    vteam = models_dir() / "cards" / "vteam_default.toml"
    assert main(["device", "curve", "--card", str(vteam), "--pulses", "5", "--amplitude", "0.1"]) == 0
    out = capsys.readouterr().out
    assert out.count("levels 0") == 2 and "the SET and RESET branches do not move" in out
