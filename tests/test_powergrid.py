"""The power-grid path: AMG-CG on IBM-like grids, certified, equal to SuperLU, chosen by auto.

Truth: the direct factorisation of the same reduced system (exact to rounding). The AMG path
must land within its own certified node-voltage bound of it, and the bound must be below the
requested rtol × the largest node voltage. The grids come from benchmarks/bench_powergrid.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from cosim.circuit import amg
from cosim.circuit.engines.base import SolverOptions
from cosim.circuit.netlist_read import read_netlist
from cosim.circuit.oppoint import operating_point
from cosim.errors import EngineError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_powergrid import write_grid  # noqa: E402


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    path = tmp_path_factory.mktemp("pg") / "pg.cir"
    n_el = write_grid(path, 30, pitch=8, seed=3)
    return read_netlist(path), n_el


def test_generator_writes_the_ibm_like_structure(grid):
    circuit, n_el = grid
    assert circuit.res_g.size + circuit.vsrc_p.size + circuit.isrc_dc.size == n_el
    assert "n1_0_0" in circuit.node_names and "n2_29_29" in circuit.node_names
    assert (circuit.isrc_dc == 0).any() and (circuit.isrc_dc > 0).any()  # some loads are 0 A


def test_amg_agrees_with_direct_within_its_certified_bound(grid):
    circuit, _ = grid
    direct = operating_point(circuit, options=SolverOptions(method="direct"))
    got = operating_point(circuit, options=SolverOptions(method="amg", rtol=1e-10))
    assert got.info["method"] == "amg" and direct.info["method"] == "direct"
    bound = got.info["bound_volts"]
    v_max = max(abs(v) for v in direct.nodes.values())
    assert 0 < bound <= 1e-10 * v_max
    diff = max(abs(got.nodes[k] - v) for k, v in direct.nodes.items())
    assert diff <= bound
    np.testing.assert_allclose(list(got.branches.values()), list(direct.branches.values()), rtol=1e-6)


def test_inverse_norm_bound_holds_against_the_dense_inverse(grid):
    circuit, _ = grid
    from scipy.sparse.linalg import splu

    from cosim.circuit.mna import assemble_nodal

    a = assemble_nodal(circuit).a.tocsr()
    exact = float(np.abs(np.linalg.inv(a.toarray())).sum(axis=1).max())
    lu = splu(a.tocsc())
    # with an exact w the bound is the norm itself; an inexact w only loosens it, never breaks it
    assert amg.inverse_norm_bound(a, lu.solve) == pytest.approx(exact, rel=1e-9)
    loose = amg.inverse_norm_bound(a, lambda b: lu.solve(b) * (1 + 1e-3 * np.sin(np.arange(b.size))))
    assert exact <= loose <= 3 * exact


def test_auto_picks_amg_for_large_m_matrices_only(grid, monkeypatch):
    circuit, _ = grid
    assert operating_point(circuit).info["method"] == "direct"  # below the threshold
    monkeypatch.setattr(amg, "AMG_MIN_UNKNOWNS", 100)
    assert operating_point(circuit).info["method"] == "amg"


def test_amg_refuses_what_is_not_an_m_matrix(tmp_path):
    c = read_netlist(tmp_path / "n.cir", text="t\nv1 a 0 1\nr1 a b 1k\nr2 b 0 3k\nr3 b 0 -6k\n.end\n")
    with pytest.raises(EngineError, match="needs a circuit of positive resistors"):
        operating_point(c, options=SolverOptions(method="amg"))
    assert operating_point(c).info["method"] == "direct"
