"""Conformance of every registered compact model, hand-checked values, numpy ↔ compiled parity.

Budget: ≈ 10 s (the compiled modules come from the verilogae cache after the first run).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cosim.devices import MODELS, IntegratorOptions, Pulse, get_model, integrate_pulse, load_card
from cosim.devices.paths import models_dir

CARDS = {"vteam": "vteam_default", "stanford_pku": "stanford_pku_default", "pulse_nl": "imprecise"}
CARD_DIR = models_dir() / "cards"


def _card(name):
    return load_card(CARD_DIR / f"{CARDS[name]}.toml")


def _random_params(model, card, n, rng, spread=0.1):
    params = {}
    for spec in model.specs:
        v = card.params[spec.name]
        params[spec.name] = v if spec.integer else v * np.exp(rng.normal(0.0, spread, n))
    if model.name == "vteam":  # exercise every window and resistance law and non-integer p
        params["window"] = rng.integers(0, 2, n).astype(float)
        params["iv"] = rng.integers(0, 2, n).astype(float)
        params["p_win"] = rng.uniform(1.0, 4.0, n)
    ok = np.ones(n, dtype=bool)
    for good, _ in model.constraints(params):
        ok &= np.broadcast_to(good, (n,))
    return {k: (v[ok] if np.ndim(v) else v) for k, v in params.items()}, int(ok.sum())


def test_every_card_model_is_registered_and_every_model_has_a_card():
    assert set(CARDS) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_current_is_zero_at_zero_volts(name, rng):
    model, card = MODELS[name], _card(name)
    params, n = _random_params(model, card, 200, rng)
    lo, hi = model.state_bounds(params)
    x = lo + (np.asarray(hi) - lo) * rng.uniform(0, 1, n)
    assert np.all(model.current(x, 0.0, params) == 0.0)
    # Reads at zero bias leave every state where it is.
    assert np.all(model.state_rate(x, 0.0, params) == 0.0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_conductance_strictly_monotone_in_state(name, rng):
    model, card = MODELS[name], _card(name)
    params, n = _random_params(model, card, 50, rng)
    lo, hi = (np.asarray(b, dtype=float) for b in model.state_bounds(params))
    frac = np.linspace(0.0, 1.0, 101)[:, None]
    x = lo + (hi - lo) * frac  # (101, n): every column one device from lo to hi
    g = model.conductance(x, card.programming.v_read, params)
    dg = np.diff(g, axis=0)
    assert np.all(dg > 0) if model.g_increases_with_state else np.all(dg < 0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_long_pulses_both_ways_stay_in_bounds_and_reach_the_window_edges(name):
    model, card = MODELS[name], _card(name)
    params = dict(card.params)
    lo, hi = model.state_bounds(params)
    x = np.array([lo, hi, 0.5 * (lo + hi)], dtype=float)
    prog = card.programming
    for direction in (+1, -1, +1):
        pulse = Pulse(amplitude=prog.amplitude_set if direction > 0 else prog.amplitude_reset,
                      width=prog.width * 400)
        x = integrate_pulse(model, x, params, pulse)
        assert np.all((x >= lo) & (x <= hi))
        g = model.conductance(x, prog.v_read, params)
        g_lo, g_hi = model.g_window(prog.v_read, params)
        # A long SET ends near g_max, a long RESET near g_min (VTEAM approaches asymptotically,
        # Stanford's RESET slows as the gap widens: both must still cover most of the window).
        target = g_hi if direction > 0 else g_lo
        assert np.all(np.abs(g - target) < 0.1 * (g_hi - g_lo))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_state_for_conductance_inverts_conductance(name, rng):
    model, card = MODELS[name], _card(name)
    params, n = _random_params(model, card, 300, rng)
    lo, hi = model.state_bounds(params)
    x = lo + (np.asarray(hi) - lo) * rng.uniform(0, 1, n)
    for v_read in (card.programming.v_read, 0.05):
        g = model.conductance(x, v_read, params)
        back = model.state_for_conductance(g, v_read, params)
        np.testing.assert_allclose(back, x, rtol=1e-9, atol=1e-12 * float(np.max(hi)))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pulses_are_deterministic_without_noise(name):
    model, card = MODELS[name], _card(name)
    params = dict(card.params)
    x0 = np.full(5, model.bound_toward(-1, params), dtype=float)
    pulse = card.programming.pulse(+1)
    runs = [integrate_pulse(model, integrate_pulse(model, x0, params, pulse), params, pulse) for _ in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert np.all(runs[0] != x0)


def test_vteam_hand_values():
    """Closed forms of the VTEAM paper's equations at the MemTorch defaults (notes §2.3)."""
    model, card = MODELS["vteam"], _card("vteam")
    p = dict(card.params)
    # Biolek window at the ON bound (u = 0) driven OFF: f = 1 - 0^2 = 1, so dw/dt = k_off (v/v_off - 1).
    assert model.state_rate(np.array([0.0]), 0.5, p)[0] == pytest.approx(5e-4 * (0.5 / 0.02 - 1.0), rel=1e-12)
    # Driven ON from the middle: f = 1 - (0.5 - 1)^2 = 0.75; dw/dt = k_on (v/v_on - 1)^3 f.
    assert model.state_rate(np.array([1.5e-9]), -0.5, p)[0] == pytest.approx(-10 * 1.5 ** 3 * 0.75, rel=1e-12)
    # Exponential R(w): R at mid-state is the geometric mean of r_on and r_off.
    assert model.conductance(np.array([1.5e-9]), 0.01, p)[0] == pytest.approx(1 / np.sqrt(50 * 1000), rel=1e-12)
    # Sub-threshold voltages do not move the state.
    assert model.state_rate(np.array([1.5e-9]), 0.019, p)[0] == 0.0
    assert model.state_rate(np.array([1.5e-9]), -0.199, p)[0] == 0.0


