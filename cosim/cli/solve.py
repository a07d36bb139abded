"""``cosim solve NETLIST``: DC operating point of a SPICE netlist (node volts, source amperes)."""

from __future__ import annotations

import argparse

from cosim.catalog import NGSPICE_MODES

PRINT_LIMIT = 20  # source currents printed when no --output is given


def register(sub) -> None:
    p = sub.add_parser(
        "solve", help="DC operating point of a SPICE netlist (node voltages V, source currents A)",
        description="Read a SPICE netlist (R, C, L, V, I, linear E/F/G/H, .param, .subckt/X, "
                    ".include, .lib, .model for R, .options rshunt/temp/tnom, .temp, .if) and "
                    "solve its DC operating point as ngspice would. Writes "
                    '{"nodes": {name: volts}, "branches": {source: amperes}} as JSON; source '
                    "currents follow SPICE: positive flowing from + through the source to -. "
                    "Anything read but not modelled is refused with file:line.")
    p.add_argument("netlist", metavar="NETLIST", help="SPICE netlist file (e.g. deck.cir)")
    p.add_argument("--engine", choices=("auto", "nodal", "spice"), default="auto",
                   help="nodal: exact sparse nodal analysis (linear decks); spice: ngspice on the "
                        "file itself; auto: nodal, or ngspice for decks with nonlinear elements "
                        "(D, M, Q, J, B, ...) (default auto; the summary says which answered)")
    p.add_argument("--output", "-o", metavar="OP.json",
                   help="write the operating point here as JSON, atomically (default: print a summary)")
    p.add_argument("--check", action="store_true",
                   help="only check the topology (floating nodes, voltage-source loops, "
                        "current-source cut sets) and report; solve nothing")
    p.add_argument("--ngspice", choices=NGSPICE_MODES, default="auto",
                   help="kept for compatibility: --engine spice always runs the ngspice executable on the file")
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


def _ngspice(path: str, text: str, reason: str) -> tuple[dict, dict, str]:
    import json
    from pathlib import Path

    from cosim.circuit.spice_deck import run_deck

    nodes, branches = run_deck(Path(path), text)
    for value in (*nodes.values(), *branches.values()):
        if value != value or abs(value) == float("inf"):
            from cosim.errors import EngineError

            raise EngineError(f"ngspice's operating point of {path} is not finite ({value!r})")
    json.dumps(nodes)  # plain floats only
    return dict(sorted(nodes.items())), branches, reason


def run(args: argparse.Namespace) -> int:
    import time

    from cosim.circuit.netlist_read import NonlinearDeck, read_netlist
    from cosim.errors import EngineError, NetlistError, TopologyError
    from cosim.io import atomic_write_text, check_output_path

    out_path = check_output_path(args.output, what="--output", exts=(".json",)) if args.output else None
    text = _read_text(args.netlist)
    t0 = time.perf_counter()
    try:
        circuit = read_netlist(args.netlist, text=text)
    except NonlinearDeck as exc:
        if args.engine != "auto" or args.check:
            why = "--check covers linear decks" if args.check else "use --engine auto or spice for ngspice"
            raise NetlistError(f"{exc} ({why})") from None
        circuit, reason = None, f"ngspice (nonlinear deck: {str(exc).split(': ', 2)[-1]})"
    t_read = time.perf_counter() - t0
    if circuit is not None:
        n_elem = circuit.res_g.size + circuit.vsrc_p.size + circuit.isrc_dc.size
        size = (f"{circuit.n_nodes} nodes (ground included), {n_elem} elements "
                f"({circuit.res_g.size} R/C, {circuit.vsrc_p.size} V/L/E/H, {circuit.isrc_dc.size} I/G/F)")
    else:
        size = "nonlinear deck"
    if args.check:
        from cosim.circuit.topology import check_topology

        try:
            check_topology(circuit)
        except TopologyError as exc:
            raise TopologyError(f"{args.netlist}: {exc}") from None
        print(f"check {args.netlist}: topology OK: {size}; no floating nodes, source loops or "
              "current-source cut sets")
        return 0
    t0 = time.perf_counter()
    if circuit is None or args.engine == "spice":
        nodes, branches, engine = _ngspice(args.netlist, text, "ngspice" if circuit is not None else reason)
    else:
        from cosim.circuit.engines.base import SolverOptions
        from cosim.circuit.oppoint import operating_point

        try:
            op = operating_point(circuit, engine="nodal", options=SolverOptions(engine="nodal"))
        except (TopologyError, EngineError) as exc:
            raise type(exc)(f"{args.netlist}: {exc}") from None
        nodes, branches = op.nodes, op.branches
        engine = f"nodal ({op.info.get('method', 'direct')}"
        if "bound_volts" in op.info:
            engine += f", node voltages certified to {op.info['bound_volts']:.1e} V"
        engine += ")"
    seconds = time.perf_counter() - t0
    if out_path is not None:
        import json

        atomic_write_text(out_path, json.dumps({"nodes": nodes, "branches": branches}, indent=2),
                          what="--output")
    print(f"solve {args.netlist}: {size}")
    print(f"  engine {engine}: {seconds:.3g} s (parse {t_read:.3g} s)")
    if out_path is not None:
        print(f"  {len(nodes)} node voltages (V) and {len(branches)} source currents (A) "
              f"written to {out_path}")
    else:
        # the deck's own top-level sources first; shorts inside instances (v.x1.v2) after them
        items = sorted(branches.items(), key=lambda kv: "." in kv[0])
        print("source currents (A, + → - through the source):")
        for name, amps in items[:PRINT_LIMIT]:
            print(f"  {name} {amps:.9e}")
        if len(items) > PRINT_LIMIT:
            print(f"  ... {len(items) - PRINT_LIMIT} more; write them all with --output OP.json")
    return 0
