"""Tiki-taka: a fast array A takes the pulsed gradient updates, and is periodically transferred,
one row at a time and read through its tile, into the weight array C (Gokmen & Haensch,
"Algorithm for training neural networks on resistive device arrays", Front. Neurosci. 14:103,
2020).

Each weight layer gets a second, fast array A on tiles of the same size, devices and converters
as the weight array C (the training loop builds it, :attr:`TikiTaka.fast_array`). Per step:

1. **A update** (every step): the gradient g becomes ΔA* = −η·g, pulsed onto A's pairs with the
   "split" rule (SET on one device, RESET on the other) and stochastic rounding of the nominal
   pulse count, n = ⌊p⌋ + Bernoulli(p − ⌊p⌋), p = ΔA*/(scale·s̄), the unbiased pulse coding the
   paper uses. A starts at zero, both devices at the nominal curve's **symmetry point** (where a
   SET and a RESET step are equal, :func:`symmetry_point`): there random up/down pulses leave A
   where it is, while the devices' own asymmetry pulls a device that wanders off back towards it,
   the decay the paper relies on instead of resetting A.
2. **Transfer** (every ``transfer_every`` steps): the next ``transfer_rows`` rows i of A (cyclic)
   are read by driving one-hot inputs e_i through A's tiles (DAC → circuit → ADC, so wires and
   converters act on the transfer as on any read), and C's row i receives
   ΔC* = ``transfer_lr``·A[i, :], pulsed with the pair policy ``policy`` and stochastic rounding.
   A is not reset after a transfer (Tiki-taka v1).

The forward and backward passes read C only (the paper's W = γ·A + C with γ = 0). Pulses on A
count as training pulses like any other. Every read of A is a real tile read (counted in the tile
stats). ``train.lr`` is η (weight units per gradient unit, as for sgd-pulse).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from cosim.schema import param
from cosim.train.curves import PulseCurve, nominal_steps
from cosim.train.optimizers.base import (
    PAIR_POLICIES,
    PairPolicy,
    PulseConfig,
    PulseOptimizer,
    learning_rate,
    plan_pulses,
)

SYMMETRY_GRID = 2001  # conductances scanned for the symmetry point (the window in 0.05 % steps)


def symmetry_point(curve: PulseCurve) -> float:
    """The conductance (S) where one nominal SET step equals one RESET step in size.

    On a device whose steps shrink towards the bound they approach (soft bounds, the NeuroSim
    exponential curves) the SET step falls and the RESET step rises with g, so the point is
    unique; on a linear curve every g qualifies and the window's middle is returned.
    """
    g = np.linspace(curve.g_min, curve.g_max, SYMMETRY_GRID)[1:-1]
    up = np.asarray(curve.delta_g(g, np.ones_like(g)), dtype=float)
    down = -np.asarray(curve.delta_g(g, -np.ones_like(g)), dtype=float)
    diff = up - down
    scale = max(float(np.max(np.abs(up))), float(np.max(np.abs(down))), 1e-300)
    if np.all(np.abs(diff) <= 1e-9 * scale):
        return 0.5 * (curve.g_min + curve.g_max)
    k = int(np.argmin(np.abs(diff)))
    if 0 < k < diff.size - 1 and np.sign(diff[k - 1]) != np.sign(diff[k + 1]):
        j = k - 1 if np.sign(diff[k - 1]) != np.sign(diff[k]) else k  # refine on the bracketing pair
        d0, d1 = diff[j], diff[j + 1]
        if d0 != d1:
            return float(g[j] + (g[j + 1] - g[j]) * d0 / (d0 - d1))
    return float(g[k])


@dataclass(frozen=True, kw_only=True, slots=True)
class TikiTakaConfig(PulseConfig):
    """Tiki-taka settings; the shared fields are those of :class:`PulseConfig` (``policy`` is
    that of C's transfer pulses: A always uses "split", it must move both ways about zero;
    ``max_pulses`` caps A and C; ``refresh_threshold`` is a fraction of C's window).

    Attributes:
        lr: learning rate η of the fast array A (> 0), weight units per gradient unit.
        transfer_lr: fraction of A's read row added to C per transfer (> 0, dimensionless).
        transfer_every: training steps between two transfers (integer ≥ 1).
        transfer_rows: rows of A read and transferred per transfer (integer ≥ 1).
    """

    policy: PairPolicy = param("split", type="str", choices=PAIR_POLICIES)
    lr: float = learning_rate()
    transfer_lr: float = param(0.03, type="float", minimum=0.0, exclusive_min=True)
    transfer_every: int = param(1, type="int", minimum=1)
    transfer_rows: int = param(16, type="int", minimum=1)


class TikiTaka(PulseOptimizer):
    """Tiki-taka v1 (module docstring). :meth:`step` plans A's pulses; :meth:`transfer` reads A
    and plans C's."""

    name = "tiki-taka"
    config_cls = TikiTakaConfig
    fast_array = True

    def __init__(self, config: TikiTakaConfig | None = None) -> None:
        super().__init__(config)
        self._cursor: dict[Hashable, int] = {}

    @property
    def unbiased(self) -> bool:
        return True

    @property
    def reinit_mode(self) -> str:
        return "reference"

    def reset(self, layer_id: Hashable | None = None) -> None:
        super().reset(layer_id)
        if layer_id is None:
            self._cursor.clear()
        else:
            self._cursor.pop(layer_id, None)

    def fast_start(self, curve: PulseCurve, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Write-verify targets (g⁺, g⁻) in S that make A zero: both devices at the symmetry point."""
        g0 = np.full(shape, symmetry_point(curve))
        return g0, g0.copy()

    def _step(self, state, grad, g_plus, g_minus, curve, rng, scale, lr):
        n_p, n_m, _ = plan_pulses(-lr * grad / scale, g_plus, g_minus, curve, policy="split", compensate=False,
                                  rounding="stochastic", rng=rng, max_pulses=self.config.max_pulses)
        return n_p, n_m

    def transfer(self, layer_id: Hashable, read_fast: Callable[[np.ndarray], np.ndarray], g_plus_est: np.ndarray,
                 g_minus_est: np.ndarray, curve: PulseCurve, rng: np.random.Generator, *, scale: float
                 ) -> tuple[np.ndarray, np.ndarray] | None:
        """C's pulse counts (n⁺, n⁻) for this step's transfer, or None when none is due.

        Call once after each :meth:`step` of the layer. ``read_fast(x)`` must return x·A (B, n_out)
        for one-hot rows x (B, n_in), read through A's tiles; ``g_plus_est``/``g_minus_est`` are
        C's estimated conductances, S.
        """
        state = self.layer_state(layer_id)
        cfg = self.config
        if state.steps % cfg.transfer_every:
            return None
        n_in = g_plus_est.shape[0]
        start = self._cursor.get(layer_id, 0)
        rows = (start + np.arange(min(cfg.transfer_rows, n_in))) % n_in
        self._cursor[layer_id] = int((start + rows.size) % n_in)
        x = np.zeros((rows.size, n_in))
        x[np.arange(rows.size), rows] = 1.0
        a_rows = np.asarray(read_fast(x), dtype=float)
        want = np.zeros(g_plus_est.shape)
        want[rows] = cfg.transfer_lr * a_rows / scale
        n_p, n_m, _ = plan_pulses(want, g_plus_est, g_minus_est, curve, policy=cfg.policy, compensate=False,
                                  rounding="stochastic", rng=rng, max_pulses=cfg.max_pulses,
                                  steps=nominal_steps(curve))
        return n_p, n_m
