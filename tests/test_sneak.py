"""Sneak-path report: path combinatorics, ranking, exact currents and read margin.

Closed form used throughout: with zero wire resistance and floating unselected lines, the other
columns of a uniform array (conductance g) share one potential, as do the other rows, so the
sneak network between row i and column j is three conductances in series,
(M−1)g, (N−1)(M−1)g and (N−1)g. The nodal solve must match it to round-off (1e-12 relative).
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.circuit import CrossbarSpec
from cosim.circuit.sneak import SneakReport, sneak_report
from cosim.errors import SpecError

RTOL = 1e-12


def g_sneak(n: int, m: int, g: float) -> float:
    return 1.0 / (1.0 / ((m - 1) * g) + 1.0 / ((n - 1) * (m - 1) * g) + 1.0 / ((n - 1) * g))


@pytest.mark.parametrize("n,m,i,j", [(2, 2, 0, 0), (3, 5, 1, 4), (6, 4, 5, 0), (7, 7, 3, 3)])
def test_path_counts_match_combinatorics(n, m, i, j):
    spec = CrossbarSpec(conductances=np.full((n, m), 1e-5))
    rep = sneak_report(spec, i, j, max_cells=5, g_on=1e-5, g_off=1e-6)
    # 3 cells: pick the other column j' and the other row i'. 5 cells: then a second, distinct
    # column and row, so (N−1)(M−1)(N−2)(M−2).
    three = (n - 1) * (m - 1)
    five = three * (n - 2) * (m - 2)
    assert rep.path_counts.get(3, 0) == three
    assert rep.path_counts.get(5, 0) == five
    assert rep.n_paths == three + five


def test_open_cells_remove_paths():
    g = np.full((4, 5), 1e-5)
    g[2, :] = 0.0  # row 2 entirely open: it takes part in no path
    g[0, 3] = 0.0  # one half-selected cell open: column 3 is unreachable from row 0
    rep = sneak_report(CrossbarSpec(conductances=g), 0, 1, g_on=1e-5, g_off=1e-6)
    # Other rows usable: 1, 3 (2 rows); other columns reachable from row 0: 0, 2, 4 (3 columns).
    assert rep.path_counts == {3: 2 * 3}


def test_strongest_paths_are_ranked():
    # Reading cell (0, 0) of a 3×3 array; the four 3-cell paths go through (0,j'), (i',j'), (i',0).
    g = np.array([
        [1e-5, 4e-5, 1e-5],
        [2e-5, 8e-5, 1e-6],
        [3e-5, 1e-5, 9e-5],
    ])

    def series(*cells):
        return 1.0 / sum(1.0 / g[c] for c in cells)

    expected = sorted(
        [(((0, jj), (ii, jj), (ii, 0)), series((0, jj), (ii, jj), (ii, 0))) for ii in (1, 2) for jj in (1, 2)],
        key=lambda p: -p[1],
    )
    rep = sneak_report(CrossbarSpec(conductances=g), 0, 0, top=3)
    assert [p.cells for p in rep.top_paths] == [cells for cells, _ in expected[:3]]
    np.testing.assert_allclose([p.g_series for p in rep.top_paths], [gs for _, gs in expected[:3]], rtol=1e-15)
    # The crafted array has a clear winner: row 1 via the 80 µS cell.
    assert rep.top_paths[0].cells == ((0, 1), (1, 1), (1, 0))
    assert [p.g_series for p in rep.top_paths] == sorted([p.g_series for p in rep.top_paths], reverse=True)


def test_uniform_array_currents_are_exact():
    n, m, g, v = 5, 7, 2e-5, 0.15
    rep = sneak_report(CrossbarSpec(conductances=np.full((n, m), g)), 2, 3, v_read=v,
                       g_on=g, g_off=g / 10)
    gs = g_sneak(n, m, g)
    assert rep.i_cell == pytest.approx(g * v, rel=RTOL)  # the full v_read falls across the cell
    assert rep.i_ideal == pytest.approx(g * v, rel=RTOL)
    assert rep.i_sense == pytest.approx((g + gs) * v, rel=RTOL)
    assert rep.sneak_share == pytest.approx(gs / (g + gs), rel=RTOL)
    # Margin: background all g_on, so I_on − I_off = (g_on − g_off)·v exactly.
    assert rep.i_on == pytest.approx((g + gs) * v, rel=RTOL)
    assert rep.i_off == pytest.approx((g / 10 + gs) * v, rel=RTOL)
    assert rep.margin == pytest.approx(0.9 * g / (g + gs), rel=RTOL)
    assert rep.margin_ideal == pytest.approx(0.9, rel=RTOL)


def test_sneak_share_grows_with_background_conductance():
    shares = []
    for g_bg in (1e-7, 1e-6, 1e-5, 1e-4):
        g = np.full((4, 4), g_bg)
        g[1, 2] = 1e-5
        rep = sneak_report(CrossbarSpec(conductances=g, r_row=2.0, r_col=2.0), 1, 2,
                           g_on=1e-4, g_off=1e-6)
        assert 0 < rep.i_sneak < rep.i_sense
        shares.append(rep.sneak_share)
    assert all(a < b for a, b in zip(shares, shares[1:])), shares
    assert shares[0] < 0.05 and shares[-1] > 0.9


@pytest.mark.parametrize("r_wire", [0.0, 5.0])
def test_margin_shrinks_with_array_size(r_wire):
    g_on, g_off = 1e-4, 1e-6
    margins = []
    for n in (2, 4, 8, 16):
        spec = CrossbarSpec(conductances=np.full((n, n), g_on), r_row=r_wire, r_col=r_wire)
        rep = sneak_report(spec, 0, n - 1, g_on=g_on, g_off=g_off, top=1)
        if r_wire == 0.0:
            assert rep.margin == pytest.approx((g_on - g_off) / (g_on + g_sneak(n, n, g_on)), rel=RTOL)
        margins.append(rep.margin)
    assert all(a > b for a, b in zip(margins, margins[1:])), margins


def test_grounded_unselected_lines_kill_sneak_current():
    # With ideal wires every unselected line sits at 0 V like column j, so the cells (i', j)
    # have no voltage across them: the sensed current is the cell's alone.
    g = np.random.default_rng(3).uniform(1e-6, 1e-4, (4, 5))
    rep = sneak_report(CrossbarSpec(conductances=g), 1, 2, unselected="grounded")
    assert rep.unselected == "grounded"
    assert rep.i_sneak == pytest.approx(0.0, abs=1e-15 * rep.i_sense)
    assert rep.i_sense == pytest.approx(g[1, 2] * 0.2, rel=RTOL)
    assert rep.n_paths == 12  # the paths exist; the bias leaves them no driving voltage


def test_spec_unselected_is_used_when_asked():
    # unselected=None must read with the spec's own bias: the grounded currents (no sneak current
    # with ideal wires), not the floating default's, whatever the report's label says.
    g = np.full((3, 3), 1e-5)
    spec = CrossbarSpec(conductances=g, unselected="grounded")
    rep = sneak_report(spec, 0, 0, unselected=None, g_on=1e-5, g_off=1e-6)
    grounded = sneak_report(spec, 0, 0, unselected="grounded", g_on=1e-5, g_off=1e-6)
    floating = sneak_report(spec, 0, 0, unselected="floating", g_on=1e-5, g_off=1e-6)
    assert rep.i_sense == pytest.approx(grounded.i_sense, rel=RTOL) and rep.margin == pytest.approx(grounded.margin)
    assert rep.i_sneak == pytest.approx(0.0, abs=1e-15 * rep.i_sense)
    assert floating.i_sneak > 1e-3 * floating.i_sense  # the two biases do differ here


def test_single_cell_has_no_sneak():
    rep = sneak_report(CrossbarSpec(conductances=[[1e-5]], r_driver=10.0), 0, 0, g_on=1e-5, g_off=1e-6)
    assert rep.n_paths == 0 and rep.top_paths == ()
    assert rep.sneak_share == 0.0
    assert rep.i_sense == pytest.approx(0.2 / (10.0 + 1e5), rel=RTOL)


def test_format_lists_the_figures():
    g = np.random.default_rng(1).uniform(1e-6, 1e-4, (4, 4))
    rep = sneak_report(CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0), 2, 1, top=4)
    assert isinstance(rep, SneakReport)
    text = rep.format()
    assert "cell (2, 1)" in text and "4x4" in text
    assert f"{100 * rep.sneak_share:.2f} %" in text
    assert f"{100 * rep.margin:.2f} %" in text
    lines = text.splitlines()
    ranked = [ln for ln in lines if ln.strip().split(" ")[0] in {"1", "2", "3", "4"}]
    assert len(ranked) == 4
    assert f"(2,{rep.top_paths[0].cells[0][1]})" in ranked[0]


@pytest.mark.parametrize("kwargs,field", [
    ({"i": 4}, "i must be"),
    ({"j": -1}, "j must be"),
    ({"max_cells": 4}, "max_cells"),
    ({"max_cells": 1}, "max_cells"),
    ({"v_read": 0.0}, "v_read"),
    ({"top": -1}, "top"),
    ({"g_on": 1e-6, "g_off": 1e-5}, "g_on > g_off"),
    ({"unselected": "open"}, "unselected"),
])
def test_bad_arguments(kwargs, field):
    spec = CrossbarSpec(conductances=np.full((4, 4), 1e-5))
    args = {"i": 0, "j": 0, "g_on": 1e-4, "g_off": 1e-6, **kwargs}
    i, j = args.pop("i"), args.pop("j")
    with pytest.raises(SpecError, match=field):
        sneak_report(spec, i, j, **args)


def test_1t1r_and_huge_enumerations_are_refused():
    with pytest.raises(SpecError, match="0T1R"):
        sneak_report(CrossbarSpec(conductances=np.full((3, 3), 1e-5), cell="1T1R"), 0, 0)
    with pytest.raises(SpecError, match="lower max_cells"):
        sneak_report(CrossbarSpec(conductances=np.full((64, 64), 1e-5)), 0, 0, max_cells=7)