def test_stanford_hand_values():
    """Read resistances quoted with the v1.0.0 defaults (notes §2.5) and the field threshold."""
    model, card = MODELS["stanford_pku"], _card("stanford_pku")
    p = dict(card.params)
    g = model.conductance(np.array([0.2e-9, 1.7e-9]), 0.1, p)
    np.testing.assert_allclose(1 / g, [542.0, 218586.0], rtol=2e-3)  # MemTorch r_on / r_off
    # gamma(1.7 nm) = 16 - 0.8·1.7³ = 12.0696: the gap cannot move below F_min·tox/gamma = 1.392 V.
    v_th = 1.4e9 * 12e-9 / (16 - 0.8 * 1.7 ** 3)
    assert model.state_rate(np.array([1.7e-9]), 0.999 * v_th, p)[0] == 0.0
    assert model.state_rate(np.array([1.7e-9]), 1.001 * v_th, p)[0] < 0.0
    # The gap stops at its bounds.
    assert model.state_rate(np.array([0.2e-9]), 2.0, p)[0] == 0.0
    assert model.state_rate(np.array([1.7e-9]), -2.0, p)[0] == 0.0


def test_pulse_nl_reproduces_neurosim_worked_numbers():
    """Ag:a-Si preset: first LTP pulse +0.84 nS, first LTD pulse from G_max −1.74 nS (notes §2.8)."""
    card = load_card(CARD_DIR / "pulse_nl_default.toml")
    model, p = MODELS["pulse_nl"], dict(card.params)
    x = integrate_pulse(model, np.array([0.0, 1.0]), p, Pulse(amplitude=np.array([3.2, -2.8]), width=300e-6))
    dg = model.conductance(x, 0.5, p) - model.conductance(np.array([0.0, 1.0]), 0.5, p)
    np.testing.assert_allclose(dg, [0.84e-9, -1.74e-9], rtol=0.01)
    # NeuroSim's closed form G_LTP(P) after P pulses, integrated through the time domain.
    x = np.array([0.0])
    for _ in range(30):
        x = integrate_pulse(model, x, p, card.programming.pulse(+1))
    b = (p["g_max"] - p["g_min"]) / (1 - np.exp(-p["p_max_p"] / p["a_p"]))
    assert model.conductance(x, 0.5, p)[0] == pytest.approx(b * (1 - np.exp(-30 / p["a_p"])) + p["g_min"], rel=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_verilog_a_declares_the_same_parameters(name):
    verilogae = pytest.importorskip("verilogae")
    if shutil.which("ld") is None:
        pytest.skip("verilogae needs a system linker (ld)")
    model = MODELS[name]
    compiled = get_model(name, "compiled")
    card_params = {p for p in compiled._vae.modelcard}
    assert card_params == {s.name for s in model.specs}
    assert verilogae.__version__


@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_and_numpy_agree_to_1e10(name, rng):
    """Random states (slightly past the bounds too), voltages of both polarities, per-device params."""
    pytest.importorskip("verilogae")
    if shutil.which("ld") is None:
        pytest.skip("verilogae needs a system linker (ld)")
    ref, fast = MODELS[name], get_model(name, "compiled")
    assert fast.backend == "compiled"
    params, n = _random_params(ref, _card(name), 5000, rng)
    lo, hi = ref.state_bounds(params)
    x = lo + (np.asarray(hi) - lo) * rng.uniform(-0.02, 1.02, n)
    amp = {"vteam": 0.6, "stanford_pku": 2.0, "pulse_nl": 3.0}[name]
    v = rng.uniform(-amp, amp, n)
    for fn in ("current", "state_rate"):
        a, b = getattr(ref, fn)(x, v, params), getattr(fast, fn)(x, v, params)
        assert np.count_nonzero(a) > n // 4  # the comparison is not between zeros
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=0.0)
    np.testing.assert_allclose(fast.conductance(x, 0.2, params), ref.conductance(x, 0.2, params), rtol=1e-10)
    # A pulse integrated (adaptive) with either backend lands on the same state.
    card = _card(name)
    x0 = np.full(4, ref.bound_toward(-1, card.params))
    pulse, opts = card.programming.pulse(+1), IntegratorOptions(method="adaptive")
    moved = integrate_pulse(ref, x0, dict(card.params), pulse, opts)
    assert np.all(moved != x0)
    np.testing.assert_allclose(integrate_pulse(fast, x0, dict(card.params), pulse, opts), moved, rtol=1e-9)


