"""``cosim read``: output currents of a crossbar for a batch of input voltages, through any engine."""

from __future__ import annotations

import argparse

from cosim.cli.common import (
    add_array_options,
    add_solver_options,
    conductances_from_args,
    describe_spec,
    fmt_err,
    options_from_args,
    relative_errors,
    run_engine,
    spec_from_args,
)

PRINT_LIMIT = 256  # currents printed to the terminal when no --output is given


def register(sub) -> None:
    p = sub.add_parser(
        "read", help="read a crossbar: input voltages → output currents (A)",
        description="Solve a crossbar read with wire, driver and sense parasitics. Inputs are B×N "
                    "volts (or one vector of N) driving the rows; outputs are the B×M column currents "
                    "in amperes, flowing into the sense amplifiers' virtual ground. With --transpose "
                    "the columns are driven (B×M volts) and the rows sensed (B×N amperes). Prints the "
                    "engine, time, IR-drop error against the ideal V·G and the KCL residual.")
    p.add_argument("--voltages", required=True, metavar="V.npy|V.csv",
                   help="input voltages, B×N or N values, V (B×M or M with --transpose)")
    p.add_argument("--transpose", action="store_true",
                   help="transpose read (backpropagation): drive the columns, sense the rows")
    p.add_argument("--output", "-o", metavar="I.npy|I.csv|I.json",
                   help="write the output currents (A) here, same batch shape as the inputs "
                        "(default: print them when small)")
    add_array_options(p, random=False)
    add_solver_options(p)
    p.set_defaults(func=run)


def load_inputs(path: str, n_inputs: int, *, g_path: str, g_shape: tuple[int, int], transpose: bool):
    """Input voltages (B, n_inputs) from ``path`` and whether a single vector was given."""
    import numpy as np

    from cosim.errors import InputError
    from cosim.io import finite_or_raise, load_array

    v = load_array(path, what="--voltages")
    lines = "columns" if transpose else "rows"
    if v.ndim not in (1, 2) or v.shape[-1] != n_inputs:
        raise InputError(
            f"--voltages {path} has shape {v.shape} but --conductance {g_path} has shape {tuple(g_shape)}: "
            f"expected (B, {n_inputs}) or ({n_inputs},) volts, one per {lines[:-1]} "
            f"(a {'transpose' if transpose else 'forward'} read drives the {lines})")
    if v.size == 0:
        raise InputError(f"--voltages {path} holds no input vector (shape {v.shape}); give at least one")
    finite_or_raise(v, what=f"--voltages {path}: V", unit="volts")
    return np.atleast_2d(v), v.ndim == 1


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from cosim.circuit.build import build_circuit
    from cosim.circuit.engines.base import SolverOptions
    from cosim.io import check_output_path, save_array

    out_path = check_output_path(args.output, what="--output") if args.output else None
    g, _ = conductances_from_args(args)
    n, m = g.shape
    n_in = m if args.transpose else n
    v, single = load_inputs(args.voltages, n_in, g_path=args.conductance, g_shape=g.shape,
                            transpose=args.transpose)
    spec = spec_from_args(args, conductances=g)
    options = options_from_args(args)
    circuit = build_circuit(spec, transpose=args.transpose)
    result, seconds = run_engine(circuit, options, v)
    if options.engine == "ideal":
        ideal = result.currents
    else:
        ideal, _ = run_engine(circuit, SolverOptions(engine="ideal"), v)
        ideal = ideal.currents
    err_max, _, worst = relative_errors(result.currents, ideal)

    kind = "transpose read (columns driven, rows sensed)" if args.transpose else "forward read (rows driven, columns sensed)"
    method = result.info.get("method") or result.info.get("mode") or ""
    b, k = result.currents.shape
    print(f"read: {describe_spec(spec)}")
    print(f"  {b} input vector{'s' if b != 1 else ''}, {kind}")
    print(f"  engine {result.engine}{f' ({method})' if method else ''}: {seconds:.3g} s "
          f"(solve {result.elapsed:.3g} s)")
    out_name = "row" if args.transpose else "column"
    if options.engine == "ideal":
        print("  IR-drop error vs ideal: 0 (the ideal engine has no parasitics)")
    else:
        print(f"  IR-drop error vs ideal: {fmt_err(err_max)}  [max |I - I_ideal| / max |I_ideal|, "
              f"worst {out_name} {worst}]")
    print(f"  KCL residual: {result.residual:.2e} (relative)")
    currents = result.currents[0] if single else result.currents
    if out_path is not None:
        save_array(out_path, currents, what="--output")
        print(f"  currents ({b}×{k}, A) written to {out_path}")
    elif currents.size <= PRINT_LIMIT:
        print(f"currents (A), one line per input vector, one value per {out_name}:")
        for row in np.atleast_2d(currents):
            print("  " + " ".join(f"{x:.6e}" for x in row))
    else:
        print(f"  ({b}×{k} currents not shown; write them with --output I.npy|I.csv|I.json)")
    return 0
