"""Re-initialisation and refresh of differential pairs: pure functions that return plans.

The training loop applies a plan through the device layer: targets with write-verify
(``DevicePopulation.set_conductance``), otherwise the open-loop pulse phases in order
(``apply_pulses``), and then hands the plan's estimates to the optimizer as its ĝ.

Modes of :func:`plan_reinit` (SSM part 3; baselines use "none"):

- ``"reference"``: every pair goes to a common reference state g_ref plus the software initial
  weight (:func:`weights_to_pair`). With write-verify the result no longer depends on where each
  device started. Open-loop, both devices are first RESET far past the full window so each sits
  at its floor, then SET up by the nominal pulse count; only the spread of the floor and of the
  pulse response remains. g_ref is g_min for "set-only" (all headroom upwards) and the window's
  middle for "split"/"plus-only" (headroom both ways).
- ``"adopt"``: read the as-made pairs once and take w₀ = scale·(g⁺ − g⁻) as the initial weights;
  nothing is programmed, and the spread becomes the random initialisation. Needs the reads.
- ``"none"``: program the software initial weights open-loop from an assumed as-made state
  ``g_assumed`` (default g_ref); the estimates are what that assumption predicts, so the real
  device-to-device spread is silently carried into training (the baseline failure case).

Refresh (:func:`refresh_plan`): pairs whose devices have drifted past ``threshold`` of the window
are read, and their weight is re-programmed around g_ref by the same rule ("set-only" pairs only
ever rise, so this is what keeps them trainable). Refresh reads the array: the loop counts it.
After a write-verified refresh the loop reads the pairs again and :func:`repair_plan` re-targets
the partner of any device that did not reach its target (a stuck device), so that every pair
keeps its weight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cosim.errors import InputError, SpecError
from cosim.train.curves import PulseCurve
from cosim.train.optimizers.pairs import PairPolicy, check_policy, reference_conductance, round_pulses

log = logging.getLogger(__name__)

ReinitMode = Literal["reference", "adopt", "none"]
REINIT_MODES = ("reference", "adopt", "none")
SATURATE_MARGIN = 1.25  # extra RESET pulses (×full sweep) so a device with a wider window also hits its floor


@dataclass(frozen=True, slots=True)
class ReinitPlan:
    """How to bring a layer's pairs to their starting point.

    Attributes:
        mode: the re-initialisation mode.
        target_plus, target_minus: conductances to program with write-verify, S; None when the
            plan is open-loop (or programs nothing).
        pulses: open-loop phases ((n⁺, n⁻), …) of signed int64 counts, applied in order.
        estimate_plus, estimate_minus: the conductances the optimizer should assume after, S.
        weights: the initial weights those estimates represent, scale·(ĝ⁺ − ĝ⁻).
        mask: pairs the plan touches (all True for re-initialisation; the saturated ones for a
            refresh).
    """

    mode: str
    target_plus: np.ndarray | None
    target_minus: np.ndarray | None
    pulses: tuple[tuple[np.ndarray, np.ndarray], ...]
    estimate_plus: np.ndarray
    estimate_minus: np.ndarray
    weights: np.ndarray
    mask: np.ndarray


def weights_to_pair(w: np.ndarray, curve: PulseCurve, policy: PairPolicy, scale: float,
                    g_ref: float | None = None,
                    reached: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Target (g⁺, g⁻) in S representing ``w`` around g_ref, clipped to the window.

    "set-only": g⁺ = g_ref + max(w, 0)/scale, g⁻ = g_ref + max(−w, 0)/scale;
    "split": g± = g_ref ± w/(2·scale); "plus-only": g⁺ = g_ref + w/scale, g⁻ = g_ref.

    ``reached``: conductances (g⁺, g⁻) S each device has been read at; a device's window is
    then the nominal one widened to include that value. Why: device-to-device spread gives
    some devices a wider window than the nominal curve's, and a weight they hold beyond the
    nominal g_max is reachable again, so clipping it to the nominal window would destroy it.
    """
    g_ref = reference_conductance(curve, policy) if g_ref is None else g_ref
    dg = np.asarray(w, dtype=float) / scale
    if policy == "set-only":
        gp, gm = g_ref + np.maximum(dg, 0.0), g_ref + np.maximum(-dg, 0.0)
    elif policy == "split":
        gp, gm = g_ref + 0.5 * dg, g_ref - 0.5 * dg
    else:
        gp, gm = g_ref + dg, np.full_like(dg, g_ref)
    rp, rm = (None, None) if reached is None else reached
    (lo_p, hi_p), (lo_m, hi_m) = _window(curve, rp), _window(curve, rm)
    clipped = int(np.count_nonzero((gp < lo_p) | (gp > hi_p) | (gm < lo_m) | (gm > hi_m)))
    if clipped:
        log.warning("%d of %d weights exceed the conductance window and were clipped", clipped, dg.size)
    return np.clip(gp, lo_p, hi_p), np.clip(gm, lo_m, hi_m)


