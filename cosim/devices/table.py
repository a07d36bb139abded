"""Pulse-response tables: the nominal device's G after n SET / RESET pulses, for fast updates.

:meth:`PulseTable.from_card` integrates the nominal device (card parameters, no d2d, no noise)
with the card's programming pulses: ``g_set[k]`` is the read conductance after k SET pulses from
the low bound, ``g_reset[k]`` after k RESET pulses from the high bound. Sampling stops when the
curve reaches the far bound, when it has covered half the window and
a step falls below 1e-5 of it, or after ``max_pulses`` (logged); ``n_levels`` fixes the count.
"Reaches the far bound" means exactly (the state stops there) for models with hard bounds and
within 1e-4 of the window for models that only approach their bounds.

A device's position on a curve is found by inverse interpolation of its conductance (linear between
integer pulses, as NeuroSim's measured-data mode); :meth:`apply` advances it by n pulses and adds
cycle-to-cycle noise. Noise follows the card: "conductance" mode adds c2c·(g_max - g_min)·√m
(m = pulses that moved the device), "state" mode c2c·√(Σ ΔG_k²) over the pulses traversed (the
first-order image of the per-pulse state noise).

Metrics (definitions):
- ``levels`` (set, reset): pulses whose nominal step is ≥ ``min_step``·(g_max - g_min)
  (default 1e-3, i.e. steps resolvable at 10-bit precision); ``n_levels`` is the smaller.
- ``nonlinearity`` (set, reset): NeuroSim's NL label (:mod:`cosim.devices.nonlinearity`) of the
  A fitted to each curve, whole when it ends on a hard bound, else up to 99.9 % of its travel;
  > 0 saturating, < 0 accelerating.
- ``asymmetry``: mean |ΔG_set(g) - |ΔG_reset(g)|| / mean (ΔG_set + |ΔG_reset|)/2 over a uniform
  grid of g inside both curves and at least one pulse from their ends; 0 when a SET and a RESET
  pulse move every conductance by the same amount, 2 at most.

Tables are cached in memory keyed by the card hash and the sampling options (and on disk under
the cosim cache directory with ``disk=True``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from cosim.devices.cards import DeviceCard
from cosim.devices.integrate import IntegratorOptions, integrate_pulse
from cosim.devices.nonlinearity import fit_u, nl_from_u
from cosim.devices.paths import cache_root
from cosim.devices.registry import get_model
from cosim.errors import SpecError

log = logging.getLogger(__name__)
_CACHE: dict[tuple, PulseTable] = {}


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class PulseTable:
    """Nominal pulse-response curves of one card (see the module docstring for definitions)."""

    card_hash: str
    g_min: float
    g_max: float
    g_set: np.ndarray
    g_reset: np.ndarray
    levels: tuple[int, int]
    nonlinearity: tuple[float, float]
    asymmetry: float
    c2c: float
    c2c_mode: str
    min_step: float
    complete: tuple[bool, bool] = (True, True)
    clipped: dict = field(default_factory=lambda: {"apply": 0, "pulses_for": 0})

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_card(cls, card: DeviceCard, n_levels: int | None = None, *, min_step: float = 1e-3,
                  max_pulses: int = 20000, disk: bool = False) -> PulseTable:
        """Sample (or fetch from cache) the nominal curves of ``card``.

        n_levels: pulses to sample per direction (None: until the curve saturates).
        min_step: step threshold of ``levels``, fraction of the window. max_pulses: sampling cap.
        disk: also cache in ``<cosim cache>/tables``.
        """
        if n_levels is not None and n_levels < 1:
            raise SpecError(f"n_levels must be ≥ 1 pulses, got {n_levels!r}")
        if not 0 < min_step < 1:
            raise SpecError(f"min_step must be in (0, 1), got {min_step!r}")
        key = (card.hash, n_levels, min_step, max_pulses)
        path = cache_root() / "tables" / f"{card.hash}-{n_levels}-{min_step:g}-{max_pulses}.npz"
        table = _CACHE.get(key)
        if table is None and disk and path.exists():
            table = cls._load(path, card, min_step)
        if table is None:
            table = cls._sample(card, n_levels, min_step, max_pulses)
        if disk and not path.exists():
            table._save(path)
        _CACHE[key] = table
        return table

    @classmethod
    def _sample(cls, card: DeviceCard, n_levels, min_step, max_pulses) -> PulseTable:
        model = get_model(card.model, "numpy")
        params = dict(card.params)
        v = card.programming.v_read
        g_lo, g_hi = (float(b) for b in model.g_window(v, params))
        curves, complete = [], []
        for direction in (+1, -1):
            start = model.bound_toward(-direction, params)
            g, done = _sample_curve(model, params, card, direction, start, (g_lo, g_hi), n_levels, max_pulses)
            curves.append(g)
            complete.append(done)
        return cls.from_curves(card.hash, g_lo, g_hi, curves[0], curves[1], card.variation.c2c,
                               card.variation.c2c_mode, min_step, complete=tuple(complete))

    @classmethod
    def from_curves(cls, card_hash: str, g_min: float, g_max: float, g_set: np.ndarray, g_reset: np.ndarray,
                    c2c: float, c2c_mode: str, min_step: float = 1e-3,
                    complete: tuple[bool, bool] = (False, False)) -> PulseTable:
        """Build a table from sampled curves (g_set non-decreasing from g_min, g_reset non-increasing).

        complete: whether each curve ends where the device stops (a hard bound), which decides how
        its nonlinearity is fitted.
        """
        g_set, g_reset = _trim(np.asarray(g_set, float), +1), _trim(np.asarray(g_reset, float), -1)
        span = g_max - g_min
        levels = (int(np.sum(np.diff(g_set) >= min_step * span)), int(np.sum(-np.diff(g_reset) >= min_step * span)))
        table = cls(card_hash=card_hash, g_min=float(g_min), g_max=float(g_max), g_set=g_set, g_reset=g_reset,
                    levels=levels, nonlinearity=(_nl(g_set, complete[0]), _nl(g_reset, complete[1])),
                    asymmetry=0.0, c2c=float(c2c), c2c_mode=c2c_mode, min_step=min_step,
                    complete=(bool(complete[0]), bool(complete[1])))
        object.__setattr__(table, "asymmetry", table._asymmetry())
        return table

    # -- queries ---------------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        """Distinguishable levels of the weaker direction (see ``levels``)."""
        return min(self.levels)

    def _position(self, g: np.ndarray, up: np.ndarray) -> np.ndarray:
        k_set, k_reset = np.arange(self.g_set.size), np.arange(self.g_reset.size)
        p_set = np.interp(g, self.g_set, k_set)
        p_reset = np.interp(-g, -self.g_reset, k_reset)
        return np.where(up, p_set, p_reset)

    def _g_at(self, pos: np.ndarray, up: np.ndarray) -> np.ndarray:
        return np.where(up, np.interp(pos, np.arange(self.g_set.size), self.g_set),
                        np.interp(pos, np.arange(self.g_reset.size), self.g_reset))

    def delta_g(self, g: np.ndarray | float, n: np.ndarray | float) -> np.ndarray:
        """Nominal ΔG (S) after n signed pulses (fractions allowed) starting from conductance g."""
        g, n = np.broadcast_arrays(np.asarray(g, float), np.asarray(n, float))
        up = n > 0
        pos = self._position(g, up)
        g_new = np.where(n == 0, g, self._g_at(pos + np.abs(n), up))
        return g_new - g

    def pulses_for(self, g: np.ndarray | float, dg: np.ndarray | float) -> np.ndarray:
        """Signed (fractional) pulse count realising ``dg`` from ``g`` on the nominal curve.

        A target beyond a curve's end is replaced by the end (counted in ``clipped``, logged).
        """
        g, dg = np.broadcast_arrays(np.asarray(g, float), np.asarray(dg, float))
        up = dg > 0
        target = g + dg
        lo = np.where(up, self.g_set[0], self.g_reset[-1])
        hi = np.where(up, self.g_set[-1], self.g_reset[0])
        beyond = (dg != 0) & ((target < lo) | (target > hi))
        if beyond.any():
            self._count("pulses_for", int(beyond.sum()), "target(s) beyond the nominal curve; pulses to its end returned")
        target = np.clip(target, lo, hi)
        steps = self._position(target, up) - self._position(g, up)
        return np.where(dg == 0, 0.0, np.where(up, steps, -steps))

    def apply(self, g: np.ndarray, n: np.ndarray, rng: np.random.Generator | None,
              c2c: float | None = None) -> np.ndarray:
        """Conductances after n signed pulses per device along the nominal curves, with c2c noise.

        rng None (or c2c 0) gives the nominal update; results are clipped to [g_min, g_max]
        (counted in ``clipped``, logged).
        """
        g, n = np.broadcast_arrays(np.asarray(g, float), np.asarray(n, float))
        c2c = self.c2c if c2c is None else float(c2c)
        up = n > 0
        pos = self._position(g, up)
        end = np.where(up, self.g_set.size - 1, self.g_reset.size - 1)
        pos_new = np.minimum(pos + np.abs(n), end)
        g_new = np.where(n == 0, g, self._g_at(pos_new, up))
        if rng is not None and c2c > 0:
            moved = np.maximum(pos_new - pos, 0.0)
            if self.c2c_mode == "conductance":
                sigma = c2c * (self.g_max - self.g_min) * np.sqrt(moved)
            else:
                sigma = c2c * np.sqrt(np.maximum(self._s2(pos_new, up) - self._s2(pos, up), 0.0))
            g_new = g_new + sigma * rng.standard_normal(g_new.shape)
        out = (g_new < self.g_min) | (g_new > self.g_max)
        if out.any():
            self._count("apply", int(out.sum()), "conductance(s) pushed past the window by noise, clipped")
        return np.clip(g_new, self.g_min, self.g_max)

    # -- internals -------------------------------------------------------------------------------
    def _s2(self, pos: np.ndarray, up: np.ndarray) -> np.ndarray:
        s_set = np.concatenate([[0.0], np.cumsum(np.diff(self.g_set) ** 2)])
        s_reset = np.concatenate([[0.0], np.cumsum(np.diff(self.g_reset) ** 2)])
        return np.where(up, np.interp(pos, np.arange(s_set.size), s_set),
                        np.interp(pos, np.arange(s_reset.size), s_reset))

    def _asymmetry(self) -> float:
        # Conductances at least one pulse away from both curve ends, where a full step exists
        # both ways (near an end the step is cut short by the window, in either direction).
        lo = max(self.g_set[0], self.g_reset[-2])
        hi = min(self.g_set[-2], self.g_reset[0])
        if hi <= lo:
            return float("nan")
        grid = np.linspace(lo, hi, 203)[1:-1]
        s_up = self.delta_g(grid, 1.0)
        s_dn = -self.delta_g(grid, -1.0)
        return float(np.mean(np.abs(s_up - s_dn)) / np.mean(0.5 * (s_up + s_dn)))

    def _count(self, kind: str, k: int, what: str) -> None:
        first = self.clipped[kind] == 0
        self.clipped[kind] += k
        (log.warning if first else log.debug)("pulse table %s: %d %s (%d so far; counted in .clipped)",
                                              self.card_hash, k, what, self.clipped[kind])

    def _save(self, path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, g_set=self.g_set, g_reset=self.g_reset, window=np.array([self.g_min, self.g_max]),
                 complete=np.array(self.complete))
        os.replace(tmp, path)

    @classmethod
    def _load(cls, path, card: DeviceCard, min_step: float) -> PulseTable | None:
        try:
            with np.load(path) as data:
                g_min, g_max = data["window"]
                return cls.from_curves(card.hash, g_min, g_max, data["g_set"], data["g_reset"],
                                       card.variation.c2c, card.variation.c2c_mode, min_step,
                                       complete=tuple(bool(c) for c in data["complete"]))
        except (OSError, KeyError, ValueError) as exc:
            log.warning("ignoring unreadable pulse-table cache %s: %s", path, exc)
            return None


def _sample_curve(model, params, card: DeviceCard, direction: int, start, window, n_levels,
                  max_pulses) -> tuple[np.ndarray, bool]:
    """G after 0..K pulses, and whether the device stopped on its far (hard) bound."""
    v = card.programming.v_read
    g_lo, g_hi = window
    span = g_hi - g_lo
    far = g_hi if direction > 0 else g_lo
    pulse = card.programming.pulse(direction)
    options = IntegratorOptions()
    x = np.atleast_1d(np.asarray(start, dtype=float))
    bound = float(model.bound_toward(direction, params))
    stopped = False
    gs = [float(model.conductance(x, v, params)[0])]
    limit = n_levels if n_levels is not None else max_pulses
    name = "amplitude_set" if direction > 0 else "amplitude_reset"
    for k in range(limit):
        x = integrate_pulse(model, x, params, pulse, options)
        gs.append(float(model.conductance(x, v, params)[0]))
        if n_levels is not None:
            continue
        step = abs(gs[-1] - gs[-2])
        if k == 9 and all(g == gs[0] for g in gs):
            raise SpecError(f"{card.source or card.name}: programming.{name} = {pulse.amplitude!r} V does not move "
                            f"the nominal {model.name} device (below its threshold?)")
        if model.hard_bounds and x[0] == bound:
            stopped = True
            break
        if not model.hard_bounds and abs(far - gs[-1]) <= 1e-4 * span:
            break
        if abs(gs[-1] - gs[0]) >= 0.5 * span and step < 1e-5 * span:
            break
    else:
        if n_levels is None:
            log.warning("%s: %s curve still moving after %d pulses; table truncated there",
                        card.name or model.name, "SET" if direction > 0 else "RESET", max_pulses)
    return np.array(gs), stopped or (model.hard_bounds and x[0] == bound)


def _trim(g: np.ndarray, direction: int) -> np.ndarray:
    """Drop the flat tail after a curve stops (steps below 1e-12 of the curve's travel are
    rounding dust); refuse a curve that moves the wrong way."""
    steps = np.diff(g) * direction
    dust = 1e-12 * abs(g[-1] - g[0])
    if np.any(steps < -dust):
        raise SpecError("pulse-response curve is not monotone in its direction; the programming pulse "
                        "moves the device both ways")
    moving = np.flatnonzero(steps > dust)
    if moving.size == 0:
        raise SpecError("pulse-response curve does not move")
    return g[: moving[-1] + 2].copy()


def _nl(g: np.ndarray, complete: bool) -> float:
    """NL label of a sampled curve, normalised to its own travel.

    A curve that ends on a hard bound (as NeuroSim's P_max) is fitted whole; one that approaches
    its end asymptotically or was truncated, up to 99.9 % of its travel.
    """
    y = (g - g[0]) / (g[-1] - g[0])
    if not complete and y.size > 3:
        end = max(int(np.argmax(y >= 0.999)), 2)
        y = y[: end + 1] / y[end]
    return nl_from_u(fit_u(y))


