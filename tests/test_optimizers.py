"""Pulse curves, pulse optimizers and re-initialisation plans. Budget ≈ 15 s.

Truths used: closed forms of the curves; the definition of stochastic rounding (E[n] = p,
checked statistically); float SGD run on the same batches (on an ideal linear, noise-free
device every method must reproduce it to within its own rounding); hand-computed pulse trains.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.errors import InputError, SpecError
from cosim.train.curves import ExpCurve, LinearCurve, PulseCurve, nominal_steps
from cosim.train.data import load_digits_split
from cosim.train.networks import MLP, float_layers
from cosim.train.optimizers import (
    OPTIMIZERS,
    SSM,
    FloatSGD,
    FloatSGDConfig,
    SGDPulse,
    SSMConfig,
    advance_estimate,
    keep_tiles_plan,
    make_optimizer,
    plan_reinit,
    reference_conductance,
    refresh_plan,
    repair_plan,
    round_pulses,
    split_pair_update,
    weights_to_pair,
)

EXP = ExpCurve(g_min=1e-6, g_max=1e-4, n_levels=65, a_set=20.0, a_reset=8.0)
LIN = LinearCurve(g_min=1e-6, g_max=1e-4, n_levels=100)


# ---------------------------------------------------------------- curves

def test_linear_curve_closed_form():
    g = np.array([1e-6, 5e-5, 1e-4])
    np.testing.assert_allclose(LIN.delta_g(g, np.array([3, -2, 1])), [3 * LIN.step, -2 * LIN.step, 0.0], rtol=1e-12)
    np.testing.assert_allclose(LIN.pulses_for(g[:2], np.array([2.5 * LIN.step, -1e-3])), [2.5, -(5e-5 - 1e-6) / LIN.step])
    assert nominal_steps(LIN) == pytest.approx((LIN.step, LIN.step), rel=1e-12)
    assert isinstance(LIN, PulseCurve) and isinstance(EXP, PulseCurve)


def test_exp_curve_matches_neurosim_formulas():
    """From g_min, n SET pulses land on G_LTP(n); from g_max, n RESET pulses on G_LTD(P_max − n)."""
    c, pmax = EXP, 64.0
    n = np.arange(0, 65)
    b_s = (c.g_max - c.g_min) / (1 - np.exp(-pmax / c.a_set))
    b_r = (c.g_max - c.g_min) / (1 - np.exp(-pmax / c.a_reset))
    np.testing.assert_allclose(c.g_min + c.delta_g(np.full(65, c.g_min), n), b_s * (1 - np.exp(-n / c.a_set)) + c.g_min,
                               rtol=1e-12)
    np.testing.assert_allclose(c.g_max + c.delta_g(np.full(65, c.g_max), -n),
                               c.g_max - b_r * (1 - np.exp((pmax - n - pmax) / c.a_reset)), rtol=1e-12)
    assert nominal_steps(c) == pytest.approx(((c.g_max - c.g_min) / 64,) * 2, rel=1e-12)
    # SET steps shrink towards g_max, RESET steps towards g_min (saturating device).
    g = np.linspace(c.g_min, c.g_max, 20)[1:-1]
    assert np.all(np.diff(c.delta_g(g, 1)) < 0) and np.all(np.diff(-c.delta_g(g, -1)) > 0)


def test_exp_curve_pulses_for_inverts_delta_g(rng):
    g = rng.uniform(EXP.g_min, EXP.g_max, 200)
    n = rng.uniform(-10, 10, 200)
    dg = EXP.delta_g(g, n)
    inside = (g + dg > EXP.g_min * 1.0001) & (g + dg < EXP.g_max * 0.9999)  # not clipped at a bound
    np.testing.assert_allclose(EXP.pulses_for(g, dg)[inside], n[inside], rtol=1e-8, atol=1e-8)
    assert inside.sum() > 150
    # Beyond a bound, the count reaches the bound.
    assert float(EXP.pulses_for(np.array(EXP.g_min), np.array(1.0))) == pytest.approx(64.0)


def test_exp_curve_tends_to_linear_for_large_a():
    c = ExpCurve(g_min=0.0, g_max=1.0, n_levels=11, a_set=1e7, a_reset=1e7)
    g = np.linspace(0, 1, 11)
    np.testing.assert_allclose(c.delta_g(g[:-1], 1), 0.1, rtol=1e-5)


def test_curve_apply_cycle_to_cycle_noise():
    """A burst of 4 pulses with 10 % per-pulse noise: mean 4 steps, std 0.1·step·√4."""
    g = np.full(200_000, LIN.g_min + 10 * LIN.step)
    new = LIN.apply(g, np.full(g.shape, 4), np.random.default_rng(5), c2c=0.1)
    dn = (new - g) / LIN.step
    se = 0.2 / np.sqrt(g.size)
    assert abs(dn.mean() - 4.0) < 4 * se
    assert dn.std() == pytest.approx(0.2, rel=0.01)  # std of a sample std ≈ 1/√(2N) ≈ 0.16 %
    np.testing.assert_allclose(LIN.apply(g[:3], np.array([2, 0, -200])), [g[0] + 2 * LIN.step, g[1], LIN.g_min],
                               rtol=1e-12)
    with pytest.raises(SpecError, match="needs an rng"):
        LIN.apply(g, 1, None, c2c=0.1)


def test_curve_validation():
    with pytest.raises(SpecError, match="ExpCurve.a_reset"):
        ExpCurve(g_min=0.0, g_max=1.0, n_levels=10, a_set=1.0, a_reset=0.0)
    with pytest.raises(SpecError, match="n_levels"):
        LinearCurve(g_min=0.0, g_max=1.0, n_levels=1)
    with pytest.raises(SpecError, match="g_min < g_max"):
        LinearCurve(g_min=2.0, g_max=1.0, n_levels=10)


# ---------------------------------------------------------------- building blocks

def test_round_pulses_modes(rng):
    p = np.array([0.5, -0.5, 1.49, -2.51, 0.99])
    np.testing.assert_array_equal(round_pulses(p, "nearest", None), [1, -1, 1, -3, 1])
    np.testing.assert_array_equal(round_pulses(p, "trunc", None), [0, 0, 1, -2, 0])
    s = round_pulses(np.full(1000, -1.25), "stochastic", rng)
    assert set(np.unique(s)) == {-2, -1}


@pytest.mark.parametrize("policy", ["set-only", "split", "plus-only"])
def test_pair_policies_realise_the_pair_change(policy, rng):
    dg = rng.standard_normal(50)
    p, m = split_pair_update(dg, policy)
    np.testing.assert_allclose(p - m, dg, rtol=1e-15)
    if policy == "set-only":
        assert np.all(p >= 0) and np.all(m >= 0) and np.all((p == 0) | (m == 0))
    if policy == "plus-only":
        assert np.all(m == 0)


# ---------------------------------------------------------------- unbiasedness

def test_ssm_stochastic_rounding_is_unbiased():
    """Mean pulses over 200 000 identical weights equal the requested real count within 4 SE."""
    opt = SSM(SSMConfig(lr=1.0, momentum=False, compensation=False))
    p_req = np.array([0.3, -0.45, 1.7, -2.2])
    n_draw = 200_000
    # grad chosen so −lr·g/scale / step = p_req on the linear curve.
    scale = 1.0
    grad = np.repeat((-p_req * LIN.step / 1.0)[:, None], n_draw, axis=1)
    g0 = np.full(grad.shape, LIN.g_min + 40 * LIN.step)
    n_p, n_m = opt.step("L", grad, g0, g0.copy(), LIN, np.random.default_rng(7), scale=scale)
    net = (n_p - n_m).astype(float)
    frac = p_req - np.floor(p_req)
    se = np.sqrt(frac * (1 - frac) / n_draw)
    assert np.all(np.abs(net.mean(axis=1) - p_req) < 4 * se), (net.mean(axis=1), p_req, se)
    assert np.all(np.abs(net - p_req[:, None]) < 1)  # only the two neighbouring integers


def test_ssm_compensated_counts_are_unbiased_on_a_nonlinear_curve():
    """With compensation the expected count is pulses_for(ĝ, Δg*) at each device's own state."""
    opt = SSM(SSMConfig(lr=1.0, momentum=False, compensation=True))
    states = np.array([EXP.g_min + 1e-6, 3e-5, 8e-5])
    want = 1.5e-6  # S: under a pulse near g_min (large SET steps), over one near g_max
    p_req = EXP.pulses_for(states, np.full(3, want))
    n_draw = 100_000
    g_plus = np.repeat(states[:, None], n_draw, axis=1)
    grad = np.full(g_plus.shape, -want)
    n_p, n_m = opt.step(0, grad, g_plus, np.full(g_plus.shape, EXP.g_min), EXP, np.random.default_rng(3), scale=1.0)
    assert np.all(n_m == 0)  # set-only: positive changes pulse G+ only
    frac = p_req - np.floor(p_req)
    se = np.sqrt(frac * (1 - frac) / n_draw)
    assert np.all(np.abs(n_p.mean(axis=1) - p_req) < 4 * se + 1e-12)
    assert p_req[2] > 3 * p_req[0]  # the state really matters on this curve


