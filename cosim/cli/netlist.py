"""``cosim netlist``: the ngspice deck of a crossbar read, runnable as ``ngspice -b deck.cir``."""

from __future__ import annotations

import argparse
import sys

from cosim.cli.common import add_array_options, conductances_from_args, describe_spec, spec_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "netlist", help="write the SPICE netlist (ngspice) of a crossbar read",
        description="Write the ngspice netlist of a crossbar read: readable node names (r{i}_{j} on "
                    "row wires, c{i}_{j} on column wires, d{i} row ports, s{j} column ports), "
                    "resistances in Ω, conductances in S, sources in V, and a .control block that "
                    "prints the output currents (A). Without --conductance a seeded random array is "
                    "drawn (--rows, --cols, --g-min, --g-max, --seed). `cosim solve` reads the deck back.")
    p.add_argument("--voltages", metavar="V.npy|V.csv",
                   help="input voltages, V: the port sources take the first vector (B×N or N; "
                        "B×M or M with --transpose); default 0 V")
    p.add_argument("--transpose", action="store_true",
                   help="transpose read: the column ports are driven and the row currents printed")
    p.add_argument("--title", help="first line of the deck (default: the array size and read)")
    p.add_argument("--output", "-o", metavar="DECK.cir",
                   help="write the netlist here, atomically (default: print it to stdout)")
    add_array_options(p, random=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cosim.circuit.build import build_circuit
    from cosim.circuit.netlist_write import write_netlist
    from cosim.cli.read import load_inputs
    from cosim.io import atomic_write_text, check_output_path

    out_path = check_output_path(args.output, what="--output", exts=None) if args.output else None
    g, source = conductances_from_args(args)
    inputs = None
    n_in = g.shape[1] if args.transpose else g.shape[0]
    if args.voltages:
        inputs, _ = load_inputs(args.voltages, n_in, g_path=args.conductance or "(random)",
                                g_shape=g.shape, transpose=args.transpose)
    spec = spec_from_args(args, conductances=g)
    circuit = build_circuit(spec, transpose=args.transpose)
    text = write_netlist(circuit, inputs=inputs, title=args.title, spec=spec)
    if out_path is None:
        sys.stdout.write(text)
        return 0
    atomic_write_text(out_path, text, what="--output")
    n_elem = int((circuit.res_g > 0).sum()) + circuit.vsrc_p.size + circuit.isrc_dc.size
    print(f"netlist: {describe_spec(spec)}")
    print(f"  conductances: {source}")
    if inputs is not None:
        note = f" (first of {inputs.shape[0]} vectors)" if inputs.shape[0] > 1 else ""
        print(f"  sources set from --voltages {args.voltages}{note}")
    else:
        print("  sources at 0 V (give --voltages for input values)")
    print(f"  {circuit.n_nodes} nodes, {n_elem} elements written to {out_path}; "
          f"run: ngspice -b {out_path}")
    return 0
