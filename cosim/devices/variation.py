"""Device-to-device parameters, fault masks and cycle-to-cycle noise.

- :func:`draw_params`: per-device parameter arrays, each varied parameter multiplied by a factor
  drawn once per device. "lognormal": mean 1 and relative std as given (sign of the parameter
  kept); "normal": 1 + std·N(0,1). A device whose draw leaves a parameter's valid range or breaks
  a model constraint (g_max > g_min, ...) is redrawn (a truncated distribution); the number of
  redraws is logged, and a spread that cannot be satisfied raises SpecError.
- :func:`fault_masks`: disjoint stuck-on / stuck-off / dead masks with exactly
  round(fraction·n) devices each, at seeded random positions.
- :func:`c2c_state` / :func:`c2c_conductance`: perturb one pulse's effect (see VariationSpec).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from cosim.devices.base import DeviceModel
from cosim.devices.cards import VariationSpec
from cosim.errors import SpecError

log = logging.getLogger(__name__)
MAX_REDRAWS = 100


def _multipliers(distribution: str, std: float, size: int, rng: np.random.Generator) -> np.ndarray:
    if distribution == "lognormal":
        sigma2 = np.log1p(std * std)
        return np.exp(rng.normal(-0.5 * sigma2, np.sqrt(sigma2), size))
    return 1.0 + std * rng.standard_normal(size)


def draw_params(model: DeviceModel, nominal: Mapping[str, float], variation: VariationSpec, n: int,
                rng: np.random.Generator) -> dict[str, float | np.ndarray]:
    """Parameters for ``n`` devices: floats for fixed parameters, (n,) arrays for varied ones."""
    params: dict[str, float | np.ndarray] = dict(nominal)
    varied = [(name, std) for name, std in sorted(variation.d2d.items()) if std > 0]
    if not varied:
        return params
    for name, std in varied:
        params[name] = nominal[name] * _multipliers(variation.d2d_distribution, std, n, rng)
    redrawn = 0
    for _ in range(MAX_REDRAWS):
        bad = _invalid(model, params, n)
        if not bad.any():
            break
        k = int(np.count_nonzero(bad))
        redrawn += k
        for name, std in varied:
            params[name][bad] = nominal[name] * _multipliers(variation.d2d_distribution, std, k, rng)
    else:
        raise SpecError(f"variation.d2d: after {MAX_REDRAWS} redraws {int(np.count_nonzero(bad))} of {n} devices "
                        f"still have invalid {model.name} parameters; reduce the spread of "
                        + ", ".join(name for name, _ in varied))
    if redrawn:
        log.info("%s: redrew %d device parameter set(s) that fell outside the valid ranges "
                 "(d2d distribution truncated)", model.name, redrawn)
    return params


def _invalid(model: DeviceModel, params: Mapping[str, float | np.ndarray], n: int) -> np.ndarray:
    bad = np.zeros(n, dtype=bool)
    for spec in model.specs:
        bad |= ~np.broadcast_to(spec.ok(params[spec.name]), (n,))
    for ok, _text in model.constraints(params):
        bad |= ~np.broadcast_to(ok, (n,))
    return bad


def fault_masks(variation: VariationSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(stuck_on, stuck_off, dead) boolean masks of length n, disjoint."""
    counts = [int(round(f * n)) for f in (variation.stuck_on, variation.stuck_off, variation.dead)]
    order = rng.permutation(n)
    masks, start = [], 0
    for k in counts:
        m = np.zeros(n, dtype=bool)
        m[order[start:start + k]] = True
        masks.append(m)
        start += k
    return tuple(masks)


def c2c_state(x0: np.ndarray, x1: np.ndarray, c2c: float, rng: np.random.Generator) -> np.ndarray:
    """State after a pulse whose change x1 - x0 is scaled by (1 + c2c·N(0,1)); not yet bounded."""
    return x0 + (x1 - x0) * (1.0 + c2c * rng.standard_normal(x0.shape))


def c2c_conductance(g1: np.ndarray, moved: np.ndarray, c2c: float, g_lo: np.ndarray, g_hi: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Conductance after a pulse plus c2c·(g_hi - g_lo)·N(0,1) where the pulse moved the state."""
    noise = c2c * (g_hi - g_lo) * rng.standard_normal(g1.shape)
    return np.where(moved, g1 + noise, g1)
