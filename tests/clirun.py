"""Run ``cosim`` in this process and check the contract every command keeps (tests' helper).

``run(argv)`` returns (exit status, stdout, stderr) with SystemExit caught; ``check(...)``
asserts what the issue-15 hardening promises: exit 0, 1 or 2 only (3, the entry point's
internal error, is always a failure), never a traceback, and an error is exactly one line.
"""

from __future__ import annotations

import contextlib
import io

from cosim.cli import EXIT_INTERNAL, main


def run(argv: list) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse exits from inside parse_args
            rc = exc.code if isinstance(exc.code, int) else 2
    return rc, out.getvalue(), err.getvalue()


def check(rc: int, out: str, err: str, *, allowed=(0, 1, 2)) -> None:
    assert rc != EXIT_INTERNAL, f"internal error:\n{err}"
    assert "Traceback" not in err and "Traceback" not in out, err
    assert rc in allowed, (rc, err)
    if rc == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cosim: error: "), err


def refused(argv: list) -> str:
    """The one error line of a command that must be refused with exit 2."""
    rc, out, err = run(argv)
    check(rc, out, err)
    assert rc == 2, (rc, out, err)
    return err.strip()
