"""Device populations: seeded d2d draws and faults, noise statistics, polarity, clipping reports.

Budget: ≈ 8 s.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from cosim.devices import DevicePopulation, IntegratorOptions, get_model, integrate_pulse, load_card
from cosim.devices.cards import VariationSpec
from cosim.devices.paths import models_dir
from cosim.errors import InputError, SpecError

CARD_DIR = models_dir() / "cards"


def _card(stem, **variation):
    card = load_card(CARD_DIR / f"{stem}.toml")
    if variation:
        card = dataclasses.replace(card, variation=VariationSpec(**variation))
    return card


def test_d2d_and_faults_are_drawn_once_from_the_seed():
    card = _card("imprecise")
    a = DevicePopulation.create(card, (40, 50), seed=3, backend="numpy")
    b = DevicePopulation.create(card, (40, 50), seed=3, backend="numpy")
    c = DevicePopulation.create(card, (40, 50), seed=4, backend="numpy")
    for name in card.variation.d2d:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        assert not np.array_equal(a.params[name], c.params[name])
    np.testing.assert_array_equal(a.stuck_on, b.stuck_on)
    assert not np.array_equal(a.stuck_on, c.stuck_on)
    # Exact fault counts, disjoint masks.
    n = a.size
    var = card.variation
    assert (a.stuck_on.sum(), a.stuck_off.sum(), a.dead.sum()) == (round(var.stuck_on * n), round(var.stuck_off * n),
                                                                    round(var.dead * n))
    assert not np.any(a.stuck_on & a.stuck_off) and not np.any(a.dead & (a.stuck_on | a.stuck_off))


@pytest.mark.parametrize("distribution", ["lognormal", "normal"])
def test_d2d_multipliers_have_the_card_statistics(distribution):
    card = _card("imprecise", d2d={"a_p": 0.2, "g_max": 0.1}, d2d_distribution=distribution)
    pop = DevicePopulation.create(card, (20000,), seed=1, backend="numpy")
    for name, std in (("a_p", 0.2), ("g_max", 0.1)):
        m = pop.params[name] / card.params[name]
        # 20000 draws: standard errors 0.0014 (mean) and ~0.001 (std); 5σ bands.
        assert abs(m.mean() - 1.0) < 5 * std / np.sqrt(m.size)
        assert abs(m.std() - std) < 0.05 * std
        assert np.all(m > 0)


def test_invalid_d2d_draws_are_redrawn_or_refused(caplog, monkeypatch):
    # A normal spread of 0.6 on a_p would give negative A for ~5 % of devices: those are redrawn.
    card = _card("imprecise", d2d={"a_p": 0.6}, d2d_distribution="normal")
    with caplog.at_level(logging.INFO, logger="cosim.devices.variation"):
        pop = DevicePopulation.create(card, (5000,), seed=0, backend="numpy")
    assert np.all(pop.params["a_p"] > 0) and "redrew" in caplog.text
    # A window so narrow that half of the g_min draws exceed g_max: with only two redraws allowed
    # some of 2000 devices stay invalid and the draw is refused.
    monkeypatch.setattr("cosim.devices.variation.MAX_REDRAWS", 2)
    card = load_card(CARD_DIR / "imprecise.toml")
    card = dataclasses.replace(card, params={**card.params, "g_min": 0.9999e-4},
                               variation=VariationSpec(d2d={"g_min": 0.5}, d2d_distribution="normal"))
    with pytest.raises(SpecError, match=r"variation\.d2d: after 2 redraws .* reduce the spread of g_min"):
        DevicePopulation.create(card, (2000,), seed=0, backend="numpy")


def test_faulty_devices_read_their_fixed_values_and_ignore_pulses(rng):
    card = _card("imprecise")
    pop = DevicePopulation.create(card, (30, 40), seed=2, backend="numpy")
    pop.set_conductance(3e-5)
    before = pop.conductance()
    g_lo, g_hi = pop.window()
    on, off, dead = (m.reshape(pop.shape) for m in (pop.stuck_on, pop.stuck_off, pop.dead))
    np.testing.assert_array_equal(before[on], g_hi[on])
    np.testing.assert_array_equal(before[off], g_lo[off])
    assert np.all(before[dead] == 0.0)
    pop.apply_pulses(np.full(pop.shape, 3), rng=rng)
    after = pop.conductance()
    faulty = on | off | dead
    np.testing.assert_array_equal(after[faulty], before[faulty])
    pop.set_conductance(3e-5)
    pop.apply_pulses(np.full(pop.shape, 3), rng=None)  # nominal: every healthy device moves up
    after = pop.conductance()
    faulty = on | off | dead
    np.testing.assert_array_equal(after[faulty], before[faulty])
    assert np.all(after[~faulty] > before[~faulty])


def test_apply_pulses_equals_sequential_integration_without_noise():
    card = _card("vteam_default")
    pop = DevicePopulation.create(card, (2, 3), seed=0, backend="numpy")
    pop.set_conductance(np.full((2, 3), 5e-3))
    x0 = pop.state.reshape(-1)
    n = np.array([[0, 1, 3], [-1, -4, 2]])
    pop.apply_pulses(n, rng=None)
    model, params = get_model("vteam"), dict(card.params)
    for i, k in enumerate(n.reshape(-1)):
        x = x0[i:i + 1]
        for _ in range(abs(k)):
            x = integrate_pulse(model, x, params, card.programming.pulse(int(np.sign(k))))
        assert pop.state.reshape(-1)[i] == pytest.approx(x[0], rel=1e-12)


def test_state_mode_c2c_scales_each_pulse_effect():
    """c2c = 0.1 in state mode: Δx / Δx_nominal ~ N(1, 0.1) per pulse (5σ statistical bands)."""
    card = _card("vteam_default", c2c=0.1, c2c_mode="state")
    shape = (4000,)
    noisy = DevicePopulation.create(card, shape, seed=0, backend="numpy")
    nominal = DevicePopulation.create(card, shape, seed=0, backend="numpy")
    for pop in (noisy, nominal):
        pop.set_conductance(5e-3)
    x0 = noisy.state
    noisy.apply_pulses(np.ones(shape, int), rng=np.random.default_rng(9))
    nominal.apply_pulses(np.ones(shape, int), rng=None)
    ratio = (noisy.state - x0) / (nominal.state - x0)
    assert abs(ratio.mean() - 1.0) < 5 * 0.1 / np.sqrt(4000)
    assert abs(ratio.std() - 0.1) < 0.01
    # The same generator seed gives the same noisy result (reproducible).
    again = DevicePopulation.create(card, shape, seed=0, backend="numpy")
    again.set_conductance(5e-3)
    again.apply_pulses(np.ones(shape, int), rng=np.random.default_rng(9))
    np.testing.assert_array_equal(again.state, noisy.state)


def test_conductance_mode_c2c_is_neurosim_additive_noise():
    card = _card("pulse_nl_default")  # c2c 3.5 % of the window per pulse
    shape = (5000,)
    pops = [DevicePopulation.create(card, shape, seed=0, backend="numpy") for _ in range(2)]
    for pop in pops:
        pop.set_conductance(2e-8)
    pops[0].apply_pulses(np.ones(shape, int), rng=np.random.default_rng(1))
    pops[1].apply_pulses(np.ones(shape, int), rng=None)
    dg = pops[0].conductance() - pops[1].conductance()
    sigma = 0.035 * (card.params["g_max"] - card.params["g_min"])
    assert abs(dg.mean()) < 5 * sigma / np.sqrt(dg.size)
    assert abs(dg.std() / sigma - 1.0) < 0.05


def test_noise_clipping_at_the_window_is_counted_and_warned_once(caplog):
    card = _card("pulse_nl_default")
    pop = DevicePopulation.create(card, (2000,), seed=0, backend="numpy")
    pop.set_conductance(card.params["g_max"] * 0.999)  # one pulse from the top: noise pushes half past it
    with caplog.at_level(logging.WARNING, logger="cosim.devices.population"):
        pop.apply_pulses(np.ones(2000, int), rng=np.random.default_rng(0))
        pop.apply_pulses(-np.ones(2000, int), rng=np.random.default_rng(1))
        pop.apply_pulses(np.ones(2000, int), rng=np.random.default_rng(2))
    assert pop.stats.noise_clipped > 500
    assert caplog.text.count("c2c noise pushed") == 1
    g = pop.conductance()
    assert np.all((g >= card.params["g_min"]) & (g <= card.params["g_max"]))


def test_set_conductance_places_devices_exactly_and_reports_clipping(caplog):
    card = _card("stanford_pku_default")
    pop = DevicePopulation.create(card, (3, 4), seed=0, backend="numpy")
    target = np.geomspace(1e-5, 1e-3, 12).reshape(3, 4)
    pop.set_conductance(target)
    np.testing.assert_allclose(pop.conductance(), target, rtol=1e-10)
    # The same state read at another voltage shows the I–V nonlinearity (chord conductance grows).
    assert np.all(pop.conductance(v_read=0.3) > pop.conductance())
    with caplog.at_level(logging.WARNING, logger="cosim.devices.population"):
        pop.set_conductance(np.full((3, 4), 1.0))  # 1 S: far above the window
    assert pop.stats.target_clipped == 12 and "outside the device window" in caplog.text
    np.testing.assert_allclose(pop.conductance(), pop.window()[1], rtol=1e-12)


def test_voltage_after_ir_drop_weakens_pulses_and_polarity_is_checked(rng):
    card = _card("imprecise", )  # alpha_v = 1: the effect grows with the overdrive
    card = dataclasses.replace(card, variation=VariationSpec())
    pop = DevicePopulation.create(card, (1, 4), seed=0, backend="numpy")
    pop.set_conductance(2e-5)
    g0 = pop.conductance()
    pop.apply_pulses(np.ones((1, 4), int), voltage=np.array([[1.6, 1.44, 1.0, 0.8]]), rng=None)
    dg = (pop.conductance() - g0)[0]
    # Overdrive (v - 0.8)/(1.6 - 0.8) = 1, 0.8, 0.25, 0 (at the threshold: no change).
    np.testing.assert_allclose(dg[1:3] / dg[0], [0.8, 0.25], rtol=0.02)
    assert dg[3] == 0.0
    with pytest.raises(InputError, match=r"voltage\[\(0, 2\)\] = -1.0 V has the wrong polarity for a SET"):
        pop.apply_pulses(np.ones((1, 4), int), voltage=np.array([[1.6, 1.6, -1.0, 1.6]]), rng=rng)
    with pytest.raises(InputError, match="whole"):
        pop.apply_pulses(np.full((1, 4), 0.5), rng=rng)
    with pytest.raises(InputError, match="population shape"):
        pop.apply_pulses(np.ones((4,), int), rng=rng)


def test_half_selected_devices_under_v_over_2_are_not_disturbed_but_v_over_3_overdrive_is_model_driven():
    card = dataclasses.replace(_card("imprecise"), variation=VariationSpec())
    pop = DevicePopulation.create(card, (3,), seed=0, backend="numpy")
    pop.set_conductance(2e-5)
    g0 = pop.conductance()
    pop.apply_voltage_pulses(np.array([5, 5, 5]), np.array([0.8, -0.8, 0.9]), rng=None)
    g = pop.conductance()
    assert g[0] == g0[0] and g[1] == g0[1] and g[2] > g0[2]


def test_compiled_backend_population_matches_numpy():
    pytest.importorskip("verilogae")
    card = dataclasses.replace(_card("vteam_default"), variation=VariationSpec(d2d={"k_on": 0.1, "r_off": 0.1}))
    opts = IntegratorOptions(method="adaptive")
    pops = [DevicePopulation.create(card, (5, 6), seed=1, backend=b, integrator=opts) for b in ("numpy", "compiled")]
    assert pops[1].model.backend == "compiled"
    n = np.random.default_rng(0).integers(-3, 4, (5, 6))
    for pop in pops:
        pop.set_conductance(5e-3)
        pop.apply_pulses(n, rng=np.random.default_rng(5))
    np.testing.assert_allclose(pops[1].conductance(), pops[0].conductance(), rtol=1e-9)
