"""The ``ir_drop`` task against hand-solved circuits and independent computations.

Budget: < 3 s (arrays up to 24×24).
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from cosim.circuit import CrossbarSpec, read
from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.irdrop import block_mean, ir_drop_metrics, run_ir_drop


def point(**array):
    d = {"task": {"kind": "ir_drop"}, "array": {"size": 8, **array}, "read": {"batch": 4}}
    return plan(parse_study(d)).points[0].config


def two_cell_row(g1, g2, r_seg, r_d, r_s):
    """Hand solution of one row of two cells: driver r_d, a row segment r_seg between the cells,
    each column to virtual ground through r_s. Returns (current fractions, cell-voltage fractions)
    relative to the ideal read, per column."""
    z1 = 1 / g1 + r_s
    z2 = r_seg + 1 / g2 + r_s
    zp = z1 * z2 / (z1 + z2)
    va = zp / (zp + r_d)  # row node of cell 1, per volt applied
    i1, i2 = va / z1, va / z2
    return np.array([i1 / g1, i2 / g2]), np.array([i1 / g1, i2 / g2])


def test_closed_form_two_cells():
    g1, g2, r_seg, r_d, r_s = 8e-6, 3e-6, 2.0e3, 5.0e3, 1.0e3  # large r so the drop is tens of %
    spec = CrossbarSpec(conductances=np.array([[g1, g2]]), r_row=r_seg, r_driver=r_d, r_sense=r_s)
    v = np.array([[0.2], [0.05], [0.13]])
    m = ir_drop_metrics(spec, v, 0.2)
    cur_frac, v_frac = two_cell_row(g1, g2, r_seg, r_d, r_s)
    # Linear circuit: relative errors do not depend on the input amplitude; 1e-9 covers LU
    # round-off on a 2-node system.
    assert_allclose(m["ir_err_max"], (1 - cur_frac).max(), rtol=1e-9)
    assert_allclose(m["ir_err_mean"], (1 - cur_frac).mean(), rtol=1e-9)
    assert_allclose(m["v_cell_min"], v_frac.min(), rtol=1e-9)
    assert_allclose(m["v_cell_mean"], v_frac.mean(), rtol=1e-9)
    assert_allclose(np.array(m["loss_map"]), [1 - v_frac], rtol=1e-9)
    assert_allclose(m["i_ideal_max"], 0.2 * g1)
    assert m["kcl_residual"] < 1e-12


def test_no_parasitics_no_error():
    m = run_ir_drop(point(r_wire=0.0))
    assert m["ir_err_max"] < 1e-12 and m["ir_err_mean"] < 1e-12
    assert_allclose([m["v_cell_min"], m["v_cell_mean"]], 1.0, atol=1e-12)
    assert_allclose(np.array(m["loss_map"]), 0.0, atol=1e-12)


def test_metrics_match_an_independent_read(rng):
    """Recompute the metrics from cosim.circuit.read (cell voltages via cell currents / g)."""
    n, m_ = 7, 5
    g = rng.uniform(1e-6, 1e-5, (n, m_))
    spec = CrossbarSpec(conductances=g, r_row=30.0, r_col=20.0, r_driver=100.0, r_sense=50.0)
    v = rng.uniform(0.0, 0.3, (6, n))
    got = ir_drop_metrics(spec, v, 0.3)
    par = read(spec, v, engine="nodal").currents
    ideal = v @ g
    rel = np.abs(par - ideal) / ideal
    full = read(spec, np.full(n, 0.3), engine="nodal", want_cells=True)
    frac = full.cell_currents[0] / g / 0.3
    assert_allclose(got["ir_err_max"], rel.max(), rtol=1e-9)
    assert_allclose(got["ir_err_mean"], rel.mean(), rtol=1e-9)
    assert_allclose(got["v_cell_min"], frac.min(), rtol=1e-9)
    assert_allclose(got["v_cell_mean"], frac.mean(), rtol=1e-9)
    assert_allclose(np.array(got["loss_map"]), 1 - frac, rtol=1e-9, atol=1e-15)


def test_error_grows_with_wire_resistance_and_size():
    errs = [run_ir_drop(point(r_wire=r))["ir_err_max"] for r in (0.5, 2.0, 8.0)]
    assert errs[0] < errs[1] < errs[2]
    small, big = (run_ir_drop(point(size=s, r_wire=2.0)) for s in (8, 24))
    assert small["ir_err_max"] < big["ir_err_max"]
    assert small["v_cell_min"] > big["v_cell_min"]


def test_seeded_and_reproducible():
    p = point(r_wire=1.0)
    a, b = run_ir_drop(p), run_ir_drop(p)
    for k in ("ir_err_max", "ir_err_mean", "v_cell_min"):
        assert a[k] == b[k]
    assert np.array_equal(a["loss_map"], b["loss_map"])
    other = run_ir_drop({**p, "seed": 1})
    assert other["ir_err_max"] != a["ir_err_max"]


@pytest.mark.parametrize("inputs", ["uniform", "binary", "full"])
def test_input_patterns(inputs):
    d = {"task": {"kind": "ir_drop"}, "array": {"size": 6, "r_wire": 1e3},
         "read": {"batch": 8, "inputs": inputs, "v_read": 0.1}}
    m = run_ir_drop(plan(parse_study(d)).points[0].config)
    assert 0 < m["ir_err_mean"] <= m["ir_err_max"] < 1
    assert 0 < m["v_cell_min"] <= m["v_cell_mean"] < 1


def test_block_mean():
    a = np.arange(128 * 96, dtype=float).reshape(128, 96)
    # divisible case: exact 2×? block means
    out = block_mean(a, (64, 48))
    assert_allclose(out, a.reshape(64, 2, 48, 2).mean(axis=(1, 3)))
    odd = block_mean(np.full((100, 70), 3.5), (64, 64))
    assert odd.shape == (64, 64)
    assert_allclose(odd, 3.5)
    small = np.ones((5, 3))
    assert block_mean(small, (64, 64)) is small
