"""Pulse-response tables against closed forms and against the compact-model population path.

Budget: ≈ 6 s.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from cosim.devices import DevicePopulation, PulseTable, a_from_nl, load_card, nl_from_a
from cosim.devices.cards import VariationSpec
from cosim.devices.paths import models_dir
from cosim.devices.table import _CACHE
from cosim.errors import SpecError

CARD_DIR = models_dir() / "cards"


def _card(stem):
    return load_card(CARD_DIR / f"{stem}.toml")


def _neurosim_curves(p, sub=1):
    """NeuroSim's G_LTP(P) and G_LTD(P) (TCAD 2018, eq. 1) at P = 0, 1/sub, 2/sub ... pulses."""
    span = p["g_max"] - p["g_min"]
    k = np.arange(int(p["p_max_p"]) * sub + 1) / sub
    b_p = span / (1 - np.exp(-p["p_max_p"] / p["a_p"]))
    ltp = b_p * (1 - np.exp(-k / p["a_p"])) + p["g_min"]
    k = np.arange(int(p["p_max_d"]) * sub + 1) / sub
    b_d = span / (1 - np.exp(-p["p_max_d"] / p["a_d"]))
    ltd = p["g_max"] - b_d * (1 - np.exp((p["p_max_d"] - k - p["p_max_d"]) / p["a_d"]))
    return ltp, ltd


@pytest.mark.parametrize("stem", ["pulse_nl_default", "imprecise", "pulse_nl_taox_hfox"])
def test_pulse_nl_table_is_neurosims_closed_form(stem):
    card = _card(stem)
    table = PulseTable.from_card(card)
    assert table.samples_per_pulse == 4  # quarter-width pulses: P advances by 1/4 each
    ltp, ltd = _neurosim_curves(card.params, 4)
    np.testing.assert_allclose(table.g_set, ltp, rtol=1e-12)
    np.testing.assert_allclose(table.g_reset, ltd, rtol=1e-12, atol=1e-12 * card.params["g_max"])
    assert (table.g_min, table.g_max) == (card.params["g_min"], card.params["g_max"])
    # levels: steps of at least 0.1 % of the window, counted on the closed form at whole pulses.
    ltp, ltd = _neurosim_curves(card.params)
    span = card.params["g_max"] - card.params["g_min"]
    assert table.levels == (int(np.sum(np.diff(ltp) >= 1e-3 * span)), int(np.sum(-np.diff(ltd) >= 1e-3 * span)))
    assert table.n_levels == min(table.levels)
    # The fitted A gives back the card's nonlinearity labels.
    expected = (nl_from_a(card.params["a_p"], card.params["p_max_p"]), nl_from_a(card.params["a_d"], card.params["p_max_d"]))
    np.testing.assert_allclose(table.nonlinearity, expected, rtol=1e-4)


def test_neurosim_nl_labels_of_the_ag_a_si_preset():
    table = PulseTable.from_card(_card("pulse_nl_default"))
    np.testing.assert_allclose(table.nonlinearity, (2.40, 4.88), atol=0.005)
    assert a_from_nl(2.40, 97) == pytest.approx(0.4992 * 97, rel=2e-4)  # NeuroSim's A_norm(2.40)
    assert a_from_nl(4.88, 100) == pytest.approx(0.2003 * 100, rel=2e-4)


def test_linear_device_is_symmetric_and_asymmetric_one_is_not():
    card = _card("imprecise")
    linear = dataclasses.replace(card, params={**card.params, "a_p": 1e6, "a_d": 1e6, "p_max_d": 100.0})
    t_lin = PulseTable.from_card(linear)
    assert t_lin.asymmetry < 1e-3 and max(abs(n) for n in t_lin.nonlinearity) < 1e-3
    assert PulseTable.from_card(card).asymmetry > 0.5


@pytest.mark.parametrize("stem", ["vteam_default", "stanford_pku_default", "imprecise"])
def test_table_updates_equal_the_compact_model_path(stem):
    """From points on the nominal curve, n table pulses = n integrated pulses of a nominal device."""
    card = dataclasses.replace(_card(stem), variation=VariationSpec())
    table = PulseTable.from_card(card)
    sub = table.samples_per_pulse
    starts = np.array([0, 3, 10])
    for direction, curve in ((+1, table.g_set[::sub]), (-1, table.g_reset[::sub])):
        n = np.array([1, 4, 7])
        pop = DevicePopulation.create(card, (3,), seed=0, backend="numpy")
        pop.set_conductance(curve[starts])
        pop.apply_pulses(direction * n, rng=None)
        expected = curve[np.minimum(starts + n, curve.size - 1)]
        np.testing.assert_allclose(pop.conductance(), expected, rtol=1e-6)
        np.testing.assert_allclose(table.apply(curve[starts], direction * n, rng=None), expected, rtol=1e-12)
        np.testing.assert_allclose(table.delta_g(curve[starts], direction * n), expected - curve[starts], rtol=1e-12)


