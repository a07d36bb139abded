"""The circuit sub-commands: `cosim read`, `cosim netlist`, `cosim solve`, `cosim compare`.

Runs the CLI in-process (cosim.cli.main) with captured output, plus one run of the installed
`cosim` script. Good cases are checked against independent truth: V·G when every resistance is
0, the nodal engine called directly through the library, and the netlist read back by
`cosim solve`. Bad input must give exit status 2, a single line naming the problem, and leave
no output file behind.

Budget: ≈ 25 s on 2 cores, of which the `make demo` command with ngspice takes most.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cosim.circuit.read import read as lib_read
from cosim.circuit.spec import CrossbarSpec
from cosim.cli import main

N, M, B = 5, 4, 3
PARASITICS = {"r_row": 1.5, "r_col": 2.0, "r_driver": 20.0, "r_sense": 10.0}
ARGS = ["--r-row", "1.5", "--r-col", "2", "--r-driver", "20", "--r-sense", "10"]


def cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `cosim argv...`, run in this process."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("cosim: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def arrays(tmp_path, rng):
    """(G N×M in S, V B×N in V) and their .npy files in tmp_path."""
    g = rng.uniform(1e-6, 1e-4, size=(N, M))
    v = rng.uniform(0.0, 0.3, size=(B, N))
    np.save(tmp_path / "g.npy", g)
    np.save(tmp_path / "v.npy", v)
    return g, v


@pytest.fixture
def no_ngspice(monkeypatch):
    """The spice engine finds neither libngspice nor the ngspice executable."""
    from cosim.circuit.engines import spice

    monkeypatch.setattr(spice, "shared_instance", lambda: None)
    monkeypatch.setattr(spice, "ngspice_binary", lambda: None)


# ----------------------------------------------------------------------------- read: good cases

def test_read_without_parasitics_is_v_dot_g(tmp_path, arrays, capsys):
    g, v = arrays
    rc, out, err = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages",
                       tmp_path / "v.npy", "--output", tmp_path / "i.npy")
    assert rc == 0, err
    # All resistances 0: every row node sits at its input and every column node at 0 V, so the
    # currents are V·G up to the rounding of the sums (1e-12 relative).
    np.testing.assert_allclose(np.load(tmp_path / "i.npy"), v @ g, rtol=1e-12, atol=0)
    assert f"written to {tmp_path / 'i.npy'}" in out


def test_read_with_parasitics_matches_the_library_nodal_engine(tmp_path, arrays, capsys):
    g, v = arrays
    rc, out, err = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages",
                       tmp_path / "v.npy", *ARGS, "-o", tmp_path / "i.npy")
    assert rc == 0, err
    got = np.load(tmp_path / "i.npy")
    ref = lib_read(CrossbarSpec(conductances=g, **PARASITICS), v, engine="nodal").currents
    # Same engine on the same .npy-exact data: only the order of identical operations could differ.
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)
    ideal = v @ g
    assert np.abs(got - ideal).max() > 1e-3 * np.abs(ideal).max()  # the parasitics really act
    printed = float(re.search(r"IR-drop error vs ideal: (\S+)", out).group(1))
    expected = np.abs(got - ideal).max() / np.abs(ideal).max()
    assert printed == pytest.approx(expected, rel=2e-3)  # printed with 4 significant digits
    assert "engine nodal" in out and "KCL residual" in out and f"{N}×{M}" in out


@pytest.mark.parametrize("ext", [".csv", ".json"])
def test_read_writes_csv_and_json(tmp_path, arrays, capsys, ext):
    g, v = arrays
    np.savetxt(tmp_path / "v.csv", v, delimiter=",")
    out_path = tmp_path / f"i{ext}"
    rc, _, err = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages",
                     tmp_path / "v.csv", *ARGS, "-o", out_path)
    assert rc == 0, err
    got = (np.loadtxt(out_path, delimiter=",", ndmin=2) if ext == ".csv"
           else np.array(json.loads(out_path.read_text())))
    ref = lib_read(CrossbarSpec(conductances=g, **PARASITICS), np.loadtxt(tmp_path / "v.csv", delimiter=","),
                   engine="nodal").currents
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)


def test_single_vector_in_single_vector_out_and_transpose(tmp_path, arrays, capsys):
    g, _ = arrays
    vt = np.linspace(0.05, 0.2, M)  # one vector on the columns
    np.save(tmp_path / "vt.npy", vt)
    rc, out, err = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages",
                       tmp_path / "vt.npy", *ARGS, "--transpose", "-o", tmp_path / "it.npy")
    assert rc == 0, err
    got = np.load(tmp_path / "it.npy")
    assert got.shape == (N,)
    ref = lib_read(CrossbarSpec(conductances=g, **PARASITICS), vt, engine="nodal", transpose=True).currents[0]
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=0)
    assert "transpose read" in out and "worst row" in out


def test_every_array_option_reaches_the_spec(tmp_path, arrays, capsys):
    g, v = arrays
    r_row = np.linspace(1.0, 3.0, M - 1)  # per-segment wire resistances from a CSV file
    (tmp_path / "rrow.csv").write_text(",".join(repr(float(x)) for x in r_row) + "\n")
    spec = CrossbarSpec(conductances=g, r_row=r_row, r_col=2.0, r_driver=1000.0, r_sense=2.5e-3,
                        v_sense=0.05, drive="both", sense="top", cell="1T1R", r_access=2200.0,
                        selected_rows=[0, 1, 2, 4], selected_cols=[1, 2], unselected="v/3", v_select=0.4)
    rc, _, err = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages", tmp_path / "v.npy",
                     "--r-row", tmp_path / "rrow.csv", "--r-col", "2", "--r-driver", "1k",
                     "--r-sense", "2.5m", "--v-sense", "50m", "--drive", "both", "--sense", "top",
                     "--cell", "1T1R", "--r-access", "2.2k", "--selected-rows", "0-2,4",
                     "--selected-cols", "1,2", "--unselected", "v/3", "--v-select", "0.4",
                     "-o", tmp_path / "i.npy")
    assert rc == 0, err
    ref = lib_read(spec, v, engine="nodal").currents
    np.testing.assert_allclose(np.load(tmp_path / "i.npy"), ref, rtol=1e-13, atol=0)
    assert np.all(np.load(tmp_path / "i.npy")[:, [0, 3]] == 0)  # unselected columns read 0 A


def test_ideal_engine_ignores_parasitics(tmp_path, arrays, capsys):
    g, v = arrays
    rc, out, _ = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages", tmp_path / "v.npy",
                     *ARGS, "--engine", "ideal", "-o", tmp_path / "i.npy")
    assert rc == 0
    np.testing.assert_allclose(np.load(tmp_path / "i.npy"), v @ g, rtol=1e-15)
    assert "engine ideal" in out


def test_read_prints_small_results(tmp_path, arrays, capsys):
    g, v = arrays
    rc, out, _ = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages", tmp_path / "v.npy")
    assert rc == 0
    rows = [ln.split() for ln in out.splitlines()[-B:]]
    np.testing.assert_allclose(np.array(rows, dtype=float), v @ g, rtol=1e-6)  # printed to 7 digits


@pytest.mark.ngspice
def test_read_spice_matches_nodal(tmp_path, arrays, capsys):
    g, v = arrays
    rc, out, err = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages", tmp_path / "v.npy",
                       *ARGS, "--engine", "spice", "-o", tmp_path / "i.npy")
    assert rc == 0, err
    ref = lib_read(CrossbarSpec(conductances=g, **PARASITICS), v, engine="nodal").currents
    # ngspice solves the same linear system with its own LU and pivoting: agreement to ~1e-12,
    # checked at 1e-9 to leave room for its 17-digit printout and different summation order.
    np.testing.assert_allclose(np.load(tmp_path / "i.npy"), ref, rtol=1e-9, atol=0)
    assert "engine spice" in out


# ------------------------------------------------------------------ netlist → solve round trip

@pytest.mark.parametrize("transpose", [False, True])
def test_netlist_then_solve_gives_the_read_currents(tmp_path, arrays, capsys, transpose):
    g, v = arrays
    vin = v if not transpose else v[:, :M]
    np.save(tmp_path / "vin.npy", vin)
    flag = ["--transpose"] if transpose else []
    rc, out, err = cli(capsys, "netlist", "--conductance", tmp_path / "g.npy", "--voltages",
                       tmp_path / "vin.npy", *ARGS, *flag, "-o", tmp_path / "deck.cir")
    assert rc == 0, err
    assert "first of 3 vectors" in out and "ngspice -b" in out
    rc, out, err = cli(capsys, "solve", tmp_path / "deck.cir", "-o", tmp_path / "op.json")
    assert rc == 0, err
    op = json.loads((tmp_path / "op.json").read_text())
    assert set(op) == {"nodes", "branches"}
    port = "vd" if transpose else "vs"
    got = np.array([op["branches"][f"{port}{k}"] for k in range(N if transpose else M)])
    ref = lib_read(CrossbarSpec(conductances=g, **PARASITICS), vin[0], engine="nodal",
                   transpose=transpose).currents[0]
    # The deck carries every value in round-trip text; the parsed flat circuit is solved with a
    # different node order, so only rounding differs (1e-10 relative).
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)
    assert op["nodes"]["d0"] == pytest.approx(vin[0, 0] if not transpose else 0.0, abs=1e-15)


def test_netlist_to_stdout_is_seeded(capsys):
    argv = ["netlist", "--rows", "3", "--cols", "2", "--r-row", "1", "--seed", "7"]
    rc, first, _ = cli(capsys, *argv)
    assert rc == 0 and first.startswith("3x2 0T1R crossbar") and first.rstrip().endswith(".end")
    assert cli(capsys, *argv)[1] == first
    g = np.random.default_rng(7).uniform(1e-6, 1e-5, size=(3, 2))  # the documented draw
    assert f"rg1_0 r1_0 c1_0 {float(1 / g[1, 0])!r}" in first
    assert cli(capsys, *argv[:-1], "8")[1] != first


def test_solve_check_only_reports(tmp_path, capsys):
    (tmp_path / "ok.cir").write_text("divider\nv1 in 0 1\nr1 in out 1k\nr2 out 0 1k\n.end\n")
    rc, out, _ = cli(capsys, "solve", tmp_path / "ok.cir", "--check")
    assert rc == 0 and "topology OK" in out and "3 nodes" in out
    rc, out, _ = cli(capsys, "solve", tmp_path / "ok.cir")
    assert rc == 0
    assert float(re.search(r"v1 (\S+)", out).group(1)) == pytest.approx(-0.5e-3, rel=1e-9)  # 1 V / 2 kΩ


@pytest.mark.ngspice
def test_solve_with_spice_agrees(tmp_path, arrays, capsys):
    rc, _, err = cli(capsys, "netlist", "--conductance", tmp_path / "g.npy", "--voltages", tmp_path / "v.npy",
                     *ARGS, "-o", tmp_path / "deck.cir")
    assert rc == 0, err
    ops = []
    for engine in ("nodal", "spice"):
        rc, _, err = cli(capsys, "solve", tmp_path / "deck.cir", "--engine", engine, "-o", tmp_path / f"{engine}.json")
        assert rc == 0, err
        ops.append(json.loads((tmp_path / f"{engine}.json").read_text()))
    nodal, spice = ops
    assert nodal["branches"].keys() == spice["branches"].keys()
    a = np.array(list(nodal["branches"].values()))
    b = np.array([spice["branches"][k] for k in nodal["branches"]])
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9 * np.abs(a).max())  # see test_read_spice_matches_nodal


# ------------------------------------------------------------------------------------- compare

def table_rows(out: str) -> dict[str, list[str]]:
    return {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()
            if ln.split() and ln.split()[0] in ("ideal", "nodal", "spice")}


def test_compare_without_ngspice_says_why(capsys, no_ngspice):
    rc, out, err = cli(capsys, "compare", "--rows", "6", "--cols", "5", *ARGS, "--batch", "4")
    assert rc == 0, err
    rows = table_rows(out)
    assert rows["spice"][0] == "skipped:" and "ngspice not found" in " ".join(rows["spice"])
    assert rows["nodal"][1:3] == ["0.000e+00", "0.000e+00"]
    ir = float(rows["ideal"][1])
    assert ir > 0 and f"IR-drop error of ideal vs nodal: max {ir:.3e}" in out


def test_compare_spice_only_without_ngspice_fails(capsys, no_ngspice):
    rc, _, err = cli(capsys, "compare", "--rows", "4", "--cols", "4", "--engines", "spice")
    assert rc == 2 and "ngspice not found" in one_error_line(err)


def test_compare_skips_spice_on_large_arrays(capsys):
    rc, out, _ = cli(capsys, "compare", "--rows", "8", "--cols", "8", "--r-row", "1", "--spice-max-cells", "4x4")
    assert rc == 0
    assert "8×8 = 64 cells > --spice-max-cells 16" in out
    rc, _, err = cli(capsys, "compare", "--rows", "8", "--cols", "8", "--engines", "spice", "--spice-max-cells", "16")
    assert rc == 2 and "--spice-max-cells" in one_error_line(err)


def test_compare_ideal_error_is_the_ir_drop(tmp_path, arrays, capsys):
    g, v = arrays
    rc, out, _ = cli(capsys, "compare", "--conductance", tmp_path / "g.npy", "--voltages", tmp_path / "v.npy",
                     *ARGS, "--engines", "ideal,nodal")
    assert rc == 0
    ref = lib_read(CrossbarSpec(conductances=g, **PARASITICS), v, engine="nodal").currents
    diff = np.abs(v @ g - ref)
    rows = table_rows(out)
    assert float(rows["ideal"][1]) == pytest.approx(diff.max() / np.abs(ref).max(), rel=1e-3)
    assert float(rows["ideal"][2]) == pytest.approx(diff.mean() / np.abs(ref).max(), rel=1e-3)
    assert int(rows["ideal"][3]) == int(np.argmax(diff.max(axis=0)))
    assert "spice" not in rows


@pytest.mark.ngspice
@pytest.mark.slow
def test_make_demo_command_compares_all_three(capsys):
    # The exact command `make demo` runs (ngspice takes a few seconds at 64×64).
    rc, out, err = cli(capsys, "compare", "--rows", "64", "--cols", "64", "--r-row", "1", "--r-col", "1",
                       "--r-driver", "10", "--r-sense", "10", "--seed", "0")
    assert rc == 0, err
    rows = table_rows(out)
    assert set(rows) == {"ideal", "nodal", "spice"}
    assert float(rows["spice"][1]) < 1e-9  # ngspice vs nodal on the same linear circuit
    assert 1e-3 < float(rows["ideal"][1]) < 0.5  # 1 Ω segments over 64 cells: a visible IR drop
    assert float(rows["nodal"][4]) < 1e-12 and float(rows["spice"][4]) < 1e-8  # KCL residuals


# ------------------------------------------------------------------------------- bad input → 2

def bad_cases(tmp: Path) -> list[tuple[str, list, str]]:
    """(id, argv, text the one-line message must contain); files are made in ``tmp``."""
    rng = np.random.default_rng(3)
    g = rng.uniform(1e-6, 1e-5, size=(4, 3))
    np.save(tmp / "g.npy", g)
    np.save(tmp / "v_bad.npy", np.ones((2, 5)))
    np.save(tmp / "v.npy", np.ones((2, 4)))
    g_nan = g.copy()
    g_nan[1, 2] = np.nan
    np.savetxt(tmp / "g_nan.csv", g_nan, delimiter=",")
    g_neg = g.copy()
    g_neg[2, 0] = -1e-6
    np.save(tmp / "g_neg.npy", g_neg)
    (tmp / "v_text.csv").write_text("0.1,0.2,0.3,0.4\n0.1,0.2,x,0.4\n")
    (tmp / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp / "rrow.csv").write_text("1,2,3,4,5\n")
    (tmp / "malformed.cir").write_text("title\nv1 a 0 1\nr1 a 0\n.end\n")
    (tmp / "nosub.cir").write_text("title\nv1 a 0 1\nr1 a 0 1k\nx1 a b amp\n.end\n")
    (tmp / "noparam.cir").write_text("title\nv1 a 0 1\nr1 a 0 {rload}\n.end\n")
    (tmp / "float.cir").write_text("title\nv1 a 0 1\nr1 a 0 1k\nr2 b c 1k\n.end\n")
    (tmp / "binary.cir").write_bytes(b"title\nv1 a 0 1\n\xff\xfe\n")
    read = ["read", "--conductance", tmp / "g.npy", "--voltages", tmp / "v.npy"]
    out_npy = ["-o", tmp / "out" / "i.npy"]
    out_json = ["-o", tmp / "out" / "op.json"]
    return [
        ("shape", ["read", "--conductance", tmp / "g.npy", "--voltages", tmp / "v_bad.npy", *out_npy],
         "has shape (2, 5) but --conductance"),
        ("shape-both", ["read", "--conductance", tmp / "g.npy", "--voltages", tmp / "v_bad.npy"],
         "has shape (4, 3): expected (B, 4) or (4,)"),
        ("nan", ["read", "--conductance", tmp / "g_nan.csv", "--voltages", tmp / "v.npy", *out_npy],
         "g_nan.csv: spec.conductances[1,2] is NaN"),
        ("negative", ["read", "--conductance", tmp / "g_neg.npy", "--voltages", tmp / "v.npy", *out_npy],
         "spec.conductances[2,0] must be ≥ 0 S, got -1e-06"),
        ("engine", [*read, "--engine", "hspice", *out_npy], "invalid choice: 'hspice'"),
        ("engines", ["compare", "--rows", "2", "--cols", "2", "--engines", "ideal,xyce"], "unknown engine 'xyce'"),
        ("negative-r", [*read, "--r-row", "-1", *out_npy], "--r-row: spec.r_row must be ≥ 0 Ω, got -1.0"),
        ("bad-value", [*read, "--r-col", "ten", *out_npy], "--r-col: expected a resistance"),
        ("bad-suffix", [*read, "--v-sense", "1volt2", *out_npy], "argument --v-sense: expected a number"),
        ("r-file-shape", [*read, "--r-row", tmp / "rrow.csv", *out_npy], "rrow.csv: spec.r_row must be a scalar"),
        ("selected", [*read, "--selected-cols", "0,7", *out_npy], "--selected-cols: spec.selected_cols indices"),
        ("v-select", [*read, "--selected-rows", "0", "--unselected", "v/2", *out_npy], "--v-select"),
        ("missing-g", ["read", "--conductance", tmp / "nope.npy", "--voltages", tmp / "v.npy", *out_npy],
         "nope.npy does not exist"),
        ("missing-v", ["read", "--conductance", tmp / "g.npy", "--voltages", tmp / "nope.csv", *out_npy],
         "nope.csv does not exist"),
        ("text-cell", ["read", "--conductance", tmp / "g.npy", "--voltages", tmp / "v_text.csv", *out_npy],
         "v_text.csv: line 2, column 3: 'x' is not a number"),
        ("corrupt", ["read", "--conductance", tmp / "corrupt.npy", "--voltages", tmp / "v.npy", *out_npy],
         "corrupt.npy cannot be read"),
        ("out-ext", [*read, "-o", tmp / "out" / "i.txt"], "must end in .npy, .csv or .json"),
        ("out-dir", [*read, "-o", tmp / "nodir" / "i.npy"], "does not exist"),
        ("random-vs-file", ["netlist", "--conductance", tmp / "g.npy", "--rows", "3"], "--rows describe a random array"),
        ("no-array", ["compare", "--r-row", "1"], "give --conductance G.npy, or --rows N and --cols M"),
        ("g-range", ["netlist", "--rows", "2", "--cols", "2", "--g-min", "1u", "--g-max", "0.5u"], "--g-max"),
        ("malformed", ["solve", tmp / "malformed.cir", *out_json], "malformed.cir:3:"),
        ("subckt", ["solve", tmp / "nosub.cir", *out_json], "nosub.cir:4: undefined subcircuit 'amp'"),
        ("param", ["solve", tmp / "noparam.cir", *out_json], "noparam.cir:3: undefined parameter 'rload'"),
        ("floating", ["solve", tmp / "float.cir", *out_json], "float.cir: circuit 'title' cannot be solved: 2 floating node(s)"),
        ("floating-check", ["solve", tmp / "float.cir", "--check"], "floating node(s) with no DC path to ground: b, c"),
        ("missing-netlist", ["solve", tmp / "none.cir", *out_json], "none.cir does not exist"),
        ("binary-netlist", ["solve", tmp / "binary.cir", *out_json], "binary.cir:3: not UTF-8"),
        ("netlist-shape", ["netlist", "--conductance", tmp / "g.npy", "--voltages", tmp / "v_bad.npy",
                           "-o", tmp / "out" / "x.cir"], "has shape (2, 5)"),
    ]


def test_bad_input_exits_2_with_one_line_and_no_output(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    cases = bad_cases(tmp_path)
    assert len(cases) >= 25
    for case_id, argv, expected in cases:
        rc, out, err = cli(capsys, *argv)
        assert rc == 2, f"{case_id}: exit {rc}, stdout {out!r}, stderr {err!r}"
        line = one_error_line(err)
        assert expected in line, f"{case_id}: {line!r} lacks {expected!r}"
        assert list((tmp_path / "out").iterdir()) == [], f"{case_id} left {list((tmp_path / 'out').iterdir())}"


def test_missing_ngspice_is_one_line(tmp_path, arrays, capsys, no_ngspice):
    (tmp_path / "out").mkdir()
    rc, _, err = cli(capsys, "read", "--conductance", tmp_path / "g.npy", "--voltages", tmp_path / "v.npy",
                     "--engine", "spice", "-o", tmp_path / "out" / "i.npy")
    assert rc == 2 and "ngspice not found" in one_error_line(err)
    (tmp_path / "d.cir").write_text("t\nv1 a 0 1\nr1 a 0 1k\n.end\n")
    rc, _, err = cli(capsys, "solve", tmp_path / "d.cir", "--engine", "spice", "-o", tmp_path / "out" / "op.json")
    assert rc == 2 and "ngspice not found" in one_error_line(err)
    assert list((tmp_path / "out").iterdir()) == []


def test_installed_script_prints_no_traceback(tmp_path):
    script = Path(sys.executable).with_name("cosim")
    np.save(tmp_path / "g.npy", np.full((3, 3), np.nan))
    np.save(tmp_path / "v.npy", np.ones(3))
    proc = subprocess.run([str(script), "read", "--conductance", str(tmp_path / "g.npy"), "--voltages",
                           str(tmp_path / "v.npy"), "-o", str(tmp_path / "i.npy")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "is NaN" in one_error_line(proc.stderr)
    assert not (tmp_path / "i.npy").exists()


def test_help_gives_units_and_imports_stay_light():
    code = ("import sys, cosim.cli.read, cosim.cli.netlist, cosim.cli.solve, cosim.cli.compare, "
            "cosim.cli.common, cosim.io, argparse\n"
            "p = argparse.ArgumentParser(); sub = p.add_subparsers()\n"
            "for m in (cosim.cli.read, cosim.cli.netlist, cosim.cli.solve, cosim.cli.compare): m.register(sub)\n"
            "print(sorted(h for h in ('scipy', 'PySpice', 'matplotlib', 'networkx') if h in sys.modules))\n"
            "print(sub.choices['read'].format_help())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    heavy, help_text = proc.stdout.split("\n", 1)
    assert heavy == "[]"
    for unit in ("siemens", "Ω", " V", "amperes"):
        assert unit in help_text
