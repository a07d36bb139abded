"""The ngspice writer: golden text, deck structure, exact write → read → solve round trips."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, get_engine
from cosim.circuit.model import Circuit, ListNames
from cosim.circuit.netlist_read import read_netlist
from cosim.circuit.netlist_write import save_text, spice_naming, write_netlist
from cosim.errors import NetlistError

NETLISTS = Path(__file__).resolve().parents[1] / "netlists"


def make_examples():
    spec = importlib.util.spec_from_file_location("make_examples", NETLISTS / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nodal(circuit, inputs):
    prep = get_engine("nodal").prepare(circuit, SolverOptions())
    return prep.solve(inputs, want_nodes=True)


@pytest.mark.parametrize("name", ["tiny_2x3.cir", "xbar_8x8.cir", "xbar_32x32.cir", "xbar_1t1r_8x8.cir"])
def test_committed_decks_are_what_the_writer_writes(name):
    """Golden text: any change to the writer's output shows up as a diff of a committed deck."""
    assert make_examples().deck_text(name) == (NETLISTS / name).read_text()


def test_tiny_deck_structure():
    text = (NETLISTS / "tiny_2x3.cir").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("cosim example tiny_2x3")
    assert ".param r_col=1.5 r_driver=10 r_sense=5" in lines  # uniform → .param
    assert "rw0_1 r0_1 r0_2 3" in lines  # per-segment → literal
    assert "rg0_0 r0_0 c0_0 100000" in lines and "rc0_2 c0_2 c1_2 {r_col}" in lines
    assert ".subckt xbar_2x3 d0 d1 s0 s1 s2" in lines and ".ends xbar_2x3" in lines
    assert "xarr d0 d1 s0 s1 s2 xbar_2x3" in lines
    assert "vd1 d1 0 dc -0.1" in lines and "vs2 s2 0 dc 0" in lines
    assert "print vs0#branch vs1#branch vs2#branch" in lines and lines[-1] == ".end"
    assert "* r_row: 2..3 ohm (per segment)" in lines
    assert "* bias scheme: unselected lines driven; v_sense = 0 V" in lines


def test_shorts_opens_and_continuations():
    n, m = 3, 40
    g = np.full((n, m), 2e-5)
    g[1, 7] = 0.0  # an absent device
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=0.0, r_driver=0.0, r_sense=2.0)
    text = write_netlist(build_circuit(spec))
    lines = text.splitlines()
    assert not any(ln.startswith("rg1_7 ") for ln in lines)
    assert "vrc0_5 c0_5 c1_5 dc 0" in lines and "vrdl2 d2 r2_0 dc 0" in lines
    assert not any(ln.startswith(("rc", "rdl")) for ln in lines)  # no 0 Ω resistors anywhere
    sub = next(k for k, ln in enumerate(lines) if ln.startswith(".subckt"))
    ports = " ".join(ln.lstrip("+") for ln in lines[sub:sub + 4] if ln.startswith((".subckt", "+")))
    assert ports.split()[2:] == [f"d{i}" for i in range(n)] + [f"s{j}" for j in range(m)]
    assert lines[sub + 1].startswith("+ ") and max(map(len, lines[sub:sub + 3])) <= 100
    print_lines = [ln for ln in lines if ln.startswith("print ")]
    assert len(print_lines) == 5 and all(len(ln.split()) == 9 for ln in print_lines)


def test_header_states_the_spec():
    spec = CrossbarSpec(conductances=np.full((4, 4), 1e-5), r_row=1.0, cell="1T1R", r_access=500.0,
                        drive="both", sense="top", selected_rows=[1, 2], unselected="v/3", v_select=0.9)
    text = write_netlist(build_circuit(spec, transpose=True), spec=spec)
    for expected in ("* array: 4 rows x 4 columns, 1T1R cells; transpose read",
                     "* drive side: both; sense side: top", "* r_access: 500 ohm",
                     "* bias scheme: unselected lines v/3; v_sense = 0 V; v_select = 0.9 V",
                     "* selected rows: 2 of 4: 1 2", "* selected columns: all"):
        assert expected in text
    assert "print vd0#branch vd1#branch vd2#branch vd3#branch" not in text  # only selected rows sense
    assert "print vd1#branch vd2#branch" in text
    with pytest.raises(NetlistError, match="spec is 2x2 but the circuit is 4x4"):
        write_netlist(build_circuit(spec), spec=CrossbarSpec(conductances=np.ones((2, 2))))


def random_spec(rng, n, m, **kw):
    base = dict(
        conductances=rng.uniform(1e-6, 1e-4, (n, m)),
        r_row=rng.uniform(0.5, 3.0, (n, m - 1)), r_col=rng.uniform(0.5, 3.0, (n - 1, m)),
        r_driver=rng.choice([0.0, 5.0]), r_sense=rng.choice([0.0, 5.0]),
    )
    base.update(kw)
    return CrossbarSpec(**base)


