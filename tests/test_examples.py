"""The numbered examples run as a user would run them, and print physically sane numbers.

Each example runs in a fresh interpreter (the venv's ``sys.executable``) with ``-W error``, its
output folder set to ``tmp_path`` through ``COSIM_EXAMPLES_OUT`` and ``tmp_path`` as working
directory, so nothing is written into the repository. Each test parses the key lines of the
example's output and checks them against what the physics requires (stated per test), so an API
change that breaks an example, or silently changes what it shows, fails here.

Budget: ≈ 13 s on 2 cores (01: 2.5 s, 02: 1.5 s, 03: 1 s, 04: 4.5 s, 05: 1 s, 06 capped at 16×16: 3 s).
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CARDS = Path(__file__).resolve().parents[1] / "models" / "cards"
TESTED = {"01_ideal_vs_parasitic.py", "02_netlist_in_ngspice.py", "03_sneak_paths.py",
          "04_device_pulse_curves.py", "05_programming_disturb.py", "06_read_margin_vs_size.py"}
NUM = r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?"


def run(name: str, tmp_path: Path, **extra_env: str) -> str:
    """stdout of ``examples/name``; fails with its stderr if it exits non-zero."""
    env = dict(os.environ, COSIM_EXAMPLES_OUT=str(tmp_path / "out"), **extra_env)
    proc = subprocess.run([sys.executable, "-W", "error", str(EXAMPLES / name)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_every_example_is_tested_and_listed():
    on_disk = {p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py")}
    assert on_disk == TESTED
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in on_disk)


def test_01_ir_drop_grows_with_wire_resistance(tmp_path):
    out = run("01_ideal_vs_parasitic.py", tmp_path)
    rows = [(float(r), float(e)) for r, e in re.findall(rf"r_wire\s+({NUM}) ohm: IR-drop error ({NUM}) %", out)]
    assert [r for r, _ in rows] == [0.0, 0.5, 1.0, 2.5, 5.0]
    err = [e for _, e in rows]
    # No wire resistance: the nodal engine is V·G up to rounding (relative 1e-11 is 1e-9 %).
    assert err[0] < 1e-9
    # More wire resistance always loses more (strictly), and stays a perturbation at 5 Ω here.
    assert all(a < b for a, b in zip(err, err[1:])) and err[-1] < 50
    # First order in r for small r: doubling 0.5 → 1 Ω nearly doubles the error (the second-order
    # term is a few % of the first at these values; 1.8-2.05 allows for it and no more).
    assert 1.8 < err[2] / err[1] < 2.05
    worst = re.search(rf"worst cell \((\d+), (\d+)\) loses ({NUM}) mV of 200 mV", out)
    i, j, loss = int(worst[1]), int(worst[2]), float(worst[3])
    # Farthest from both the left drivers and the bottom sense amplifiers: the top-right quadrant.
    assert i < 32 <= j and 0 < loss < 200
    assert (tmp_path / "out" / "01_cell_voltage_loss.png").stat().st_size > 0


@pytest.mark.ngspice
def test_02_netlist_three_ways_agree(tmp_path):
    out = run("02_netlist_in_ngspice.py", tmp_path)
    deck = tmp_path / "out" / "xbar_16x16.cir"
    assert deck.read_text().rstrip().endswith(".end")
    diffs = dict(re.findall(rf"^(.+?):\s+max rel diff ({NUM})$", out, flags=re.M))
    # The deck holds every value in round-trip text, so reading it back changes nothing but the
    # order of floating-point sums (1e-12); ngspice's op is an LU solve of the same linear
    # system (1e-9 leaves room for its pivoting and its own convergence test, not for a bug).
    assert float(diffs["read back + nodal vs nodal"]) < 1e-12
    assert "spice skipped" not in out, "ngspice is installed (the test is marked ngspice) but the example skipped it"
    assert float(diffs["spice vs nodal"]) < 1e-9
    assert float(diffs["spice vs read back + nodal"]) < 1e-9


def test_02_skips_ngspice_cleanly_when_missing(tmp_path, monkeypatch, capsys):
    # In-process with the spice engine made to find neither libngspice nor the executable: the
    # example must still write, read back and check the deck, and say why it skipped ngspice.
    import cosim.circuit.engines.spice as spice

    monkeypatch.setattr(spice, "shared_instance", lambda: None)
    monkeypatch.setattr(spice, "ngspice_binary", lambda: None)
    monkeypatch.setattr(sys, "argv", ["02_netlist_in_ngspice.py", str(tmp_path)])
    runpy.run_path(str(EXAMPLES / "02_netlist_in_ngspice.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert f"spice skipped: {spice.MISSING}" in out
    assert float(re.search(rf"read back \+ nodal vs nodal:\s+max rel diff ({NUM})", out)[1]) < 1e-12
    assert (tmp_path / "xbar_16x16.cir").exists()


def test_03_grounding_unselected_lines_removes_sneak_current(tmp_path):
    out = run("03_sneak_paths.py", tmp_path)
    # 8x8 with every cell conductive: (N-1)(M-1) 3-cell paths and (N-1)(M-1)(N-2)(M-2) 5-cell ones.
    assert "3 cells: 49, 5 cells: 1764" in out
    table = {m[0]: [float(x) for x in m[1:]] for m in
             re.findall(rf"^(floating|grounded)\s+({NUM})\s+({NUM})\s+({NUM})%\s+({NUM})%$", out, flags=re.M)}
    ideal = float(re.search(rf"ideal margin .*: ({NUM})%", out)[1])
    i_cell_f, _, share_f, margin_f = table["floating"]
    i_cell_g, _, share_g, margin_g = table["grounded"]
    # The selected cell is OFF (1 µS at 0.2 V: 0.2 µA less its small IR drop) in both reads.
    assert 0.19 < i_cell_f <= 0.2 and 0.19 < i_cell_g <= 0.2
    # Floating: the ON background swamps an OFF cell. Grounded: sneak current is exactly zero
    # without wires; 2 Ω segments leave well under 1 %, and the margin near the ideal one.
    assert share_f > 50 and abs(share_g) < 1
    assert margin_f < margin_g and abs(margin_g - ideal) < 0.5


def test_04_cards_and_population(tmp_path):
    out = run("04_device_pulse_curves.py", tmp_path)
    rows = re.findall(rf"^(\S+)\s+\S+\s+{NUM} \.\. {NUM}\s+(\d+) / (\d+)\s+{NUM} / {NUM}\s+({NUM})$", out, flags=re.M)
    assert sorted(r[0] for r in rows) == sorted(p.stem for p in CARDS.glob("*.toml"))
    for _, n_set, n_reset, asym in rows:
        # Levels are counted pulses (≥ 1 for any card that switches); asymmetry is bounded by 2.
        assert int(n_set) >= 1 and int(n_reset) >= 1 and 0 <= float(asym) <= 2
    nominal = float(re.search(rf"nominal device \(pulse table\):\s+({NUM}) uS", out)[1])
    d2d_mean, d2d_std = (float(x) for x in re.search(rf"d2d only.*mean\s+({NUM}) uS, std\s+({NUM}) uS", out).groups())
    c2c_std = float(re.search(rf"c2c alone.*std\s+({NUM}) uS", out)[1])
    # imprecise card: 1-100 µS window; 20 of ~100 saturating SET pulses end inside it. d2d
    # multipliers have mean 1, so the spread population centres near the nominal device (25 %
    # allows for the nonlinear map from parameters to G); both spreads are real, not zero.
    assert 1 < nominal < 100 and abs(d2d_mean - nominal) < 0.25 * nominal
    assert d2d_std > 0.5 and c2c_std > 0.5
    assert (tmp_path / "out" / "04_pulse_curves.png").stat().st_size > 0


def test_05_v3_does_not_disturb_where_v2_does(tmp_path):
    out = run("05_programming_disturb.py", tmp_path)
    table = {m[0]: [float(x) for x in m[1:]] for m in
             re.findall(rf"^(v/2|v/3)\s+({NUM})\s+({NUM}) V\s+(\d+)\s+({NUM})%$", out, flags=re.M)}
    dg2, v2, moved2, worst2 = table["v/2"]
    dg3, v3, moved3, worst3 = table["v/3"]
    # Targets move up under both schemes (SET pulses of 2 V, thresholds 0.8 V).
    assert dg2 > 0 and dg3 > 0
    # Half-selected cells see V/2 = 1.0 V resp. V/3 = 0.667 V, less a little IR drop or plus a
    # little IR rise (2.5 Ω segments against ≤ 100 µS devices: under 1 %).
    assert v2 == pytest.approx(1.0, abs=0.01) and v3 == pytest.approx(2.0 / 3.0, abs=0.01)
    # Above the 0.8 V threshold V/2 disturbs; below it nothing but the targets moves under V/3.
    assert moved2 > 0 and worst2 > 0
    assert moved3 == 0 and worst3 == 0


def test_06_selectors_keep_the_margin_that_passive_arrays_lose(tmp_path):
    out = run("06_read_margin_vs_size.py", tmp_path, COSIM_EXAMPLE_MAX_N="16")
    rows = {(m[0].strip(), m[1]): [float(x) for x in m[2:]] for m in
            re.findall(rf"^(0T1R ohmic|0T1R sinh device|1S1R \(TaOx selector\)|1S1R \(constructed\)|"
                       rf"1T1R-mos \(0.5 um NMOS\))\s+(floating|v/2|v/3)\s+({NUM})%\s+({NUM})%\s+({NUM})%$",
                       out, flags=re.M)}
    assert len(rows) == 15
    # Cut-off transistors in unselected rows: the 1T1R margin stays at the cell's own (98.9 %).
    for scheme in ("floating", "v/2", "v/3"):
        assert min(rows.pop(("1T1R-mos (0.5 um NMOS)", scheme))) > 98
    # Passive ohmic 100/1 uS: the OFF read's sneak and half-selected currents exceed an ON read
    # already at 4x4 under floating and V/2 lines (worst case; the cell alone would give 99 %).
    assert rows["0T1R ohmic", "floating"][0] < 0 and rows["0T1R ohmic", "v/2"][0] < 0
    # Every kind and scheme loses margin with size; the published selector loses < 1 point to 16x16.
    for m4, m8, m16 in rows.values():
        assert m4 >= m8 >= m16
    for scheme in ("floating", "v/2", "v/3"):
        tao = rows["1S1R (TaOx selector)", scheme]
        assert tao[0] - tao[2] < 1 and tao[2] > rows["1S1R (constructed)", scheme][2] > rows["0T1R ohmic", scheme][2]
    assert (tmp_path / "out" / "06_read_margin_vs_size.png").stat().st_size > 0
