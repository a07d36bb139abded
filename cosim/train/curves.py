"""Nominal pulse-response curves: how much one device's conductance moves per programming pulse.

Every pulse optimizer asks a :class:`PulseCurve` two questions, exactly as it would ask the
device layer's ``PulseTable`` (the real curve, tabulated from a compact model, satisfies the
same protocol):

- ``delta_g(g, n)``: the nominal change ΔG (S) after ``n`` signed pulses starting from ``g``
  (n > 0 potentiation/SET, conductance up; n < 0 depression/RESET, down);
- ``pulses_for(g, dg)``: the signed, real-valued pulse count that realises ``dg`` from ``g``.

Both saturate at the window ``[g_min, g_max]``: a change beyond a bound is the change to that
bound, and ``pulses_for`` returns the count that reaches the bound.

Two analytic curves live here, pure numpy, noise-free unless ``apply`` is given a ``c2c``:

- :class:`LinearCurve`: ``n_levels`` equally spaced states, the ideal device of the tests.
- :class:`ExpCurve`: the NeuroSim exponential LTP/LTD model (Chen et al., NeuroSim+,
  IEDM 2017; research note ``ssm_paper.md`` §5), with its own nonlinearity A per direction::

      G_LTP(P) = B_s·(1 − exp(−P/A_s)) + g_min,        B_s = (g_max − g_min)/(1 − exp(−P_max/A_s))
      G_LTD(P) = g_max − B_r·(1 − exp((P − P_max)/A_r)), B_r = (g_max − g_min)/(1 − exp(−P_max/A_r))

  with ``P_max = n_levels − 1`` pulses spanning the window. A SET pulse moves P_LTP(g) → +1,
  a RESET pulse moves P_LTD(g) → −1, so both steps shrink as the device nears the bound it is
  driven towards. Large A tends to the linear curve; the NeuroSim "normalised" A is A/P_max.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from cosim.errors import SpecError


@runtime_checkable
class PulseCurve(Protocol):
    """What the optimizers need from a device's nominal pulse response (see module docstring)."""

    @property
    def g_min(self) -> float: ...

    @property
    def g_max(self) -> float: ...

    def delta_g(self, g: np.ndarray, n: np.ndarray) -> np.ndarray: ...

    def pulses_for(self, g: np.ndarray, dg: np.ndarray) -> np.ndarray: ...


def nominal_steps(curve: PulseCurve) -> tuple[float, float]:
    """Mean |ΔG| per pulse over a full sweep, (SET, RESET), S.

    The full window divided by the number of pulses the curve needs to cross it, so it is the
    "constant nominal step" of any curve, table-based or analytic.
    """
    full = curve.g_max - curve.g_min
    n_set = abs(float(np.asarray(curve.pulses_for(np.asarray(curve.g_min), np.asarray(full)))))
    n_reset = abs(float(np.asarray(curve.pulses_for(np.asarray(curve.g_max), np.asarray(-full)))))
    if not (n_set > 0 and n_reset > 0):
        raise SpecError(f"pulse curve needs a positive pulse count across its window, got SET {n_set}, RESET {n_reset}")
    return full / n_set, full / n_reset


def _check_window(name: str, g_min: float, g_max: float, n_levels: int) -> None:
    if not (np.isfinite(g_min) and np.isfinite(g_max) and 0 <= g_min < g_max):
        raise SpecError(f"{name} needs 0 ≤ g_min < g_max (S), got g_min={g_min!r}, g_max={g_max!r}")
    if not (isinstance(n_levels, int | np.integer) and n_levels >= 2):
        raise SpecError(f"{name}.n_levels must be an integer ≥ 2, got {n_levels!r}")


class _CurveBase:
    """``apply``: the curve used as a (simple) device, with per-pulse cycle-to-cycle noise."""

    __slots__ = ()
    g_min: float
    g_max: float

    def delta_g(self, g: np.ndarray, n: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, g: np.ndarray, n: np.ndarray, rng: np.random.Generator | None = None,
              c2c: float = 0.0) -> np.ndarray:
        """New conductances (S) after ``n`` signed pulses from ``g``.

        ``c2c`` is the relative std of each pulse's step; the |n| independent step errors of a
        burst are summed as one Gaussian of std ``c2c·|ΔG|/sqrt(|n|)`` (exact when the steps of
        the burst are equal, as on a linear curve). The result is clipped to the window.
        """
        g = np.asarray(g, dtype=float)
        n = np.asarray(n)
        dg = self.delta_g(g, n)
        if c2c > 0:
            if rng is None:
                raise SpecError("curve.apply needs an rng when c2c > 0")
            k = np.maximum(np.abs(n), 1)
            dg = dg + c2c * np.abs(dg) / np.sqrt(k) * rng.standard_normal(np.shape(dg))
        return np.clip(g + dg, self.g_min, self.g_max)


