"""A population of devices: per-device parameters and faults drawn once, states, pulses, reads.

``DevicePopulation.create(card, shape, seed)`` draws the device-to-device parameters and the
stuck/dead masks from ``seed`` (once), and starts every device at its low-conductance bound.
``apply_pulses(n, ...)`` integrates |n| pulses per device through the compact model with
cycle-to-cycle noise from the generator passed in; ``conductance(v_read)`` reads with the model's
I–V. Faulty devices ignore programming: stuck-on devices read their own g_max, stuck-off their
g_min, dead devices 0 S.

Clipping is never silent: a numerical overshoot of the integrator, noise that would push a device
past its window, and a set_conductance target outside a device's window are clipped, counted in
:attr:`DevicePopulation.stats` and logged (a WARNING the first time each kind occurs in this
population, DEBUG afterwards so training loops do not flood the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from cosim.devices.base import DeviceModel
from cosim.devices.cards import DeviceCard
from cosim.devices.integrate import IntegratorOptions, PulseStats, integrate_pulse
from cosim.devices.pulse import Pulse
from cosim.devices.registry import Backend, get_model
from cosim.devices.variation import c2c_conductance, c2c_state, draw_params, fault_masks
from cosim.errors import InputError

log = logging.getLogger(__name__)


@dataclass(kw_only=True, slots=True)
class PopulationStats:
    """Cumulative counters of one population."""

    device_pulses: int = 0      # pulses integrated, summed over devices
    noise_clipped: int = 0      # device-pulses whose c2c noise was clipped at the window
    target_clipped: int = 0     # set_conductance targets outside a device's window
    integrator: PulseStats = field(default_factory=PulseStats)


class DevicePopulation:
    """Devices of one card laid out in an array of ``shape`` (e.g. (n_rows, n_cols))."""

    def __init__(self, *, card: DeviceCard, shape: tuple[int, ...], model: DeviceModel, params: dict,
                 stuck_on: np.ndarray, stuck_off: np.ndarray, dead: np.ndarray,
                 integrator: IntegratorOptions | None = None):
        self.card = card
        self.shape = tuple(int(s) for s in shape)
        self.size = int(np.prod(self.shape))
        self.model = model
        self.params = params
        self.stuck_on, self.stuck_off, self.dead = stuck_on, stuck_off, dead
        self.healthy = ~(stuck_on | stuck_off | dead)
        self.integrator = integrator or IntegratorOptions()
        self.stats = PopulationStats()
        self._warned: set[str] = set()
        self._x = np.asarray(model.bound_toward(-1, params), dtype=float) * np.ones(self.size)
        self._shaped: dict | None = None

    @classmethod
    def create(cls, card: DeviceCard, shape: tuple[int, ...], seed: int = 0, *, backend: Backend = "numpy",
               integrator: IntegratorOptions | None = None) -> DevicePopulation:
        """Draw d2d parameters and fault masks for ``shape`` devices from ``seed``.

        backend: "numpy" (default: the fastest measured, see benchmarks/bench_devices.py),
        "compiled" (verilogae rate functions from models/*.va; equal to 1e-10 but slower, its
        per-element call cost being higher, see benchmarks/bench_devices.py) or "auto"
        (compiled when available, else numpy). integrator: pulse numerics (default: exact where
        the model has a closed form, else adaptive Dormand–Prince).
        """
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        if any(s < 1 for s in shape):
            raise InputError(f"population shape must be positive, got {shape}")
        n = int(np.prod(shape))
        rng = np.random.default_rng(seed)
        model = get_model(card.model, backend)
        params = draw_params(model, card.params, card.variation, n, rng)
        on, off, dead = fault_masks(card.variation, n, rng)
        return cls(card=card, shape=shape, model=model, params=params, stuck_on=on, stuck_off=off,
                   dead=dead, integrator=integrator)

    # -- state and reads -------------------------------------------------------------------------
    def shaped_params(self) -> dict:
        """The per-device parameters as arrays of ``shape`` (views; scalars as they are), formed
        once: a cell law is built from them after every write (cosim.array.cells.population_law)."""
        if self._shaped is None:
            self._shaped = {k: (np.reshape(v, self.shape) if np.ndim(v) else v) for k, v in self.params.items()}
        return self._shaped

    @property
    def state(self) -> np.ndarray:
        """Model states, array of ``shape`` (a copy; use set_state / set_conductance to change)."""
        return self._x.reshape(self.shape).copy()

    def set_state(self, state: np.ndarray) -> None:
        """Place every device at ``state`` (model units); values outside the bounds are refused."""
        x = np.broadcast_to(np.asarray(state, dtype=float), self.shape).reshape(-1)
        lo, hi = (np.broadcast_to(b, (self.size,)) for b in self.model.state_bounds(self.params))
        if not np.all((x >= lo) & (x <= hi)):
            raise InputError(f"state must lie within the {self.model.name} bounds of each device")
        self._x = x.copy()

    def window(self, v_read: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-device (g_lo, g_hi) in S at ``v_read`` (default the card's), arrays of ``shape``."""
        v = self.card.programming.v_read if v_read is None else v_read
        lo, hi = self.model.g_window(v, self.params)
        return (np.broadcast_to(lo, (self.size,)).reshape(self.shape).copy(),
                np.broadcast_to(hi, (self.size,)).reshape(self.shape).copy())

    def conductance(self, v_read: float | None = None) -> np.ndarray:
        """Read conductance I(v_read)/v_read of every device, S, array of ``shape``."""
        v = self.card.programming.v_read if v_read is None else v_read
        g = np.broadcast_to(self.model.conductance(self._x, v, self.params), (self.size,)).copy()
        if not self.healthy.all():
            g_lo, g_hi = (np.broadcast_to(b, (self.size,)) for b in self.model.g_window(v, self.params))
            g = np.where(self.stuck_on, g_hi, np.where(self.stuck_off, g_lo, g))
            g[self.dead] = 0.0
        return g.reshape(self.shape)

    def set_conductance(self, g_target: np.ndarray | float, v_read: float | None = None) -> None:
        """Place each healthy device exactly at ``g_target`` (S) read at v_read (ideal write-verify).

        Targets outside a device's own window are clipped to it (counted, logged); faulty devices
        keep their fixed read values.
        """
        v = self.card.programming.v_read if v_read is None else v_read
        g = np.broadcast_to(np.asarray(g_target, dtype=float), self.shape).reshape(-1)
        if not np.all(np.isfinite(g)):
            raise InputError("g_target must be finite S")
        g_lo, g_hi = (np.broadcast_to(b, (self.size,)) for b in self.model.g_window(v, self.params))
        outside = self.healthy & ((g < g_lo) | (g > g_hi))
        if outside.any():
            self.stats.target_clipped += int(outside.sum())
            self._report("target", f"{int(outside.sum())} set_conductance target(s) outside the device "
                         "window were clipped to it")
        x = self.model.state_for_conductance(np.clip(g, g_lo, g_hi), v, self.params)
        self._x = np.where(self.healthy, self._bounded(x), self._x)

    # -- programming -----------------------------------------------------------------------------
    def apply_pulses(self, n: np.ndarray, *, voltage: np.ndarray | float | None = None,
                     width: float | None = None, rng: np.random.Generator | None) -> None:
        """Apply |n| pulses per device: n > 0 SET (conductance up), n < 0 RESET, 0 untouched.

        voltage: signed voltage each device really sees during its pulses (e.g. after IR drop),
            scalar or array of ``shape``; default the card's amplitude_set / amplitude_reset.
            Its sign must be the model's SET polarity where n > 0 and the opposite where n < 0
            (0 V is allowed: nothing happens).
        width: flat-top width, s (default the card's); rise/fall are the card's.
        rng: source of cycle-to-cycle noise; None applies the nominal (noise-free) response.
        """
        n = np.asarray(n)
        if n.shape != self.shape:
            raise InputError(f"n must have the population shape {self.shape}, got {n.shape}")
        if not np.all(np.isfinite(n)) or not np.all(n == np.round(n)):
            raise InputError("n must hold whole (signed) pulse counts")
        n = n.astype(np.int64).reshape(-1)
        prog = self.card.programming
        direction = np.sign(n)
        if voltage is None:
            amp = np.where(direction > 0, prog.amplitude_set, prog.amplitude_reset)
        else:
            amp = np.broadcast_to(np.asarray(voltage, dtype=float), self.shape).reshape(-1)
            wrong = (direction != 0) & (np.sign(amp) * self.model.set_polarity * direction < 0)
            if wrong.any():
                i = int(np.flatnonzero(wrong)[0])
                where = tuple(int(k) for k in np.unravel_index(i, self.shape))
                raise InputError(f"voltage[{where}] = {float(amp[i])!r} V has the wrong polarity "
                                 f"for a {'SET' if direction[i] > 0 else 'RESET'} of {self.model.name}")
        self._pulse_train(np.abs(n), amp, width, rng)

    def apply_voltage_pulses(self, counts: np.ndarray, voltage: np.ndarray | float, *, width: float | None = None,
                             rng: np.random.Generator | None) -> None:
        """Apply ``counts`` (≥ 0) pulses of the given signed ``voltage`` whatever their effect.

        For disturb studies (half-selected cells under V/2 or V/3 schemes): the model decides
        whether a pulse moves the state and in which direction.
        """
        counts = np.asarray(counts)
        if counts.shape != self.shape or np.any(counts < 0) or not np.all(counts == np.round(counts)):
            raise InputError(f"counts must be whole numbers ≥ 0 of the population shape {self.shape}")
        amp = np.broadcast_to(np.asarray(voltage, dtype=float), self.shape).reshape(-1)
        self._pulse_train(counts.astype(np.int64).reshape(-1), amp, width, rng)

    def _pulse_train(self, counts: np.ndarray, amp: np.ndarray, width: float | None, rng) -> None:
        prog = self.card.programming
        width = prog.width if width is None else float(width)
        counts = np.where(self.healthy, counts, 0)
        var = self.card.variation
        for k in range(int(counts.max(initial=0))):
            idx = np.flatnonzero(counts > k)
            p = {name: (v[idx] if np.ndim(v) else v) for name, v in self.params.items()}
            pulse = Pulse(amplitude=amp[idx], width=width, rise=prog.rise, fall=prog.fall)
            x0 = self._x[idx]
            x1 = integrate_pulse(self.model, x0, p, pulse, self.integrator, self.stats.integrator)
            if rng is not None and var.c2c > 0:
                x1 = self._noisy(x0, x1, p, rng)
            self._x[idx] = x1
            self.stats.device_pulses += idx.size
        if self.stats.integrator.clipped:
            self._report("integrator", f"{self.stats.integrator.clipped} integrator overshoot(s) clipped so far "
                         f"(largest {self.stats.integrator.max_overshoot:.3g} of the range)")

    def _noisy(self, x0: np.ndarray, x1: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
        var = self.card.variation
        lo, hi = (np.broadcast_to(b, x0.shape) for b in self.model.state_bounds(p))
        if var.c2c_mode == "state":
            x = c2c_state(x0, x1, var.c2c, rng)
            out = (x < lo) | (x > hi)
            x = np.clip(x, lo, hi)
        else:
            v = self.card.programming.v_read
            g_lo, g_hi = (np.broadcast_to(b, x0.shape) for b in self.model.g_window(v, p))
            g = c2c_conductance(self.model.conductance(x1, v, p), x1 != x0, var.c2c, g_lo, g_hi, rng)
            out = (g < g_lo) | (g > g_hi)
            x = self._bounded(self.model.state_for_conductance(np.clip(g, g_lo, g_hi), v, p), p)
        if out.any():
            self.stats.noise_clipped += int(out.sum())
            self._report("noise", f"c2c noise pushed {int(out.sum())} device(s) past their window; clipped to it "
                         f"({self.stats.noise_clipped} so far)")
        return x

    def _bounded(self, x: np.ndarray, params: dict | None = None) -> np.ndarray:
        # Only round-off can leave the bounds here (the conductance was clipped to the window).
        lo, hi = self.model.state_bounds(self.params if params is None else params)
        return np.clip(x, lo, hi)

    def _report(self, kind: str, message: str) -> None:
        if kind in self._warned:
            log.debug("%s: %s", self.card.name or self.model.name, message)
        else:
            self._warned.add(kind)
            log.warning("%s: %s (further occurrences are counted in .stats and logged at DEBUG)",
                        self.card.name or self.model.name, message)
