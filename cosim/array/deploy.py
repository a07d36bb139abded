"""Ex-situ deployment: program a layer's float weights into fresh tiles as a chip would.

Targets come from the layer's :class:`~cosim.array.mapping.WeightMap` (one device of each pair
at g_min, the weight on the other). Fresh devices sit at their own low edge (the RESET state a
population is created in). Methods (:attr:`DeploySpec.method`):

- ``"ideal"``: every healthy device lands exactly on its target (clipped to its own window),
  the idealised write-verify of :meth:`Tile.set_conductances`; no pulses are counted.
- ``"open-loop"``: one burst per device of round(n) SET pulses, n read off the card's *nominal*
  pulse curve from the nominal g_min to the target. Device-to-device spread, c2c noise, faults
  and (through a circuit scheme) IR drop and write disturb all leave their error uncorrected.
- ``"write-verify"``: rounds of verify-read then correct: every device outside ``tolerance``
  (a fraction of the nominal window) gets round(n) pulses (at least one, SET or RESET) from the
  nominal curve at its *read* conductance, until all are within tolerance, a device's pulse
  budget ``max_pulses`` is spent, or ``max_rounds`` rounds have run. Verify reads are single-
  cell reads of the true conductance (a sense amplifier on one cell, no sneak current).
  Devices that cannot meet the tolerance (faulty, target outside their own window, budget or
  rounds spent) are reported, not hidden.

Pulses go to the devices either directly (``scheme="direct"``: each device sees exactly its
intended pulse, no neighbour is touched: :meth:`Tile.apply_pulses`) or through the array's
circuit with a write scheme (``"v/2"``, ``"v/3"``, ``"row-parallel"``:
:func:`~cosim.array.program.program_cells`, one circuit solve per pulse step, so IR drop weakens
far cells and half-selected cells are disturbed). The circuit schemes cost one nodal solve per
step and suit small tiles; ``direct`` is the fast path for large networks.

Time model: pulses are sequential per tile, width = the card's pulse width, ``direct`` and the
one-cell schemes one device per step, row-parallel one row-direction per step
(ProgramReport.n_steps); each verify round adds one read per device checked, ``t_verify`` each.
Energy proxy per pulse |V|²·G·t_pulse at the intended amplitude (as :class:`Tile`); the energy
of half-selected cells is not counted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from cosim.array.tile import Tile
from cosim.errors import SpecError
from cosim.schema import check_fields, fields_of, param

log = logging.getLogger(__name__)

Method = Literal["ideal", "open-loop", "write-verify"]
METHODS = ("ideal", "open-loop", "write-verify")
SCHEMES = ("direct", "v/2", "v/3", "row-parallel")


@dataclass(frozen=True, kw_only=True, slots=True)
class DeploySpec:
    """How weights are written (see the module docstring); fields checked with the shared
    toolkit (errors name ``deploy.<field>``).

    Attributes:
        method: "ideal" | "open-loop" | "write-verify".
        scheme: "direct" | "v/2" | "v/3" | "row-parallel".
        tolerance: write-verify acceptance, |G − target| ≤ tolerance·(nominal window), in (0, 1).
        max_pulses: write-verify pulse budget per device (integer ≥ 1).
        max_rounds: write-verify rounds (integer ≥ 1).
        t_verify: time of one verify read, s (≥ 0; 100 ns assumed: one sense cycle).
    """

    method: str = param("write-verify", type="str", choices=METHODS, doc="how weights are written")
    scheme: str = param("direct", type="str", choices=SCHEMES, doc="how pulses reach the devices")
    tolerance: float = param(0.02, type="float", minimum=0.0, exclusive_min=True, maximum=1.0, exclusive_max=True,
                             doc="write-verify acceptance, fraction of the nominal window")
    max_pulses: int = param(500, type="int", minimum=1, doc="write-verify pulse budget per device")
    max_rounds: int = param(30, type="int", minimum=1, doc="write-verify rounds")
    t_verify: float = param(100e-9, type="float", minimum=0.0, unit="s", doc="time of one verify read")

    def __post_init__(self) -> None:
        check_fields(self, "deploy")

    def spec(self) -> DeploySpec:
        """The programming part alone (a subclass adds inference settings)."""
        return DeploySpec(**{k: getattr(self, k) for k in fields_of(DeploySpec)})


@dataclass(slots=True)
class TileWrite:
    """What programming one tile did (counts over the cells written)."""

    devices: int = 0
    set_pulses: int = 0
    reset_pulses: int = 0
    steps: int = 0
    verify_reads: int = 0
    rounds: int = 0
    energy: float = 0.0
    seconds: float = 0.0  # modelled programming time, s
    wall: float = 0.0  # simulation time, s
    unmet: int = 0  # healthy devices outside tolerance at the end
    faulty: int = 0
    out_of_window: int = 0
    error: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (G − target)/window of healthy devices
    disturb: float = 0.0  # mean |ΔG|/window of the tile's unwritten cells (circuit schemes)


def _pulse(tile: Tile, n: np.ndarray, spec: DeploySpec, rng, rec: TileWrite) -> None:
    """Send signed counts ``n`` (tile shape) by the spec's scheme; update counters."""
    if not n.any():
        return
    g0 = tile.conductances()
    amp = tile.population.card.programming
    v2 = np.where(n > 0, amp.amplitude_set ** 2, amp.amplitude_reset ** 2)
    rec.energy += float(np.sum(np.abs(n) * v2 * g0) * amp.width)
    rec.set_pulses += int(n[n > 0].sum())
    rec.reset_pulses += int(-n[n < 0].sum())
    if spec.scheme == "direct":
        tile.apply_pulses(n, rng)
        rec.steps += int(np.abs(n).sum())
        return
    from cosim.array.program import ProgramOptions, program_cells

    opts = ProgramOptions(compare_direct=False)
    report = program_cells(tile.array, tile.population, n, scheme=spec.scheme, options=opts, rng=rng)
    tile.invalidate()
    rec.steps += report.n_steps


