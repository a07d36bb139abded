"""``cosim sneak``: sneak currents and worst-case read margin of passive, 1S1R and 1T1R-mos arrays.

Every number comes from :func:`cosim.circuit.margin.read_margin`: the exact nonlinear (Newton)
solve of the whole array with its wires, for each size, cell kind and unselected-line scheme.
"""

from __future__ import annotations

import argparse

from cosim.cli.common import positive_int, value

KINDS = ("0T1R", "1S1R", "1T1R-mos")
DEFAULT_KINDS = ["0T1R", "1S1R"]


def _list(choices: tuple[str, ...], what: str):
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in choices]
        if not items or bad:
            raise argparse.ArgumentTypeError(f"{what} must be a comma list of {', '.join(choices)}, got {text!r}")
        return list(dict.fromkeys(items))
    return parse


def _sizes(text: str) -> list[int]:
    try:
        sizes = [positive_int(t.strip()) for t in text.split(",") if t.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected array sizes like 4,16,64 (each ≥ 2), got {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError(f"expected array sizes like 4,16,64 (each ≥ 2), got {text!r}")
    return sizes


def register(sub) -> None:
    from cosim.circuit.margin import MARGIN_SCHEMES

    p = sub.add_parser(
        "sneak", help="sneak currents and worst-case read margin, passive vs 1S1R (vs 1T1R-mos)",
        description="Worst-case read of the far corner cell (row 0, last column) of N×N arrays: "
                    "selected ON with every other cell OFF (I_on) and selected OFF with every other "
                    "cell ON (I_off); margin = (I_on - I_off)/I_on. Unselected lines floating, at V/2 "
                    "or at V/3. Cells are passive (device only), 1S1R (device plus a selector card) or "
                    "1T1R-mos (device plus a level-1 access transistor whose gate is the word line: on in "
                    "the selected row, 0 V in the others); "
                    "every current is the exact nonlinear solve of the whole array with its wires.")
    p.add_argument("--sizes", type=_sizes, default=[4, 16, 64], metavar="N,N,...",
                   help="array sizes N (N×N), default 4,16,64")
    p.add_argument("--cells", type=_list(KINDS, "--cells"), default=DEFAULT_KINDS, metavar="KINDS",
                   help="cell kinds, comma list of 0T1R (passive), 1S1R and 1T1R-mos (default 0T1R,1S1R)")
    p.add_argument("--unselected", type=_list(MARGIN_SCHEMES, "--unselected"), default=list(MARGIN_SCHEMES),
                   metavar="SCHEMES", help="unselected-line schemes: floating, v/2, v/3 (default all)")
    p.add_argument("--selector", metavar="CARD",
                   help="selector card of the 1S1R cells: a shipped name (models/cards/cells) or a "
                        ".toml path (default selector_default)")
    p.add_argument("--transistor", metavar="CARD",
                   help="access-transistor card of the 1T1R-mos cells: a shipped name (models/cards/cells) or a "
                        ".toml path (default nmos_l1_default)")
    p.add_argument("--v-gate", type=value, metavar="V",
                   help="selected word-line (gate) voltage of the 1T1R-mos cells, V (default: the card's)")
    p.add_argument("--g-on", type=value, metavar="S", help="ON-state small-signal conductance, S (default 100u)")
    p.add_argument("--g-off", type=value, metavar="S", help="OFF-state small-signal conductance, S (default 1u)")
    p.add_argument("--v-nl", type=value, metavar="V",
                   help="device I-V nonlinearity voltage: I = g*v_nl*sinh(V/v_nl), V (default: ohmic devices)")
    p.add_argument("--device-card", metavar="CARD",
                   help="take the ON and OFF devices from a device card instead (a name in models/cards or a "
                        ".toml path): its I(V) at the two ends of its window (e.g. stanford_pku_default's sinh); "
                        "replaces --g-on/--g-off/--v-nl")
    p.add_argument("--v-read", type=value, default=1.0, metavar="V", help="read voltage, V (default 1)")
    for name in ("r_row", "r_col", "r_driver", "r_sense"):
        p.add_argument("--" + name.replace("_", "-"), type=value, default=1.0 if name in ("r_row", "r_col") else 0.0,
                       metavar="OHM", help=f"{name.replace('_', ' ')} resistance, Ω "
                                           f"(default {1 if name in ('r_row', 'r_col') else 0}; > 0 per wire segment)")
    p.add_argument("--rtol", type=value, metavar="X", help="certified relative error of the currents (default 1e-6)")
    p.add_argument("--output", "-o", metavar="TABLE.csv", help="also write the table as CSV")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from cosim.array.cells import load_access_card
    from cosim.circuit import CrossbarSpec, SolverOptions
    from cosim.circuit.cells import Ohmic, Sinh
    from cosim.circuit.margin import MARGIN_RTOL, format_margins, read_margin
    from cosim.errors import SpecError
    from cosim.io import atomic_write_text, check_output_path

    out = check_output_path(args.output, what="--output", exts=(".csv",)) if args.output else None
    # An option that a given choice would ignore is refused rather than dropped.
    if args.device_card is not None and (args.g_on is not None or args.g_off is not None):
        raise SpecError("--g-on/--g-off set the devices that --device-card replaces; give one or the other")
    if args.selector is not None and "1S1R" not in args.cells:
        raise SpecError("--selector applies to the 1S1R cells; add 1S1R to --cells")
    if args.transistor is not None and "1T1R-mos" not in args.cells:
        raise SpecError("--transistor applies to the 1T1R-mos cells; add 1T1R-mos to --cells")
    args.g_on = 1e-4 if args.g_on is None else args.g_on
    args.g_off = 1e-6 if args.g_off is None else args.g_off
    args.selector = args.selector or "selector_default"
    args.transistor = args.transistor or "nmos_l1_default"
    if args.device_card is None and not args.g_on > args.g_off >= 0:
        raise SpecError(f"--g-on must exceed --g-off ≥ 0 S, got {args.g_on!r} and {args.g_off!r}")
    if args.v_nl is not None and not args.v_nl > 0:
        raise SpecError(f"--v-nl must be > 0 V, got {args.v_nl!r}")
    if not args.v_read > 0:
        raise SpecError(f"--v-read must be > 0 V, got {args.v_read!r}")
    if args.r_row <= 0 or args.r_col <= 0:
        raise SpecError("--r-row and --r-col must be > 0 Ω (the nonlinear solver needs every wire segment)")
    if args.rtol is not None and not 0 < args.rtol < 1:
        raise SpecError(f"--rtol must be in (0, 1), got {args.rtol!r}")
    if args.device_card is not None:
        if args.v_nl is not None:
            raise SpecError("--v-nl applies to the --g-on/--g-off devices, not to --device-card (its card sets the I-V)")
        on, off, law = _card_laws(args.device_card)
        args.g_on, args.g_off = float(np.squeeze(on.small_signal())), float(np.squeeze(off.small_signal()))
    elif args.v_nl is None:
        on, off, law = Ohmic(args.g_on), Ohmic(args.g_off), "ohmic"
    else:
        on, off = Sinh.from_small_signal(args.g_on, args.v_nl), Sinh.from_small_signal(args.g_off, args.v_nl)
        law = f"g*{args.v_nl:g}*sinh(V/{args.v_nl:g})"
    card = load_access_card(args.selector) if "1S1R" in args.cells else None
    if card is not None and card.model != "selector":
        raise SpecError(f"--selector {args.selector}: a 1S1R cell needs a selector card, got model {card.model!r}")
    mos = _transistor(args) if "1T1R-mos" in args.cells else None
    if mos is None and args.v_gate is not None:
        raise SpecError("--v-gate applies to the 1T1R-mos cells; add 1T1R-mos to --cells")
    options = SolverOptions(rtol=args.rtol or MARGIN_RTOL)
    print(f"read margin at {args.v_read:g} V: devices {law}, small-signal g_on {args.g_on:.4g} S, g_off {args.g_off:.4g} S; "
          f"wires {args.r_row:g}/{args.r_col:g} Ω per segment"
          + (f"; selector {card.name} ({', '.join(f'{k}={v:g}' for k, v in card.params.items())})" if card else "")
          + (f"; transistor {mos.name} ({', '.join(f'{k}={v:g}' for k, v in mos.params.items())}), "
             f"selected word line {mos.v_gate:g} V, others 0 V" if mos else ""))
    reports = []
    for n in args.sizes:
        spec = CrossbarSpec(conductances=np.ones((n, n)), r_row=args.r_row, r_col=args.r_col,
                            r_driver=args.r_driver, r_sense=args.r_sense)
        for kind in args.cells:
            access = {"0T1R": None, "1S1R": card, "1T1R-mos": mos}[kind]
            access = access.law(np.ones(n, dtype=bool), (n, n)) if access else None
            for scheme in args.unselected:
                reports.append(read_margin(spec, on, off, access=access, v_read=args.v_read, unselected=scheme,
                                           options=options))
    print(format_margins(reports))
    if out is not None:
        rows = ["cells,rows,cols,unselected,v_read_V,i_on_A,i_off_A,i_cell_on_A,i_cell_off_A,margin,margin_alone"]
        rows += [f"{r.kind},{r.shape[0]},{r.shape[1]},{r.unselected},{r.v_read!r},{r.i_on!r},{r.i_off!r},"
                 f"{r.i_cell_on!r},{r.i_cell_off!r},{r.margin!r},{r.margin_ideal!r}" for r in reports]
        atomic_write_text(out, "\n".join(rows) + "\n", what="--output")
        print(f"table written to {out}")
    return 0


def _transistor(args):
    """The 1T1R-mos access card, --v-gate applied."""
    from cosim.array.cells import AccessCard, load_access_card
    from cosim.errors import SpecError

    mos = load_access_card(args.transistor)
    if mos.model != "nmos_l1":
        raise SpecError(f"--transistor {args.transistor}: a 1T1R-mos cell needs a transistor card (nmos_l1), "
                        f"got model {mos.model!r}")
    if args.v_gate is None:
        return mos
    try:
        return AccessCard(model=mos.model, params=mos.params, v_gate=args.v_gate, name=mos.name, source=mos.source)
    except SpecError as exc:
        raise SpecError(f"--v-gate: {exc}") from None


def _card_laws(name: str):
    """(ON law, OFF law, description) of a device card's two window ends."""
    from pathlib import Path

    import numpy as np

    from cosim.array.cells import device_law
    from cosim.devices import get_model, load_card
    from cosim.devices.paths import models_dir
    from cosim.errors import SpecError

    path = Path(name)
    if not path.suffix and not path.exists():
        path = models_dir() / "cards" / f"{path.name}.toml"
    try:
        card = load_card(path)
        model = get_model(card.model)
        params = dict(card.params)
        laws = [device_law(model, np.asarray(model.bound_toward(d, params), dtype=float), params) for d in (1, -1)]
    except SpecError as exc:
        raise SpecError(f"--device-card {name}: {exc}") from None
    return laws[0], laws[1], f"{card.model} (card {path.stem}, window ends)"
