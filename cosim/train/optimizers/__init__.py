"""Optimizers that turn gradients into programming pulses for differential pairs.

Every optimizer is a class with a frozen config dataclass and per-layer state, and one call:
``step(layer_id, grad, g_plus_est, g_minus_est, curve, rng, *, scale, lr=None) -> (n_plus, n_minus)``
(signed int64 pulse counts, n > 0 SET, n < 0 RESET). The caller applies them open-loop and
tracks the estimates (:func:`advance_estimate`); equations in each class's docstring.

- :mod:`.pairs`: the pulse-pair rules, in one place: policies (:data:`PAIR_POLICIES`,
  :func:`check_policy`, :func:`split_pair_update`), :func:`round_pulses`,
  :func:`reference_conductance`, :func:`advance_estimate`.
- :mod:`.base`: :class:`PulseConfig` (the fields every method's config shares: policy,
  max_pulses, refresh_threshold, refresh_keep, write_verify), :func:`plan_pulses`, :class:`PulseOptimizer`,
  :class:`LayerState`, the float reference :class:`FloatSGD`.
- :mod:`.baselines`: :class:`SGDPulse` ("sgd-pulse"), :class:`Manhattan` ("manhattan"),
  :class:`MixedPrecision` ("mixed-precision").
- :mod:`.ssm`: :class:`SSM` ("ssm") with its four switchable parts.
- :mod:`.tikitaka`: :class:`TikiTaka` ("tiki-taka"), a fast array A transferred into the weights,
  and :func:`symmetry_point`.
- :mod:`.reinit`: :func:`plan_reinit` ("reference" | "adopt" | "none"), :func:`refresh_plan`, :func:`repair_plan`,
  :func:`keep_tiles_plan` (with :func:`~.reinit.measured_gain`, :func:`~.reinit.missed_targets`),
  :func:`weights_to_pair`, :class:`ReinitPlan`.

A new optimizer is one new module (a :class:`PulseConfig` subclass declaring its own fields with
:func:`cosim.schema.param`, a :class:`PulseOptimizer` subclass with ``name``, ``config_cls`` and
``_step``) plus one line in :data:`OPTIMIZERS`.

:data:`OPTIMIZERS` maps names to classes; :func:`make_optimizer` builds one from keyword options.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cosim.errors import SpecError
from cosim.schema import close_match
from cosim.train.optimizers.base import (
    FloatSGD,
    FloatSGDConfig,
    LayerState,
    PulseConfig,
    PulseOptimizer,
    plan_pulses,
)
from cosim.train.optimizers.baselines import (
    Manhattan,
    ManhattanConfig,
    MixedPrecision,
    MixedPrecisionConfig,
    SGDPulse,
    SGDPulseConfig,
)
from cosim.train.optimizers.pairs import (
    PAIR_POLICIES,
    advance_estimate,
    check_policy,
    reference_conductance,
    round_pulses,
    split_pair_update,
)
from cosim.train.optimizers.reinit import (
    REINIT_MODES,
    ReinitPlan,
    keep_tiles_plan,
    plan_reinit,
    refresh_plan,
    repair_plan,
    saturated,
    weights_to_pair,
)
from cosim.train.optimizers.ssm import SSM, SSMConfig
from cosim.train.optimizers.tikitaka import TikiTaka, TikiTakaConfig, symmetry_point

OPTIMIZERS: dict[str, type[PulseOptimizer]] = {
    "sgd-pulse": SGDPulse,
    "manhattan": Manhattan,
    "mixed-precision": MixedPrecision,
    "ssm": SSM,
    "tiki-taka": TikiTaka,
}


def make_optimizer(name: str, **options: Any) -> PulseOptimizer:
    """The optimizer registered as ``name``, configured by ``options`` (its config's fields)."""
    if name not in OPTIMIZERS:
        raise SpecError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}{close_match(name, OPTIMIZERS)}")
    cls = OPTIMIZERS[name]
    fields = [f.name for f in dataclasses.fields(cls.config_cls)]
    for key in options:
        if key not in fields:
            raise SpecError(f"optimizer {name!r} has no option {key!r}{close_match(key, fields)} "
                            f"(options: {', '.join(fields)})")
    return cls(cls.config_cls(**options))


__all__ = [
    "OPTIMIZERS", "PAIR_POLICIES", "PulseConfig", "check_policy", "REINIT_MODES", "SSM", "FloatSGD", "FloatSGDConfig", "LayerState", "Manhattan",
    "ManhattanConfig", "MixedPrecision", "MixedPrecisionConfig", "PulseOptimizer", "ReinitPlan", "SGDPulse",
    "SGDPulseConfig", "SSMConfig", "TikiTaka", "TikiTakaConfig", "advance_estimate", "keep_tiles_plan", "make_optimizer", "plan_pulses", "plan_reinit",
    "reference_conductance", "refresh_plan", "repair_plan", "round_pulses", "saturated", "split_pair_update", "symmetry_point",
    "weights_to_pair",
]
