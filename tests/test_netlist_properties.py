"""Property: random linear decks built from every construct the reader accepts agree with
ngspice's own ``.op`` of the same file to 1e-6 (node voltages relative to the largest one,
branch currents relative to the largest current).

The decks come from tests/netlist_gen.py (resistor forms with temperature, models, m, scale,
negative resistors; every DC source form; C, L, E, F, G, H; subcircuits with a port named
gnd, overrides and m=; .if; .temp, tnom, rshunt). ngspice solves a linear deck with one
sparse LU, so both sides are exact to rounding; 1e-6 is the issue's bar and leaves room for
ngspice's pivoting on the indefinite systems that negative resistors and E/H make.
"""

from __future__ import annotations

import pytest
from netlist_gen import random_deck

from cosim.circuit.netlist_read import read_netlist
from cosim.circuit.oppoint import operating_point
from cosim.circuit.spice_deck import run_deck

pytestmark = pytest.mark.ngspice


def agree(path, text, rtol: float = 1e-6) -> None:
    op = operating_point(read_netlist(path, text=text))
    nodes, branches = run_deck(path, text)
    assert set(op.nodes) == set(nodes) and set(op.branches) == set(branches)
    v_scale = max(abs(v) for v in nodes.values())
    i_scale = max([abs(i) for i in branches.values()] + [1e-15])
    for name, v in nodes.items():
        assert abs(op.nodes[name] - v) <= rtol * v_scale, (name, op.nodes[name], v)
    for name, i in branches.items():
        assert abs(op.branches[name] - i) <= rtol * i_scale, (name, op.branches[name], i)


@pytest.mark.parametrize("seed", range(24))
def test_random_linear_decks_agree_with_ngspice(tmp_path, seed):
    text = random_deck(seed)
    path = tmp_path / "deck.cir"
    path.write_text(text)
    agree(path, text)
