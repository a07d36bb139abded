"""Shared machinery of the pulse optimizers: the pair policy, pulse counting, rounding, state.

Weights live on differential pairs, ``w = scale·(g⁺ − g⁻)`` (``scale`` in weight units per S).
A desired weight change ΔW* becomes a desired pair change ΔG* = ΔW*/scale (S), which the
**pair policy** splits into one desired change per device:

- ``"set-only"`` (default): ΔG* > 0 → SET pulses on G⁺ (Δg⁺* = ΔG*), ΔG* < 0 → SET pulses on
  G⁻ (Δg⁻* = −ΔG*). Conductances only rise: fewest, most reproducible pulses, but pairs drift
  towards g_max and need a refresh (:func:`~cosim.train.optimizers.reinit.refresh_plan`).
- ``"split"``: Δg⁺* = ΔG*/2 and Δg⁻* = −ΔG*/2: SET on one device, RESET on the other; the
  pair's common mode stays put, at twice the pulse count.
- ``"plus-only"``: Δg⁺* = ΔG*, both directions on G⁺; G⁻ is never pulsed (a fixed reference).

Each device's desired change becomes a real-valued pulse count p, either

- nominal (no compensation): p = Δg*/s̄, with s̄ the curve's mean step in that direction
  (:func:`~cosim.train.curves.nominal_steps`), or
- compensated: p = curve.pulses_for(ĝ, Δg*), from the *estimated* state ĝ on the nominal
  curve (no read-back),

which is rounded to an integer n: "nearest" (half away from zero), "trunc" (towards zero: fire
only past one full step) or "stochastic" (n = ⌊p⌋ + Bernoulli(p − ⌊p⌋), so E[n] = p). The
pair change the nominal curve predicts for those pulses is ``realised`` (S); methods that carry
a residual keep r = ΔG* − realised, clipped to one pulse per device touched (SSM: its
``residual_limit``), so that a saturated device or a ``max_pulses`` cap drops the unrealisable
rest instead of piling it up (anti-windup).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cosim.errors import InputError, SpecError
from cosim.schema import check_fields, param
from cosim.train.curves import PulseCurve, nominal_steps
from cosim.train.optimizers.pairs import (  # noqa: F401  (advance_estimate, round_pulses: re-exported)
    PAIR_POLICIES,
    PairPolicy,
    Rounding,
    advance_estimate,
    pair_step,
    round_pulses,
    split_pair_update,
)
from cosim.train.optimizers.reinit import plan_reinit, refresh_plan


def _real_pulses(dg, g, curve, compensate, steps):
    if compensate:
        return np.asarray(curve.pulses_for(g, dg), dtype=float)
    return np.where(dg > 0, dg / steps[0], dg / steps[1])


def _nominal_change(n, g, curve, compensate, steps):
    if compensate:
        return np.asarray(curve.delta_g(g, n), dtype=float)
    return np.where(n > 0, n * steps[0], n * steps[1])


def plan_pulses(dg_pair: np.ndarray, g_plus: np.ndarray, g_minus: np.ndarray, curve: PulseCurve, *,
                policy: PairPolicy, compensate: bool, rounding: Rounding, rng: np.random.Generator | None,
                max_pulses: int | None, steps: tuple[float, float] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed pulse counts (n⁺, n⁻) and the nominal realised pair change (S) for ``dg_pair``."""
    steps = steps or nominal_steps(curve)
    want_p, want_m = split_pair_update(dg_pair, policy)
    counts, realised = [], []
    for want, g in ((want_p, g_plus), (want_m, g_minus)):
        n = round_pulses(_real_pulses(want, g, curve, compensate, steps), rounding, rng)
        if max_pulses is not None:
            n = np.clip(n, -max_pulses, max_pulses)
        counts.append(n)
        realised.append(_nominal_change(n, g, curve, compensate, steps))
    return counts[0], counts[1], realised[0] - realised[1]


def filter_gradient(state: LayerState, grad: np.ndarray, beta: float | None, normalize: bool) -> np.ndarray:
    """u from g: EMA momentum m ← β·m + (1−β)·g if ``beta`` is set (m kept in ``state``), then the
    WAGE shift normalisation u ← u / 2^round(log2 max|u|) if ``normalize``."""
    u = grad
    if beta is not None:
        if state.momentum is None:
            state.momentum = np.zeros_like(grad)
        state.momentum *= beta
        state.momentum += (1.0 - beta) * grad
        u = state.momentum
    if normalize:
        peak = float(np.max(np.abs(u))) if u.size else 0.0
        if peak > 0:
            u = u / 2.0 ** np.round(np.log2(peak))
    return u


