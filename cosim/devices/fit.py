"""Fit a device card to a measured conductance-versus-pulse curve.

Data (:func:`read_curve_csv`): a CSV of ``pulse index, conductance (S), direction``, one row per
read, optional header line, ``#`` comments. Direction is ``set``/``reset``/``+1``/``-1``;
``none`` or ``0`` only on a first row with pulse index 0 (a read before any pulse). Indices
increase; a row with index p after a row with index q says p - q pulses of the row's direction
were applied in between (sparse sampling is fine).

Simulation (:func:`simulate_curve`): the device starts on the bound the first pulses move away
from (fully RESET before a SET sweep: the usual measurement protocol); each row's pulses go
through the compact model with the programming pulse of the card (:func:`integrate_pulse`),
vectorised over parameter sets so a finite-difference Jacobian costs one simulation. A model
with a whole-run form (``pulse_steps`` / ``advance``) moves each run of equal pulses in one step:
pulse_nl in closed form, vteam as one ODE solve of its separable rate (``VTEAM.advance``), equal
to pulse-by-pulse integration within the integrators' tolerance (tests/test_fit.py).

Fit (:func:`fit_curve`): ``scipy.optimize.least_squares`` on the residuals (model − data)/(data
range), in log|parameter| (positive-definite, scale-free), from a seeded start. What is fitted:

- ``pulse_nl``: g_min, g_max, a_p, a_d. Following NeuroSim, p_max_p / p_max_d are the pulse
  counts of the longest SET / RESET sweep in the data, and one pulse is one step of the curve:
  v_p, v_d := the measurement amplitudes and t_ref := the width (plus the ramps' share).
- ``vteam``: r_on, r_off, k_on, k_off. At one amplitude and width the kinetics enter only through
  k·(V/v_th − 1)^α per direction, so alpha and the thresholds cannot be told apart from k: they
  stay at the base card's values, as do the window, its exponent and the I–V law.

A direction absent from the data drops its kinetic parameter from the fit. Any parameter can be
held with ``fix`` instead. :func:`card_toml` writes the fitted card (nominal device, no
variation) with the data file, fit error and origin of every value in comments.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.devices.cards import DeviceCard, ProgrammingSpec, VariationSpec, load_card
from cosim.devices.integrate import IntegratorOptions, integrate_pulse
from cosim.devices.paths import models_dir
from cosim.devices.registry import MODELS
from cosim.errors import InputError, SpecError
from cosim.io import is_number

log = logging.getLogger(__name__)

FIT_PARAMS = {"pulse_nl": ("g_min", "g_max", "a_p", "a_d"), "vteam": ("r_on", "r_off", "k_on", "k_off")}
KINETIC = {"pulse_nl": {1: "a_p", -1: "a_d"}, "vteam": {1: "k_on", -1: "k_off"}}
_DIRECTIONS = {"set": 1, "+1": 1, "1": 1, "reset": -1, "-1": -1, "none": 0, "0": 0, "": 0}
_NUMERICS = IntegratorOptions(rtol=1e-9, atol=1e-12)


@dataclass(frozen=True, slots=True)
class MeasuredCurve:
    """A measured curve: pulse indices, conductances (S), directions (+1, -1, 0 for the initial read)."""

    pulse: np.ndarray
    g: np.ndarray
    direction: np.ndarray
    source: str = ""

    @property
    def steps(self) -> np.ndarray:
        """Pulses applied before each row's read."""
        return np.diff(self.pulse, prepend=0)

    def sweep_lengths(self) -> dict[int, int]:
        """Pulses of the longest uninterrupted run of each direction present."""
        out: dict[int, int] = {}
        run, prev = 0, 0
        for d, k in zip(self.direction, self.steps):
            run = run + k if d == prev else k
            prev = d
            if d:
                out[int(d)] = max(out.get(int(d), 0), int(run))
        return out


