"""``cosim device list|curve|fit``: device cards, pulse-response curves, and fitting measured curves.

- ``list``: the registered compact models and the cards in ``models/cards``.
- ``curve --card X.toml --pulses N [--amplitude V] [--width S] [--output c.csv] [--plot c.png]``:
  N SET pulses from the low-conductance bound, then N RESET pulses, on the card's nominal
  device; prints levels, nonlinearity and asymmetry; the CSV (``pulse,g_S,direction``) is in
  the format ``fit`` reads.
- ``fit DATA.csv --model pulse_nl|vteam [--card BASE.toml] [...] [--output F.toml] [--plot F.png]``:
  fits a card to a measured curve (:mod:`cosim.devices.fit`), prints the parameters and the RMS
  error, writes the card and a plot.

Outputs are written atomically and checked before any work starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cosim.cli.common import positive_int, value
from cosim.errors import InputError, SpecError


def register(sub) -> None:
    p = sub.add_parser("device", help="device cards: list, pulse-response curves, fit measured data",
                       description="Compact device models and their cards: list them, simulate a "
                                   "pulse-response curve, or fit a card to a measured curve.")
    p.set_defaults(func=lambda args: _usage(p))
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))

    a = actions.add_parser("list", help="registered models and the cards in models/cards",
                           description="List the registered compact models and the device cards.")
    a.add_argument("--cards", metavar="DIR", help="card folder (default the repository's models/cards)")
    a.set_defaults(func=run_list)

    c = actions.add_parser(
        "curve", help="pulse-response curve of a card (N SET then N RESET pulses)",
        description="Apply N SET pulses from the low-conductance bound, then N RESET pulses, to the "
                    "card's nominal device (no variation) and print the curve's levels, nonlinearity "
                    "and asymmetry. Conductances are read at the card's v_read.")
    c.add_argument("--card", required=True, metavar="CARD.toml", help="device card")
    c.add_argument("--pulses", type=positive_int, required=True, metavar="N", help="pulses per direction")
    c.add_argument("--amplitude", type=value, metavar="V",
                   help="pulse amplitude magnitude for both directions, V (the sign follows the model's "
                        "polarity; default the card's amplitude_set / amplitude_reset)")
    c.add_argument("--width", type=value, metavar="S", help="pulse width, s (default the card's)")
    c.add_argument("--output", "-o", metavar="CURVE.csv", help="write pulse,g_S,direction here")
    c.add_argument("--plot", metavar="CURVE.png", help="plot the curve (PNG)")
    c.set_defaults(func=run_curve)

    f = actions.add_parser(
        "fit", help="fit a card to a measured conductance-versus-pulse curve",
        description="Fit a pulse_nl or vteam card to a CSV of pulse index, conductance (S) and direction "
                    "(set|reset|+1|-1; none for a read at pulse 0). The pulse of the measurement is "
                    "the base card's unless given. pulse_nl fits g_min, g_max, a_p, a_d (p_max from the "
                    "sweep lengths); vteam fits r_on, r_off, k_on, k_off (alpha and thresholds are not "
                    "identifiable from one amplitude and stay at the base card's values).")
    f.add_argument("data", metavar="DATA.csv", help="measured curve")
    f.add_argument("--model", required=True, choices=("pulse_nl", "vteam"), help="model to fit")
    f.add_argument("--card", metavar="BASE.toml",
                   help="base card: parameters not fitted and the measurement pulse "
                        "(default models/cards/<model>_default.toml)")
    f.add_argument("--amplitude-set", type=value, metavar="V", help="signed SET amplitude of the measurement, V")
    f.add_argument("--amplitude-reset", type=value, metavar="V", help="signed RESET amplitude of the measurement, V")
    f.add_argument("--width", type=value, metavar="S", help="pulse width of the measurement, s")
    f.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="hold a parameter at a value instead of fitting it (repeatable)")
    f.add_argument("--output", "-o", metavar="FITTED.toml", help="write the fitted card here")
    f.add_argument("--plot", metavar="FIT.png", help="plot data and fit (PNG)")
    f.set_defaults(func=run_fit)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# -- list ---------------------------------------------------------------------------------------
def run_list(args: argparse.Namespace) -> int:
    from cosim.devices import MODELS
    from cosim.devices.cards import load_card
    from cosim.devices.paths import models_dir

    print("models:")
    for name, model in MODELS.items():
        params = ", ".join(s.name for s in model.specs)
        print(f"  {name:<13} {model.reference}\n  {'':<13} state {model.state_name}; parameters: {params}")
    folder = Path(args.cards) if args.cards else models_dir() / "cards"
    if not folder.is_dir():
        raise InputError(f"--cards {folder} is not a folder")
    print(f"cards in {folder}:")
    for path in sorted(folder.glob("*.toml")):
        try:
            card = load_card(path)
        except SpecError as exc:
            print(f"  {path.stem:<22} INVALID: {exc}")
            continue
        print(f"  {path.stem:<22} {card.model:<13} {card.description}")
    return 0


# -- curve --------------------------------------------------------------------------------------
def run_curve(args: argparse.Namespace) -> int:
    import dataclasses

    import numpy as np

    from cosim.devices import MODELS, PulseTable, load_card
    from cosim.devices.cards import VariationSpec
    from cosim.devices.fit import MeasuredCurve, simulate_curve
    from cosim.guards import check_memory
    from cosim.io import atomic_write_text, check_output_path

    out = check_output_path(args.output, what="--output", exts=(".csv",)) if args.output else None
    plot = check_output_path(args.plot, what="--plot", exts=(".png",)) if args.plot else None
    card = load_card(args.card)
    model = MODELS[card.model]
    prog = card.programming
    if args.amplitude is not None:
        if not args.amplitude > 0:
            raise SpecError(f"--amplitude is a magnitude and must be > 0 V (the polarity follows {card.model}), "
                            f"got {args.amplitude!r}")
        pol = model.set_polarity
        prog = dataclasses.replace(prog, amplitude_set=pol * args.amplitude, amplitude_reset=-pol * args.amplitude)
    if args.width is not None:
        if not args.width > 0:
            raise SpecError(f"--width must be > 0 s, got {args.width!r}")
        prog = dataclasses.replace(prog, width=args.width)
    card = dataclasses.replace(card, programming=prog, variation=VariationSpec())
    n = args.pulses
    # 2n + 1 rows of conductance, pulse number, polarity and their CSV text: measured 640 MB
    # peak for n = 1e6 (vteam card), so 300 B per pulse is a lower bound
    check_memory(300.0 * n, f"device curve --pulses {n}")
    direction = np.r_[0, np.ones(n, int), -np.ones(n, int)]
    seq = MeasuredCurve(pulse=np.arange(2 * n + 1), g=np.zeros(2 * n + 1), direction=direction)
    g = simulate_curve(card, seq)[0]
    g_set, g_reset = g[: n + 1], g[n:]
    g_lo, g_hi = (float(b) for b in model.g_window(prog.v_read, dict(card.params)))
    span = g_hi - g_lo
    # A branch that does not move (a pulse below the device's threshold at that state) is a
    # result to report: 0 levels, asymmetry undefined; the table needs two moving branches.
    still = [name for name, b in (("SET", g_set), ("RESET", g_reset)) if b[-1] == b[0]]
    table = None if still else PulseTable.from_curves(
        card.hash, g_lo, g_hi, g_set, g_reset, 0.0, "state",
        complete=(model.hard_bounds and g_set[-1] >= g_hi * (1 - 1e-12),
                  model.hard_bounds and g_reset[-1] <= g_lo * (1 + 1e-12)))
    print(f"{card.name or args.card}: {card.model}, SET {prog.amplitude_set:g} V / RESET {prog.amplitude_reset:g} V, "
          f"{prog.width:g} s pulses, read at {prog.v_read:g} V")
    print(f"window {g_lo:.4g} .. {g_hi:.4g} S")
    for k, (name, branch) in enumerate((("SET", g_set), ("RESET", g_reset))):
        moved = f"{branch[0]:.4g} -> {branch[-1]:.4g} S ({100 * abs(branch[-1] - branch[0]) / span:.1f} % of the window)"
        if name in still:
            print(f"{name:<5} {n} pulses: does not move from {branch[0]:.4g} S (below the device's threshold "
                  "there), levels 0")
        elif table is None:
            print(f"{name:<5} {n} pulses: {moved}")
        else:
            print(f"{name:<5} {n} pulses: {moved}, levels {table.levels[k]}, "
                  f"nonlinearity {table.nonlinearity[k]:.3g}")
    if table is None:
        which = "branch does not" if len(still) == 1 else "branches do not"
        print(f"asymmetry undefined (the {' and '.join(still)} {which} move)")
    elif not np.isfinite(table.asymmetry):
        print("asymmetry undefined (no conductance a full pulse away from both ends of the curves: "
              "more pulses, or smaller steps)")
    else:
        print(f"asymmetry {table.asymmetry:.3g} (0 = mirror-symmetric steps)")
    if out:
        names = np.where(direction > 0, "set", np.where(direction < 0, "reset", "none"))
        # shortest round-trip text, formatted once per distinct value (a saturated curve repeats)
        uniq, inv = np.unique(g, return_inverse=True)
        g_text = np.array([repr(v) for v in uniq.tolist()], dtype=object)[inv]
        rows = zip(map(str, seq.pulse.tolist()), g_text.tolist(), names.tolist())
        text = "pulse,g_S,direction\n" + "\n".join(map(",".join, rows)) + "\n"
        atomic_write_text(out, text, what="--output")
        print(f"wrote {out}")
    if plot:
        _plot_curve(plot, seq.pulse, g, direction, None, f"{card.name or card.model}: pulse response")
        print(f"wrote {plot}")
    return 0


# -- fit ----------------------------------------------------------------------------------------
def run_fit(args: argparse.Namespace) -> int:
    from cosim.devices import MODELS, load_card
    from cosim.devices.fit import card_toml, default_base, fit_curve, read_curve_csv
    from cosim.devices.nonlinearity import nl_from_a
    from cosim.io import atomic_write_text, check_output_path

    out = check_output_path(args.output, what="--output", exts=(".toml",)) if args.output else None
    plot = check_output_path(args.plot, what="--plot", exts=(".png",)) if args.plot else None
    fix = {}
    for item in args.fix:
        name, sep, text = item.partition("=")
        try:
            fix[name.strip()] = value(text) if sep else None
        except argparse.ArgumentTypeError:
            fix[name.strip()] = None
        if fix[name.strip()] is None:
            raise SpecError(f"--fix expects NAME=VALUE with a number, got {item!r}")
    for opt, amp in (("--amplitude-set", args.amplitude_set), ("--amplitude-reset", args.amplitude_reset)):
        if amp is not None and amp == 0:
            raise SpecError(f"{opt} is the signed amplitude of the measured pulses and cannot be 0 V")
    if args.width is not None and not args.width > 0:
        raise SpecError(f"--width must be > 0 s, got {args.width!r}")
    curve = read_curve_csv(args.data)
    base = load_card(args.card) if args.card else default_base(args.model)
    res = fit_curve(curve, args.model, base, amplitude_set=args.amplitude_set,
                    amplitude_reset=args.amplitude_reset, width=args.width, fix=fix)
    model = MODELS[args.model]
    prog = res.card.programming
    print(f"{args.data}: {curve.g.size} reads, {int(curve.steps[curve.direction != 0].sum())} pulses; "
          f"pulse SET {prog.amplitude_set:g} V / RESET {prog.amplitude_reset:g} V, {prog.width:g} s")
    print(f"fitted {args.model} ({res.nfev} evaluations; {res.message}):")
    for name, v in res.fitted.items():
        print(f"  {name:<8} = {v:<12.6g} {model.spec(name).unit:<7} (start {res.start[name]:.4g})")
    if args.model == "pulse_nl":
        p = res.card.params
        print(f"  NL set {nl_from_a(p['a_p'], p['p_max_p']):.3g} over {p['p_max_p']:g} pulses, "
              f"NL reset {nl_from_a(p['a_d'], p['p_max_d']):.3g} over {p['p_max_d']:g} pulses")
    print(f"RMS error {res.rms:.4g} S = {100 * res.rms_window:.3g} % of the fitted window")
    if out:
        text = card_toml(res, base)
        _check_card_text(text, out)
        atomic_write_text(out, text, what="--output")
        print(f"wrote {out}")
    if plot:
        _plot_curve(plot, curve.pulse, curve.g, curve.direction, res.g_model,
                    f"{Path(args.data).name}: {args.model} fit, RMS {100 * res.rms_window:.2g} % of window")
        print(f"wrote {plot}")
    return 0


def _check_card_text(text: str, path: Path) -> None:
    """The card text must load back as a valid card before it is written."""
    import tomllib

    from cosim.devices.cards import card_from_dict

    card_from_dict(tomllib.loads(text), str(path))


def _plot_curve(path: Path, pulse, g, direction, g_model, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    direction = np.asarray(direction)
    top = float(np.max(np.abs(g)))
    scale, unit = next(((f, u) for f, u in ((1.0, "S"), (1e3, "mS"), (1e6, "µS"), (1e9, "nS"))
                        if top * f >= 1.0), (1e12, "pS"))
    for d, colour, label in ((1, "tab:blue", "SET"), (-1, "tab:red", "RESET"), (0, "k", "initial")):
        m = direction == d
        if m.any():
            kw = {"s": 8} if g_model is not None else {"s": 4}
            ax.scatter(np.asarray(pulse)[m], np.asarray(g)[m] * scale, color=colour, label=label, **kw)
    if g_model is not None:
        ax.plot(pulse, np.asarray(g_model) * scale, color="k", lw=1.2, label="fit")
    ax.set_xlabel("pulse number")
    ax.set_ylabel(f"conductance ({unit})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from cosim.io import atomic_path

    try:
        with atomic_path(path, what="--plot") as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