@pytest.mark.parametrize("limit", [1.0, 0.05])
def test_ssm_residual_limit_bounds_the_fired_back_overshoot(limit):
    """A request of 0.3 pulses fires one pulse on 30 % of the weights, each 0.7 pulse over its
    request. A following request of −0.01 pulses then fires on the partner device with probability
    0.01 + the carried overshoot: 0.71 with the default limit of one pulse, 0.06 with 0.05."""
    opt = SSM(SSMConfig(lr=1.0, momentum=False, compensation=True, residual_limit=limit))
    n_draw = 100_000
    g0 = np.full((1, n_draw), LIN.g_min + 40 * LIN.step)
    rng = np.random.default_rng(11)
    n_p, n_m = opt.step("L", np.full(g0.shape, -0.3 * LIN.step), g0, g0.copy(), LIN, rng, scale=1.0)
    fired = n_p[0] == 1
    assert not n_m.any() and abs(fired.mean() - 0.3) < 4 * np.sqrt(0.21 / n_draw)
    residual = opt.layer_state("L").residual
    assert np.all(np.abs(residual) <= limit * LIN.step * (1 + 1e-12))
    g_plus = g0 + np.where(fired, LIN.step, 0.0)
    n_p, n_m = opt.step("L", np.full(g0.shape, 0.01 * LIN.step), g_plus, g0.copy(), LIN, rng, scale=1.0)
    back = n_m[0][fired].mean()
    expected = 0.01 + min(0.7, limit)
    assert not n_p.any() and abs(back - expected) < 4 * np.sqrt(expected * (1 - expected) / fired.sum())


