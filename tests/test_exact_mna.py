"""The exact-arithmetic MNA of tests/exact_mna.py, and the huge controlled-source gains it judges.

exact_mna is the truth the netlist fuzz falls back on where ngspice's double precision drifts,
so it is checked first against ngspice where ngspice is reliable (generated decks of ordinary
values, 1e-6 as in the fuzz). Then the case the fuzz found (`make fuzz`, a mutated deck with
``g14 n1 0 n1 n2 1e308``): a transconductance far above everything at its nodes, in a loop
through a CCCS. cosim's answer there converges to the limit as the gain grows while ngspice's
goes 0.7 % off at 1e12 and changes sign at 1e20; the hand-solved loop below gives the exact
value at every gain.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from exact_mna import exact_mna
from netlist_gen import mutate, random_deck

from cosim.circuit.netlist_read import read_netlist
from cosim.circuit.oppoint import operating_point
from cosim.circuit.spice_deck import run_deck


def exact(path, text):
    c = read_netlist(path, text=text)
    pot, cur = exact_mna(c)
    return dict(zip(c.node_names[1:], map(float, pot))), dict(zip(c.vsrc_names, map(float, cur)))


@pytest.mark.ngspice
@pytest.mark.parametrize("seed", range(12))
def test_exact_mna_agrees_with_ngspice_on_ordinary_decks(tmp_path, seed):
    text = random_deck(seed)
    path = tmp_path / "d.cir"
    path.write_text(text)
    nodes, branches = run_deck(path, text)
    ex_nodes, ex_branches = exact(path, text)
    for truth, got in ((nodes, ex_nodes), (branches, ex_branches)):
        scale = max([abs(v) for v in truth.values()] + [1e-9])
        for name, v in truth.items():
            assert abs(got[name] - v) <= 1e-6 * scale, (name, got[name], v)


LOOP = "loop\nv1 a 0 1\ng1 a 0 a b {G}\nf1 b 0 v1 {k}\nr1 b 0 {R}\n.end\n"


@pytest.mark.parametrize("gain", [1e3, 1e12, 1e20, 1e100, 1e308])
@pytest.mark.parametrize(("k", "r"), [(0.01, 1e3), (-3.0, 47.0)])
def test_huge_transconductance_in_a_loop_is_exact(tmp_path, gain, k, r):
    """KCL by hand: at a, G(v_a − v_b) + i = 0; at b, v_b/R + k·i = 0 with v_a = 1 V, so
    v_b = kGR / (1 + kGR) and i(v1) = −G / (1 + kGR): −1/(kR) in the limit. Both to 1e-12
    relative (a few roundings of a 2-unknown system)."""
    text = LOOP.format(G=gain, k=k, R=r)
    op = operating_point(read_netlist(tmp_path / "d.cir", text=text))
    big, kk, rr = Fraction(gain), Fraction(k), Fraction(r)
    vb = kk * big * rr / (1 + kk * big * rr)
    i = -big / (1 + kk * big * rr)
    assert op.nodes["b"] == pytest.approx(float(vb), rel=1e-12)
    assert op.branches["v1"] == pytest.approx(float(i), rel=1e-12)


def test_the_fuzz_deck_with_a_1e308_vccs(tmp_path):
    """The deck `make fuzz` found, against exact arithmetic: 1e-9 of the largest value."""
    text = mutate(random_deck(15374, n_nodes=4), np.random.default_rng(15374))
    assert "g14 n1 0 n1 n2 1e308" in text
    path = tmp_path / "d.cir"
    op = operating_point(read_netlist(path, text=text))
    nodes, branches = exact(path, text)
    for got, truth in ((op.nodes, nodes), (op.branches, branches)):
        scale = max(abs(v) for v in truth.values())
        for name, v in got.items():
            assert abs(v - truth[name]) <= 1e-9 * scale, (name, v, truth[name])
