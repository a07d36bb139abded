"""``cosim solve NETLIST``: DC operating point of a SPICE netlist (node volts, source amperes)."""

from __future__ import annotations

import argparse

from cosim.catalog import NGSPICE_MODES

PRINT_LIMIT = 20  # source currents printed when no --output is given


def register(sub) -> None:
    p = sub.add_parser(
        "solve", help="DC operating point of a SPICE netlist (node voltages V, source currents A)",
        description="Read a SPICE netlist (the ngspice dialect `cosim netlist` writes: R, V, I, "
                    ".param, .subckt/X, .include) and solve its DC operating point. Writes "
                    '{"nodes": {name: volts}, "branches": {source: amperes}} as JSON; source '
                    "currents follow SPICE: positive flowing from + through the source to -.")
    p.add_argument("netlist", metavar="NETLIST", help="SPICE netlist file (e.g. deck.cir)")
    p.add_argument("--engine", choices=("nodal", "spice"), default="nodal",
                   help="nodal: exact sparse nodal analysis; spice: ngspice (default nodal)")
    p.add_argument("--output", "-o", metavar="OP.json",
                   help="write the operating point here as JSON, atomically (default: print a summary)")
    p.add_argument("--check", action="store_true",
                   help="only check the topology (floating nodes, voltage-source loops, "
                        "current-source cut sets) and report; solve nothing")
    p.add_argument("--ngspice", choices=NGSPICE_MODES, default="auto",
                   help="how the spice engine runs ngspice (default auto: library, else executable)")
    p.set_defaults(func=run)


def _read_text(path: str) -> str:
    from pathlib import Path

    from cosim.errors import InputError

    p = Path(path)
    if not p.exists():
        raise InputError(f"netlist {path} does not exist")
    if p.is_dir():
        raise InputError(f"netlist {path} is a folder, expected a SPICE file")
    try:
        return p.read_text(encoding="utf-8", errors="strict")
    except PermissionError:
        raise InputError(f"netlist {path} is not readable (permission denied)") from None
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError(f"netlist {path}:{line}: not UTF-8 text (a binary file?)") from None
    except OSError as exc:
        raise InputError(f"netlist {path} cannot be read: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    import time

    from cosim.circuit.engines.base import SolverOptions
    from cosim.circuit.netlist_read import read_netlist
    from cosim.circuit.oppoint import operating_point
    from cosim.errors import TopologyError
    from cosim.io import atomic_write_text, check_output_path

    out_path = check_output_path(args.output, what="--output", exts=(".json",)) if args.output else None
    text = _read_text(args.netlist)
    t0 = time.perf_counter()
    circuit = read_netlist(args.netlist, text=text)
    t_read = time.perf_counter() - t0
    n_elem = circuit.res_g.size + circuit.vsrc_p.size + circuit.isrc_dc.size
    size = (f"{circuit.n_nodes} nodes (ground included), {n_elem} elements "
            f"({circuit.res_g.size} R, {circuit.vsrc_p.size} V, {circuit.isrc_dc.size} I)")
    if args.check:
        from cosim.circuit.topology import check_topology

        try:
            check_topology(circuit)
        except TopologyError as exc:
            raise TopologyError(f"{args.netlist}: {exc}") from None
        print(f"check {args.netlist}: topology OK: {size}; no floating nodes, source loops or "
              "current-source cut sets")
        return 0
    options = SolverOptions(engine=args.engine, ngspice=args.ngspice)
    t0 = time.perf_counter()
    try:
        op = operating_point(circuit, engine=args.engine, options=options)
    except TopologyError as exc:
        raise TopologyError(f"{args.netlist}: {exc}") from None
    seconds = time.perf_counter() - t0
    if out_path is not None:
        atomic_write_text(out_path, op.to_json(), what="--output")
    print(f"solve {args.netlist}: {size}")
    print(f"  engine {args.engine}: {seconds:.3g} s (parse {t_read:.3g} s)")
    if out_path is not None:
        print(f"  {len(op.nodes)} node voltages (V) and {len(op.branches)} source currents (A) "
              f"written to {out_path}")
    else:
        # the deck's own top-level sources first; shorts inside instances (v.x1.v2) after them
        items = sorted(op.branches.items(), key=lambda kv: "." in kv[0])
        print("source currents (A, + → - through the source):")
        for name, amps in items[:PRINT_LIMIT]:
            print(f"  {name} {amps:.9e}")
        if len(items) > PRINT_LIMIT:
            print(f"  ... {len(items) - PRINT_LIMIT} more; write them all with --output OP.json")
    return 0