def test_sgd_pulse_is_biased_by_deterministic_rounding():
    """The failure case: a request of 0.3 pulses, every step, never fires."""
    opt = SGDPulse()
    grad = np.full((4, 4), -0.3 * LIN.step / 0.1)
    g0 = np.full((4, 4), LIN.g_min)
    for _ in range(20):
        n_p, n_m = opt.step(0, grad, g0, g0, LIN, None, scale=1.0)
        assert not n_p.any() and not n_m.any()
    assert not opt.unbiased and SSM().unbiased and not SSM(SSMConfig(stochastic=False)).unbiased


# ---------------------------------------------------------------- float SGD on an ideal device

def _float_vs_pulsed(opt, ref, *, policy="set-only", n_levels=800_001, steps=40, lr=0.05):
    """Train a 64-16-10 MLP on digits twice on the same batches: float (``ref``) and through pairs
    on an ideal linear device (``opt``, estimates exact). Returns ‖W_dev − W_float‖/‖W_float − W₀‖
    per layer and the device's largest conductance."""
    data = load_digits_split(seed=0, subset=400)
    net = MLP((64, 16, 10))
    rng = np.random.default_rng(0)
    curve = LinearCurve(g_min=0.0, g_max=4e-4, n_levels=n_levels)
    scale = 2.0 / 1e-4  # weight units per S: one step = 1e-5 weight units at 800 001 levels
    pairs = [list(weights_to_pair(w, curve, policy, scale)) for w in net.init_weights(rng)]
    start = [scale * (p - m) for p, m in pairs]
    flt = float_layers(start)
    order = rng.permutation(400)
    prng = np.random.default_rng(1)
    for t in range(steps):
        idx = order[(t * 32) % 384:(t * 32) % 384 + 32]
        x, y = data.x_train[idx], data.y_train[idx]
        for i, (m, g) in enumerate(zip(flt, net.loss_and_grads(flt, x, y)[1])):
            m.update(ref(i, g))
        grads = net.loss_and_grads(float_layers([scale * (p - m) for p, m in pairs]), x, y)[1]
        for i, g in enumerate(grads):
            p, m = pairs[i]
            n_p, n_m = opt.step(i, g, p, m, curve, prng, scale=scale, lr=lr)
            pairs[i] = [advance_estimate(p, n_p, curve), advance_estimate(m, n_m, curve)]
    errs = [np.linalg.norm(scale * (p - m) - f.w) / np.linalg.norm(f.w - s) for (p, m), f, s in zip(pairs, flt, start)]
    return np.array(errs), max(float(np.max(p)) for p in np.concatenate([np.ravel(a) for a in pairs]))


