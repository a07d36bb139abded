"""The three baselines SSM is measured against; all open-loop, none reads the array back.

Notation (per weight, per step): g the gradient dL/dW, η the learning rate, ΔG* = −η·g/scale
the desired pair change (S), split per device by the pair policy into Δg±*, s̄ the curve's mean
step per pulse in the direction of the change (see :mod:`.base`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.schema import param
from cosim.train.curves import nominal_steps
from cosim.train.optimizers.base import (
    PulseConfig,
    PulseOptimizer,
    ScaledPulseConfig,
    plan_pulses,
    split_pair_update,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SGDPulseConfig(ScaledPulseConfig):
    """Naive pulse SGD: only the shared fields (:class:`ScaledPulseConfig`)."""


class SGDPulse(PulseOptimizer):
    """sgd-pulse, the failure case the SSM paper starts from.

    n± = round(Δg±*/s̄), rounded half away from zero; no memory, no read-back, no compensation.
    Any |Δg*| < s̄/2 is lost, so with small η most updates vanish (biased towards zero).
    """

    name = "sgd-pulse"
    config_cls = SGDPulseConfig

    def _step(self, state, grad, g_plus, g_minus, curve, rng, scale, lr):
        n_p, n_m, _ = plan_pulses(-lr * grad / scale, g_plus, g_minus, curve, policy=self.config.policy,
                                  compensate=False, rounding="nearest", rng=None,
                                  max_pulses=self.config.max_pulses)
        return n_p, n_m


@dataclass(frozen=True, kw_only=True, slots=True)
class ManhattanConfig(PulseConfig):
    """Manhattan rule; the shared fields are those of :class:`PulseConfig`.

    Attributes:
        n_pulses: pulses fired per weight per step (integer ≥ 1).
        threshold: |g| at or below which no pulse fires, gradient units (≥ 0).
    """

    n_pulses: int = param(1, type="int", minimum=1)
    threshold: float = param(0.0, type="float", minimum=0.0)


class Manhattan(PulseOptimizer):
    """Manhattan rule (Zamanidoost et al. 2015): the gradient's sign only.

    n± = sign(Δg±*)·n_pulses where |g| > threshold, with Δg±* the policy split of −sign(g);
    η and the gradient's magnitude are ignored. On a linear device each weight moves by exactly
    ±n_pulses·s·scale (per device touched): sign-SGD with step n_pulses·s·scale.
    """

    name = "manhattan"
    config_cls = ManhattanConfig

    def _step(self, state, grad, g_plus, g_minus, curve, rng, scale, lr):
        direction = -np.sign(grad) * (np.abs(grad) > self.config.threshold)
        want_p, want_m = split_pair_update(direction, self.config.policy)
        n = self.config.n_pulses
        if self.config.max_pulses is not None:
            n = min(n, self.config.max_pulses)
        return (np.sign(want_p) * n).astype(np.int64), (np.sign(want_m) * n).astype(np.int64)


@dataclass(frozen=True, kw_only=True, slots=True)
class MixedPrecisionConfig(ScaledPulseConfig):
    """Mixed-precision accumulate-and-fire: only the shared fields (:class:`ScaledPulseConfig`)."""


class MixedPrecision(PulseOptimizer):
    """Mixed-precision training (Nandakumar et al. 2018/2020): a digital accumulator χ per weight.

    χ ← χ + ΔG*;  n± = trunc(χ±/s̄) (χ± the policy split of χ);  χ ← χ − ΔG_nominal(n±).
    Pulses fire only once |χ| passes the device granularity s̄ (per device touched); what is
    below it waits in χ (kept in S of pair conductance, ``layer_state(id).residual``).
    """

    name = "mixed-precision"
    config_cls = MixedPrecisionConfig

    def _step(self, state, grad, g_plus, g_minus, curve, rng, scale, lr):
        steps = nominal_steps(curve)
        chi = -lr * grad / scale + (state.residual if state.residual is not None else 0.0)
        n_p, n_m, realised = plan_pulses(chi, g_plus, g_minus, curve, policy=self.config.policy,
                                         compensate=False, rounding="trunc", rng=None,
                                         max_pulses=self.config.max_pulses, steps=steps)
        self._carry(state, chi, realised, steps)
        return n_p, n_m