@dataclass(frozen=True, kw_only=True, slots=True)
class PulseConfig:
    """The fields every pulse optimizer's config shares (subclass it and add the method's own).

    Attributes:
        policy: pair policy, "set-only" | "split" | "plus-only" (module docstring).
        max_pulses: cap on |n| per device per step (≥ 1), or None for no cap.
        refresh_threshold: fraction of the window (0, 1] beyond which the loop refreshes a
            saturated pair, or None for never.
        refresh_keep: what a refresh keeps: "devices" (None, the default) each refreshed pair's
            weight scale·(g⁺ − g⁻); "tiles" also the weights the tiles deliver, through a
            unit-row read of every tile before and after and re-targeted writes until they
            match (:func:`~.reinit.keep_tiles_plan`, up to ``reinit.KEEP_TILES_ROUNDS`` rounds;
            write-verify only).
            With wires a refresh that lowers the pairs' common mode moves the drops, and so
            what the tiles deliver, even where every pair keeps its weight.
        write_verify: re-initialisation and refresh program their targets with write-verify
            (True) or open-loop, by saturating both devices at g_min and pulsing up from there
            (False).

    Every field is declared with :func:`cosim.schema.param`; errors name ``optimizer.<field>``.
    """

    policy: PairPolicy = param("set-only", type="str", choices=PAIR_POLICIES)
    max_pulses: int | None = param(None, type="int", minimum=1)
    refresh_threshold: float | None = param(None, type="float", minimum=0.0, exclusive_min=True, maximum=1.0)
    refresh_keep: str | None = param(None, type="str", choices=("devices", "tiles"), none=True)
    write_verify: bool = param(True, type="bool")

    def __post_init__(self) -> None:
        check_fields(self, "optimizer")
        if self.refresh_keep is not None and self.refresh_threshold is None:
            raise SpecError.at("optimizer.refresh_keep", "says what a refresh keeps, but optimizer.refresh_threshold "
                               "is none (no refresh); set a threshold or leave refresh_keep out")
        if self.refresh_keep == "tiles" and not self.write_verify:
            raise SpecError.at("optimizer.refresh_keep", "= 'tiles' re-targets devices by write-verify; it needs "
                               "optimizer.write_verify = true")