# Tolerances: one pulse is 1e-5 weight units, a step's update ~1e-3. A method with a carried
# residual stays within one pulse of the float weights, one without drifts by ≤ T/2 pulses of
# zero-mean rounding; relative to the total change (~0.05 per layer) both are ≲ 4e-3 (measured
# 2e-4 … 4e-3). 1e-2 leaves room for the network's dynamics amplifying the difference.
@pytest.mark.parametrize("name, options, beta, policy", [
    ("sgd-pulse", {}, None, "set-only"),
    ("mixed-precision", {}, None, "set-only"),
    ("mixed-precision", {}, None, "split"),
    ("ssm", {}, 0.9, "set-only"),
    ("ssm", {}, 0.9, "split"),
    ("ssm", {}, 0.9, "plus-only"),
    ("ssm", {"compensation": False, "stochastic": False}, 0.9, "set-only"),
])
def test_ideal_device_matches_float_sgd(name, options, beta, policy):
    opt = make_optimizer(name, policy=policy, **options)
    errs, g_top = _float_vs_pulsed(opt, FloatSGD(FloatSGDConfig(lr=0.05, beta=beta)).step, policy=policy)
    assert np.all(errs < 1e-2), errs
    assert g_top < 4e-4  # never saturated: the comparison is of the update rule alone


def test_manhattan_is_exact_sign_sgd_on_an_ideal_device():
    """Manhattan claims only the sign: each weight moves by ±n_pulses·step·scale. On a linear
    device it equals float sign-SGD with that step to round-off (1e-9 relative)."""
    step_w = 3 * (4e-4 / 800_000) * 2.0 / 1e-4
    errs, _ = _float_vs_pulsed(make_optimizer("manhattan", n_pulses=3), lambda i, g: -step_w * np.sign(g))
    assert np.all(errs < 1e-9), errs


def test_coarse_device_separates_the_methods():
    """At 801 levels (one pulse = 2 % of a typical step's update … many updates are sub-pulse),
    sgd-pulse loses most of the learning (measured error 0.75; 1.0 = nothing moved), while the
    stochastic (SSM) and accumulating (mixed-precision) rules keep tracking (measured 0.18, 0.20)."""
    ref = lambda: FloatSGD(FloatSGDConfig(lr=0.05)).step  # noqa: E731
    sgd, _ = _float_vs_pulsed(make_optimizer("sgd-pulse"), ref(), n_levels=801)
    ssm, _ = _float_vs_pulsed(make_optimizer("ssm", momentum=False), ref(), n_levels=801)
    mp, _ = _float_vs_pulsed(make_optimizer("mixed-precision"), ref(), n_levels=801)
    assert np.all(sgd > 0.5) and np.all(ssm < 0.35) and np.all(mp < 0.35), (sgd, ssm, mp)


# ---------------------------------------------------------------- mixed precision

def test_mixed_precision_fires_only_past_granularity_and_keeps_residual():
    """A constant request of 0.3 pulses/step fires at steps 4, 7, 10 (χ = 1.2, 1.1, 1.0 steps),
    and χ always holds the unfired remainder."""
    opt = make_optimizer("mixed-precision", lr=1.0)
    grad = np.full((1, 1), -0.3 * LIN.step)
    g = np.full((1, 1), LIN.g_min)
    fired = []
    for t in range(1, 11):
        n_p, n_m = opt.step("a", grad, g, g, LIN, None, scale=1.0)
        assert not n_m.any()
        fired.append(int(n_p[0, 0]))
        chi = opt.layer_state("a").residual[0, 0] / LIN.step
        assert chi == pytest.approx(0.3 * t - sum(fired), abs=1e-9)
        assert 0 <= chi < 1
    assert [t for t, f in enumerate(fired, 1) if f] == [4, 7, 10]


# ---------------------------------------------------------------- SSM ablation switches

def _seq(opt, grads, curve=EXP, seed=0):
    rng = np.random.default_rng(seed)
    g = np.full(grads[0].shape, 2e-5)
    out = []
    for grad in grads:
        n_p, n_m = opt.step(0, grad, g, g, curve, rng, scale=1.0)
        out.append((n_p.copy(), n_m.copy()))
    return out


def test_ssm_all_parts_off_is_sgd_pulse(rng):
    grads = [rng.standard_normal((6, 5)) * 5e-6 for _ in range(8)]
    off = dict(stochastic=False, momentum=False, reinit=False, compensation=False, lr=0.3)
    a = _seq(make_optimizer("ssm", **off), grads)
    b = _seq(make_optimizer("sgd-pulse", lr=0.3), grads)
    assert sum(int(np.abs(p).sum()) for p, _ in a) > 20  # not vacuous
    for (ap, am), (bp, bm) in zip(a, b):
        np.testing.assert_array_equal(ap, bp)
        np.testing.assert_array_equal(am, bm)
    assert make_optimizer("ssm", **off).reinit_mode == "none"


