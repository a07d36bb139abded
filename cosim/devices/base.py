"""The small base every compact model shares (STYLE.md item 8).

A model is a set of pure, vectorised functions of ``(state, v, params)``: the device current, the
state rate and, derived from them, the conductance at a read voltage, the state bounds and the
inverse ``state_for_conductance``. Pulses (:mod:`cosim.devices.integrate`), reads and noise
(:mod:`cosim.devices.population`) are built only on these.

Conventions: ``state`` and ``v`` are float arrays of one shape (or broadcastable); ``params`` maps
each parameter name to a float or to an array of that shape (device-to-device variation). All
quantities are SI unless a :class:`~cosim.devices.params.ParamSpec` says otherwise.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from cosim.devices.params import ParamSpec, check_params
from cosim.errors import SpecError

if TYPE_CHECKING:
    from cosim.devices.pulse import Pulse

Params = Mapping[str, "np.ndarray | float"]


class DeviceModel(abc.ABC):
    """Interface of a compact model; subclasses are stateless and hold only metadata.

    Class attributes:
        name: registry key and card ``model`` value.
        reference: paper and equation numbers the equations come from.
        state_name, state_unit: what the state variable is.
        specs: the parameters with units and valid ranges.
        set_polarity: sign (+1 / -1) of the voltage that raises the conductance (SET).
        g_increases_with_state: True if the conductance grows with the state variable.
        hard_bounds: True if the equations stop the state at its bounds (a reached bound is model
            behaviour); False if the bounds are only approached (a crossing is a numerical error).
        va_file: the Verilog-A source in ``models/`` with the same equations.
        va_state_scale: state = V(x) * va_state_scale on the Verilog-A internal node.
        has_exact_pulse: :meth:`exact_pulse` gives a closed-form whole-pulse update.
        va_current, va_rate: names of the ``(*retrieve*)`` variables for current and state rate.
    """

    name: ClassVar[str]
    reference: ClassVar[str]
    state_name: ClassVar[str]
    state_unit: ClassVar[str]
    specs: ClassVar[tuple[ParamSpec, ...]]
    set_polarity: ClassVar[int]
    g_increases_with_state: ClassVar[bool]
    hard_bounds: ClassVar[bool]
    va_file: ClassVar[str]
    va_state_scale: ClassVar[float]
    has_exact_pulse: ClassVar[bool] = False
    va_current: ClassVar[str] = "i_dev"
    va_rate: ClassVar[str]
    backend: str = "numpy"

    # -- the equations -------------------------------------------------------------------------
    @abc.abstractmethod
    def current(self, state: np.ndarray, v: np.ndarray | float, params: Params) -> np.ndarray:
        """Device current in A at device voltage ``v`` (V) and ``state``."""

    @abc.abstractmethod
    def state_rate(self, state: np.ndarray, v: np.ndarray | float, params: Params) -> np.ndarray:
        """d state / dt in state units per second."""

    @abc.abstractmethod
    def state_bounds(self, params: Params) -> tuple[np.ndarray | float, np.ndarray | float]:
        """(lo, hi) bounds of the state, in state units (arrays when params vary per device)."""

    @abc.abstractmethod
    def state_for_conductance(self, g: np.ndarray | float, v_read: float, params: Params) -> np.ndarray:
        """Inverse of :meth:`conductance`: the state whose read conductance is ``g`` (S > 0).

        Not clipped: a ``g`` outside the device window maps outside the state bounds (or to NaN
        for g ≤ 0); callers decide whether to clip and must say so.
        """

    def constraints(self, params: Params) -> list[tuple[np.ndarray, str]]:
        """Cross-parameter conditions as (ok-mask, description) pairs, e.g. ``r_off > r_on``."""
        return []

    def quiet_band(self, params: Params) -> tuple[np.ndarray | float, np.ndarray | float]:
        """(v_lo, v_hi), v_lo ≤ 0 ≤ v_hi: voltages at which the state rate is 0 for every state.

        The integrator skips the parts of a pulse inside this band, so threshold kinks in the
        rate never fall inside an integration step. Default (0, 0): no band.
        """
        return 0.0, 0.0

    def exact_pulse(self, state: np.ndarray, pulse: Pulse, params: Params) -> np.ndarray | None:
        """Closed-form state after one whole pulse, or None when the model has none."""
        return None

    # -- derived -------------------------------------------------------------------------------
    def conductance(self, state: np.ndarray, v_read: float, params: Params) -> np.ndarray:
        """Read conductance I(v_read)/v_read in S (the chord conductance, I–V nonlinearity included)."""
        if v_read == 0:
            raise SpecError(f"{self.name}: v_read must be non-zero for the chord conductance I(v)/v")
        return self.current(state, v_read, params) / v_read

    def g_window(self, v_read: float, params: Params) -> tuple[np.ndarray, np.ndarray]:
        """(g_lo, g_hi): the read conductances at the two state bounds, g_lo ≤ g_hi."""
        lo, hi = self.state_bounds(params)
        g_a = self.conductance(np.asarray(lo, dtype=float), v_read, params)
        g_b = self.conductance(np.asarray(hi, dtype=float), v_read, params)
        return (g_a, g_b) if self.g_increases_with_state else (g_b, g_a)

    def bound_toward(self, direction: int, params: Params) -> np.ndarray | float:
        """The state bound a SET (direction=+1) or RESET (-1) sequence drives towards."""
        lo, hi = self.state_bounds(params)
        up = (direction > 0) == self.g_increases_with_state
        return hi if up else lo

    def validate(self, params: Mapping[str, object], where: str = "params") -> dict[str, float]:
        """Check a nominal parameter set (all present, none unknown, in range, consistent)."""
        out = check_params(self.specs, params, where)
        for ok, text in self.constraints(out):
            if not bool(np.all(ok)):
                raise SpecError(f"{where} must satisfy {text} ({self.name}), got "
                                + ", ".join(f"{k}={out[k]!r}" for k in _names_in(text, out)))
        return out

    def spec(self, name: str) -> ParamSpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.backend})>"


def sinhc(x: np.ndarray) -> np.ndarray:
    """sinh(x)/x with the limit 1 at x = 0 (the sinh I–V laws' conductance factor)."""
    x = np.asarray(x, dtype=float)
    safe = np.where(x == 0.0, 1.0, x)
    return np.where(x == 0.0, 1.0, np.sinh(safe) / safe)


def _names_in(text: str, params: Mapping[str, float]) -> list[str]:
    words = text.replace(">", " ").replace("<", " ").replace("=", " ").replace("(", " ").replace(")", " ").split()
    return [w for w in words if w in params]
