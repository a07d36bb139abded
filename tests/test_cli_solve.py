"""`cosim solve` on the decks of issues 13 and 15: right answers, one-line refusals, engine routing.

Truths: hand-solved dividers (a negative resistor is a legal element: 1k over 3k ∥ −6k = 6k
gives 6/7), ngspice on the same file for the nonlinear deck. Every refusal: exit 2, one line
naming file and line, nothing written.
"""

from __future__ import annotations

import json

import pytest

from cosim.cli import main


def cli(capsys, *argv):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def solve(tmp_path, capsys, text, *extra):
    deck = tmp_path / "d.cir"
    deck.write_text(text)
    out = tmp_path / "op.json"
    rc, stdout, err = cli(capsys, "solve", deck, "-o", out, *extra)
    return rc, stdout, err, (json.loads(out.read_text()) if out.exists() else None)


def test_negative_resistor_is_solved_and_checks_ok(tmp_path, capsys):
    rc, _, err, op = solve(tmp_path, capsys, "t\nv1 a 0 1\nr1 a b 1k\nr2 b 0 3k\nr3 b 0 -6k\n.end\n")
    assert rc == 0, err
    assert op["nodes"]["b"] == pytest.approx(6 / 7, rel=1e-14)
    rc, out, _ = cli(capsys, "solve", tmp_path / "d.cir", "--check")
    assert rc == 0 and "topology OK" in out


@pytest.mark.parametrize("body, line, message", [
    ("r3 b 0 {1e200*1e200-1e200*1e200}\n", 5, "evaluates to nan"),
    ("r3 b 0 {1e200*1e200}\n", 5, "evaluates to inf"),
    ("r3 b 0 1e999\n", 5, "the value of r3 is inf"),
    ("v2 c 0 1e999\nr4 c 0 1\n", 5, "the value of v2 is inf"),
    ("i1 0 b 1e999\n", 5, "the value of i1 is inf"),
])
def test_bad_values_are_one_line_with_file_and_line(tmp_path, capsys, body, line, message):
    text = "t\nv1 a 0 1\nr1 a b 1k\nr2 b 0 3k\n" + body + ".end\n"
    for extra in ((), ("--check",), ("--engine", "nodal")):
        rc, _, err, op = solve(tmp_path, capsys, text, *extra)
        lines = err.strip().splitlines()
        assert rc == 2 and op is None and len(lines) == 1, (extra, err)
        assert f"d.cir:{line}: " in lines[0] and message in lines[0]


def test_overflowing_answer_is_refused_not_written_as_infinity(tmp_path, capsys):
    rc, _, err, op = solve(tmp_path, capsys, "t\nv1 a 0 1e308\nr1 a 0 1e-10\n.end\n")
    assert rc == 2 and op is None and "overflows" in err and len(err.strip().splitlines()) == 1


def test_ports_named_gnd_or_global_stay_global(tmp_path, capsys):
    rc, _, err, op = solve(tmp_path, capsys, "t\n.subckt two gnd q\nr1 gnd q 1k\n.ends\nv1 a 0 1\n"
                           "x1 a b two\nr2 b 0 3k\n.end\n")
    assert rc == 0 and op["nodes"]["b"] == 0.0
    rc, _, err, op = solve(tmp_path, capsys, "t\n.global vdd\n.subckt two vdd q\nr1 vdd q 1k\n.ends\n"
                           "v1 a 0 1\nv2 vdd 0 2\nx1 a b two\nr2 b 0 3k\n.end\n")
    assert rc == 0 and op["nodes"]["b"] == pytest.approx(1.5, rel=1e-14)


DIODE = "diode\nv1 a 0 5\nr1 a b 1k\nd1 b 0 dmod\n.model dmod d (is=1e-14)\n.end\n"


@pytest.mark.ngspice
def test_auto_routes_a_nonlinear_deck_to_ngspice_and_says_so(tmp_path, capsys):
    rc, out, err, op = solve(tmp_path, capsys, DIODE)
    assert rc == 0, err
    assert "engine ngspice (nonlinear deck" in out
    assert 0.5 < op["nodes"]["b"] < 0.8 and op["branches"]["v1"] == pytest.approx(-(5 - op["nodes"]["b"]) / 1e3)


def test_nodal_refuses_a_nonlinear_deck_in_one_line(tmp_path, capsys):
    rc, _, err, op = solve(tmp_path, capsys, DIODE, "--engine", "nodal")
    assert rc == 2 and op is None and len(err.strip().splitlines()) == 1
    assert "d.cir:4: d1 is a nonlinear" in err and "--engine auto" in err


def test_small_deck_does_not_load_the_compiled_kernels(tmp_path):
    """Latency: a 10-element deck must not import numba or the crossbar solvers."""
    import subprocess
    import sys

    (tmp_path / "d.cir").write_text("t\nv1 a 0 1\n" + "".join(f"r{k} a n{k} 1k\nr{k}b n{k} 0 2k\n" for k in range(5))
                                   + ".end\n")
    code = ("import sys; from cosim.cli import main; rc = main(['solve', sys.argv[1]]); "
            "bad = [m for m in ('numba', 'cosim.circuit.solvers.kernels', 'networkx', 'PySpice') if m in sys.modules]; "
            "print('LOADED', bad); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.cir")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


def test_a_read_circuit_with_controlled_sources_is_not_written_back(tmp_path):
    from cosim.circuit.netlist_read import read_netlist
    from cosim.circuit.netlist_write import write_netlist
    from cosim.errors import NetlistError

    c = read_netlist(tmp_path / "e.cir", text="t\nv1 a 0 1\nr1 a 0 1k\ne1 b 0 a 0 2\nr2 b 0 1k\n.end\n")
    with pytest.raises(NetlistError, match="controlled sources"):
        write_netlist(c)