def test_ssm_momentum_switch():
    """An impulse then zero gradients: with momentum the buffer keeps firing; without, nothing."""
    grads = [np.full((3, 3), -4e-5)] + [np.zeros((3, 3))] * 5  # first request 2.6 pulses
    base = dict(lr=1.0, stochastic=False, compensation=False)
    on, off = make_optimizer("ssm", **base), make_optimizer("ssm", momentum=False, **base)
    after_on = sum(int(np.abs(p).sum()) for p, _ in _seq(on, grads)[1:])
    after_off = sum(int(np.abs(p).sum()) for p, _ in _seq(off, grads)[1:])
    assert after_on > 0 and after_off == 0
    assert on.layer_state(0).momentum is not None and off.layer_state(0).momentum is None
    # The buffer is the EMA m ← 0.9·m + 0.1·g.
    np.testing.assert_allclose(on.layer_state(0).momentum, 0.1 * -4e-5 * 0.9**5, rtol=1e-12)


def test_ssm_stochastic_switch(rng):
    grads = [rng.standard_normal((8, 8)) * 2e-6 for _ in range(3)]
    for stochastic, same in ((False, True), (True, False)):
        a = _seq(make_optimizer("ssm", stochastic=stochastic, lr=1.0), grads, seed=1)
        b = _seq(make_optimizer("ssm", stochastic=stochastic, lr=1.0), grads, seed=2)
        equal = all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
        assert equal == same


def test_ssm_compensation_switch():
    """On the nonlinear curve, compensation picks the count from the curve at ĝ (deterministic
    rounding here) and carries the residual; without it, the mean step and no residual."""
    g_state = np.array([[1.5e-6, 5e-5, 9.5e-5]])
    want = 4e-6
    grad = np.full(g_state.shape, -want)
    s_set = nominal_steps(EXP)[0]
    for comp in (True, False):
        opt = make_optimizer("ssm", compensation=comp, stochastic=False, momentum=False, lr=1.0)
        n_p, _ = opt.step(0, grad, g_state, g_state, EXP, None, scale=1.0)
        p = EXP.pulses_for(g_state, np.full(g_state.shape, want)) if comp else np.full(g_state.shape, want / s_set)
        np.testing.assert_array_equal(n_p, np.sign(p) * np.floor(np.abs(p) + 0.5))
        res = opt.layer_state(0).residual
        if comp:
            np.testing.assert_allclose(res, want - EXP.delta_g(g_state, n_p), rtol=1e-12)
        else:
            assert res is None
    # The state-dependent counts really differ along the curve.
    assert len(set(EXP.pulses_for(g_state, np.full(g_state.shape, want)).round(3).ravel())) == 3


def test_carried_residual_never_fires_against_the_request(rng):
    """Compensation carries the rounding residual, but a pulse only ever moves the pair the way
    the present gradient asks: with stochastic rounding an overshoot would otherwise be
    "corrected" on the partner device at the next step (ping-pong pulses on set-only pairs).
    Checked over many steps of a noisy gradient, and the residual is still carried: the total
    pulses track the total request (sigma-delta) to within one pulse per device."""
    opt = make_optimizer("ssm", momentum=False, lr=1.0, policy="set-only")
    shape = (40, 30)
    g_plus = np.full(shape, 3e-5)
    g_minus = np.full(shape, 3e-5)
    s_set = nominal_steps(LIN)[0]
    total_request = np.zeros(shape)
    total_pulses = np.zeros(shape)
    for _ in range(200):
        grad = s_set * (0.05 + 0.3 * rng.standard_normal(shape))  # mostly fractional pulses, both signs
        request = -grad
        n_p, n_m = opt.step(0, grad, g_plus, g_minus, LIN, rng, scale=1.0)
        assert not np.any((n_p > 0) & (request <= 0)) and not np.any((n_m > 0) & (request >= 0))
        total_request += request / s_set
        total_pulses += n_p - n_m
    assert np.abs(total_pulses - total_request).max() <= 1.0 + 1e-9
    assert total_request.sum() < -1000 and total_pulses.sum() < -1000  # the drift was followed


def test_ssm_reinit_switch():
    assert make_optimizer("ssm").reinit_mode == "reference"
    assert make_optimizer("ssm", reinit_mode="adopt").reinit_mode == "adopt"
    assert make_optimizer("ssm", reinit=False).reinit_mode == "none"
    assert all(make_optimizer(n).reinit_mode == "none" for n in ("sgd-pulse", "manhattan", "mixed-precision"))


def test_residual_is_clipped_when_a_device_is_saturated():
    """Anti-windup: a saturated device cannot move, so its unrealisable request is not stored."""
    opt = make_optimizer("ssm", momentum=False, lr=1.0)
    g = np.full((2, 2), EXP.g_max)
    for _ in range(50):
        n_p, _ = opt.step(0, np.full((2, 2), -1e-5), g, np.full((2, 2), EXP.g_min), EXP, np.random.default_rng(0),
                          scale=1.0)
        assert not n_p.any()
    assert np.all(np.abs(opt.layer_state(0).residual) <= nominal_steps(EXP)[0] * (1 + 1e-12))