@dataclass(frozen=True, kw_only=True, slots=True)
class LinearCurve(_CurveBase):
    """Ideal device: ``n_levels`` equally spaced conductances, the same step up and down.

    Attributes:
        g_min, g_max: conductance window, S (0 ≤ g_min < g_max).
        n_levels: number of states including both bounds (≥ 2); one pulse = one level.
    """

    g_min: float
    g_max: float
    n_levels: int

    def __post_init__(self) -> None:
        _check_window("LinearCurve", self.g_min, self.g_max, self.n_levels)

    @property
    def step(self) -> float:
        """ΔG of one pulse, S."""
        return (self.g_max - self.g_min) / (self.n_levels - 1)

    def delta_g(self, g: np.ndarray, n: np.ndarray) -> np.ndarray:
        g = np.clip(np.asarray(g, dtype=float), self.g_min, self.g_max)
        return np.clip(g + np.asarray(n, dtype=float) * self.step, self.g_min, self.g_max) - g

    def pulses_for(self, g: np.ndarray, dg: np.ndarray) -> np.ndarray:
        g = np.clip(np.asarray(g, dtype=float), self.g_min, self.g_max)
        return (np.clip(g + np.asarray(dg, dtype=float), self.g_min, self.g_max) - g) / self.step


@dataclass(frozen=True, kw_only=True, slots=True)
class ExpCurve(_CurveBase):
    """NeuroSim-style nonlinear, asymmetric LTP/LTD curve (equations in the module docstring).

    Attributes:
        g_min, g_max: conductance window, S (0 ≤ g_min < g_max).
        n_levels: pulses + 1 needed to sweep the window in either direction (≥ 2).
        a_set: LTP nonlinearity A_s, in pulses (> 0; small = strongly nonlinear).
        a_reset: LTD nonlinearity A_r, in pulses (> 0).
    """

    g_min: float
    g_max: float
    n_levels: int
    a_set: float
    a_reset: float

    def __post_init__(self) -> None:
        _check_window("ExpCurve", self.g_min, self.g_max, self.n_levels)
        for name in ("a_set", "a_reset"):
            a = getattr(self, name)
            if not (np.isfinite(a) and a > 0):
                raise SpecError(f"ExpCurve.{name} must be a finite number of pulses > 0, got {a!r}")

    @property
    def p_max(self) -> float:
        return float(self.n_levels - 1)

    def _b(self, a: float) -> float:
        return (self.g_max - self.g_min) / -np.expm1(-self.p_max / a)

    # Pulse coordinate along each branch as a function of g (inverse of G_LTP / G_LTD); g is
    # clipped to the window so the log arguments stay in [exp(-P_max/A), 1] and never warn.
    def _p_ltp(self, g: np.ndarray) -> np.ndarray:
        return -self.a_set * np.log1p(-(g - self.g_min) / self._b(self.a_set))

    def _p_ltd(self, g: np.ndarray) -> np.ndarray:
        return self.p_max + self.a_reset * np.log1p(-(self.g_max - g) / self._b(self.a_reset))

    def _g_ltp(self, p: np.ndarray) -> np.ndarray:
        return self._b(self.a_set) * -np.expm1(-p / self.a_set) + self.g_min

    def _g_ltd(self, p: np.ndarray) -> np.ndarray:
        return self.g_max - self._b(self.a_reset) * -np.expm1((p - self.p_max) / self.a_reset)

    def delta_g(self, g: np.ndarray, n: np.ndarray) -> np.ndarray:
        g, n = np.broadcast_arrays(np.clip(np.asarray(g, dtype=float), self.g_min, self.g_max),
                                   np.asarray(n, dtype=float))
        up = np.clip(self._g_ltp(np.clip(self._p_ltp(g) + np.maximum(n, 0), 0, self.p_max)), self.g_min, self.g_max)
        down = np.clip(self._g_ltd(np.clip(self._p_ltd(g) + np.minimum(n, 0), 0, self.p_max)), self.g_min, self.g_max)
        return np.where(n > 0, up, np.where(n < 0, down, g)) - g

    def pulses_for(self, g: np.ndarray, dg: np.ndarray) -> np.ndarray:
        g, dg = np.broadcast_arrays(np.clip(np.asarray(g, dtype=float), self.g_min, self.g_max),
                                    np.asarray(dg, dtype=float))
        target = np.clip(g + dg, self.g_min, self.g_max)
        up = self._p_ltp(target) - self._p_ltp(g)
        down = self._p_ltd(target) - self._p_ltd(g)
        return np.where(dg > 0, up, np.where(dg < 0, down, 0.0))