def program_tile(tile: Tile, target: np.ndarray, mask: np.ndarray, spec: DeploySpec, curve,
                 rng: np.random.Generator | None) -> TileWrite:
    """Program ``tile``'s cells under ``mask`` to ``target`` (S), from fresh (low-edge) devices.

    ``curve`` is the card's nominal :class:`~cosim.devices.PulseTable`; ``rng`` drives c2c noise.
    """
    t0 = time.perf_counter()
    rec = TileWrite()
    mask = np.asarray(mask, dtype=bool)
    window = curve.g_max - curve.g_min
    healthy = ~tile.faults()
    lo, hi = tile.window()
    sel = mask & healthy
    rec.devices = int(mask.sum())
    rec.faulty = int((mask & ~healthy).sum())
    rec.out_of_window = int((sel & ((target < lo - spec.tolerance * window) | (target > hi + spec.tolerance * window))).sum())
    g_before = tile.conductances()
    if spec.method == "ideal":
        tile.set_conductances(np.where(mask, target, g_before), mask)
    elif spec.method == "open-loop":
        n = np.rint(curve.pulses_for(np.full(tile.shape, curve.g_min), target - curve.g_min)).astype(np.int64)
        _pulse(tile, np.where(mask, n, 0), spec, rng, rec)
    else:
        spent = np.zeros(tile.shape, dtype=np.int64)
        for _ in range(spec.max_rounds):
            g = tile.conductances()
            todo = sel & (np.abs(g - target) > spec.tolerance * window) & (spent < spec.max_pulses)
            rec.verify_reads += int((sel & (spent < spec.max_pulses)).sum())
            if not todo.any():
                break
            rec.rounds += 1
            n = np.rint(curve.pulses_for(np.clip(g, curve.g_min, curve.g_max), target - g)).astype(np.int64)
            n = np.where(n == 0, np.sign(target - g).astype(np.int64), n)
            room = spec.max_pulses - spent
            n = np.where(todo, np.clip(n, -room, room), 0)
            spent += np.abs(n)
            _pulse(tile, n, spec, rng, rec)
    g = tile.conductances()
    err = (g - target) / window
    rec.error = err[sel]
    rec.unmet = int((np.abs(rec.error) > spec.tolerance).sum()) if spec.method == "write-verify" else 0
    rest = ~mask
    if spec.scheme != "direct" and rest.any():
        rec.disturb = float(np.mean(np.abs(g - g_before)[rest]) / window)
    rec.seconds = rec.steps * tile.population.card.programming.width + rec.verify_reads * spec.t_verify
    rec.wall = time.perf_counter() - t0
    return rec


def deploy_layer(layer, w: np.ndarray, spec: DeploySpec, rng: np.random.Generator | None) -> list[TileWrite]:
    """Program the float weights ``w`` (n_in, n_out) into a fresh :class:`TiledLayer`; one
    :class:`TileWrite` per tile written. The layer's estimates become the targets."""
    w = np.asarray(w, dtype=float)
    if w.shape != layer.shape:
        raise SpecError(f"layer {layer.name}: weights have shape {w.shape}, the layer {layer.shape}")
    gp, gm = layer.wmap.to_conductances(w)
    out = []
    for p in layer.pairs:
        b = p.block
        r, k = b.shape
        for tile, tgt in ((p.plus, gp), (p.minus, gm)):
            if tile is None:
                continue
            target = tile.conductances()
            target[:r, :k] = tgt[b.rows, b.cols]
            mask = np.zeros(tile.shape, dtype=bool)
            mask[:r, :k] = True
            out.append(program_tile(tile, target, mask, spec, layer.curve, rng))
    layer.set_estimates(gp, gm)
    return out


def summarize_writes(writes: list[TileWrite], spec: DeploySpec) -> dict[str, float | int]:
    """JSON-able totals: programming error (RMS and max |G − target| per window, healthy
    devices), pulses, modelled time (s, tiles in sequence), energy (J), devices that missed."""
    err = np.concatenate([w.error for w in writes]) if writes else np.zeros(0)
    return {
        "method": spec.method, "scheme": spec.scheme, "tolerance": spec.tolerance,
        "devices": sum(w.devices for w in writes), "faulty": sum(w.faulty for w in writes),
        "out_of_window": sum(w.out_of_window for w in writes), "unmet": sum(w.unmet for w in writes),
        "error_rms": float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0,
        "error_max": float(np.max(np.abs(err))) if err.size else 0.0,
        "within_tolerance": float(np.mean(np.abs(err) <= spec.tolerance)) if err.size else 1.0,
        "set_pulses": sum(w.set_pulses for w in writes), "reset_pulses": sum(w.reset_pulses for w in writes),
        "verify_reads": sum(w.verify_reads for w in writes), "rounds": max((w.rounds for w in writes), default=0),
        "time_s": sum(w.seconds for w in writes), "energy_J": sum(w.energy for w in writes),
        "disturb_mean": float(np.mean([w.disturb for w in writes])) if writes else 0.0,
        "wall_s": sum(w.wall for w in writes),
    }
