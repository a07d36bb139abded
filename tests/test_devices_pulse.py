"""Pulse integration against independent scipy.integrate.solve_ivp references.

Acceptance (issue): each model's pulse response — G after each of 100 SET then 100 RESET pulses —
within 0.1 % of solve_ivp at tight tolerance. The reference integrates each device on its own with
DOP853 (or Radau at stiff edges), rtol 1e-11, splitting the pulse at its corners and stopping at
hard bounds with terminal events; cosim integrates all devices at once (per-device steps).
Our integrator runs at rtol 1e-7, so the observed error is far below the 0.1 % criterion.

Budget: ≈ 25 s.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from cosim.devices import IntegratorOptions, Pulse, PulseStats, get_model, integrate_pulse, load_card
from cosim.devices.cards import VariationSpec
from cosim.devices.paths import models_dir
from cosim.devices.variation import draw_params

CARD_DIR = models_dir() / "cards"


def reference_pulse(model, x0: float, params: dict, pulse: Pulse, method: str = "DOP853") -> float:
    """One device, one pulse, solve_ivp piece by piece; hard bounds as terminal events."""
    lo, hi = (float(b) for b in model.state_bounds(params))
    amp = float(pulse.amplitude)
    x = x0
    for duration, f0, f1 in pulse.segments():
        def rhs(t, y, duration=duration, f0=f0, f1=f1):
            return model.state_rate(y, amp * (f0 + (f1 - f0) * t / duration), params)

        events = []
        if model.hard_bounds:  # a bound the device starts on cannot stop it again
            for bound in (b for b in (lo, hi) if b != x):
                def hit(t, y, b=bound):
                    return y[0] - b

                hit.terminal = True
                events.append(hit)
        sol = solve_ivp(rhs, (0.0, duration), [x], method=method, rtol=1e-11, atol=1e-15 * (hi - lo),
                        events=events or None)
        assert sol.status >= 0, sol.message
        x = float(sol.y[0, -1])
        if sol.status == 1:  # reached a hard bound: the model holds it for the rest of the pulse
            x = lo if abs(x - lo) < abs(x - hi) else hi
    return x


THRESHOLDS = {"v_on", "v_off", "f_min", "v_th_p", "v_th_d", "v_p", "v_d", "w_on"}


def _devices(card, n_extra: int, seed: int):
    """Nominal device plus n_extra devices with 5 % lognormal spread on every continuous parameter
    except the thresholds (a spread threshold can leave a device sub-threshold at the card's
    pulse, which would make the comparison trivially pass for that device)."""
    model = get_model(card.model)
    spread = VariationSpec(d2d={s.name: 0.05 for s in model.specs if not s.integer and s.name not in THRESHOLDS})
    drawn = draw_params(model, card.params, spread, n_extra, np.random.default_rng(seed))
    return {k: np.concatenate([[card.params[k]], np.broadcast_to(v, (n_extra,))]) for k, v in drawn.items()}


CASES = {  # card, pulse-shape override, devices besides the nominal one
    # VTEAM with 2 ns ramps on both edges, so the rise/fall pieces are exercised too.
    "vteam": ("vteam_default.toml", dict(rise=2e-9, fall=2e-9), 1),
    "stanford_pku": ("stanford_pku_default.toml", {}, 2),
    "pulse_nl": ("imprecise.toml", {}, 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_pulse_response_matches_solve_ivp_within_0p1_percent(name):
    stem, shape, n_extra = CASES[name]
    card = load_card(CARD_DIR / stem)
    card = dataclasses.replace(card, programming=dataclasses.replace(card.programming, **shape))
    model = get_model(card.model)
    params = _devices(card, n_extra, seed=7)
    n = params[model.specs[0].name].size
    v = card.programming.v_read
    options = IntegratorOptions(method="adaptive")  # pulse_nl too: its time-domain ODE, not the closed form
    x = np.asarray(model.bound_toward(-1, params), dtype=float) * np.ones(n)
    ref = x.copy()
    g_ours, g_ref = [], []
    for direction in [+1] * 100 + [-1] * 100:
        base = card.programming.pulse(direction)
        x = integrate_pulse(model, x, params, base, options)
        for i in range(n):
            p_i = {k: float(val[i]) for k, val in params.items()}
            ref[i] = reference_pulse(model, ref[i], p_i, base)
        g_ours.append(model.conductance(x, v, params))
        g_ref.append(model.conductance(ref, v, params))
    g_ours, g_ref = np.array(g_ours), np.array(g_ref)
    g_lo, g_hi = model.g_window(v, params)
    assert np.all(g_ref[99] - g_ref[0] > 0.5 * (g_hi - g_lo))  # the SET train really crosses the window
    assert np.all(g_ref[99] - g_ref[199] > 0.5 * (g_hi - g_lo))  # and the RESET train comes back
    np.testing.assert_allclose(g_ours, g_ref, rtol=1e-3)


def test_stiff_edges_match_radau_and_stay_bounded():
    """VTEAM ON switching at -0.6 V (τ ≈ 20 ps inside a 10 ns pulse) and Stanford's thermal runaway
    at +1.6 V: the adaptive per-device steps must follow an implicit reference (rtol 1e-6 in G)."""
    for stem, amps, width in (("vteam_default.toml", [-0.6, -0.3, 0.8], 1e-8),
                              ("stanford_pku_default.toml", [1.6, 1.5, -1.8], 1e-8)):
        card = load_card(CARD_DIR / stem)
        model, params = get_model(card.model), dict(card.params)
        lo, hi = model.state_bounds(params)
        x0 = np.array([0.5 * (lo + hi)] * 3)
        stats = PulseStats()
        ours = integrate_pulse(model, x0, params, Pulse(amplitude=np.array(amps), width=width), stats=stats)
        ref = [reference_pulse(model, x0[i], params, Pulse(amplitude=a, width=width), method="Radau")
               for i, a in enumerate(amps)]
        assert np.all((ours >= lo) & (ours <= hi))
        v = card.programming.v_read
        np.testing.assert_allclose(model.conductance(ours, v, params), model.conductance(np.array(ref), v, params),
                                   rtol=1e-6)
        assert stats.clipped == 0


def test_joglekar_window_matches_solve_ivp():
    card = load_card(CARD_DIR / "vteam_default.toml")
    model = get_model("vteam")
    params = {**card.params, "window": 1.0, "p_win": 2.0, "iv": 0.0}
    x = np.array([0.2e-9, 1.5e-9, 2.9e-9])
    ref = x.copy()
    for amp in [-0.22] * 20 + [0.2] * 20:
        pulse = Pulse(amplitude=amp, width=1e-8)
        x = integrate_pulse(model, x, params, pulse)
        ref = np.array([reference_pulse(model, r, params, pulse) for r in ref])
    np.testing.assert_allclose(x, ref, rtol=1e-6)
    assert np.all((x > 0) & (x < 3e-9))


def test_rk4_agrees_with_adaptive():
    card = load_card(CARD_DIR / "vteam_default.toml")
    model, params = get_model("vteam"), dict(card.params)
    x0 = np.linspace(0.0, 3e-9, 7)
    for direction in (+1, -1):
        pulse = card.programming.pulse(direction)
        a = integrate_pulse(model, x0, params, pulse, IntegratorOptions(method="adaptive"))
        b = integrate_pulse(model, x0, params, pulse, IntegratorOptions(method="rk4", substeps=50))
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-20)


def test_pulse_nl_closed_form_equals_time_domain_integration():
    """One nominal pulse = one pulse step; ramps and sub-nominal amplitudes per the closed form."""
    card = load_card(CARD_DIR / "imprecise.toml")
    model, params = get_model("pulse_nl"), dict(card.params)
    x0 = np.array([0.0, 0.3, 0.7, 1.0, 0.5, 0.5, 0.5, 0.0])
    amps = np.array([1.6, 1.6, -1.6, -1.6, 1.2, -1.0, 0.5, -1.6])  # incl. one below threshold
    for rise, fall in ((0.0, 0.0), (30e-9, 15e-9)):
        pulse = Pulse(amplitude=amps, width=100e-9, rise=rise, fall=fall)
        exact = integrate_pulse(model, x0, params, pulse, IntegratorOptions(method="exact"))
        timed = integrate_pulse(model, x0, params, pulse, IntegratorOptions(method="adaptive", rtol=1e-10))
        np.testing.assert_allclose(timed, exact, rtol=1e-8, atol=1e-12)
        assert exact[6] == x0[6] and exact[3] == 0.0 or exact[3] < 1.0
    # A nominal rectangular pulse moves P by exactly one: x after k pulses is NeuroSim's G(k).
    x, p = np.array([0.0]), params
    for _ in range(10):
        x = integrate_pulse(model, x, p, card.programming.pulse(+1), IntegratorOptions(method="adaptive", rtol=1e-10))
    c = 1 - np.exp(-p["p_max_p"] / p["a_p"])
    assert x[0] == pytest.approx((1 - np.exp(-10 / p["a_p"])) / c, rel=1e-9)


def test_exact_method_refused_for_models_without_closed_form():
    from cosim.errors import SpecError

    card = load_card(CARD_DIR / "vteam_default.toml")
    with pytest.raises(SpecError, match="method 'exact' is not available for model vteam"):
        integrate_pulse(get_model("vteam"), np.array([1e-9]), dict(card.params), card.programming.pulse(+1),
                        IntegratorOptions(method="exact"))


def test_numerical_overshoot_is_counted_and_logged(caplog):
    """A deliberately coarse RK4 on VTEAM's stiff ON edge overshoots the bound: clipped, counted, warned."""
    card = load_card(CARD_DIR / "vteam_default.toml")
    model, params = get_model("vteam"), dict(card.params)
    stats = PulseStats()
    with caplog.at_level(logging.WARNING, logger="cosim.devices.integrate"):
        x = integrate_pulse(model, np.array([1.5e-9]), params, Pulse(amplitude=-0.6, width=1e-8),
                            IntegratorOptions(method="rk4", substeps=2), stats)
    assert stats.clipped == 1 and stats.max_overshoot > 1e-6
    assert 0.0 <= x[0] <= 3e-9
    assert "overshot a bound" in caplog.text
