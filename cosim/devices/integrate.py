"""Integrate one programming pulse for many devices at once.

Methods (:class:`IntegratorOptions`):

- ``"adaptive"``: Dormand–Prince 5(4) with a step size *per device* (each device has its own
  time, step and error control; only unfinished devices are evaluated), so a device on a stiff
  edge (VTEAM's fast ON switching, Stanford's thermal runaway) takes small steps without slowing
  the others. Error per step ≤ ``atol·(hi - lo) + rtol·|x|``.
- ``"rk4"``: classic Runge–Kutta with ``substeps`` fixed steps per linear piece of the pulse.
- ``"exact"``: the model's closed-form whole-pulse update (``pulse_nl``); an error elsewhere.
- ``"auto"``: ``"exact"`` where the model has one, else ``"adaptive"``.

The pulse is integrated piece by piece (rise, flat top, fall) so the voltage is smooth within each
integration, and within a piece only over the times where the voltage is outside the model's
``quiet_band`` (where no state moves): the threshold kink of the rate then falls on an
integration boundary instead of inside a step, which an embedded error estimate under-reports.
Bounds: for models with ``hard_bounds`` the equations stop the state at its bounds,
so stage states and results are projected onto [lo, hi] (exactly what the ODE does; counted as
``saturated``). For the other models a result outside the bounds is a numerical overshoot: it is
clipped, counted in ``clipped`` and logged as a warning when larger than 1e-6 of the range.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cosim.devices.base import DeviceModel, Params
from cosim.devices.pulse import Pulse
from cosim.errors import ConvergenceError, SpecError
from cosim.schema import check_fields, param

log = logging.getLogger(__name__)

Method = Literal["auto", "adaptive", "rk4", "exact"]
METHODS = ("auto", "adaptive", "rk4", "exact")

# Dormand–Prince 5(4) tableau (Dormand & Prince, J. Comput. Appl. Math. 6, 1980).
_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_E = np.array([35 / 384 - 5179 / 57600, 0.0, 500 / 1113 - 7571 / 16695, 125 / 192 - 393 / 640,
               -2187 / 6784 + 92097 / 339200, 11 / 84 - 187 / 2100, -1 / 40])
OVERSHOOT_WARN = 1e-6  # fraction of the state range


@dataclass(frozen=True, kw_only=True, slots=True)
class IntegratorOptions:
    """Numerics of pulse integration (physics lives in the card).

    Attributes:
        method: "auto" | "adaptive" | "rk4" | "exact".
        rtol: relative error per adaptive step (> 0).
        atol: absolute error per adaptive step as a fraction of the state range (> 0).
        substeps: fixed RK4 steps per linear piece of the pulse (≥ 1).
        max_steps: adaptive steps allowed per device and piece before ConvergenceError.
    """

    method: Method = param("auto", type="str", choices=METHODS, doc="pulse integration method")
    rtol: float = param(1e-7, type="float", minimum=0.0, exclusive_min=True, doc="relative error per step")
    atol: float = param(1e-9, type="float", minimum=0.0, exclusive_min=True,
                        doc="absolute error per step, fraction of the state range")
    substeps: int = param(200, type="int", minimum=1, doc="fixed RK4 steps per linear piece")
    max_steps: int = param(100_000, type="int", minimum=1, doc="adaptive steps per device and piece")

    def __post_init__(self) -> None:
        check_fields(self, "integrator")


@dataclass(kw_only=True, slots=True)
class PulseStats:
    """Counters filled by :func:`integrate_pulse` (accumulate over calls)."""

    steps: int = 0           # accepted steps summed over devices
    rejected: int = 0        # rejected adaptive steps summed over devices
    saturated: int = 0       # device-pulses that ended on a hard bound they were driven into
    clipped: int = 0         # device-pulses with a numerical overshoot clipped back to a bound
    max_overshoot: float = 0.0  # largest overshoot clipped, as a fraction of the state range


def _subset(params: Params, idx: np.ndarray, n: int) -> dict:
    return {k: (v[idx] if np.ndim(v) and np.shape(v)[0] == n else v) for k, v in params.items()}


def integrate_pulse(model: DeviceModel, state: np.ndarray, params: Params, pulse: Pulse,
                    options: IntegratorOptions | None = None, stats: PulseStats | None = None) -> np.ndarray:
    """State of every device after ``pulse``.

    Args:
        model: the compact model (numpy or compiled backend).
        state: (n,) states before the pulse, within the model's bounds.
        params: name → float or (n,) array.
        pulse: the pulse; its amplitude may be an (n,) array.
        options: numerics; default :class:`IntegratorOptions`.
        stats: optional counters to accumulate into.
    Returns:
        (n,) states after the pulse, within bounds.
    """
    options = options or IntegratorOptions()
    stats = stats if stats is not None else PulseStats()
    x = np.array(state, dtype=float, copy=True).reshape(-1)
    n = x.size
    lo, hi = (np.broadcast_to(np.asarray(b, dtype=float), (n,)) for b in model.state_bounds(params))
    start = x.copy()
    x = _run(model, x, params, pulse, options, stats, lo, hi)
    if model.hard_bounds:
        stats.saturated += int(np.count_nonzero(((x <= lo) | (x >= hi)) & (x != start)))
    return x


def _run(model, x, params, pulse, options, stats, lo, hi) -> np.ndarray:
    n = x.size
    method = options.method
    if method == "auto":
        method = "exact" if model.has_exact_pulse else "adaptive"
    if method == "exact":
        out = model.exact_pulse(x, pulse, params)
        if out is None:
            raise SpecError(f"integrator.method 'exact' is not available for model {model.name}")
        return _bound(model, np.asarray(out, dtype=float), lo, hi, stats)
    amp = np.broadcast_to(np.asarray(pulse.amplitude, dtype=float), (n,))
    q_lo, q_hi = (np.broadcast_to(np.asarray(b, dtype=float), (n,)) for b in model.quiet_band(params))
    for duration, f0, f1 in pulse.segments():
        t0, t1 = _active_interval(amp, duration, f0, f1, q_lo, q_hi)
        live = np.flatnonzero(t1 > t0)
        if live.size == 0:
            continue
        p = _subset(params, live, n) if live.size < n else params
        piece = (amp[live], duration, f0, f1, t0[live], t1[live], lo[live], hi[live])
        if method == "rk4":
            x[live] = _rk4(model, x[live], p, *piece, options.substeps, stats)
        else:
            x[live] = _dopri(model, x[live], p, *piece, options, stats)
    return x


def _active_interval(amp, duration, f0, f1, q_lo, q_hi):
    """Per device, the times [t0, t1] of a linear piece where the voltage is outside the quiet band.

    The voltage amp·(f0 + (f1 - f0) t/duration) has one sign and is monotone on the piece, so the
    active part is one interval at its high-|v| end.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        thr = np.where(amp > 0, np.maximum(q_hi, 0.0) / amp, np.where(amp < 0, np.minimum(q_lo, 0.0) / amp, np.inf))
    if f1 == f0:
        on = f0 > thr
        return np.zeros_like(amp), np.where(on, duration, 0.0)
    cross = np.clip(duration * (thr - f0) / (f1 - f0), 0.0, duration)
    if f1 > f0:  # rising magnitude: active after the crossing
        return cross, np.full_like(amp, duration)
    return np.zeros_like(amp), cross