def read_curve_csv(path: str | Path) -> MeasuredCurve:
    """Read a pulse curve CSV; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read pulse curve {path}: {exc}") from None
    rows = []
    for k, (lineno, cells) in enumerate(_lines(text)):
        where = f"{path}:{lineno}"
        if k == 0 and not is_number(cells[0]):
            continue  # header
        if len(cells) != 3:
            raise InputError(f"{where}: expected 3 columns (pulse index, conductance S, direction), got {len(cells)}")
        p, g, d = cells
        try:
            pi = float(p)
        except ValueError:
            pi = math.nan
        if not (math.isfinite(pi) and pi == round(pi) and pi >= 0):
            raise InputError(f"{where}: pulse index must be a whole number ≥ 0, got {p!r}")
        try:
            gv = float(g)
        except ValueError:
            gv = math.nan
        if not (math.isfinite(gv) and gv > 0):
            raise InputError(f"{where}: conductance must be a finite number > 0 S, got {g!r}")
        dv = _DIRECTIONS.get(d.strip().lower().replace("+1.0", "+1").replace("-1.0", "-1"))
        if dv is None:
            raise InputError(f"{where}: direction must be set, reset, +1 or -1 (none/0 for a first read "
                             f"at pulse 0), got {d!r}")
        if rows and int(pi) <= rows[-1][0]:
            raise InputError(f"{where}: pulse index must increase, got {int(pi)} after {rows[-1][0]}")
        if dv == 0 and (rows or pi != 0):
            raise InputError(f"{where}: direction none/0 is only for a first read at pulse index 0")
        rows.append((int(pi), gv, dv))
    if len(rows) < 3:
        raise InputError(f"{path}: need at least 3 data rows (pulse index, conductance S, direction), got {len(rows)}")
    a = np.array(rows, dtype=float)
    return MeasuredCurve(pulse=a[:, 0].astype(np.int64), g=a[:, 1], direction=a[:, 2].astype(np.int64), source=str(path))


def _lines(text: str):
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        yield lineno, [c.strip() for c in next(csv.reader([line]))]


# -- simulation ---------------------------------------------------------------------------------
def simulate_curve(card: DeviceCard, curve: MeasuredCurve, params: Mapping[str, np.ndarray | float] | None = None
                   ) -> np.ndarray:
    """Read conductances (K, rows) of ``curve``'s pulse sequence for K parameter sets.

    params: the card's parameters with some replaced by (K,) arrays (default: the card's, K = 1).
    """
    model = MODELS[card.model]
    p = dict(card.params) if params is None else dict(params)
    k = max((np.size(v) for v in p.values()), default=1)
    first = int(next((d for d in curve.direction if d), 1))
    x = np.broadcast_to(np.asarray(model.bound_toward(-first, p), float), (k,)).copy()
    v_read = card.programming.v_read
    pulses = {d: card.programming.pulse(d) for d in (1, -1)}
    out = np.empty((k, curve.g.size))
    # A pulse is a deterministic map of the state: once one leaves every state exactly where it
    # was (a hard bound, or steps below one ulp), every further pulse of that polarity does too,
    # so the rest of that run of pulses is skipped and its reads repeated (1e6-pulse curves and
    # long measured sweeps spend almost all their pulses there).
    steps = np.asarray(curve.steps, dtype=int)
    direction = np.asarray(curve.direction, dtype=int)
    ends = np.r_[np.flatnonzero(np.diff(direction)) + 1, direction.size]  # runs of one polarity
    closed = hasattr(model, "pulse_steps") and hasattr(model, "advance")
    p_col = {name: np.asarray(v)[:, None] if np.ndim(v) == 1 else v for name, v in p.items()}
    start = 0
    for end in ends:
        d = int(direction[start])
        dirs, m = model.pulse_steps(pulses[d], p) if closed and d else (None, np.nan)
        if np.all(~np.isnan(m)):
            # A pulse-number model moves along its curve by m per pulse, and pulse numbers add:
            # a whole run is one vectorised closed form (equal to pulse by pulse to rounding);
            # vteam's runs are one ODE solve. NaN m: a pulse too strong for that, one by one.
            total = np.cumsum(steps[start:end])[None, :] * np.broadcast_to(m, (k,))[:, None]
            xs = model.advance(x[:, None], total, np.broadcast_to(dirs, (k,))[:, None], p_col)
            out[:, start:end] = model.conductance(xs, v_read, p_col)
            x = xs[:, -1].copy()
            start = end
            continue
        for r in range(start, end):
            stuck = False
            for _ in range(int(steps[r]) if d else 0):
                x_new = integrate_pulse(model, x, p, pulses[d], _NUMERICS)
                if np.array_equal(x_new, x):
                    stuck = True
                    break
                x = x_new
            out[:, r] = model.conductance(x, v_read, p)
            if stuck:  # the rest of this run changes nothing
                out[:, r + 1:end] = out[:, r:r + 1]
                break
        start = end
    return out


# -- fitting ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FitResult:
    """A fitted card and how well it fits.

    Attributes:
        card: the fitted card. fitted: the fitted parameter values. start: their start values.
        g_model: model conductances at the data rows, S. curve: the data.
        rms: RMS error, S. rms_window: RMS error / the fitted device's window (g_hi − g_lo).
        nfev: model evaluations. message: the optimizer's.
    """

    card: DeviceCard
    fitted: dict[str, float]
    start: dict[str, float]
    g_model: np.ndarray
    curve: MeasuredCurve
    rms: float
    rms_window: float
    nfev: int
    message: str


def default_base(model: str) -> DeviceCard:
    """The model's default card in ``models/cards`` (``<model>_default.toml``)."""
    return load_card(models_dir() / "cards" / f"{model}_default.toml")