def test_compiled_path_falls_back_to_numpy_with_a_logged_reason(tmp_path, monkeypatch, caplog):
    """A broken .va (or no verilogae) makes "compiled" raise EngineError and "auto" use numpy."""
    import importlib.util
    import logging
    import sys

    from cosim.devices import registry
    from cosim.errors import EngineError

    monkeypatch.setattr(registry, "_COMPILED", {})
    monkeypatch.setattr(registry, "_FAILED", {})
    monkeypatch.setenv("COSIM_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(EngineError, match=r"cannot read Verilog-A source .*vteam\.va"):
        get_model("vteam", "compiled")
    if importlib.util.find_spec("verilogae") and shutil.which("ld"):
        (tmp_path / "pulse_nl.va").write_text("module pulse_nl(p, n); this is not verilog-a\n")
        with pytest.raises(EngineError, match=r"verilogae could not compile .*pulse_nl\.va"):
            get_model("pulse_nl", "compiled")
    monkeypatch.delenv("COSIM_MODELS_DIR")  # the real sources again, but no wheel
    monkeypatch.setitem(sys.modules, "verilogae", None)
    monkeypatch.setattr(registry, "_FAILED", {})
    with caplog.at_level(logging.WARNING, logger="cosim.devices.registry"):
        model = get_model("stanford_pku", "auto")
    assert model is MODELS["stanford_pku"] and "verilogae is not installed" in caplog.text


def test_importing_the_device_layer_is_light_and_layered():
    """cosim.devices imports neither cosim.circuit (DESIGN §1) nor verilogae/scipy until needed."""
    import subprocess
    import sys

    code = ("import sys, cosim.devices; "
            "print(sorted(m for m in ('cosim.circuit', 'cosim.array', 'verilogae', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
