"""``cosim compare``: ideal vs nodal vs SPICE on one crossbar, side by side.

The nodal engine (exact sparse nodal analysis) is the reference: every row reports
|I − I_nodal| / max |I_nodal| over all outputs and input vectors (max and mean) and the output
with the largest deviation. The ideal row's error is the IR-drop error of the array.
"""

from __future__ import annotations

import argparse
import re

from cosim.catalog import ENGINES
from cosim.cli.common import (
    add_array_options,
    add_solver_options,
    conductances_from_args,
    describe_spec,
    fmt_err,
    options_from_args,
    positive_int,
    relative_errors,
    run_engine,
    spec_from_args,
    value,
)

DEFAULT_SPICE_MAX = 128 * 128  # ngspice takes minutes beyond (DESIGN.md §5; benchmarks/bench_engines.py)


def engine_list(text: str) -> list[str]:
    """argparse type: ``"ideal,spice"`` → ["ideal", "spice"] (known names, no repeats)."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in ENGINES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown engine {bad[0]!r}; choose from {', '.join(ENGINES)}" if bad
            else f"give at least one engine: {', '.join(ENGINES)}")
    return list(dict.fromkeys(names))


def cell_count(text: str) -> int:
    """argparse type: ``"128x128"`` or ``"16384"`` → a number of cells."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x×*]\s*(\d+))?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected cells as 128x128 or 16384, got {text!r}")
    return int(m.group(1)) * (int(m.group(2)) if m.group(2) else 1)


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare the ideal, nodal and SPICE engines on one array",
        description="Solve one crossbar read with several engines and print a table: time (s), "
                    "max and mean relative error against the nodal engine (|I - I_nodal| / max "
                    "|I_nodal|), the worst output line and the KCL residual, plus the IR-drop error "
                    "of the ideal V·G. Without --conductance a seeded random array is drawn; "
                    "without --voltages a seeded random batch in [0, --v-max] volts.")
    p.add_argument("--engines", type=engine_list, default=list(ENGINES), metavar="LIST",
                   help="engines to compare, comma separated (default ideal,nodal,spice); nodal "
                        "always runs as the reference")
    p.add_argument("--voltages", metavar="V.npy|V.csv",
                   help="input voltages, B×N or N values, V (default: --batch random vectors)")
    p.add_argument("--batch", type=positive_int, default=1, metavar="B",
                   help="random input vectors when --voltages is not given (default 1; ngspice "
                        "runs one operating point per vector)")
    p.add_argument("--v-max", type=value, default=0.2, metavar="V",
                   help="random inputs are uniform in [0, V] volts (default 0.2)")
    p.add_argument("--spice-max-cells", type=cell_count, default=DEFAULT_SPICE_MAX, metavar="NxM",
                   help="skip ngspice above this many cells, e.g. 64x64 or 4096 (default 128x128)")
    p.add_argument("--transpose", action="store_true",
                   help="transpose read: drive the columns, sense the rows")
    add_array_options(p, random=True)
    add_solver_options(p, engine=False)
    p.set_defaults(func=run)


def _random_inputs(args, n_in: int):
    import numpy as np

    from cosim.errors import SpecError

    if not (args.v_max >= 0):
        raise SpecError(f"--v-max must be ≥ 0 V, got {args.v_max!r}")
    rng = np.random.default_rng([args.seed, 1])  # a stream apart from the array's
    return rng.uniform(0.0, args.v_max, size=(args.batch, n_in))


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from cosim.circuit.build import build_circuit
    from cosim.cli.read import load_inputs
    from cosim.errors import EngineError, SpecError

    g, source = conductances_from_args(args)
    n, m = g.shape
    n_in = m if args.transpose else n
    if args.voltages:
        v, _ = load_inputs(args.voltages, n_in, g_path=args.conductance or "(random)", g_shape=g.shape,
                           transpose=args.transpose)
        inputs = f"{v.shape[0]} input vector(s) from {args.voltages}"
    else:
        v = _random_inputs(args, n_in)
        inputs = f"{v.shape[0]} random input vector(s) in [0, {args.v_max:g}] V (seed {args.seed})"
    spec = spec_from_args(args, conductances=g)
    too_big = n * m > args.spice_max_cells
    if args.engines == ["spice"] and too_big:
        raise SpecError(f"the array has {n}×{m} = {n * m} cells, more than --spice-max-cells "
                        f"{args.spice_max_cells}; raise it to run ngspice (minutes at 128×128)")
    circuit = build_circuit(spec, transpose=args.transpose)

    ref, ref_time = run_engine(circuit, options_from_args(args, engine="nodal"), v)
    out_name = "row" if args.transpose else "col"
    rows = []
    for name in args.engines:
        if name == "spice" and too_big:
            rows.append((name, None, f"skipped: {n}×{m} = {n * m} cells > --spice-max-cells "
                                     f"{args.spice_max_cells}"))
            continue
        if name == "nodal":
            rows.append((name, (ref, ref_time), ""))
            continue
        try:
            rows.append((name, run_engine(circuit, options_from_args(args, engine=name), v), ""))
        except EngineError as exc:
            if args.engines == [name]:
                raise
            rows.append((name, None, f"skipped: {str(exc).splitlines()[0]}"))

    print(f"compare: {describe_spec(spec)}")
    print(f"  conductances: {source}; {inputs}; {'transpose' if args.transpose else 'forward'} read")
    head = f"{'engine':<8}{'time (s)':>10}{'max rel err':>14}{'mean rel err':>14}{'worst ' + out_name:>11}{'KCL resid':>11}"
    print(head)
    print("-" * len(head))
    for name, run_, note in rows:
        if run_ is None:
            print(f"{name:<8}  {note}")
            continue
        res, secs = run_
        e_max, e_mean, worst = relative_errors(res.currents, ref.currents)
        worst_txt = "-" if name == "nodal" else str(worst)
        resid = "-" if name == "ideal" else f"{res.residual:.1e}"  # V·G has no circuit to check
        print(f"{name:<8}{secs:>10.3g}{e_max:>14.3e}{e_mean:>14.3e}{worst_txt:>11}{resid:>11}")
    print("errors: |I - I_nodal| / max |I_nodal| over every output and input vector")
    if "nodal" not in args.engines:
        print(f"reference: nodal, {ref_time:.3g} s")
    ideal = next((r for name, r, _ in rows if name == "ideal" and r is not None), None)
    if ideal is None:
        ideal = run_engine(circuit, options_from_args(args, engine="ideal"), v)
    e_max, e_mean, worst = relative_errors(ideal[0].currents, ref.currents)
    print(f"IR-drop error of ideal vs nodal: max {fmt_err(e_max)}, mean {fmt_err(e_mean)}, "
          f"worst {out_name} {worst}")
    scale = float(np.abs(ref.currents).max(initial=0.0))
    print(f"full-scale output current (nodal): {scale:.4e} A")
    return 0