def test_ssm_normalize_makes_the_update_scale_free(rng):
    """WAGE shift normalisation divides by a power of two of max|u|: gradients ×1024 give the same
    pulses; without it they give 1024× more."""
    grad = rng.standard_normal((4, 6)) * 1e-6  # ~1 pulse at lr = 1 on LIN (1 µS steps)
    runs = {}
    for normalize in (True, False):
        for k in (1.0, 1024.0):
            # normalised u is O(1), so lr 5e-6 S asks for a few pulses
            opt = make_optimizer("ssm", normalize=normalize, momentum=False, stochastic=False, compensation=False,
                                 lr=5e-6 if normalize else 1.0)
            runs[normalize, k] = _seq(opt, [grad * k], curve=LIN)[0][0]
    np.testing.assert_array_equal(runs[True, 1.0], runs[True, 1024.0])
    assert np.abs(runs[True, 1.0]).max() > 0
    assert np.abs(runs[False, 1024.0]).sum() > 100 * np.abs(runs[False, 1.0]).sum()


def test_non_finite_gradient_is_refused():
    with pytest.raises(InputError, match="layer 'fc1' gradient has non-finite values"):
        make_optimizer("ssm").step("fc1", np.array([[np.nan]]), np.ones((1, 1)) * 1e-5, np.ones((1, 1)) * 1e-5,
                                   LIN, None, scale=1.0)


# ---------------------------------------------------------------- re-initialisation and refresh

def _as_made(rng, shape):
    """Devices as fabricated: random states across the window (device-to-device spread)."""
    return rng.uniform(LIN.g_min, LIN.g_max, shape), rng.uniform(LIN.g_min, LIN.g_max, shape)


def test_reinit_reference_removes_the_initial_spread(rng):
    w = rng.uniform(-0.5, 0.5, (5, 4))
    scale = 1.0 / (LIN.g_max - LIN.g_min)
    for policy in ("set-only", "split", "plus-only"):
        verify = plan_reinit("reference", w, LIN, policy=policy, scale=scale)
        np.testing.assert_allclose(verify.weights, w, rtol=1e-12, atol=1e-12)
        assert verify.pulses == () and verify.target_plus is not None
        # Open-loop: after the full RESET every device sits at g_min, then each lands within half
        # a pulse of its target wherever it started: ≤ 0.5 step per weight for set-only (one
        # device stays at g_min), ≤ 1 step when both devices are programmed off the grid.
        plan = plan_reinit("reference", w, LIN, policy=policy, scale=scale, write_verify=False)
        gp, gm = _as_made(rng, w.shape)
        for n_p, n_m in plan.pulses:
            gp, gm = LIN.apply(gp, n_p), LIN.apply(gm, n_m)
        np.testing.assert_allclose(gp, plan.estimate_plus, atol=1e-12)
        assert np.max(np.abs(scale * (gp - gm) - w)) <= scale * LIN.step * (0.5 if policy == "set-only" else 1.0) * (1 + 1e-9)
        g_ref = reference_conductance(LIN, policy)
        assert g_ref == (LIN.g_min if policy == "set-only" else 0.5 * (LIN.g_min + LIN.g_max))


def test_reinit_none_keeps_the_spread_and_adopt_reads_it(rng):
    w = rng.uniform(-0.5, 0.5, (5, 4))
    scale = 1.0 / (LIN.g_max - LIN.g_min)
    gp0, gm0 = _as_made(rng, w.shape)
    plan = plan_reinit("none", w, LIN, policy="set-only", scale=scale)
    gp, gm = LIN.apply(gp0, plan.pulses[0][0]), LIN.apply(gm0, plan.pulses[0][1])
    believed = plan.weights
    assert np.max(np.abs(believed - w)) <= scale * LIN.step  # what the optimizer thinks
    assert np.mean(np.abs(scale * (gp - gm) - believed)) > 0.1  # what the array holds
    adopt = plan_reinit("adopt", w, LIN, policy="set-only", scale=scale, g_plus_read=gp0, g_minus_read=gm0)
    np.testing.assert_allclose(adopt.weights, scale * (gp0 - gm0))
    assert adopt.pulses == () and adopt.target_plus is None
    with pytest.raises(SpecError, match="adopt.*needs the read"):
        plan_reinit("adopt", w, LIN, policy="set-only", scale=scale)


