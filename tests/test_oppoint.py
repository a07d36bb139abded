"""Operating points named and signed as ngspice prints them; the JSON `cosim solve` writes.

Against ngspice the tolerance is 1e-9 relative: a driver current of µA through a few ohms is a
voltage difference of ~1e-5 V between ~0.3 V nodes, so rounding in either solver is amplified
~1e4 times (seen: 1.6e-12); modelling errors are far larger.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess

import numpy as np
import pytest

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit
from cosim.circuit.netlist_read import read_netlist
from cosim.circuit.netlist_write import write_netlist
from cosim.circuit.oppoint import OperatingPoint, operating_point
from cosim.errors import EngineError

DECK = """bridge with a subcircuit
.param rb=2k
.subckt arm top bot
Ra top mid 1k
Rb mid bot {rb}
.ends
VDD supply 0 DC 3
Vm out sense 0
Xleft supply 0 arm
Rl Xleft.mid out 500
Rs sense 0 1.5k
Iin 0 out 0.2m
.end
"""


def ngspice_print_all(deck_path) -> dict[str, float]:
    text = deck_path.read_text().replace(".end\n", ".control\nset numdgt=17\nop\nprint all\nquit 0\n.endc\n.end\n")
    deck_path.write_text(text)
    out = subprocess.run(["ngspice", "-b", deck_path.name], cwd=deck_path.parent,
                         capture_output=True, text=True).stdout
    return {k: float(v) for k, v in re.findall(r"^(\S+) = (\S+)$", out, flags=re.M)}


def test_hand_solved_operating_point(tmp_path):
    op = operating_point(read_netlist(tmp_path / "b.cir", text=DECK))
    # Node xleft.mid: 3 V through 1k, 2k to ground, 500 Ω + 1.5k (via the 0 V ammeter) to ground,
    # plus 0.2 mA injected at out, which sits 500 Ω from mid and 1.5k from ground.
    g = np.array([[1 / 1e3 + 1 / 2e3 + 1 / 500, -1 / 500], [-1 / 500, 1 / 500 + 1 / 1.5e3]])
    vmid, vout = np.linalg.solve(g, [3 / 1e3, 0.2e-3])
    assert set(op.nodes) == {"supply", "xleft.mid", "out", "sense"}  # ground left out
    assert op.nodes["xleft.mid"] == pytest.approx(vmid, rel=1e-13)
    assert op.nodes["out"] == op.nodes["sense"] == pytest.approx(vout, rel=1e-13)
    # ngspice's sign: VDD delivers current, so its branch current (+ → − inside) is negative
    assert op.branches["vdd"] == pytest.approx(-(3 - vmid) / 1e3, rel=1e-13)
    assert op.branches["vm"] == pytest.approx(vout / 1.5e3, rel=1e-13)
    assert list(op.branches) == ["vdd", "vm"]


def test_json_round_trips_exactly(tmp_path):
    op = operating_point(read_netlist(tmp_path / "b.cir", text=DECK))
    back = json.loads(op.to_json())
    assert set(back) == {"nodes", "branches"}
    assert back["nodes"] == op.nodes and back["branches"] == op.branches
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.nodes = {}  # type: ignore[misc]
    assert isinstance(op, OperatingPoint)


def test_ideal_engine_has_no_operating_point(tmp_path):
    with pytest.raises(EngineError, match="no operating point"):
        operating_point(read_netlist(tmp_path / "b.cir", text=DECK), engine="ideal")


def test_crossbar_names_follow_the_written_deck():
    spec = CrossbarSpec(conductances=np.full((2, 2), 1e-5), r_row=1.0, r_col=1.0, r_driver=1.0,
                        r_sense=1.0, selected_rows=[0], unselected="v/2", v_select=0.4)
    op = operating_point(build_circuit(spec))
    assert set(op.branches) == {"vd0", "vd1", "vs0", "vs1"}
    assert {"d0", "d1", "s0", "s1", "xarr.r0_0", "xarr.c1_1"} <= set(op.nodes)
    assert op.nodes["d1"] == pytest.approx(0.2) and op.nodes["s0"] == 0.0


@pytest.mark.ngspice
def test_names_signs_and_values_match_ngspice(tmp_path):
    path = tmp_path / "b.cir"
    path.write_text(DECK)
    nodal = operating_point(read_netlist(path))
    spice = operating_point(read_netlist(path), engine="spice", options=SolverOptions(engine="spice"))
    printed = ngspice_print_all(path)
    assert set(printed) == set(nodal.nodes) | {f"{b}#branch" for b in nodal.branches}
    for name, v in nodal.nodes.items():
        assert printed[name] == pytest.approx(v, rel=1e-9)
        assert spice.nodes[name] == pytest.approx(v, rel=1e-9)
    for name, i in nodal.branches.items():
        assert printed[f"{name}#branch"] == pytest.approx(i, rel=1e-9)
        assert spice.branches[name] == pytest.approx(i, rel=1e-9)


@pytest.mark.ngspice
def test_crossbar_operating_point_matches_ngspice_on_its_deck(tmp_path, rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (3, 4)), r_row=1.0, r_col=2.0,
                        r_driver=3.0, r_sense=4.0, cell="1T1R", r_access=1e3)
    circuit = build_circuit(spec)
    v = rng.uniform(0, 0.3, 3)
    path = tmp_path / "x.cir"
    # the deck's sources sit at the first input vector; the circuit's inputs are zero-based, so
    # solve a copy of the deck read back (dc values = v) to compare like with like
    path.write_text(write_netlist(circuit, inputs=v).split("\n.control")[0] + "\n.end\n")
    printed = ngspice_print_all(path)
    op = operating_point(read_netlist(path))
    assert set(printed) == set(op.nodes) | {f"{b}#branch" for b in op.branches}
    for name, value in op.nodes.items():
        assert printed[name] == pytest.approx(value, rel=1e-9, abs=1e-15)
    for name, value in op.branches.items():
        assert printed[f"{name}#branch"] == pytest.approx(value, rel=1e-9, abs=1e-18)
