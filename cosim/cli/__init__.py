"""The ``cosim`` command: one entry point, a sub-command per module in :data:`SUBCOMMANDS`.

Each sub-command module exposes ``register(subparsers)`` that adds its parser and sets
``func(args) -> int``; heavy imports stay inside ``func`` so ``cosim --help`` is instant.
A user's mistake (:class:`CosimError`, bad arguments) prints one line to stderr and exits 2.
Anything else is a bug in cosim: the last line of defence prints one line, ``internal error: …;
rerun with -v for the traceback``, and exits with :data:`EXIT_INTERNAL` (3); with ``-v`` the
traceback is printed too. Tests that call :func:`main` treat status 3 as a failure.

Exit statuses: 0 success, 1 a result that is not clean (failed study points, a --verify
difference), 2 bad input, 3 internal error (a bug: please report it), 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
import traceback

from cosim import __version__
from cosim.errors import CosimError

# Module names under cosim.cli, in the order `cosim --help` lists them.
EXIT_INTERNAL = 3  # an exception cosim did not expect: a bug, never a user's mistake
SUBCOMMANDS = ["read", "netlist", "solve", "compare", "sneak", "device", "train", "infer", "sweep", "report", "export", "demo"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2, no usage dump
        self.exit(2, f"cosim: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cosim", description="SPICE-coupled co-simulation of memristor crossbar arrays.")
    parser.add_argument("--version", action="version", version=f"cosim {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (repeat for debug)")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="memory a command may plan to use, e.g. 64G (default: the machine's physical "
                             "memory, or a lower ulimit/cgroup limit); sets COSIM_MAX_MEMORY")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:  # a sub-command that fails to import is a bug: its traceback shows
        importlib.import_module(f"cosim.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from cosim.guards import ENV

    before = os.environ.get(ENV)
    try:
        if args.max_memory is not None:
            from cosim.guards import parse_bytes

            parse_bytes(args.max_memory)  # refuse a bad size before any work
            os.environ[ENV] = args.max_memory  # the guards and the study's worker processes read it
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
    except OSError as exc:
        if exc.errno not in (errno.ENAMETOOLONG, errno.ELOOP):
            return _internal(exc, args.verbose)
        # only a path the user typed can be too long or loop: bad input, wherever it surfaced
        name = str(exc.filename or "")
        print(f"cosim: error: {name[:60]}{'…' if len(name) > 60 else ''}: {exc.strerror}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last line of defence: one line, never a raw traceback
        return _internal(exc, args.verbose)
    finally:  # main() may be called in-process (tests, notebooks): leave the environment as found
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def _internal(exc: BaseException, verbose: int) -> int:
    """One line for an exception cosim did not expect (the traceback too with -v)."""
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    text = " ".join(str(exc).split())[:300] or "(no message)"
    hint = "" if verbose else "; rerun with -v for the traceback"
    print(f"cosim: internal error: {type(exc).__name__}: {text}{hint}", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
