"""The last line of defence in ``cosim``'s entry point: an exception cosim did not expect prints
one line naming it, exits with status 3 (never 2, so tests and scripts can tell a bug from bad
input), and ``-v`` adds the traceback; a user's mistake still gets its own one line and 2.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from cosim.cli import EXIT_INTERNAL, main


def boom(args):
    raise ZeroDivisionError("float division by zero")


@pytest.fixture
def broken_read(monkeypatch):
    import cosim.cli.read as read

    real = read.register

    def register(sub):
        real(sub)
        sub.choices["read"].set_defaults(func=boom)

    monkeypatch.setattr(read, "register", register)


def test_unexpected_exception_is_one_line_and_status_3(broken_read, capsys):
    assert main(["read", "--conductance", "g.npy", "--voltages", "v.npy"]) == EXIT_INTERNAL == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["cosim: internal error: ZeroDivisionError: float division by zero; "
                                "rerun with -v for the traceback"]


def test_verbose_shows_the_traceback(broken_read, capsys):
    assert main(["-v", "read", "--conductance", "g.npy", "--voltages", "v.npy"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in boom" in err
    assert err.strip().splitlines()[-1] == "cosim: internal error: ZeroDivisionError: float division by zero"


def test_python_dash_m_runs_the_same_entry_point():
    res = subprocess.run([sys.executable, "-m", "cosim.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.startswith("cosim ")