def test_refresh_reprograms_only_saturated_pairs_and_keeps_weights():
    scale = 1.0 / (LIN.g_max - LIN.g_min)
    gp = np.array([[9.5e-5, 3e-5], [9.8e-5, 2e-6]])
    gm = np.array([[9.0e-5, 2e-5], [1e-6, 9.9e-5]])
    plan = refresh_plan(gp, gm, LIN, policy="set-only", scale=scale, threshold=0.9)
    np.testing.assert_array_equal(plan.mask, [[True, False], [True, True]])
    np.testing.assert_allclose(plan.weights, scale * (gp - gm), rtol=1e-12)
    np.testing.assert_allclose(np.minimum(plan.target_plus, plan.target_minus)[plan.mask], LIN.g_min)
    opt = make_optimizer("ssm", refresh_threshold=0.9)
    assert opt.refresh(gp, gm, LIN, scale).mask.sum() == 3
    assert make_optimizer("ssm").refresh(gp, gm, LIN, scale) is None


def test_refresh_keeps_a_weight_only_a_wider_device_window_holds():
    # Device-to-device spread: this plus device reads 1.5e-4 S, past the nominal g_max (1e-4).
    # Re-centred on g_min its weight needs 1.49e-4 S, reachable since the device was there.
    scale = 1.0 / (LIN.g_max - LIN.g_min)
    gp, gm = np.array([[1.5e-4, 9.5e-5]]), np.array([[1e-6, 9.2e-5]])
    plan = refresh_plan(gp, gm, LIN, policy="set-only", scale=scale, threshold=0.9)
    assert plan.mask.all()
    np.testing.assert_allclose(plan.target_plus - plan.target_minus, gp - gm, rtol=1e-12)
    np.testing.assert_allclose(plan.target_plus, [[1.5e-4, 4e-6]], rtol=1e-12)
    # Without the read values the nominal window clips the first weight by a third.
    tp, _ = weights_to_pair(scale * (gp - gm), LIN, "set-only", scale)
    assert tp[0, 0] == LIN.g_max


def test_repair_puts_back_the_weight_of_a_pair_with_a_device_that_did_not_move():
    scale = 1.0 / (LIN.g_max - LIN.g_min)
    gp = np.array([[9.5e-5, 9.8e-5, 9.9e-5, 9.6e-5]])
    gm = np.array([[6.0e-5, 9.1e-5, 3.0e-5, 9.7e-5]])
    plan = refresh_plan(gp, gm, LIN, policy="set-only", scale=scale, threshold=0.9)
    assert plan.mask.all()
    # As write-verify leaves them: pair 0's plus device is stuck (kept 9.5e-5), pair 1's minus
    # device is stuck, pair 3's minus device stops 2e-8 S short of its floor target; pair 2 lands.
    got_p, got_m = plan.target_plus.copy(), plan.target_minus.copy()
    got_p[0, 0], got_m[0, 1], got_m[0, 3] = gp[0, 0], gm[0, 1], got_m[0, 3] + 2e-8
    fix = repair_plan(plan, got_p, got_m, LIN, scale=scale)
    np.testing.assert_array_equal(fix.mask, [[True, True, False, True]])
    # Each fixed pair re-targets the partner of its worse-missing device and holds the weight.
    np.testing.assert_allclose(fix.target_minus[0, 0], gm[0, 0], rtol=1e-12)
    np.testing.assert_allclose(fix.target_plus[0, 1], gp[0, 1], rtol=1e-12)
    np.testing.assert_allclose(fix.target_plus[0, 3], got_m[0, 3] + (gp - gm)[0, 3], rtol=1e-12)
    np.testing.assert_allclose(fix.target_plus - fix.target_minus, gp - gm, rtol=1e-9, atol=1e-16)
    np.testing.assert_allclose(fix.weights, plan.weights, rtol=1e-9, atol=1e-12)
    assert repair_plan(plan, plan.target_plus, plan.target_minus, LIN, scale=scale) is None
    open_loop = refresh_plan(gp, gm, LIN, policy="set-only", scale=scale, threshold=0.9, write_verify=False)
    assert repair_plan(open_loop, got_p, got_m, LIN, scale=scale) is None  # no verify read open-loop


def test_weights_to_pair_clips_and_logs(caplog):
    gp, gm = weights_to_pair(np.array([5.0, -5.0]), LIN, "split", 1.0 / (LIN.g_max - LIN.g_min))
    assert gp.max() == LIN.g_max and gm.max() == LIN.g_max
    assert "2 of 2 weights exceed" in caplog.text


# ---------------------------------------------------------------- registry and validation

