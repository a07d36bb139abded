"""Conductance drift after programming: the factor each device's conductance has moved by at a
time t after it was programmed (the card's :class:`~cosim.devices.cards.DriftSpec`)."""

from __future__ import annotations

import numpy as np

from cosim.errors import SpecError


def drift_factors(spec, shape: tuple[int, ...], t: float, rng: np.random.Generator) -> np.ndarray:
    """(t/t0)^(−ν_i) per device, ν_i ~ N(nu, nu_std²) floored at 0; ``t`` in s, ≥ t0."""
    if not (np.isfinite(t) and t >= spec.t0):
        raise SpecError(f"drift time must be ≥ the card's drift.t0 = {spec.t0:g} s, got {t!r}")
    nu = np.maximum(spec.nu + spec.nu_std * rng.standard_normal(shape), 0.0) if spec.nu_std else np.full(shape, spec.nu)
    return (t / spec.t0) ** (-nu)