def test_pulses_for_inverts_delta_g(rng):
    table = PulseTable.from_card(_card("vteam_default"))
    g = rng.uniform(table.g_set[5], table.g_set[-30], 200)
    n = rng.uniform(0.2, 20.0, 200) * rng.choice([-1, 1], 200)
    dg = table.delta_g(g, n)
    np.testing.assert_allclose(table.pulses_for(g, dg), n, rtol=1e-9)
    assert np.all(table.pulses_for(g, 0.0) == 0.0)


def test_unreachable_targets_are_counted_and_logged(caplog):
    table = PulseTable.from_curves("t", 1.0, 2.0, np.linspace(1, 2, 11), np.linspace(2, 1, 11), 0.0, "conductance")
    with caplog.at_level(logging.WARNING, logger="cosim.devices.table"):
        n = table.pulses_for(np.array([1.5, 1.5]), np.array([0.9, -0.2]))
    np.testing.assert_allclose(n, [5.0, -2.0])
    assert table.clipped["pulses_for"] == 1 and "beyond the nominal curve" in caplog.text


def test_conductance_mode_noise_grows_with_sqrt_of_pulses():
    card = _card("imprecise")
    table = PulseTable.from_card(card, samples_per_pulse=1)
    g = np.full(20000, table.g_set[20])
    span = table.g_max - table.g_min
    for n in (1, 4):
        noisy = table.apply(g, np.full(g.shape, n), np.random.default_rng(n))
        nominal = table.g_set[20 + n]
        inside = (noisy > table.g_min) & (noisy < table.g_max)
        assert inside.mean() > 0.99
        assert abs(np.std(noisy) / (0.035 * span * np.sqrt(n)) - 1.0) < 0.03
        assert abs(np.mean(noisy) - nominal) < 5 * 0.035 * span * np.sqrt(n) / np.sqrt(g.size)


def test_state_mode_noise_follows_the_traversed_steps():
    card = dataclasses.replace(_card("vteam_default"), variation=VariationSpec(c2c=0.1, c2c_mode="state"))
    table = PulseTable.from_card(card)
    whole = table.g_set[::table.samples_per_pulse]
    g = np.full(20000, whole[10])
    noisy = table.apply(g, np.full(g.shape, 3), np.random.default_rng(0))
    steps = np.diff(whole[10:14])
    assert abs(np.std(noisy) / (0.1 * np.sqrt(np.sum(steps ** 2))) - 1.0) < 0.03


def test_apply_clips_to_the_window_and_says_so(caplog):
    card = _card("imprecise")
    table = PulseTable.from_card(card)
    g = np.full(5000, table.g_max)
    with caplog.at_level(logging.WARNING, logger="cosim.devices.table"):
        out = table.apply(g, np.full(g.shape, -1), np.random.default_rng(0), c2c=0.5)
    assert np.all((out >= table.g_min) & (out <= table.g_max))
    assert table.clipped["apply"] > 0 and "clipped" in caplog.text


def test_tables_are_cached_in_memory_and_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    card = _card("vteam_default")
    first = PulseTable.from_card(card, disk=True)
    assert PulseTable.from_card(card, disk=True) is first
    files = list((tmp_path / "cosim" / "tables").glob(f"{card.hash}-*.npz"))
    assert len(files) == 1
    _CACHE.clear()
    again = PulseTable.from_card(card, disk=True)
    assert again is not first
    np.testing.assert_array_equal(again.g_set, first.g_set)
    assert again.levels == first.levels and again.nonlinearity == first.nonlinearity


def test_fixed_pulse_count_and_refusals():
    card = _card("vteam_default")
    assert PulseTable.from_card(card, n_levels=20).g_set.size == 81  # 4 samples per pulse
    assert PulseTable.from_card(card, n_levels=20, samples_per_pulse=1).g_set.size == 21
    weak = dataclasses.replace(card, programming=dataclasses.replace(card.programming, amplitude_set=-0.19))
    with pytest.raises(SpecError, match=r"programming\.amplitude_set = -0.19 V does not move"):
        PulseTable.from_card(weak)
    with pytest.raises(SpecError, match="n_levels must be ≥ 1"):
        PulseTable.from_card(card, n_levels=0)


def test_sub_sampling_matches_whole_pulses_and_sharpens_abrupt_curves():
    """k quarter-width pulses = k/4 card pulses (one trajectory under constant voltage), and the finer
    grid cuts the interpolation error of Stanford's abrupt SET for off-grid starting points."""
    card = dataclasses.replace(_card("stanford_pku_default"), variation=VariationSpec())
    coarse = PulseTable.from_card(card, samples_per_pulse=1)
    fine = PulseTable.from_card(card, samples_per_pulse=4)
    whole = fine.g_set[::4]
    np.testing.assert_allclose(whole[: coarse.g_set.size], coarse.g_set[: whole.size], rtol=1e-6)
    rng = np.random.default_rng(0)
    g0 = fine.g_min + (fine.g_max - fine.g_min) * rng.uniform(0.1, 0.9, 400)
    n = rng.choice([-1, 1], 400)
    pop = DevicePopulation.create(card, (400,), seed=0, backend="numpy")
    pop.set_conductance(g0)
    pop.apply_pulses(n, rng=None)
    err = [np.max(np.abs(t.apply(g0, n, None) - pop.conductance())) for t in (coarse, fine)]
    assert err[1] < 0.5 * err[0]