def _bound(model, y, lo, hi, stats: PulseStats) -> np.ndarray:
    """Project ``y`` onto [lo, hi]: model behaviour for hard bounds, a counted clip otherwise."""
    below, above = y < lo, y > hi
    if not (below.any() or above.any()):
        return y
    if not model.hard_bounds:
        with np.errstate(over="ignore", invalid="ignore"):
            over = np.where(below, lo - y, np.where(above, y - hi, 0.0)) / (hi - lo)
        worst = float(np.max(np.where(np.isnan(over), np.inf, over)))
        count = int(np.count_nonzero(below | above | ~np.isfinite(y)))
        stats.clipped += count
        stats.max_overshoot = max(stats.max_overshoot, worst)
        if worst > OVERSHOOT_WARN:
            log.warning("%s: %d state(s) overshot a bound by up to %.3g of the range and were clipped; "
                        "tighten the integrator tolerances", model.name, count, worst)
    return np.clip(y, lo, hi)


def _rk4(model, x, params, amp, duration, f0, f1, t0, t1, lo, hi, substeps, stats):
    h = (t1 - t0) / substeps
    slope = (f1 - f0) / duration
    volt = lambda t: amp * (f0 + slope * t)  # noqa: E731
    hard = model.hard_bounds
    proj = (lambda y: np.clip(y, lo, hi)) if hard else (lambda y: y)  # noqa: E731
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging coarse step is caught by _bound
        for k in range(substeps):
            t = t0 + k * h
            k1 = model.state_rate(x, volt(t), params)
            k2 = model.state_rate(proj(x + 0.5 * h * k1), volt(t + 0.5 * h), params)
            k3 = model.state_rate(proj(x + 0.5 * h * k2), volt(t + 0.5 * h), params)
            k4 = model.state_rate(proj(x + h * k3), volt(t + h), params)
            y = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
            x = np.clip(y, lo, hi) if hard else y
            if not hard and not np.all(np.isfinite(x)):
                break
    stats.steps += substeps * x.size
    return _bound(model, np.nan_to_num(x, nan=np.inf), lo, hi, stats)


