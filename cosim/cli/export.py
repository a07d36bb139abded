"""``cosim export STORE.sqlite --point KEY --output DIR``: tape-out netlists of a study point.

Examples::

    cosim export study.sqlite --list                     # the points that can be exported
    cosim export study.sqlite --point 3fa9c1 --output tapeout --verify
    cosim export study.sqlite --point 3fa9c1 --output tapeout --force   # replace an old tape-out

A ``train`` point's network is trained again from its seed (the store keeps only metrics), so
exporting it takes as long as that point did. See :mod:`cosim.study.export` and
:mod:`cosim.array.tapeout` for what is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TOLERANCE = 1e-6  # what --verify demands of ngspice against cosim (relative, per sense port)


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write SPICE netlists of a study point (tape-out)",
        description="Write, for one finished point of a study store, one ngspice netlist per tile with the "
                    "programmed conductances, a top-level netlist instantiating them, devices.csv (per-device "
                    "conductances and pulse counts), currents.csv (cosim's sense currents) and a README naming "
                    "the nodes to probe. A train point is trained again from its seed. The folder is written "
                    "atomically. Exit status: 0 on success, 1 when --verify finds a difference, 2 for a bad "
                    "store, point or folder.")
    p.add_argument("store", help="results store written by `cosim sweep`")
    p.add_argument("--point", metavar="KEY", help="point key or a unique prefix of it (≥ 4 characters)")
    p.add_argument("--output", "-o", metavar="DIR",
                   help="output folder (default: tapeout-<key prefix> beside the store)")
    p.add_argument("--force", action="store_true", help="replace a non-empty output folder")
    p.add_argument("--verify", action="store_true",
                   help=f"run every written netlist in ngspice and check it against cosim (relative {TOLERANCE:g})")
    p.add_argument("--list", action="store_true", help="list the exportable points of the store and exit")
    p.set_defaults(func=run)


def verify(directory: Path) -> int:
    """Print each deck's worst relative difference from cosim; 0 when all are within TOLERANCE."""
    from cosim.array.tapeout import verify_tapeout

    errors = verify_tapeout(directory)
    for deck, err in errors.items():
        print(f"  {deck}: max relative difference {err:.2e}")
    worst = max(errors.values())
    ok = worst <= TOLERANCE
    print(f"ngspice {'agrees' if ok else 'DISAGREES'} with cosim on {len(errors)} decks (worst {worst:.2e}, "
          f"tolerance {TOLERANCE:g})")
    return 0 if ok else 1


def run(args: argparse.Namespace) -> int:
    from cosim.errors import InputError
    from cosim.study.export import describe_point, export_point, exportable, find_point, selected_points
    from cosim.study.store import Store

    if args.list:
        with Store(args.store, create=False) as store:
            picked = {r.key for r in selected_points(store)}
            rows = [r for r in store.rows() if r.config.get("task", {}).get("kind") in exportable()]
        if not rows:
            print(f"{args.store}: no {' or '.join(exportable())} points")
        for r in rows:
            print(("* " if r.key in picked else "  ") + describe_point(r))
        if rows:
            print("(* = picked by the study's [export] table; give a key prefix to --point)")
        return 0
    if not args.point:
        raise InputError("give --point KEY (a key prefix; --list shows them)")
    key = find_point(args.store, args.point).key
    output = Path(args.output) if args.output else Path(args.store).resolve().parent / f"tapeout-{key[:12]}"
    files, notes = export_point(args.store, key, output, force=args.force)
    for note in notes:
        print(f"cosim: warning: {note}", file=sys.stderr)
    n = len(files.tiles)
    print(f"wrote {n} tile netlist{'s' * (n != 1)}, top.cir, devices.csv and README.md to {files.directory}")
    print(f"run: ngspice -b {files.top}")
    return verify(files.directory) if args.verify else 0