def fit_curve(curve: MeasuredCurve, model: str, base: DeviceCard | None = None, *,
              amplitude_set: float | None = None, amplitude_reset: float | None = None,
              width: float | None = None, fix: Mapping[str, float] | None = None) -> FitResult:
    """Fit ``model``'s card to ``curve`` (see the module docstring for what is fitted).

    Args:
        base: card holding the parameters that are not fitted and the programming pulse
            (default: the model's default card). amplitude_set / amplitude_reset (signed V) and
            width (s) override its pulse: they must be the pulses of the measurement.
        fix: parameter values to hold (removed from the fitted set).
    """
    from scipy.optimize import least_squares  # noqa: PLC0415 - keep `import cosim.devices` light

    if model not in FIT_PARAMS:
        raise SpecError(f"fitting supports models {', '.join(FIT_PARAMS)}, got {model!r}")
    base = base or default_base(model)
    if base.model != model:
        raise SpecError(f"base card {base.source or base.name} is a {base.model} card, not {model}")
    card = _measurement_card(base, curve, amplitude_set, amplitude_reset, width, fix or {})
    present = curve.sweep_lengths()
    free = [n for n in FIT_PARAMS[model] if n not in (fix or {})
            and not any(KINETIC[model][d] == n for d in (1, -1) if d not in present)]
    if len(free) >= curve.g.size:
        raise InputError(f"{curve.source}: {curve.g.size} rows cannot determine {len(free)} parameters")
    mdl = MODELS[model]
    start = _start(card, curve, free)
    signs = np.array([math.copysign(1.0, start[n]) for n in free])
    span = float(np.ptp(curve.g)) or float(curve.g.max())

    def params_of(theta: np.ndarray) -> dict:
        p = dict(card.params)
        for k, n in enumerate(free):
            p[n] = signs[k] * np.exp(theta[..., k])
        return p

    def residuals(theta_sets: np.ndarray) -> np.ndarray:
        p = params_of(theta_sets)
        ok = np.ones(theta_sets.shape[0], dtype=bool)
        for spec in mdl.specs:
            ok &= spec.ok(p[spec.name])
        for mask, _ in mdl.constraints(p):
            ok &= np.asarray(mask)
        res = np.full((theta_sets.shape[0], curve.g.size), 10.0)  # invalid sets: a flat penalty
        if ok.any():
            sub = {n: (v[ok] if np.ndim(v) else v) for n, v in p.items()}
            res[ok] = (simulate_curve(card, curve, sub) - curve.g) / span
        return res

    theta0 = np.log(np.abs([start[n] for n in free]))
    h = 1e-5

    def fun(theta):
        return residuals(theta[None, :])[0]

    def jac(theta):
        sets = np.vstack([theta, theta + h * np.eye(theta.size)])
        r = residuals(sets)
        return ((r[1:] - r[0]) / h).T

    sol = least_squares(fun, theta0, jac=jac, method="trf", x_scale=1.0, xtol=1e-10, ftol=1e-12, gtol=1e-12,
                        max_nfev=200)
    best = params_of(sol.x[None, :])
    fitted = {n: float(best[n][0]) for n in free}
    out = dataclasses.replace(card, params={**card.params, **fitted},
                              name=f"{Path(curve.source).stem}_fit" if curve.source else f"{model}_fit",
                              description=f"{model} fitted to {Path(curve.source).name or 'data'} by cosim device fit",
                              source="")
    g_model = simulate_curve(out, curve)[0]
    g_lo, g_hi = (float(b) for b in mdl.g_window(out.programming.v_read, dict(out.params)))
    rms = float(np.sqrt(np.mean((g_model - curve.g) ** 2)))
    log.info("fit %s: %s, rms %.3g S after %d evaluations", model, fitted, rms, sol.nfev)
    return FitResult(card=out, fitted=fitted, start={n: start[n] for n in free}, g_model=g_model, curve=curve,
                     rms=rms, rms_window=rms / (g_hi - g_lo), nfev=int(sol.nfev), message=str(sol.message))


