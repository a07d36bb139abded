"""Pulse-response tables: the nominal device's G after n SET / RESET pulses, for fast updates.

:meth:`PulseTable.from_card` integrates the nominal device (card parameters, no d2d, no noise)
with the card's programming pulses: ``g_set[k]`` is the read conductance after k/s SET pulses from
the low bound, ``g_reset[k]`` after k/s RESET pulses from the high bound, where s =
``samples_per_pulse``. Rectangular pulses are sub-sampled (default s = 4, pulses of width/s):
under a constant voltage the state follows one trajectory in time, so k/s pulses of the card are
exactly k pulses of width/s, and the finer grid cuts the interpolation error where a curve is
steep (Stanford's abrupt SET: max error 55 % → 16 % of the window at s = 4, 3 % at s = 16;
median 3e-7 → 3e-9). Pulses with ramps are sampled once per pulse. Sampling stops when the
curve reaches the far bound, when it has covered half the window and
a step falls below 1e-5 of it, or after ``max_pulses`` (logged); ``n_levels`` fixes the count.
"Reaches the far bound" means exactly (the state stops there) for models with hard bounds and
within 1e-4 of the window for models that only approach their bounds.

A device's position on a curve is found by inverse interpolation of its conductance (linear between
samples, as NeuroSim's measured-data mode; exact for NeuroSim's exponential curves, whose pulse map
is affine in G); :meth:`apply` advances it by n pulses and adds
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
from dataclasses import dataclass, field

import numpy as np

from cosim.devices.cards import DeviceCard
from cosim.devices.integrate import IntegratorOptions, integrate_pulse
from cosim.devices.nonlinearity import fit_u, nl_from_u
from cosim.devices.paths import cache_root
from cosim.devices.pulse import Pulse
from cosim.devices.registry import get_model
from cosim.errors import SpecError
from cosim.io import atomic_path

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
    samples_per_pulse: int = 1
    clipped: dict = field(default_factory=lambda: {"apply": 0, "pulses_for": 0})

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_card(cls, card: DeviceCard, n_levels: int | None = None, *, min_step: float = 1e-3,
                  max_pulses: int = 20000, samples_per_pulse: int | None = None, disk: bool = False) -> PulseTable:
        """Sample (or fetch from cache) the nominal curves of ``card``.

        n_levels: pulses to sample per direction (None: until the curve saturates).
        min_step: step threshold of ``levels``, fraction of the window. max_pulses: sampling cap.
        samples_per_pulse: curve points per pulse (None: 4 for rectangular pulses, else 1; more
            than 1 needs rectangular pulses). disk: also cache in ``<cosim cache>/tables``.
        """
        rectangular = card.programming.rise == 0 and card.programming.fall == 0
        if samples_per_pulse is None:
            samples_per_pulse = 4 if rectangular else 1
        if samples_per_pulse < 1 or (samples_per_pulse > 1 and not rectangular):
            raise SpecError(f"samples_per_pulse must be ≥ 1, and 1 for pulses with ramps, got {samples_per_pulse!r}")
        if n_levels is not None and n_levels < 1:
            raise SpecError(f"n_levels must be ≥ 1 pulses, got {n_levels!r}")
        if not 0 < min_step < 1:
            raise SpecError(f"min_step must be in (0, 1), got {min_step!r}")
        key = (card.hash, n_levels, min_step, max_pulses, samples_per_pulse)
        path = cache_root() / "tables" / f"{card.hash}-{n_levels}-{min_step:g}-{max_pulses}-{samples_per_pulse}.npz"
        table = _CACHE.get(key)
        if table is None and disk and path.exists():
            table = cls._load(path, card, min_step)
        if table is None:
            table = cls._sample(card, n_levels, min_step, max_pulses, samples_per_pulse)
        if disk and not path.exists():
            table._save(path)
        _CACHE[key] = table
        return table

    @classmethod
    def _sample(cls, card: DeviceCard, n_levels, min_step, max_pulses, sub) -> PulseTable:
        model = get_model(card.model, "numpy")
        params = dict(card.params)
        v = card.programming.v_read
        g_lo, g_hi = (float(b) for b in model.g_window(v, params))
        curves, complete = _sample_curves(model, params, card, (g_lo, g_hi), n_levels, max_pulses, sub)
        return cls.from_curves(card.hash, g_lo, g_hi, curves[0], curves[1], card.variation.c2c,
                               card.variation.c2c_mode, min_step, complete=tuple(complete), samples_per_pulse=sub)

    @classmethod
    def from_curves(cls, card_hash: str, g_min: float, g_max: float, g_set: np.ndarray, g_reset: np.ndarray,
                    c2c: float, c2c_mode: str, min_step: float = 1e-3,
                    complete: tuple[bool, bool] = (False, False), samples_per_pulse: int = 1) -> PulseTable:
        """Build a table from sampled curves (g_set non-decreasing from g_min, g_reset non-increasing),
        ``samples_per_pulse`` points per pulse.

        complete: whether each curve ends where the device stops (a hard bound), which decides how
        its nonlinearity is fitted.
        """
        sub = int(samples_per_pulse)
        g_set, g_reset = _trim(np.asarray(g_set, float), +1), _trim(np.asarray(g_reset, float), -1)
        span = g_max - g_min
        per_set, per_reset = _per_pulse(g_set, sub), _per_pulse(g_reset, sub)
        levels = (int(np.sum(np.diff(per_set) >= min_step * span)), int(np.sum(-np.diff(per_reset) >= min_step * span)))
        table = cls(card_hash=card_hash, g_min=float(g_min), g_max=float(g_max), g_set=g_set, g_reset=g_reset,
                    levels=levels, nonlinearity=(_nl(per_set, complete[0]), _nl(per_reset, complete[1])),
                    asymmetry=0.0, c2c=float(c2c), c2c_mode=c2c_mode, min_step=min_step,
                    complete=(bool(complete[0]), bool(complete[1])), samples_per_pulse=sub)
        object.__setattr__(table, "asymmetry", table._asymmetry())
        return table

    # -- queries ---------------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        """Distinguishable levels of the weaker direction (see ``levels``)."""
        return min(self.levels)

    def _pulses(self, curve: np.ndarray) -> np.ndarray:
        return np.arange(curve.size) / self.samples_per_pulse

    def _position(self, g: np.ndarray, up: np.ndarray) -> np.ndarray:
        """Pulses from the start of the SET (up) or RESET curve to conductance g (clamped to it)."""
        out = np.empty(np.shape(g))
        out[up] = np.interp(g[up], self.g_set, self._pulses(self.g_set))
        down = ~up
        out[down] = np.interp(-g[down], -self.g_reset, self._pulses(self.g_reset))
        return out

    def _g_at(self, pos: np.ndarray, up: np.ndarray) -> np.ndarray:
        out = np.empty(np.shape(pos))
        out[up] = np.interp(pos[up], self._pulses(self.g_set), self.g_set)
        down = ~up
        out[down] = np.interp(pos[down], self._pulses(self.g_reset), self.g_reset)
        return out

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
        end = np.where(up, self._pulses(self.g_set)[-1], self._pulses(self.g_reset)[-1])
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
        # Squared steps of whole pulses (sub-samples would undercount the per-pulse variance).
        per_set, per_reset = _per_pulse(self.g_set, self.samples_per_pulse), _per_pulse(self.g_reset, self.samples_per_pulse)
        s_set = np.concatenate([[0.0], np.cumsum(np.diff(per_set) ** 2)])
        s_reset = np.concatenate([[0.0], np.cumsum(np.diff(per_reset) ** 2)])
        return np.where(up, np.interp(pos, np.arange(s_set.size), s_set),
                        np.interp(pos, np.arange(s_reset.size), s_reset))

    def _asymmetry(self) -> float:
        # Conductances at least one pulse away from both curve ends, where a full step exists
        # both ways (near an end the step is cut short by the window, in either direction).
        one = self.samples_per_pulse
        lo = max(self.g_set[0], self.g_reset[-1 - one] if self.g_reset.size > one else self.g_reset[-1])
        hi = min(self.g_set[-1 - one] if self.g_set.size > one else self.g_set[-1], self.g_reset[0])
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
        with atomic_path(path, what="pulse table", mkdir=True) as tmp:
            np.savez(tmp, g_set=self.g_set, g_reset=self.g_reset, window=np.array([self.g_min, self.g_max]),
                     complete=np.array(self.complete), samples_per_pulse=np.array(self.samples_per_pulse))

    @classmethod
    def _load(cls, path, card: DeviceCard, min_step: float) -> PulseTable | None:
        try:
            with np.load(path) as data:
                g_min, g_max = data["window"]
                return cls.from_curves(card.hash, g_min, g_max, data["g_set"], data["g_reset"],
                                       card.variation.c2c, card.variation.c2c_mode, min_step,
                                       complete=tuple(bool(c) for c in data["complete"]),
                                       samples_per_pulse=int(data["samples_per_pulse"]))
        except (OSError, KeyError, ValueError) as exc:
            log.warning("ignoring unreadable pulse-table cache %s: %s", path, exc)
            return None


def _sample_curves(model, params, card: DeviceCard, window, n_levels, max_pulses,
                   sub: int) -> tuple[list[np.ndarray], list[bool]]:
    """SET and RESET curves, G after 0, 1/sub, 2/sub ... pulses, integrated side by side (two
    devices in one vectorised call), and whether each stopped on its far (hard) bound."""
    v = card.programming.v_read
    g_lo, g_hi = window
    span = g_hi - g_lo
    dirs = (+1, -1)
    amps = np.array([card.programming.amplitude_set, card.programming.amplitude_reset])
    prog = card.programming
    x = np.array([float(model.bound_toward(-d, params)) for d in dirs])
    bound = np.array([float(model.bound_toward(d, params)) for d in dirs])
    far = np.array([g_hi, g_lo])
    curves = [[float(g)] for g in model.conductance(x, v, params)]
    live = np.array([True, True])
    stopped = np.array([False, False])
    options = IntegratorOptions()
    limit = (n_levels if n_levels is not None else max_pulses) * sub
    for k in range(limit):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        pulse = Pulse(amplitude=amps[idx], width=prog.width / sub, rise=prog.rise, fall=prog.fall)
        x[idx] = integrate_pulse(model, x[idx], params, pulse, options)
        g_now = model.conductance(x[idx], v, params)
        for i, g in zip(idx, np.atleast_1d(g_now)):
            gs = curves[i]
            gs.append(float(g))
            if n_levels is not None:
                continue
            if k == 10 * sub - 1 and all(val == gs[0] for val in gs):
                name = "amplitude_set" if dirs[i] > 0 else "amplitude_reset"
                raise SpecError(f"{card.source or card.name}: programming.{name} = {float(amps[i])!r} V does not move "
                                f"the nominal {model.name} device (below its threshold?)")
            step = abs(gs[-1] - gs[max(0, len(gs) - 1 - sub)])  # over the last whole pulse
            if model.hard_bounds and x[i] == bound[i]:
                stopped[i], live[i] = True, False
            elif not model.hard_bounds and abs(far[i] - gs[-1]) <= 1e-4 * span:
                live[i] = False
            elif abs(gs[-1] - gs[0]) >= 0.5 * span and k >= sub and step < 1e-5 * span:
                live[i] = False
    if n_levels is None and live.any():
        for i in np.flatnonzero(live):
            log.warning("%s: %s curve still moving after %d pulses; table truncated there",
                        card.name or model.name, "SET" if dirs[i] > 0 else "RESET", max_pulses)
    stopped |= model.hard_bounds & (x == bound)
    return [np.array(c) for c in curves], [bool(s) for s in stopped]


def _per_pulse(g: np.ndarray, sub: int) -> np.ndarray:
    """The whole-pulse points of a curve sampled ``sub`` times per pulse (plus its end point)."""
    whole = g[::sub]
    return whole if (g.size - 1) % sub == 0 else np.append(whole, g[-1])


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