def learning_rate(default: float = 0.1) -> Any:
    """The ``lr`` field of a config whose method scales its pulses by η (> 0, weight units per
    gradient unit); the training loop passes ``train.lr`` over it at every step."""
    return param(default, type="float", minimum=0.0, exclusive_min=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class ScaledPulseConfig(PulseConfig):
    """:class:`PulseConfig` plus ``lr``, the learning rate η (> 0, weight units per gradient
    unit), for the methods that scale their requests by it (sgd-pulse, mixed-precision)."""

    lr: float = learning_rate()


@dataclass
class LayerState:
    """What an optimizer keeps for one layer in the digital periphery.

    Attributes:
        momentum: momentum buffer m, gradient units (None when the method keeps none).
        residual: carried pair-conductance residual / accumulator, S (None when none).
        steps: number of ``step`` calls so far.
    """

    shape: tuple[int, ...]
    momentum: np.ndarray | None = None
    residual: np.ndarray | None = None
    steps: int = 0


class PulseOptimizer:
    """Base of the pulse optimizers: per-layer state, argument checks, re-initialisation hooks.

    Subclasses set ``name`` and ``config_cls``, implement ``_step``, and override
    :attr:`unbiased` when they claim it.
    """

    name: ClassVar[str]
    config_cls: ClassVar[type]
    # Whether the method trains a second, fast array A per layer (Tiki-taka): the loop then builds
    # one like the weight layer, starts it with ``fast_start``, sends ``step``'s pulses to it and
    # ``transfer``'s pulses to the weight array.
    fast_array: ClassVar[bool] = False

    @property
    def unbiased(self) -> bool:
        """Whether, given the estimated state, E[n] equals the requested real pulse count."""
        return False

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.config_cls()
        if not isinstance(self.config, self.config_cls):
            raise SpecError(f"{self.name} needs a {self.config_cls.__name__}, got {type(self.config).__name__}")
        self._states: dict[Hashable, LayerState] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    @property
    def reinit_mode(self) -> str:
        """Re-initialisation the training loop applies before training (see :mod:`.reinit`)."""
        return "none"

    def initial_plan(self, w_init: np.ndarray, curve: PulseCurve, scale: float, *,
                     g_plus_read: np.ndarray | None = None, g_minus_read: np.ndarray | None = None,
                     g_assumed: float | np.ndarray | None = None) -> Any:
        """The layer's :class:`~.reinit.ReinitPlan` for this method's :attr:`reinit_mode`."""
        return plan_reinit(self.reinit_mode, w_init, curve, policy=self.config.policy, scale=scale,
                           g_plus_read=g_plus_read, g_minus_read=g_minus_read, g_assumed=g_assumed,
                           write_verify=self.config.write_verify)

    def refresh(self, g_plus_read: np.ndarray, g_minus_read: np.ndarray, curve: PulseCurve,
                scale: float) -> Any:
        """A refresh :class:`~.reinit.ReinitPlan` for the saturated pairs, or None when
        ``config.refresh_threshold`` is None or no pair is saturated."""
        if self.config.refresh_threshold is None:
            return None
        plan = refresh_plan(g_plus_read, g_minus_read, curve, policy=self.config.policy, scale=scale,
                            threshold=self.config.refresh_threshold,
                            write_verify=self.config.write_verify)
        return plan if plan.mask.any() else None

    def layer_state(self, layer_id: Hashable) -> LayerState:
        return self._states[layer_id]

    def reset(self, layer_id: Hashable | None = None) -> None:
        """Forget the state of one layer, or of all."""
        if layer_id is None:
            self._states.clear()
        else:
            self._states.pop(layer_id, None)

    def step(self, layer_id: Hashable, grad: np.ndarray, g_plus_est: np.ndarray, g_minus_est: np.ndarray,
             curve: PulseCurve, rng: np.random.Generator, *, scale: float,
             lr: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Signed int64 pulse counts (n⁺, n⁻) for one layer's gradient ``grad`` (dL/dW).

        Args:
            layer_id: any hashable key; state is kept per key.
            grad: (rows, cols) weight gradient of the batch-mean loss.
            g_plus_est, g_minus_est: estimated conductances of the pair's devices, S.
            curve: nominal pulse-response curve of the devices.
            rng: generator for stochastic rounding.
            scale: weight units per siemens of (g⁺ − g⁻) (> 0).
            lr: overrides ``config.lr`` for this step (schedules).
        """
        grad = np.asarray(grad, dtype=float)
        g_plus_est, g_minus_est = np.asarray(g_plus_est, dtype=float), np.asarray(g_minus_est, dtype=float)
        if g_plus_est.shape != grad.shape or g_minus_est.shape != grad.shape:
            raise InputError(f"{self.name}: layer {layer_id!r} gradient {grad.shape} and conductances "
                             f"{g_plus_est.shape}/{g_minus_est.shape} must have the same shape")
        if not np.all(np.isfinite(grad)):
            raise InputError(f"{self.name}: layer {layer_id!r} gradient has non-finite values (training diverged?)")
        if not (np.isfinite(scale) and scale > 0):
            raise SpecError(f"{self.name}: scale must be > 0 weight units per S, got {scale!r}")
        if lr is not None and not (np.isfinite(lr) and lr > 0):
            raise SpecError(f"{self.name}: lr must be > 0, got {lr!r}")
        state = self._states.get(layer_id)
        if state is None or state.shape != grad.shape:
            state = self._states[layer_id] = LayerState(shape=grad.shape)
        n_plus, n_minus = self._step(state, grad, g_plus_est, g_minus_est, curve, rng, float(scale),
                                     getattr(self.config, "lr", None) if lr is None else lr)
        state.steps += 1
        return n_plus, n_minus

    def _step(self, state, grad, g_plus, g_minus, curve, rng, scale, lr):  # pragma: no cover - abstract
        raise NotImplementedError

    def _carry(self, state: LayerState, want: np.ndarray, realised: np.ndarray,
               steps: tuple[float, float], pulses: float = 1.0) -> None:
        limit = pulses * pair_step(steps, self.config.policy)
        state.residual = np.clip(want - realised, -limit, limit)


@dataclass(frozen=True, kw_only=True, slots=True)
class FloatSGDConfig:
    """Software reference optimizer (the float run the pulse methods are compared with).

    Attributes:
        lr: learning rate η (> 0): ΔW = −η·u.
        beta: EMA momentum coefficient in [0, 1), or None for plain SGD (same convention as SSM).
        normalize: WAGE shift normalisation of u per layer (as SSM's ``normalize``).
    """

    lr: float = learning_rate()
    beta: float | None = param(None, type="float", minimum=0.0, maximum=1.0, exclusive_max=True)
    normalize: bool = param(False, type="bool")

    def __post_init__(self) -> None:
        check_fields(self, "optimizer")


class FloatSGD:
    """Float (momentum) SGD with the SSM conventions: returns ΔW = −η·u, never pulses."""

    def __init__(self, config: FloatSGDConfig | None = None) -> None:
        self.config = config or FloatSGDConfig()
        self._states: dict[Hashable, LayerState] = {}

    def step(self, layer_id: Hashable, grad: np.ndarray, *, lr: float | None = None) -> np.ndarray:
        grad = np.asarray(grad, dtype=float)
        state = self._states.setdefault(layer_id, LayerState(shape=grad.shape))
        u = filter_gradient(state, grad, self.config.beta, self.config.normalize)
        state.steps += 1
        return -(self.config.lr if lr is None else lr) * u