def _window(curve: PulseCurve, reached: np.ndarray | None) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(low, high) S per device: the nominal window, widened to the conductance each device has
    been read at when ``reached`` is given."""
    if reached is None:
        return curve.g_min, curve.g_max
    g = np.asarray(reached, dtype=float)
    return np.minimum(curve.g_min, g), np.maximum(curve.g_max, g)


def pulse_plan(g_from: np.ndarray, g_to: np.ndarray, curve: PulseCurve) -> np.ndarray:
    """Signed int64 pulses that take ``g_from`` nearest to ``g_to`` on the nominal curve."""
    return round_pulses(np.asarray(curve.pulses_for(g_from, np.asarray(g_to) - g_from), dtype=float), "nearest", None)


def _full_reset(curve: PulseCurve) -> int:
    window = curve.g_max - curve.g_min
    return int(np.ceil(SATURATE_MARGIN * abs(float(np.asarray(curve.pulses_for(np.asarray(curve.g_max),
                                                                                np.asarray(-window)))))))


def _program(mask, tp, tm, g_start_p, g_start_m, curve, write_verify, saturate):
    """Targets or pulse phases that bring the masked pairs to (tp, tm); estimates after."""
    if write_verify:
        return (tp, tm), (), (tp, tm)
    phases = []
    if saturate:
        n_reset = -_full_reset(curve) * mask.astype(np.int64)
        phases.append((n_reset, n_reset.copy()))
        g_start_p = np.where(mask, curve.g_min, g_start_p)
        g_start_m = np.where(mask, curve.g_min, g_start_m)
    n_p = pulse_plan(g_start_p, tp, curve) * mask
    n_m = pulse_plan(g_start_m, tm, curve) * mask
    phases.append((n_p, n_m))
    est = (np.clip(g_start_p + curve.delta_g(g_start_p, n_p), curve.g_min, curve.g_max),
           np.clip(g_start_m + curve.delta_g(g_start_m, n_m), curve.g_min, curve.g_max))
    return (None, None), tuple(phases), est


def plan_reinit(mode: ReinitMode, w_init: np.ndarray, curve: PulseCurve, *, policy: PairPolicy, scale: float,
                g_plus_read: np.ndarray | None = None, g_minus_read: np.ndarray | None = None,
                g_assumed: float | np.ndarray | None = None, write_verify: bool = True) -> ReinitPlan:
    """The starting plan for one layer (modes in the module docstring); ``w_init`` (rows, cols)."""
    if mode not in REINIT_MODES:
        raise SpecError(f"optimizer.reinit_mode must be one of {', '.join(REINIT_MODES)}, got {mode!r}")
    check_policy(policy)
    w_init = np.asarray(w_init, dtype=float)
    mask = np.ones(w_init.shape, dtype=bool)
    if mode == "adopt":
        if g_plus_read is None or g_minus_read is None:
            raise SpecError("reinit mode 'adopt' needs the read conductances g_plus_read and g_minus_read")
        gp, gm = np.asarray(g_plus_read, dtype=float), np.asarray(g_minus_read, dtype=float)
        if gp.shape != w_init.shape or gm.shape != w_init.shape:
            raise InputError(f"read conductances {gp.shape}/{gm.shape} must match the layer {w_init.shape}")
        return ReinitPlan(mode, None, None, (), gp.copy(), gm.copy(), scale * (gp - gm), mask)
    tp, tm = weights_to_pair(w_init, curve, policy, scale)
    if mode == "reference":
        targets, phases, est = _program(mask, tp, tm, tp, tm, curve, write_verify, saturate=True)
    else:
        g0 = reference_conductance(curve, policy) if g_assumed is None else g_assumed
        g0 = np.broadcast_to(np.asarray(g0, dtype=float), w_init.shape)
        targets, phases, est = _program(mask, tp, tm, g0, g0, curve, write_verify=False, saturate=False)
    return ReinitPlan(mode, targets[0], targets[1], phases, est[0], est[1], scale * (est[0] - est[1]), mask)


def saturated(g_plus: np.ndarray, g_minus: np.ndarray, curve: PulseCurve, policy: PairPolicy,
              threshold: float) -> np.ndarray:
    """Pairs with a device past ``threshold`` (0..1] of the window: above g_min + threshold·window
    for "set-only", farther than threshold·window/2 from the middle otherwise."""
    check_policy(policy)
    window = curve.g_max - curve.g_min
    fp, fm = (np.asarray(g_plus) - curve.g_min) / window, (np.asarray(g_minus) - curve.g_min) / window
    if policy == "set-only":
        return np.maximum(fp, fm) >= threshold
    return np.maximum(np.abs(2 * fp - 1), np.abs(2 * fm - 1)) >= threshold


def refresh_plan(g_plus_read: np.ndarray, g_minus_read: np.ndarray, curve: PulseCurve, *, policy: PairPolicy,
                 scale: float, threshold: float, write_verify: bool = True) -> ReinitPlan:
    """Re-program the saturated pairs around g_ref, keeping their read weight scale·(g⁺ − g⁻).

    Untouched pairs keep their read values as targets/estimates and get no pulses.
    """
    gp, gm = np.asarray(g_plus_read, dtype=float), np.asarray(g_minus_read, dtype=float)
    mask = saturated(gp, gm, curve, policy, threshold)
    tp, tm = weights_to_pair(scale * (gp - gm), curve, policy, scale, reached=(gp, gm))
    tp, tm = np.where(mask, tp, gp), np.where(mask, tm, gm)
    targets, phases, est = _program(mask, tp, tm, gp, gm, curve, write_verify, saturate=True)
    return ReinitPlan("refresh", targets[0], targets[1], phases, est[0], est[1], scale * (est[0] - est[1]), mask)


#: A write-verified device further than this fraction of the window from its target missed it.
VERIFY_TOL = 1e-6


def repair_plan(plan: ReinitPlan, got_plus: np.ndarray, got_minus: np.ndarray, curve: PulseCurve, *,
                scale: float) -> ReinitPlan | None:
    """After a write-verify ``plan``: the pairs that do not hold the plan's weight get the
    partner of their worse-missing device re-targeted so that they do; None when every pair
    holds it (to :data:`VERIFY_TOL` of the window).

    Why: a stuck device (or one whose own window ends short of its target) does not move, and
    the verify read that every write-verify ends with says so on a chip too. Programming its
    partner to the plan's target regardless turns the pair's weight into that stuck value
    (measured on the Fashion MLP: a refresh after one epoch rewrote 888 pairs holding a stuck
    device by 0.01–0.34 in weight, and cost 3.4 points of test accuracy). ``got_plus``,
    ``got_minus``: the read conductances after the plan, S.
    """
    if plan.target_plus is None or plan.target_minus is None:
        return None
    gp, gm = np.asarray(got_plus, dtype=float), np.asarray(got_minus, dtype=float)
    keep = plan.weights / scale
    bad = plan.mask & (np.abs((gp - gm) - keep) > VERIFY_TOL * (curve.g_max - curve.g_min))
    if not bad.any():
        return None
    plus_worse = np.abs(gp - plan.target_plus) >= np.abs(gm - plan.target_minus)
    fix_m, fix_p = bad & plus_worse, bad & ~plus_worse
    tp = np.where(fix_p, np.clip(gm + keep, *_window(curve, gp)), gp)
    tm = np.where(fix_m, np.clip(gp - keep, *_window(curve, gm)), gm)
    return ReinitPlan("repair", tp, tm, (), tp, tm, scale * (tp - tm), bad)


#: A tile-keeping refresh rewrites a weight the tiles deliver further than this fraction of the
#: layer's largest |weight| from where they delivered it before the refresh: a quarter of an
#: 8-bit ADC's step, below what a forward read can tell apart.
KEEP_TILES_TOL = 1e-3
#: Rounds of verify read and re-targeted writes a tile-keeping refresh makes at the most.
KEEP_TILES_ROUNDS = 3
#: The sensitivity of a delivered weight to its own device, (delivered/programmed), is taken
#: within these bounds: with 1 Ω wires it is 0.7–1.0 on the Fashion tiles, and a stuck or
#: nearly-off device must not turn a small error into a large write.
KEEP_TILES_GAIN = (0.2, 1.5)


def keep_tiles_plan(w_before: np.ndarray, read_plus: np.ndarray, read_minus: np.ndarray,
                    got_plus: np.ndarray, got_minus: np.ndarray, curve: PulseCurve, *, scale: float,
                    reference: bool = False, gain: np.ndarray | None = None,
                    missed: tuple[np.ndarray, np.ndarray] | None = None) -> ReinitPlan | None:
    """After a refresh, the writes that bring the weights the tiles deliver back to what they
    delivered before it; None when every weight is within :data:`KEEP_TILES_TOL`.

    Why: a refresh keeps each pair's weight scale·(g⁺ − g⁻) but lowers its common mode, and with
    wires the drops, and so the weights the tiles deliver, follow every cell's current (on the
    full Fashion sets it cost the tiles 3–8 points at once while the devices' weights held). A
    chip can verify what its tiles deliver by reading them one row at a time.

    Args:
        w_before: weights the tiles delivered before the refresh, scale·(plus − minus) of
            ``TiledLayer.read_unit_rows`` then.
        read_plus, read_minus: the same unit-row read now, S.
        got_plus, got_minus: the devices' conductances now (a refresh read), S.
        scale: weight units per siemens.
        reference: the reference mapping (only g⁺ is written; its partner is the shared column).
        gain: per weight, delivered weight per programmed weight; default the reads' own
            (plus + minus)/(g⁺ + g⁻). The caller passes what the last round measured
            (:func:`measured_gain`): a write also moves the drops of its lines, so the delivered
            change of many writes at once differs from what each cell's own attenuation says.
        missed: (g⁺, g⁻) masks of the devices that missed their last write-verify target (a
            stuck device, or one whose own window ends short of it): their pair's whole
            correction goes to the partner, as :func:`repair_plan` does.

    Each off weight moves its pair by the error over the gain (within :data:`KEEP_TILES_GAIN`),
    split between the two devices and kept inside each device's window (what one cannot take,
    its partner takes). The common mode stays, so the drops move little.
    """
    w_before = np.asarray(w_before, dtype=float)
    rp, rm = np.asarray(read_plus, dtype=float), np.asarray(read_minus, dtype=float)
    gp, gm = np.asarray(got_plus, dtype=float), np.asarray(got_minus, dtype=float)
    err = w_before - scale * (rp - rm)
    peak = float(np.max(np.abs(w_before))) if w_before.size else 0.0
    mask = np.abs(err) > KEEP_TILES_TOL * peak
    if not mask.any():
        return None
    den = gp if reference else gp + gm
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.where(den > 0, (rp if reference else rp + rm) / den, 1.0)
    if gain is not None:
        own = np.where(np.isfinite(gain), gain, own)
    a = np.clip(np.nan_to_num(own, nan=1.0), *KEEP_TILES_GAIN)
    d = err / (scale * a)  # S of g⁺ − g⁻ still to program
    lo_p, hi_p = _window(curve, gp)
    if reference:
        tp = np.where(mask, np.clip(gp + d, lo_p, hi_p), gp)
        return ReinitPlan("keep-tiles", tp, gm, (), tp, gm, scale * (tp - gm), mask)
    lo_m, hi_m = _window(curve, gm)
    share_m = np.full(gp.shape, 0.5)
    if missed is not None:
        share_m = np.where(missed[1], 0.0, np.where(missed[0], 1.0, share_m))
    tp_want, tm_want = gp + d * (1 - share_m), gm - d * share_m
    tp, tm = np.clip(tp_want, lo_p, hi_p), np.clip(tm_want, lo_m, hi_m)
    # what one device could not take, its partner takes (a device at its window's edge)
    tp, tm = np.clip(tp + (tm - tm_want), lo_p, hi_p), np.clip(tm + (tp - tp_want), lo_m, hi_m)
    tp, tm = np.where(mask, tp, gp), np.where(mask, tm, gm)
    return ReinitPlan("keep-tiles", tp, tm, (), tp, tm, scale * (tp - tm), mask)


def missed_targets(plan: ReinitPlan, got_plus: np.ndarray, got_minus: np.ndarray,
                   curve: PulseCurve) -> tuple[np.ndarray, np.ndarray]:
    """(g⁺, g⁻) masks of the devices a write-verify ``plan`` wrote that did not land within
    :data:`VERIFY_TOL` of the window from their targets (a stuck device, or one whose own window
    ends short of it); ``got_plus``, ``got_minus``: the read conductances after it, S."""
    tol = VERIFY_TOL * (curve.g_max - curve.g_min)
    return (plan.mask & (np.abs(np.asarray(got_plus, dtype=float) - plan.target_plus) > tol),
            plan.mask & (np.abs(np.asarray(got_minus, dtype=float) - plan.target_minus) > tol))


def measured_gain(w_then: np.ndarray, w_now: np.ndarray, diff_then: np.ndarray, diff_now: np.ndarray,
                  scale: float) -> np.ndarray:
    """Per weight, the delivered change over the programmed change of the last round,
    (w_now − w_then)/(scale·(diff_now − diff_then)) where the pair was written, NaN elsewhere
    (:func:`keep_tiles_plan` then takes its default). Delivered weights w (weight units),
    programmed differences diff = g⁺ − g⁻ (S)."""
    moved = np.asarray(diff_now, dtype=float) - np.asarray(diff_then, dtype=float)
    # a pair not written (or both devices stuck) moved by rounding at most
    written = np.abs(moved) > 1e-9 * max(float(np.max(np.abs(diff_now), initial=0.0)), np.finfo(float).tiny)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = (np.asarray(w_now, dtype=float) - np.asarray(w_then, dtype=float)) / (scale * moved)
    return np.where(written, g, np.nan)
