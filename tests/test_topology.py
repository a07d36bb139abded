"""Topology checks: each defect is found and named; clean circuits pass; the engine uses them.

Circuits are built directly with the :class:`Circuit` dataclass (``ListNames`` for names), so
these tests depend on no netlist reader.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, get_engine
from cosim.circuit.model import Circuit, ListNames
from cosim.circuit.topology import (
    check_topology,
    current_source_cutsets,
    floating_nodes,
    source_loops,
)
from cosim.errors import TopologyError


def make(nodes, res=(), vs=(), isrc=(), title="t") -> Circuit:
    """A circuit from tuples: res (name, a, b, g), vs (name, p, n, volts), isrc (name, a, b, amps)."""
    names = ListNames(nodes)
    ix = names.index
    return Circuit(
        node_names=names,
        res_a=[ix(a) for _, a, _, _ in res], res_b=[ix(b) for _, _, b, _ in res],
        res_g=[g for *_, g in res], res_names=ListNames([r[0] for r in res]),
        vsrc_p=[ix(p) for _, p, _, _ in vs], vsrc_n=[ix(n) for _, _, n, _ in vs],
        vsrc_dc=[v for *_, v in vs], vsrc_input=[-1] * len(vs), vsrc_scale=[0.0] * len(vs),
        vsrc_names=ListNames([v[0] for v in vs]),
        isrc_a=[ix(a) for _, a, _, _ in isrc], isrc_b=[ix(b) for _, _, b, _ in isrc],
        isrc_dc=[i for *_, i in isrc], isrc_names=ListNames([i[0] for i in isrc]),
        out_src=np.arange(len(vs)), out_index=np.arange(len(vs)), n_outputs=len(vs), title=title,
    )


# A clean divider: V1 drives a, R1 a–b, R2 b–0. Tests add one defect at a time.
NODES = ["0", "a", "b"]
RES = [("R1", "a", "b", 1e-3), ("R2", "b", "0", 2e-3)]
VS = [("V1", "a", "0", 1.0)]


def test_clean_divider_passes_and_solves():
    c = make(NODES, RES, VS)
    assert floating_nodes(c) == [] and source_loops(c) == [] and current_source_cutsets(c) == []
    check_topology(c)
    res = get_engine("nodal").prepare(c, SolverOptions()).solve(np.zeros((1, 0)), want_nodes=True)
    # v_b = 1 V · g1 / (g1 + g2) = 1/3 V
    assert res.node_voltages[0, 2] == pytest.approx(1 / 3, rel=1e-12)


def test_floating_node_through_current_source_is_named():
    # Node x is reached only by a current source: no DC path, its potential is undefined.
    c = make(NODES + ["x"], RES, VS, isrc=[("I1", "0", "x", 1e-3)])
    assert floating_nodes(c) == ["x"]
    with pytest.raises(TopologyError, match=r"floating.*\bx\b"):
        check_topology(c)


def test_floating_island_is_named():
    # x–y–z joined by resistors among themselves only.
    c = make(NODES + ["x", "y", "z"], RES + [("R3", "x", "y", 1.0), ("R4", "y", "z", 1.0)], VS)
    assert floating_nodes(c) == ["x", "y", "z"]
    with pytest.raises(TopologyError, match=r"3 floating node\(s\).*x, y, z"):
        check_topology(c)


def test_zero_conductance_elements_are_absent():
    # R3 with g = 0 is an open switch: node x is touched by nothing live, so not reported,
    # and the island across the open switch (y, z fed by a source floating off ground) is.
    c = make(NODES + ["x", "y", "z"], RES + [("R3", "b", "x", 0.0), ("R4", "y", "z", 1.0)],
             VS + [("V2", "y", "z", 1.0)])
    assert floating_nodes(c) == ["y", "z"]


def test_many_floating_nodes_are_abbreviated():
    extra = [f"n{k}" for k in range(8)]
    c = make(NODES + extra, RES + [(f"Rn{k}", f"n{k}", f"n{k + 1}", 1.0) for k in range(7)], VS)
    with pytest.raises(TopologyError) as info:
        check_topology(c)
    msg = str(info.value)
    assert "\n" not in msg
    assert "n0, n1, n2, n3, n4 and 3 more" in msg


def test_two_parallel_sources_are_named():
    c = make(NODES, RES, VS + [("V2", "a", "0", 2.0)])
    assert source_loops(c) == [["V2", "V1"]]
    with pytest.raises(TopologyError, match=r"loop.*\{V2, V1\}"):
        check_topology(c)


def test_source_and_short_loop_is_named():
    # V2 sits across b–0 while the 0 Ω resistor RS shorts b to a, which V1 fixes: V2, RS, V1.
    c = make(NODES, RES + [("RS", "b", "a", np.inf)], VS + [("V2", "b", "0", 0.5)])
    assert source_loops(c) == [["V2", "RS", "V1"]]
    with pytest.raises(TopologyError, match=r"\{V2, RS, V1\}"):
        check_topology(c)


def test_source_across_a_short_is_a_loop():
    c = make(NODES, RES + [("RS", "a", "b", np.inf)], [("V1", "a", "b", 1.0), ("V0", "b", "0", 0.0)])
    assert source_loops(c) == [["V1", "RS"]]


def test_three_source_loop_through_ground():
    # V1: a–0, V2: b–0, V3: a–b over-determine KVL round 0 → a → b → 0.
    c = make(NODES, RES, VS + [("V2", "b", "0", 0.3), ("V3", "a", "b", 0.7)])
    loops = source_loops(c)
    assert len(loops) == 1 and sorted(loops[0]) == ["V1", "V2", "V3"]


def test_shorts_alone_are_not_a_loop():
    c = make(NODES, RES + [("RS1", "a", "b", np.inf), ("RS2", "b", "a", np.inf)], VS)
    assert source_loops(c) == []


def test_current_sources_in_series_form_a_cut_set():
    # 0 → I1 → x → I2 → 0: x is reached only by current sources.
    c = make(NODES + ["x"], RES, VS, isrc=[("I1", "0", "x", 1e-3), ("I2", "x", "0", 1e-3)])
    assert current_source_cutsets(c) == [["I1", "I2"]]
    with pytest.raises(TopologyError, match=r"current sources.*\{I1, I2\}"):
        check_topology(c)


def test_current_source_with_a_dc_path_is_fine():
    c = make(NODES, RES, VS, isrc=[("I1", "0", "b", 1e-3)])
    check_topology(c)
    assert current_source_cutsets(c) == []


@pytest.mark.parametrize("kwargs", [
    {},
    {"r_row": 1.0, "r_col": 2.0, "r_driver": 0.0, "r_sense": 0.0},
    {"r_row": 1.0, "drive": "both", "sense": "both"},
    {"cell": "1T1R", "r_access": 1e3, "selected_rows": [0, 2], "unselected": "floating",
     "r_driver": 10.0, "r_sense": 10.0},
    {"selected_rows": [1], "unselected": "grounded", "r_driver": 5.0},
])
def test_clean_crossbars_pass(kwargs, rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (3, 4)), **kwargs)
    for transpose in (False, True):
        c = build_circuit(spec, transpose=transpose)
        check_topology(c)
        assert floating_nodes(c) == []


def test_engine_reports_floating_node_by_name():
    # Without the check a floating island makes a singular nodal matrix; with it, the error
    # names the nodes instead of quoting the linear-algebra failure.
    c = make(NODES + ["x", "y"], RES + [("R3", "x", "y", 1e-3)], VS)
    with pytest.raises(TopologyError) as info:
        get_engine("nodal").prepare(c, SolverOptions())
    msg = str(info.value)
    assert "floating" in msg and "x, y" in msg and "singular" not in msg
    # The named message comes from the check: switched off, only the LU failure remains.
    with pytest.raises(TopologyError, match="singular"):
        get_engine("nodal").prepare(c, SolverOptions(check_topology=False))


def test_engine_reports_source_loop_by_name():
    c = make(NODES, RES + [("RS", "b", "a", np.inf)], VS + [("V2", "b", "0", 0.5)])
    with pytest.raises(TopologyError, match=r"\{V2, RS, V1\}"):
        get_engine("nodal").prepare(c, SolverOptions())


def test_large_netlist_checks(rng):
    # ~150k elements: a general (layout-free) copy of a 200×250 crossbar, plus one defect.
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-5, (200, 250)), r_row=1.0, r_col=1.0)
    c = dataclasses.replace(build_circuit(spec), layout=None)
    assert c.res_g.size > 100_000
    check_topology(c)
    g = c.res_g.copy()
    for name in ("rw7_8", "rw7_10", "rg7_9", "rg7_10"):  # keep only rw7_9 joining r7_9–r7_10
        g[c.res_names.index(name)] = 0.0
    island = dataclasses.replace(c, res_g=g)
    assert floating_nodes(island) == ["r7_9", "r7_10"]
    with pytest.raises(TopologyError, match=r"2 floating node\(s\).*r7_9, r7_10"):
        check_topology(island)
