"""A programming pulse: a trapezoid of amplitude A, flat top ``width``, linear ``rise``/``fall``.

Time runs from 0 (start of the rise) to ``rise + width + fall``; the voltage is
``A·t/rise`` on the rise, ``A`` on the flat top and ``A·(1 - (t - rise - width)/fall)`` on the
fall. Between pulses the device sees 0 V, at which every cosim model is inert (all have
thresholds), so a train of pulses is a sequence of independent pulse integrations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cosim.errors import SpecError


@dataclass(frozen=True, kw_only=True, slots=True)
class Pulse:
    """One pulse shape, possibly with a different amplitude per device.

    Attributes:
        amplitude: signed voltage across the device during the flat top, V (scalar, or an array
            with one value per device, e.g. the voltages a circuit solve delivers after IR drop).
        width: flat-top duration, s (> 0).
        rise, fall: linear ramp durations, s (≥ 0; 0 gives a rectangular edge).
    """

    amplitude: float | np.ndarray
    width: float
    rise: float = 0.0
    fall: float = 0.0

    def __post_init__(self) -> None:
        amp = np.asarray(self.amplitude, dtype=float)
        if not np.all(np.isfinite(amp)):
            raise SpecError("pulse.amplitude must be finite V")
        for name in ("width", "rise", "fall"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value)):
                raise SpecError(f"pulse.{name} must be a finite number of seconds, got {value!r}")
        if self.width <= 0:
            raise SpecError(f"pulse.width must be > 0 s, got {self.width!r}")
        if self.rise < 0 or self.fall < 0:
            raise SpecError(f"pulse.rise and pulse.fall must be ≥ 0 s, got {self.rise!r}, {self.fall!r}")
        object.__setattr__(self, "amplitude", float(amp) if amp.ndim == 0 else amp)

    @property
    def duration(self) -> float:
        """Total time from the start of the rise to the end of the fall, s."""
        return self.rise + self.width + self.fall

    def segments(self) -> list[tuple[float, float, float]]:
        """(duration, start fraction, end fraction) of each linear piece with non-zero length.

        The voltage on a piece goes linearly from ``start·A`` to ``end·A``.
        """
        pieces = [(self.rise, 0.0, 1.0), (self.width, 1.0, 1.0), (self.fall, 1.0, 0.0)]
        return [p for p in pieces if p[0] > 0]

    def voltage(self, t: np.ndarray | float) -> np.ndarray:
        """Voltage at time(s) ``t`` (s since the start of the rise); 0 outside the pulse."""
        t = np.asarray(t, dtype=float)
        frac = np.zeros_like(t)
        t1, t2, t3 = self.rise, self.rise + self.width, self.duration
        on_rise = (t >= 0) & (t < t1)
        frac = np.where(on_rise, t / t1 if t1 > 0 else 1.0, frac)
        frac = np.where((t >= t1) & (t <= t2), 1.0, frac)
        on_fall = (t > t2) & (t <= t3)
        frac = np.where(on_fall, 1.0 - (t - t2) / self.fall if self.fall > 0 else 0.0, frac)
        return np.asarray(self.amplitude) * frac

    def with_amplitude(self, amplitude: float | np.ndarray) -> Pulse:
        return Pulse(amplitude=amplitude, width=self.width, rise=self.rise, fall=self.fall)