def test_registry_and_config_errors():
    assert set(OPTIMIZERS) == {"sgd-pulse", "manhattan", "mixed-precision", "ssm", "tiki-taka"}
    with pytest.raises(SpecError, match="did you mean 'mixed-precision'"):
        make_optimizer("mixed_precision")
    with pytest.raises(SpecError, match="no option 'momentun'; did you mean 'momentum'"):
        make_optimizer("ssm", momentun=False)
    with pytest.raises(SpecError, match=r"optimizer.lr must be > 0, got -1"):
        make_optimizer("sgd-pulse", lr=-1)
    with pytest.raises(SpecError, match=r"optimizer.beta must be < 1"):
        make_optimizer("ssm", beta=1.0)
    with pytest.raises(SpecError, match="optimizer.policy"):
        make_optimizer("manhattan", policy="both")
    with pytest.raises(SpecError, match="optimizer.momentum must be true or false"):
        make_optimizer("ssm", momentum="yes")
    with pytest.raises(InputError, match="same shape"):
        make_optimizer("ssm").step(0, np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 3)), LIN, None, scale=1.0)
    with pytest.raises(SpecError, match="scale must be > 0"):
        make_optimizer("ssm").step(0, np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)), LIN, None, scale=0.0)


def test_keep_tiles_plan_restores_a_delivered_weight_in_one_round_when_the_gain_is_its_own():
    # A stand-in circuit: each device delivers 0.8 of its conductance (no coupling between
    # cells), and a refresh has moved every delivered weight. One plan puts them back exactly,
    # the common mode kept, each device in the nominal window.
    scale = 1.0 / (LIN.g_max - LIN.g_min)
    rng = np.random.default_rng(0)
    gp, gm = rng.uniform(2e-5, 8e-5, (3, 4)), rng.uniform(2e-5, 8e-5, (3, 4))
    w_before = scale * 0.8 * (gp - gm) + rng.uniform(-0.02, 0.02, gp.shape)
    plan = keep_tiles_plan(w_before, 0.8 * gp, 0.8 * gm, gp, gm, LIN, scale=scale)
    assert plan.mask.all() and plan.mode == "keep-tiles"
    np.testing.assert_allclose(scale * 0.8 * (plan.target_plus - plan.target_minus), w_before, rtol=1e-12)
    np.testing.assert_allclose(plan.target_plus + plan.target_minus, gp + gm, rtol=1e-12)
    # Delivered as before: nothing to write. Within KEEP_TILES_TOL of the largest weight: nothing.
    assert keep_tiles_plan(w_before, 0.8 * plan.target_plus, 0.8 * plan.target_minus, plan.target_plus,
                           plan.target_minus, LIN, scale=scale) is None


def test_keep_tiles_plan_hands_what_a_device_cannot_take_to_its_partner():
    scale = 1.0 / (LIN.g_max - LIN.g_min)
    gp, gm = np.array([[5e-5, 5e-5, 5e-5]]), np.array([[1e-6, 3e-5, 3e-5]])
    want = scale * np.array([[(5e-5 - 1e-6) + 1e-5, 2e-5 + 1e-5, 2e-5 + 1e-5]])
    missed = (np.zeros((1, 3), bool), np.array([[False, False, True]]))
    plan = keep_tiles_plan(want, gp, gm, gp, gm, LIN, scale=scale, missed=missed)
    # pair 0: g⁻ sits at g_min and cannot go lower, so g⁺ rises by the whole 1e-5 S
    np.testing.assert_allclose([plan.target_plus[0, 0], plan.target_minus[0, 0]], [6e-5, 1e-6], rtol=1e-12)
    # pair 1: split half and half; pair 2: g⁻ missed its last target, so g⁺ takes all
    np.testing.assert_allclose([plan.target_plus[0, 1], plan.target_minus[0, 1]], [5.5e-5, 2.5e-5], rtol=1e-12)
    np.testing.assert_allclose([plan.target_plus[0, 2], plan.target_minus[0, 2]], [6e-5, 3e-5], rtol=1e-12)
    np.testing.assert_allclose(scale * (plan.target_plus - plan.target_minus), want, rtol=1e-12)


def test_refresh_keep_is_refused_without_a_refresh_or_without_write_verify():
    assert make_optimizer("ssm", refresh_threshold=0.5, refresh_keep="tiles").config.refresh_keep == "tiles"
    with pytest.raises(SpecError, match="optimizer.refresh_keep.*refresh_threshold is none"):
        make_optimizer("ssm", refresh_keep="tiles")
    with pytest.raises(SpecError, match="optimizer.refresh_keep.*write_verify = true"):
        make_optimizer("sgd-pulse", refresh_threshold=0.5, refresh_keep="tiles", write_verify=False)
    with pytest.raises(SpecError, match="optimizer.refresh_keep must be one of"):
        make_optimizer("ssm", refresh_threshold=0.5, refresh_keep="wires")