def _dopri(model, x, params, amp, duration, f0, f1, t_start, t_end, lo, hi, options: IntegratorOptions, stats):
    n = x.size
    t = t_start.copy()
    h = t_end - t_start
    steps = np.zeros(n, dtype=np.int64)
    scale_abs = options.atol * (hi - lo)
    slope = (f1 - f0) / duration
    k1 = model.state_rate(x, amp * (f0 + slope * t), params)
    active = np.ones(n, dtype=bool)
    hard = model.hard_bounds
    while True:
        idx = np.flatnonzero(active)
        if idx.size == 0:
            return x
        p = _subset(params, idx, n) if idx.size < n else params
        xs, ts, a, te = x[idx], t[idx], amp[idx], t_end[idx]
        hs = np.minimum(h[idx], te - ts)
        lo_i, hi_i = lo[idx], hi[idx]
        ks = [k1[idx]]
        # A step so long that a stage overflows (absurd amplitudes) is a rejected step, not a crash:
        # its non-finite error ratio shrinks the step like any other rejection.
        with np.errstate(over="ignore", invalid="ignore"):
            for s in range(1, 7):
                y = xs + hs * sum(coef * k for coef, k in zip(_A[s], ks) if coef != 0.0)
                if hard:
                    y = np.clip(y, lo_i, hi_i)
                ks.append(model.state_rate(y, a * (f0 + slope * (ts + _C[s] * hs)), p))
            y5 = y  # the 7th stage is evaluated at the 5th-order solution (FSAL)
            err = np.abs(hs * sum(e * k for e, k in zip(_E, ks) if e != 0.0))
            tol = scale_abs[idx] + options.rtol * np.maximum(np.abs(xs), np.abs(y5))
            ratio = err / tol
        ratio = np.where(np.isfinite(ratio), ratio, np.inf)
        ok = ratio <= 1.0
        acc = idx[ok]
        if acc.size:
            x[acc] = y5[ok] if hard else _bound(model, y5[ok], lo_i[ok], hi_i[ok], stats)
            t[acc] = ts[ok] + hs[ok]
            k1[acc] = ks[6][ok]
            stats.steps += acc.size
        stats.rejected += int(idx.size - acc.size)
        with np.errstate(divide="ignore"):
            factor = np.where(ratio == 0.0, 5.0, np.clip(0.9 * ratio ** -0.2, 0.2, 5.0))
        h[idx] = hs * np.where(ok, factor, np.minimum(factor, 0.5))
        steps[idx] += 1
        done = t[idx] >= te - 1e-12 * duration
        active[idx[done]] = False
        if (steps[idx] > options.max_steps).any():
            raise ConvergenceError(f"{model.name}: adaptive pulse integration needed more than "
                                   f"{options.max_steps} steps for some devices (raise max_steps or loosen rtol)")
