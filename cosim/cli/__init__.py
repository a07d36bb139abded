"""The ``cosim`` command: one entry point, a sub-command per module in :data:`SUBCOMMANDS`.

Each sub-command module exposes ``register(subparsers)`` that adds its parser and sets
``func(args) -> int``; heavy imports stay inside ``func`` so ``cosim --help`` is instant.
A user's mistake (:class:`CosimError`, bad arguments) prints one line to stderr and exits 2;
nothing else is caught, so a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from cosim import __version__
from cosim.errors import CosimError

# Module names under cosim.cli, in the order `cosim --help` lists them.
SUBCOMMANDS = ["read", "netlist", "solve", "compare", "device", "train", "infer", "sweep", "report", "export", "demo"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2, no usage dump
        self.exit(2, f"cosim: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cosim", description="SPICE-coupled co-simulation of memristor crossbar arrays.")
    parser.add_argument("--version", action="version", version=f"cosim {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (repeat for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"cosim.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cosim.cli.{name}":
                continue  # sub-command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CosimError as exc:
        # One line for the user; multi-line details (ngspice's captured output) only with -v.
        lines = str(exc).splitlines() or [type(exc).__name__]
        detail = "\n".join(lines[1:])
        if detail and args.verbose:
            print(detail, file=sys.stderr)
        more = " (run with -v for details)" if detail and not args.verbose else ""
        print(f"cosim: error: {lines[0]}{more}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `cosim solve x.cir | head`: the reader went away; not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("cosim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
