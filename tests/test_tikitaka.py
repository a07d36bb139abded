"""Tiki-taka: the fast array A, its symmetry point and its transfer into C. Budget ≈ 15 s.

Truths used:
- the symmetry point's definition (a SET step equals a RESET step there), and the symmetry of
  the formulas: a linear curve, or an exponential one with equal nonlinearity both ways, has it
  in the window's middle;
- hand arithmetic on an ideal linear device with pulse counts that are whole numbers (so the
  stochastic rounding is exact): after T steps of a constant gradient g with every row
  transferred every step, A = −T·η·g and C − C₀ = −τ·η·g·T(T+1)/2 (A integrates the gradient,
  C integrates A: no decay on a symmetric device);
- the definition of stochastic rounding, E[n] = p, checked statistically (standard-error bound);
- the tiles' own read counters and the pulse log, for a real training run: every transfer is
  one forward read of A's tiles, A is never read backward, and A's pulses are training pulses.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.errors import SpecError
from cosim.train import load_config, run_training
from cosim.train.curves import ExpCurve, LinearCurve
from cosim.train.optimizers import TikiTaka, TikiTakaConfig, advance_estimate, make_optimizer, symmetry_point

LIN = LinearCurve(g_min=1e-6, g_max=1e-4, n_levels=10001)
EXP = ExpCurve(g_min=1e-6, g_max=1e-4, n_levels=65, a_set=20.0, a_reset=8.0)


def test_symmetry_point():
    assert symmetry_point(LIN) == pytest.approx(0.5 * (LIN.g_min + LIN.g_max), rel=1e-12)
    sym = ExpCurve(g_min=1e-6, g_max=1e-4, n_levels=65, a_set=12.0, a_reset=12.0)
    assert symmetry_point(sym) == pytest.approx(0.5 * (sym.g_min + sym.g_max), rel=1e-3)
    g0 = symmetry_point(EXP)
    assert EXP.g_min < g0 < EXP.g_max
    up, down = EXP.delta_g(np.array(g0), np.array(1)), -EXP.delta_g(np.array(g0), np.array(-1))
    assert up == pytest.approx(down, rel=1e-3)
    # What Tiki-taka relies on: an equal number of SET and RESET pulses pulls a device that has
    # wandered off back towards the symmetry point, from either side.
    for start in (g0 + 2e-5, g0 - 2e-5):
        g = np.array(start)
        for _ in range(20):
            g = advance_estimate(advance_estimate(g, np.array(1), EXP), np.array(-1), EXP)
        assert abs(float(g) - g0) < 0.5 * abs(start - g0)


def _ideal_run(grad, steps, lr, transfer_lr):
    """A and C on ideal linear devices (truth = estimate), exact reads of A."""
    opt = TikiTaka(TikiTakaConfig(transfer_lr=transfer_lr, transfer_rows=grad.shape[0]))
    scale = 1.0 / LIN.step  # one pulse on one device = one weight unit
    a_p, a_m = opt.fast_start(LIN, grad.shape)
    c_p = np.full(grad.shape, 0.5 * (LIN.g_min + LIN.g_max)) + 3 * LIN.step
    c_m = c_p - 7 * LIN.step
    c0 = scale * (c_p - c_m)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        n_p, n_m = opt.step("L", grad, a_p, a_m, LIN, rng, scale=scale, lr=lr)
        a_p, a_m = advance_estimate(a_p, n_p, LIN), advance_estimate(a_m, n_m, LIN)
        a = scale * (a_p - a_m)
        moved = opt.transfer("L", lambda x, a=a: x @ a, c_p, c_m, LIN, rng, scale=scale)
        c_p, c_m = advance_estimate(c_p, moved[0], LIN), advance_estimate(c_m, moved[1], LIN)
    return scale * (a_p - a_m), scale * (c_p - c_m) - c0


def test_ideal_symmetric_device_integrates_exactly():
    g = np.array([[2.0, -4.0, 0.0], [6.0, 2.0, -2.0]])
    lr, tau, t = 2.0, 0.5, 5  # split rule: ±lr·g/2 = ∓g pulses per device; τ·A/2 whole too
    a, dc = _ideal_run(g, t, lr, tau)
    np.testing.assert_allclose(a, -t * lr * g, atol=1e-9)
    np.testing.assert_allclose(dc, -tau * lr * g * t * (t + 1) / 2, atol=1e-9)


def test_fast_update_is_unbiased_and_split():
    opt = make_optimizer("tiki-taka")
    g = np.full((200, 50), -0.3)
    scale = 1.0 / LIN.step
    n_p, n_m = opt.step(0, g, np.full(g.shape, 5e-5), np.full(g.shape, 5e-5), LIN, np.random.default_rng(3),
                        scale=scale, lr=1.0)
    p = 0.3 / 2  # pulses per device for ΔA* = 0.3 split over the pair
    mean, sem = n_p.mean(), n_p.std() / np.sqrt(n_p.size)
    assert abs(mean - p) < 4 * sem
    assert abs(n_m.mean() + p) < 4 * n_m.std() / np.sqrt(n_m.size)  # the partner RESETs, rounded on its own
    assert set(np.unique(n_p)) <= {0, 1} and set(np.unique(n_m)) <= {-1, 0}


def test_transfer_cycles_rows():
    opt = TikiTaka(TikiTakaConfig(transfer_rows=2, transfer_every=2))
    shape = (5, 3)
    g = np.full(shape, 5e-5)
    seen = []

    def read(x):
        seen.append(np.flatnonzero(x.any(axis=0)).tolist())
        assert np.array_equal(x.sum(axis=1), np.ones(x.shape[0]))  # one-hot rows
        return np.zeros((x.shape[0], shape[1]))

    for _ in range(8):
        opt.step(0, np.zeros(shape), g, g, LIN, np.random.default_rng(0), scale=1e4)
        opt.transfer(0, read, g, g, LIN, np.random.default_rng(0), scale=1e4)
    assert seen == [[0, 1], [2, 3], [0, 4], [1, 2]]


def test_config_errors():
    with pytest.raises(SpecError, match="optimizer.transfer_lr must be > 0"):
        make_optimizer("tiki-taka", transfer_lr=0.0)
    with pytest.raises(SpecError, match="optimizer.transfer_every must be an integer"):
        make_optimizer("tiki-taka", transfer_every=1.5)
    with pytest.raises(SpecError, match="optimizer.transfer_rows"):
        make_optimizer("tiki-taka", transfer_rows=0)


def test_training_reads_a_through_its_tiles_and_learns():
    """A real run on the imprecise card: the transfers are reads of A's tiles (forward only), A's
    pulses are in the log and the totals, and the network learns digits well above chance."""
    cfg = load_config(None, ['optimizer.name="tiki-taka"', "optimizer.transfer_lr=0.03", "optimizer.transfer_rows=16",
                             "data.subset=400", "data.test_subset=200", "network.hidden=[16]", "train.epochs=3",
                             "train.lr=0.3", "array.rows=32", "array.cols=32", "train.reference=false"])
    r = run_training(cfg, progress=False)
    steps = 3 * -(-400 // cfg.train.batch)
    assert len(r.fast_layers) == len(r.layers) == 2
    for a in r.fast_layers:
        for t in a.tiles():
            assert t.stats.reads == steps and t.stats.transposed_reads == 0
    n = len(r.layers)
    log = r.pulse_log
    fast = sum(int(log.train_set[s][n + k].sum() + log.train_reset[s][n + k].sum()) for s in "+-" for k in range(n))
    slow = sum(int(log.train_set[s][k].sum() + log.train_reset[s][k].sum()) for s in "+-" for k in range(n))
    assert fast > 0 and slow > 0
    assert r.metrics["pulses_total"] == fast + slow
    acc = [e["test_acc"] for e in r.epochs]
    assert acc[-1] > 0.4 and acc[-1] > acc[0]  # chance is 0.1; 400 images, 3 epochs, imprecise card


def test_transfer_reads_a_after_the_steps_update():
    """On a fault-free card A starts exactly at zero, so only this step's own pulses can make the
    very first transfer move C: C pulses at step 0 prove the read follows A's update."""
    cfg = load_config(None, ['optimizer.name="tiki-taka"', "optimizer.transfer_lr=0.5", "optimizer.transfer_rows=32",
                             'device.card="pulse_nl_taox_hfox"', "device.variation={c2c=0.0}", "data.subset=64",
                             "data.test_subset=20", "network.hidden=[8]", "train.epochs=1", "train.lr=1.0",
                             "array.rows=32", "array.cols=32", "train.reference=false", 'train.pulse_log="events"'])
    r = run_training(cfg, progress=False)
    ev = r.pulse_log.events()
    first = ev["step"] == 0
    assert np.any(first & (ev["layer"] >= len(r.layers)))  # A pulsed …
    assert np.any(first & (ev["layer"] < len(r.layers)))  # … and C already received part of it
