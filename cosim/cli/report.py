"""``cosim report STORE.sqlite --output DIR``: HTML page, PNG/SVG figures and CSV tables of a study."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="write the HTML report, figures and tables of a study store",
        description="Read a study store (from `cosim sweep`) and write index.html (self-contained), "
                    "figures/*.png|svg and tables/*.csv into the output folder.")
    p.add_argument("store", help="results store written by `cosim sweep`")
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--point", default=None, metavar="KEY",
                   help="point (key or unambiguous prefix) whose cell-voltage loss map to draw; "
                        "default: the worst IR-drop point")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cosim.study.report import write_report

    files = write_report(args.store, args.output, point=args.point)
    print(f"report written to {files.html} ({len(files.figures)} figures, {len(files.tables)} tables)")
    return 0
