"""Read margin of passive, 1S1R and 1T1R-mos arrays (cosim.circuit.margin), against independent truth.

- Hand-solved 2×2, negligible wire resistance (0.1 mΩ): with floating lines the only sneak path of cell (0, 0)
  is (0,1) → (1,1) → (1,0) in series; three identical cells in series each take exactly v/3
  (same law, same current), so the sneak current is the law at v/3. With V/2 (V/3) the
  half-selected cell (1, 0) sees v/2 (v/3) straight into the sense amplifier and (1, 1) sees 0
  (−v/3 between its lines, none of it reaching column 0). Cell currents of a series cell come
  from scipy's brentq on the scalar KCL of its internal node (1e-15 relative), independent of
  the array solver. Tolerance 1e-6: the wires' ~2e-7 (see the test).
- ngspice on the same circuit (netlist_cells decks: sinh devices and selectors as B-sources),
  8×8 and 12×12 with wires, every margin scheme, passive and 1S1R: ≤ 1e-6 relative (ngspice's
  RELTOL 1e-8 and cosim's 1e-6 certificate; measured ≤ 1e-9).
- 1T1R-mos (level-1 access transistor, gate = word line: on in the selected row, 0 V elsewhere)
  against ngspice on 8×8 for every scheme (≤ 1e-6, measured 9e-8). With floating lines the
  unselected rows sit behind cut-off transistors and have no defined potential, which ngspice
  refuses (singular matrix); their cells carry exactly 0 A at any row potential ≥ 0 (gate 0 V,
  source ≥ 0 V: cut off), so the deck ties those rows' drivers to 0 V through 1 kΩ, which
  changes no current.
- Physics a designer checks: ideal margin of the cell alone; the margin falls with size for
  passive arrays; a selector raises it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import brentq

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit
from cosim.circuit.cells import Mosfet, Ohmic, SeriesCell, Sinh
from cosim.circuit.margin import MARGIN_SCHEMES, pattern, read_margin
from cosim.circuit.netlist_cells import ngspice_read
from cosim.errors import SpecError

SEL = Sinh(1e-9, 0.08, 1e-10)       # the constructed selector card's law
NMOS = Mosfet(beta=2.684e-4, vt=0.7, lam=0.1, v_gate=3.3)   # nmos_l1_default: selected word line 3.3 V
ON, OFF = Sinh(2e-5, 0.25), Sinh(2e-7, 0.25)   # sinh devices: small-signal 80 uS and 0.8 uS
V = 1.0


def series_current(dev: Sinh, sel: Sinh, v: float) -> float:
    """Current of device + selector in series at v (V), by brentq on the internal node."""
    if v == 0:
        return 0.0
    f = lambda m: dev.branch(v, m)[0] - sel.branch(m, 0.0)[0]  # noqa: E731
    m = brentq(f, min(0.0, v), max(0.0, v), xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    return float(sel.branch(m, 0.0)[0])


def law_current(dev: Sinh, sel, v: float) -> float:
    return float(dev.branch(v, 0.0)[0]) if sel is None else series_current(dev, sel, v)


@pytest.mark.parametrize("access", [None, SEL], ids=["passive", "1s1r"])
@pytest.mark.parametrize("scheme", MARGIN_SCHEMES)
def test_two_by_two_by_hand(scheme, access):
    # 0.1 mΩ wires: the line-block solver needs a resistance per segment. They drop ≤ 4e-8 V
    # (≤ 1e-4 A through ≤ 4 segments), which moves a sinh cell's current by ≤ ~2e-7 relative.
    # The certificate is loosened to 1e-5 because 1e4 S wires put its rounding floor near 1e-6.
    spec = CrossbarSpec(conductances=np.ones((2, 2)), r_row=1e-4, r_col=1e-4)
    rep = read_margin(spec, ON, OFF, access=access, cell=(0, 0), v_read=V, unselected=scheme,
                      options=SolverOptions(rtol=1e-5))
    share = {"floating": V / 3, "v/2": V / 2, "v/3": V / 3}[scheme]
    # ON read: selected ON, the other three OFF; OFF read: the reverse.
    want_on = law_current(ON, access, V) + law_current(OFF, access, share)
    want_off = law_current(OFF, access, V) + law_current(ON, access, share)
    np.testing.assert_allclose([rep.i_on, rep.i_off], [want_on, want_off], rtol=1e-6)
    np.testing.assert_allclose([rep.i_cell_on, rep.i_cell_off],
                               [law_current(ON, access, V), law_current(OFF, access, V)], rtol=1e-6)
    assert rep.kind == ("0T1R" if access is None else "1S1R")


@pytest.mark.ngspice
@pytest.mark.parametrize("n", [8, 12])
@pytest.mark.parametrize("access", [None, SEL], ids=["passive", "1s1r"])
@pytest.mark.parametrize("scheme", MARGIN_SCHEMES)
def test_worst_case_reads_equal_ngspice(n, access, scheme):
    spec = CrossbarSpec(conductances=np.ones((n, n)), r_row=2.0, r_col=1.5, r_driver=3.0, r_sense=1.0)
    cell = (1, n - 2)
    rep = read_margin(spec, ON, OFF, access=access, cell=cell, v_read=V, unselected=scheme)
    rows, cols = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    rows[cell[0]] = cols[cell[1]] = True
    rspec = spec.replace(selected_rows=rows, selected_cols=cols, unselected=scheme, v_select=V)
    circuit = build_circuit(rspec)
    x = np.zeros((1, n))
    x[0, cell[0]] = V
    mask = np.zeros((n, n), dtype=bool)
    mask[cell] = True
    for sel_on, got in ((mask, rep.i_on), (~mask, rep.i_off)):
        dev = pattern(ON, OFF, sel_on)
        law = dev if access is None else SeriesCell(dev, access)
        want = ngspice_read(circuit, law, x)[0, cell[1]]
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.ngspice
@pytest.mark.parametrize("scheme", MARGIN_SCHEMES)
def test_one_t_one_r_mos_reads_equal_ngspice(scheme):
    n, cell = 8, (1, 6)
    spec = CrossbarSpec(conductances=np.ones((n, n)), r_row=2.0, r_col=1.5, r_driver=3.0, r_sense=1.0)
    rep = read_margin(spec, ON, OFF, access=NMOS, cell=cell, v_read=V, unselected=scheme)
    assert rep.kind == "1T1R-mos"
    rows, cols = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    rows[cell[0]] = cols[cell[1]] = True
    circuit = build_circuit(spec.replace(selected_rows=rows, selected_cols=cols, unselected=scheme, v_select=V))
    if scheme == "floating":  # see the module docstring: a tie that carries no current
        tie = np.isin(circuit.res_a, circuit.vsrc_p[:n][~rows]) & (circuit.res_g == 0)
        circuit = dataclasses.replace(circuit, res_g=np.where(tie, 1e-3, circuit.res_g))
    gate = np.where(rows[:, None], 3.3, 0.0) * np.ones((n, n))  # word lines, written independently
    x = np.zeros((1, n))
    x[0, cell[0]] = V
    mask = np.zeros((n, n), dtype=bool)
    mask[cell] = True
    for sel_on, got in ((mask, rep.i_on), (~mask, rep.i_off)):
        law = SeriesCell(pattern(ON, OFF, sel_on), dataclasses.replace(NMOS, v_gate=gate))
        want = ngspice_read(circuit, law, x)[0, cell[1]]
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_access_transistor_keeps_the_margin_of_the_cell_alone():
    # Ohmic 100/1 uS devices at 16x16: the passive margin is negative under every scheme; the
    # transistors of unselected rows are cut off, so the 1T1R margin stays within 0.5 points of
    # the cell alone (device + on transistor at v_read) and nothing but the selected cell reaches
    # the sensed column (sneak current 0 up to the certified error).
    spec = CrossbarSpec(conductances=np.ones((16, 16)), r_row=1.0, r_col=1.0)
    for scheme in MARGIN_SCHEMES:
        passive = read_margin(spec, Ohmic(1e-4), Ohmic(1e-6), v_read=V, unselected=scheme)
        mos = read_margin(spec, Ohmic(1e-4), Ohmic(1e-6), access=NMOS, v_read=V, unselected=scheme)
        assert passive.margin < 0 < 0.9 < mos.margin
        assert abs(mos.margin - mos.margin_ideal) < 0.005
        assert abs(mos.i_sneak_off) <= 2e-6 * mos.i_off
        # The cell alone: the transistor's drop solved by brentq (linear region at 3.3 V gate).
        f = lambda u: 1e-6 * (V - u) - NMOS.branch(u, 0.0)[0]  # noqa: E731
        u = brentq(f, 0.0, V, xtol=1e-300, rtol=4 * np.finfo(float).eps)
        assert mos.i_alone_off == pytest.approx(1e-6 * (V - u), rel=1e-12)


def test_selector_raises_the_margin_and_size_lowers_it():
    def margin(n, access, scheme):
        spec = CrossbarSpec(conductances=np.ones((n, n)), r_row=1.0, r_col=1.0)
        return read_margin(spec, Ohmic(1e-4), Ohmic(1e-6), access=access, v_read=V, unselected=scheme).margin

    for scheme in MARGIN_SCHEMES:
        passive = [margin(n, None, scheme) for n in (4, 16)]
        one_s = [margin(n, SEL, scheme) for n in (4, 16)]
        assert passive[1] < passive[0] and one_s[1] < one_s[0]
        assert one_s[1] > passive[1]


def test_ideal_margin_and_refusals():
    spec = CrossbarSpec(conductances=np.ones((3, 3)), r_row=1.0, r_col=1.0)
    rep = read_margin(spec, Ohmic(1e-4), Ohmic(1e-6), v_read=0.2)
    assert rep.cell == (0, 2) and rep.margin_ideal == pytest.approx(0.99, rel=1e-12)
    with pytest.raises(SpecError, match="unselected must be one of"):
        read_margin(spec, Ohmic(1e-4), Ohmic(1e-6), unselected="driven")
    with pytest.raises(SpecError, match="ON law must conduct more"):
        read_margin(spec, Ohmic(1e-6), Ohmic(1e-4))
    with pytest.raises(SpecError, match="one kind"):
        read_margin(spec, Ohmic(1e-4), Sinh(1e-7, 0.25))
    with pytest.raises(SpecError, match="inside 3x3"):
        read_margin(spec, Ohmic(1e-4), Ohmic(1e-6), cell=(3, 0))


def test_cli_table_equals_the_library(tmp_path):
    from clirun import check, refused, run

    out = tmp_path / "m.csv"
    rc, text, err = run(["sneak", "--sizes", "3,5", "--v-nl", "0.25", "--v-read", "0.8", "--r-row", "2",
                         "-o", out])
    check(rc, text, err)
    assert rc == 0 and "1S1R" in text and "floating" in text
    rows = [ln.split(",") for ln in out.read_text().splitlines()[1:]]
    assert len(rows) == 2 * 2 * 3
    kind, n, _, scheme = rows[-1][:4]
    spec = CrossbarSpec(conductances=np.ones((5, 5)), r_row=2.0, r_col=1.0)
    rep = read_margin(spec, Sinh.from_small_signal(1e-4, 0.25), Sinh.from_small_signal(1e-6, 0.25), access=SEL,
                      v_read=0.8, unselected=scheme)
    assert (kind, n) == ("1S1R", "5") and float(rows[-1][10 - 1]) == rep.margin
    assert "--g-on must exceed" in refused(["sneak", "--g-on", "1u", "--g-off", "2u"])
    assert "--r-row and --r-col must be > 0" in refused(["sneak", "--r-row", "0"])
    assert "needs a selector card" in refused(["sneak", "--selector", "nmos_l1_default"])
    assert "needs a transistor card" in refused(["sneak", "--cells", "1T1R-mos", "--transistor", "selector_default"])
    assert "add 1T1R-mos to --cells" in refused(["sneak", "--v-gate", "2"])
    assert "bias.v_gate must be in" in refused(["sneak", "--cells", "1T1R-mos", "--v-gate", "-1"])
    assert "--unselected must be" in refused(["sneak", "--unselected", "driven"])
    # an option its choice would ignore is refused
    assert "give one or the other" in refused(["sneak", "--device-card", "stanford_pku_default", "--g-on", "1m"])
    assert "add 1S1R to --cells" in refused(["sneak", "--cells", "0T1R", "--selector", "selector_default"])
    assert "add 1T1R-mos to --cells" in refused(["sneak", "--transistor", "nmos_l1_default"])
    with pytest.raises(SpecError, match="spec.v_select must be None"):
        read_margin(spec.replace(v_select=0.5), Sinh.from_small_signal(1e-4, 0.25),
                    Sinh.from_small_signal(1e-6, 0.25), access=SEL, v_read=0.8)


def test_cli_device_card_reads_the_card_window_ends(tmp_path):
    from clirun import check, refused, run

    from cosim.array.cells import device_law
    from cosim.devices import get_model, load_card
    from cosim.devices.paths import models_dir

    out = tmp_path / "m.csv"
    rc, text, err = run(["sneak", "--sizes", "4", "--cells", "0T1R", "--unselected", "v/3",
                         "--device-card", "stanford_pku_default", "--v-read", "1", "-o", out])
    check(rc, text, err)
    card = load_card(models_dir() / "cards" / "stanford_pku_default.toml")
    model, p = get_model(card.model), dict(card.params)
    on, off = (device_law(model, np.asarray(model.bound_toward(d, p), dtype=float), p) for d in (1, -1))
    rep = read_margin(CrossbarSpec(conductances=np.ones((4, 4)), r_row=1.0, r_col=1.0), on, off, v_read=1.0,
                      unselected="v/3")
    row = out.read_text().splitlines()[1].split(",")
    assert float(row[5]) == rep.i_on and float(row[6]) == rep.i_off
    assert "--v-nl applies to" in refused(["sneak", "--device-card", "stanford_pku_default", "--v-nl", "0.3"])
    assert "device card not found" in refused(["sneak", "--device-card", "nope"])


def test_cli_one_t_one_r_mos_equals_the_library(tmp_path):
    from clirun import check, run

    from cosim.array.cells import load_access_card

    out = tmp_path / "m.csv"
    rc, text, err = run(["sneak", "--sizes", "4", "--cells", "1T1R-mos", "--unselected", "v/2",
                         "--v-gate", "2.5", "-o", out])
    check(rc, text, err)
    assert "selected word line 2.5 V" in text
    card = load_access_card("nmos_l1_default")
    access = dataclasses.replace(card.law(np.ones(4, dtype=bool), (4, 4)), v_gate=2.5)
    rep = read_margin(CrossbarSpec(conductances=np.ones((4, 4)), r_row=1.0, r_col=1.0), Ohmic(1e-4), Ohmic(1e-6),
                      access=access, v_read=1.0, unselected="v/2")
    row = out.read_text().splitlines()[1].split(",")
    assert row[0] == "1T1R-mos" and float(row[5]) == rep.i_on and float(row[6]) == rep.i_off