def _measurement_card(base: DeviceCard, curve: MeasuredCurve, a_set, a_reset, width, fix) -> DeviceCard:
    """The base card with the measurement's pulse (and, for pulse_nl, NeuroSim's conventions)."""
    prog = base.programming
    prog = dataclasses.replace(prog, amplitude_set=prog.amplitude_set if a_set is None else float(a_set),
                               amplitude_reset=prog.amplitude_reset if a_reset is None else float(a_reset),
                               width=prog.width if width is None else float(width))
    params = dict(base.params)
    if base.model == "pulse_nl":
        sweeps = curve.sweep_lengths()
        params["v_p"], params["v_d"] = abs(prog.amplitude_set), abs(prog.amplitude_reset)
        for th, amp in (("v_th_p", params["v_p"]), ("v_th_d", params["v_d"])):
            if params[th] >= amp:
                params[th] = amp / 2.0
        ramps = (prog.rise + prog.fall) * (1.0 - params["v_th_p"] / params["v_p"]) / (params["alpha_v"] + 1.0)
        params["t_ref"] = prog.width + ramps
        params["p_max_p"] = float(sweeps.get(1, params["p_max_p"]))
        params["p_max_d"] = float(sweeps.get(-1, params["p_max_d"]))
    for name, value in fix.items():
        if name not in params:
            raise SpecError(f"fix.{name} is not a parameter of {base.model}")
        params[name] = float(value)
    try:
        return dataclasses.replace(base, params=params, programming=ProgrammingSpec(
            amplitude_set=prog.amplitude_set, amplitude_reset=prog.amplitude_reset, width=prog.width,
            rise=prog.rise, fall=prog.fall, v_read=prog.v_read), variation=VariationSpec())
    except SpecError as exc:
        raise SpecError(f"fit: {exc}") from None


def _start(card: DeviceCard, curve: MeasuredCurve, free: list[str]) -> dict[str, float]:
    """Start values: the window from the data's extremes, kinetics from coarse grid searches."""
    p = dict(card.params)
    g_lo, g_hi = float(curve.g.min()), float(curve.g.max())
    if card.model == "pulse_nl":
        p.update(g_min=g_lo, g_max=g_hi)
    else:
        p.update(r_on=1.0 / g_hi, r_off=1.0 / g_lo)
    # Kinetics: a 9-point log grid (×1/100 … ×100) per parameter, one parameter at a time in
    # the order its direction appears in the data, the 9 trials in one vectorised simulation.
    order = [KINETIC[card.model][int(d)] for d in dict.fromkeys(curve.direction.tolist()) if d]
    for n in (k for k in order if k in free):
        trial = dict(p, **{n: p[n] * np.logspace(-2, 2, 9)})
        err = np.sum((simulate_curve(card, curve, trial) - curve.g) ** 2, axis=1)
        p[n] = float(trial[n][int(np.nanargmin(err))])
    return {n: float(p[n]) for n in free}


# -- output -------------------------------------------------------------------------------------
def card_toml(result: FitResult, base: DeviceCard) -> str:
    """TOML text of the fitted card, every value with its origin in a comment."""
    card, model = result.card, MODELS[result.card.model]
    src = Path(result.curve.source).name or "data"
    lines = [
        f"# {model.name} card fitted by `cosim device fit` to {src}.",
        f"# Model: {model.reference}.",
        f"# Fit: RMS error {result.rms:.4g} S = {100 * result.rms_window:.3g} % of the window, "
        f"{result.nfev} evaluations; fitted: {', '.join(result.fitted)}.",
        f"# Other values: from {base.source or base.name}, or the measurement's pulse; a nominal device",
        "# (no variation section: one curve cannot tell device-to-device or cycle-to-cycle spread).",
        f"model = {_toml_str(card.model)}",
        f"description = {_toml_str(card.description)}",
        "",
        "[params]",
    ]
    for spec in model.specs:
        v = card.params[spec.name]
        text = str(int(v)) if spec.integer else repr(float(v))
        origin = "fitted" if spec.name in result.fitted else (
            "from the data/pulse" if v != base.params.get(spec.name) else "base card")
        lines.append(f"{spec.name:<9} = {text:<24} # {spec.unit or '-':<6} {origin}")
    prog = card.programming
    lines += ["", "[programming]"]
    for name in ("amplitude_set", "amplitude_reset", "width", "rise", "fall", "v_read"):
        lines.append(f"{name} = {repr(float(getattr(prog, name)))}")
    return "\n".join(lines) + "\n"


def _toml_str(s: str) -> str:
    import json  # noqa: PLC0415

    return json.dumps(s)  # a JSON string is a valid TOML basic string (\uXXXX escapes included)
