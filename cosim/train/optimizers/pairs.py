"""The pulse-pair rules in one place: pair policies, the split of a pair change, one pulse's
largest pair step, rounding of pulse counts, the reference state and the open-loop estimate.

Weights live on differential pairs, ``w = scale·(g⁺ − g⁻)`` (see :mod:`.base` for the policies'
meaning). Everything that knows a policy name checks it here (:func:`check_policy`); the
optimizers (:mod:`.base`), re-initialisation (:mod:`.reinit`) and the configs
(:class:`~.base.PulseConfig`) import these, and nothing here imports them back.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from cosim.array.mapping import advance_estimate
from cosim.errors import SpecError

__all__ = ["PAIR_POLICIES", "PairPolicy", "Rounding", "advance_estimate", "check_policy", "pair_step",
           "reference_conductance", "round_pulses", "split_pair_update"]

PairPolicy = Literal["set-only", "split", "plus-only"]
Rounding = Literal["nearest", "trunc", "stochastic"]
PAIR_POLICIES = ("set-only", "split", "plus-only")


def check_policy(policy: str) -> None:
    """Refuse a policy name that is not one of :data:`PAIR_POLICIES`."""
    if policy not in PAIR_POLICIES:
        raise SpecError.at("optimizer.policy", f"must be one of {', '.join(PAIR_POLICIES)}, got {policy!r}")


def reference_conductance(curve, policy: PairPolicy) -> float:
    """g_ref, S: g_min for "set-only" (all headroom upwards), the window's middle otherwise."""
    check_policy(policy)
    return float(curve.g_min) if policy == "set-only" else 0.5 * (curve.g_min + curve.g_max)


def split_pair_update(dg_pair: np.ndarray, policy: PairPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Desired (Δg⁺, Δg⁻) in S for a desired pair change Δ(g⁺ − g⁻) under ``policy``."""
    if policy == "set-only":
        return np.maximum(dg_pair, 0.0), np.maximum(-dg_pair, 0.0)
    if policy == "split":
        return 0.5 * dg_pair, -0.5 * dg_pair
    check_policy(policy)
    return dg_pair, np.zeros_like(dg_pair)


def pair_step(steps: tuple[float, float], policy: PairPolicy) -> float:
    """Largest nominal pair change of one pulse on each device the policy touches, S."""
    s_set, s_reset = steps
    if policy == "set-only":
        return s_set
    if policy == "split":
        return s_set + s_reset
    return max(s_set, s_reset)


def round_pulses(p: np.ndarray, mode: Rounding, rng: np.random.Generator | None) -> np.ndarray:
    """Integer pulse counts (int64) from real ones."""
    if mode == "nearest":
        return (np.sign(p) * np.floor(np.abs(p) + 0.5)).astype(np.int64)
    if mode == "trunc":
        return np.trunc(p).astype(np.int64)
    if mode == "stochastic":
        if rng is None:
            raise SpecError("stochastic rounding needs an rng")
        lo = np.floor(p)
        return (lo + (rng.random(np.shape(p)) < (p - lo))).astype(np.int64)
    raise SpecError(f"rounding must be nearest, trunc or stochastic, got {mode!r}")


