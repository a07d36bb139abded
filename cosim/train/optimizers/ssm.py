"""SSM: stochastic sparse learning with momentum adaptation (Wang, Wu, Zhang, Tian, Shi,
arXiv:1906.02393; Neurocomputing 407 (2020) 270–280).

Only the abstracts of the paper are readable (research note ``ssm_paper.md``); its four parts
are confirmed, their equations are not. This is the reconstruction the note argues for (§4),
each part a switch so an ablation can turn it off:

1. ``stochastic``: stochastic rounding of the real-valued pulse count p (WAGE, Wu et al. 2018):
   n = ⌊p⌋ + Bernoulli(p − ⌊p⌋), so E[n] = p and a small update fires rarely (sparse) instead
   of never. Off: round half away from zero (the sgd-pulse rule).
2. ``momentum``: a digital EMA buffer per weight, m ← β·m + (1−β)·g, filters mini-batch noise
   before the lossy rounding; u = m. Off: u = g and no buffer exists.
3. ``reinit``: before training, and on saturation if ``refresh_threshold`` is set, the pairs
   are re-initialised to remove the device-to-device spread of the starting weights
   (``reinit_mode``: "reference" = program every pair to a common reference state plus the
   software initial weight; "adopt" = read the as-made pairs and take them as the initial
   weights; see :mod:`.reinit`). Off: "none", the initial weights are programmed open-loop from
   the assumed nominal state and the as-made spread stays.
4. ``compensation``: the pulse count comes from the nominal curve at the estimated state,
   p = curve.pulses_for(ĝ, Δg*), instead of Δg*/s̄, and the rounding residual
   r = ΔG* − ΔG_nominal(n) is carried into the next step, clipped to ``residual_limit`` pulses
   per device (default one). Off: constant mean step s̄, no residual.

Per step: u = filter(g); ΔG* = −η·u/scale + r; split by policy; p from (4); n from (1).
With all four off SSM issues exactly the pulses of sgd-pulse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cosim.schema import param
from cosim.train.curves import nominal_steps
from cosim.train.optimizers.base import (
    PulseConfig,
    PulseOptimizer,
    filter_gradient,
    learning_rate,
    plan_pulses,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SSMConfig(PulseConfig):
    """SSM settings; the shared fields (policy, max_pulses, refresh_threshold: here the loop
    re-initialises a saturated pair during training, write_verify: how "reference" programs its
    targets) are those of :class:`PulseConfig`.

    Attributes:
        lr: learning rate η (> 0), weight units per gradient unit.
        stochastic: part 1, stochastic rounding of the pulse count.
        momentum: part 2, EMA momentum buffer in the periphery.
        reinit: part 3, re-initialise the pairs before training (``reinit_mode``).
        compensation: part 4, state-dependent pulse count on the nominal curve, residual carried.
        beta: momentum coefficient β in [0, 1) (used when ``momentum``).
        reinit_mode: "reference" or "adopt" (used when ``reinit``).
        normalize: WAGE shift normalisation u ← u/2^round(log2 max|u|) per layer, so η sets
            the largest update in weight units (an [INFERRED] option; off by default).
        residual_limit: largest carried residual of part 4, in pulses per device (0–1; default
            1; used when ``compensation``). With stochastic rounding a fired pulse overshoots
            its request by up to one pulse, and a residual that keeps the overshoot fires it
            back once the momentum turns: a floor of pulses that does not fall with the rate
            (docs/fashion-mnist.md). A small limit drops the overshoot, and with it the adding
            up of requests below a pulse, which speeds the start of a run: a setting for long
            runs with a decaying rate.
    """

    lr: float = learning_rate()
    stochastic: bool = param(True, type="bool")
    momentum: bool = param(True, type="bool")
    reinit: bool = param(True, type="bool")
    compensation: bool = param(True, type="bool")
    beta: float = param(0.9, type="float", minimum=0.0, maximum=1.0, exclusive_max=True)
    reinit_mode: Literal["reference", "adopt"] = param("reference", type="str", choices=("reference", "adopt"))
    normalize: bool = param(False, type="bool")
    residual_limit: float = param(1.0, type="float", minimum=0.0, maximum=1.0)


class SSM(PulseOptimizer):
    """The SSM scheme (module docstring).

    With ``stochastic`` on it is unbiased in pulse count: E[n] = p given the estimated state. On
    a linear curve that is also E[ΔG] = ΔG*; on a nonlinear one E[ΔG] interpolates the curve
    between ⌊p⌋ and ⌈p⌉ pulses, so it differs from ΔG* by the curve's curvature over one pulse.
    """

    name = "ssm"
    config_cls = SSMConfig

    @property
    def unbiased(self) -> bool:
        return bool(self.config.stochastic)

    @property
    def reinit_mode(self) -> str:
        return self.config.reinit_mode if self.config.reinit else "none"

    def _step(self, state, grad, g_plus, g_minus, curve, rng, scale, lr):
        cfg = self.config
        steps = nominal_steps(curve)
        u = filter_gradient(state, grad, cfg.beta if cfg.momentum else None, cfg.normalize)
        request = -lr * u / scale
        total = want = request
        if cfg.compensation and state.residual is not None:
            total = request + state.residual
            # The carried residual may delay or enlarge a pulse but never fire one against the
            # present request: otherwise each overshoot of a stochastically rounded pulse is
            # "corrected" on the partner device, doubling the pulses and (set-only) walking
            # both devices of the pair into saturation. Where the residual outweighs the
            # request, nothing fires and the request pays the residual down.
            want = np.where(total * request > 0, total, 0.0)
        n_p, n_m, realised = plan_pulses(want, g_plus, g_minus, curve, policy=cfg.policy,
                                         compensate=cfg.compensation,
                                         rounding="stochastic" if cfg.stochastic else "nearest",
                                         rng=rng, max_pulses=cfg.max_pulses, steps=steps)
        if cfg.compensation:
            self._carry(state, total, realised, steps, cfg.residual_limit)
        return n_p, n_m