CASES = {
    "plain": dict(),
    "both_ends": dict(drive="both", sense="both"),
    "right_top": dict(drive="right", sense="top", v_sense=0.05),
    "1t1r": dict(cell="1T1R", r_access=1e3, selected_rows=[0, 2]),
    "floating": dict(selected_rows=[1, 2], selected_cols=[0, 3], unselected="floating"),
    "grounded": dict(selected_rows=[0], unselected="grounded"),
    "v/2": dict(selected_cols=[1], unselected="v/2", v_select=0.8),
}


@pytest.mark.parametrize("transpose", [False, True], ids=["forward", "transpose"])
@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_write_read_solve(rng, case, transpose):
    """Writing, reading back and solving gives the directly solved circuit (to rounding)."""
    spec = random_spec(rng, 4, 5, **CASES[case])
    circuit = build_circuit(spec, transpose=transpose)
    inputs = rng.uniform(-0.3, 0.3, (1, circuit.n_inputs))
    direct = nodal(circuit, inputs)
    back = read_netlist("rt.cir", text=write_netlist(circuit, inputs=inputs, spec=spec))
    again = nodal(back, np.zeros((1, 0)))
    naming = spice_naming(circuit)
    for k, name in enumerate(naming.vsrc):
        assert again.branch_currents[0, back.vsrc_names.index(name)] == pytest.approx(
            direct.branch_currents[0, k], rel=1e-10, abs=1e-18)
    seen = 0
    for k, name in enumerate(naming.nodes[1:], start=1):
        v = direct.node_voltages[0, k]
        if name in back.node_names:
            assert again.node_voltages[0, back.node_names.index(name)] == pytest.approx(v, rel=1e-10, abs=1e-14)
            seen += 1
        else:  # only nodes touched by nothing but open elements are left out of the deck
            assert np.isnan(v)
    assert seen >= circuit.n_nodes // 2


def test_general_circuit_is_written_flat_and_round_trips(tmp_path):
    c = Circuit(
        node_names=ListNames(["0", "In", "mid", "x.q"]),
        res_a=[1, 2, 2, 3], res_b=[2, 0, 3, 0], res_g=[1e-3, np.inf, 0.0, 0.5],
        res_names=ListNames(["R1", "short", "Ropen", "r.x.r2"]),
        vsrc_p=[1], vsrc_n=[0], vsrc_dc=[0.5], vsrc_input=[0], vsrc_scale=[2.0], vsrc_names=ListNames(["src"]),
        isrc_a=[0], isrc_b=[3], isrc_dc=[1e-3], isrc_names=ListNames(["Ibias"]),
        n_inputs=1, out_src=[0], out_index=[0], n_outputs=1, title="general\ncircuit",
    )
    text = write_netlist(c, inputs=[0.25])
    lines = text.splitlines()
    assert lines[0] == "general circuit"
    assert "R1 In mid 1000" in lines and "r.x.r2 x.q 0 2" in lines
    assert "vrshort mid 0 dc 0" in lines and not any("Ropen" in ln for ln in lines)
    assert "vsrc In 0 dc 1" in lines  # 0.5 + 2 * 0.25, element name prefixed with its letter
    assert "Ibias 0 x.q dc 0.001" in lines and "print all" in lines
    back = read_netlist(tmp_path / "g.cir", text=text)
    assert list(back.node_names) == ["0", "in", "mid", "x.q"]
    a, b = nodal(c, [[0.25]]), nodal(back, np.zeros((1, 0)))
    np.testing.assert_allclose(b.node_voltages[0], a.node_voltages[0], rtol=1e-14)
    assert list(back.vsrc_names) == ["vrshort", "vsrc"]
    assert b.branch_currents[0, 1] == pytest.approx(a.branch_currents[0, 0], rel=1e-14)
    assert b.branch_currents[0, 0] == pytest.approx(-a.branch_currents[0, 0], rel=1e-14)  # all through the short


@pytest.mark.parametrize("names, message", [
    (["0", "a b", "c"], "cannot be written"),
    (["0", "A", "a"], "same to SPICE"),
    (["0", "gnd", "a"], "is ground to SPICE"),
])
def test_bad_node_names_are_refused(names, message):
    c = Circuit(node_names=ListNames(names), res_a=[1, 2], res_b=[2, 0], res_g=[1.0, 1.0],
                res_names=ListNames(["r1", "r2"]), vsrc_p=[1], vsrc_n=[0], vsrc_dc=[1.0],
                vsrc_input=[-1], vsrc_scale=[0.0], vsrc_names=ListNames(["v1"]))
    with pytest.raises(NetlistError, match=message):
        write_netlist(c)


def test_unknown_dialect():
    c = build_circuit(CrossbarSpec(conductances=np.ones((1, 1))))
    with pytest.raises(NetlistError, match="unknown netlist dialect 'hspice'"):
        write_netlist(c, dialect="hspice")


def test_save_text_is_atomic(tmp_path):
    path = tmp_path / "deck.cir"
    save_text("first\n", path)
    save_text("second\n", path)
    assert path.read_text() == "second\n"
    with pytest.raises(TypeError):
        save_text(None, path)  # fails while writing the temporary file
    assert path.read_text() == "second\n"
    assert sorted(os.listdir(tmp_path)) == ["deck.cir"]
