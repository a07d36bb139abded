"""Cell laws (cosim.circuit.cells), the device → law maps (cosim.array.cells) and the access
elements' Verilog-A sources.

Truths checked:
- every law's derivatives equal central differences (step 1e-6 V; the second-order truncation
  error is ≲ 1e-9 of the derivative for these smooth laws, so 1e-6 relative leaves margin; the
  MOSFET's region boundaries are kinks of the derivative, so points within 1e-5 V of one are
  left out);
- the level-1 transistor's closed forms in each region, hand-evaluated, and its source/drain
  symmetry (i(a, b) = −i(b, a));
- a series cell of two resistors is the series conductance exactly; a nonlinear series cell
  satisfies KCL at its internal node to 1e-12 and its eliminated derivatives equal differences;
- each device → law map equals the device model's own current (1e-12 relative: same formula,
  rearranged);
- models/selector.va and models/nmos_l1.va, compiled by verilogae, equal the numpy laws to 1e-10.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cosim.array.cells import ACCESS_SPECS, AccessCard, device_law, load_access_card
from cosim.circuit.cells import Mosfet, Ohmic, SeriesCell, Sinh
from cosim.devices.cards import load_card
from cosim.devices.paths import models_dir
from cosim.devices.registry import MODELS
from cosim.errors import SpecError

CARDS = models_dir() / "cards"
NMOS = Mosfet(beta=2.684e-4, vt=0.7, lam=0.1, v_gate=3.3)


def _numeric(law, va, vb, h=1e-6):
    da = (law.branch(va + h, vb)[0] - law.branch(va - h, vb)[0]) / (2 * h)
    db = (law.branch(va, vb + h)[0] - law.branch(va, vb - h)[0]) / (2 * h)
    return da, db


@pytest.mark.parametrize("kind", ["ohmic", "sinh", "mosfet", "series_sinh", "series_mosfet"])
def test_derivatives_equal_central_differences(kind, rng):
    va, vb = rng.uniform(-1.0, 2.0, 2000), rng.uniform(-1.0, 2.0, 2000)
    dev = Sinh(rng.uniform(1e-6, 1e-4, 2000), 0.25)
    law = {"ohmic": Ohmic(rng.uniform(0, 1e-4, 2000)),
           "sinh": Sinh(rng.uniform(1e-7, 1e-5, 2000), 0.25, 1e-7),
           "mosfet": Mosfet(2.7e-4, 0.7, 0.1, rng.uniform(0.0, 3.3, 2000)),
           "series_sinh": SeriesCell(dev, Sinh(1e-9, 0.08, 1e-10)),
           "series_mosfet": SeriesCell(dev, NMOS)}[kind]
    i, ga, gb = law.branch(va, vb)
    na, nb = _numeric(law, va, vb)
    keep = np.ones(va.size, dtype=bool)
    if kind == "mosfet":  # skip points near a region boundary (a kink in the derivative)
        lo = np.minimum(va, vb)
        vov = law.v_gate - lo - 0.7
        keep = (np.abs(vov) > 1e-5) & (np.abs(np.abs(va - vb) - vov) > 1e-5)
    scale = np.abs(ga).max()
    np.testing.assert_allclose(na[keep], ga[keep], rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(nb[keep], gb[keep], rtol=1e-6, atol=1e-6 * scale)
    if kind not in ("mosfet", "series_mosfet"):  # two-terminal: depends on v_a − v_b only
        np.testing.assert_array_equal(gb, -ga)


def test_mosfet_closed_forms_by_region():
    beta, lam = 2.684e-4, 0.1
    # Source at 0 V, gate 3.3 V: v_ov = 2.6 V.
    i_lin = NMOS.branch(1.0, 0.0)[0]
    assert i_lin == pytest.approx(beta * (2.6 - 0.5) * 1.0 * (1 + lam * 1.0), rel=1e-14)
    i_sat = NMOS.branch(3.0, 0.0)[0]
    assert i_sat == pytest.approx(0.5 * beta * 2.6**2 * (1 + lam * 3.0), rel=1e-14)
    # Source at 2.7 V: v_ov = -0.1 V, cut off whatever the drain does.
    assert NMOS.branch(4.0, 2.7)[0] == 0.0
    # Source and drain swap: the lower terminal is the source.
    a, b = np.array([0.3, 1.7, 2.9]), np.array([1.1, 0.2, 3.0])
    np.testing.assert_array_equal(NMOS.branch(a, b)[0], -NMOS.branch(b, a)[0])
    # Continuous at the linear/saturation boundary v_ds = v_ov.
    lo, hi = NMOS.branch(2.6 - 1e-12, 0.0)[0], NMOS.branch(2.6 + 1e-12, 0.0)[0]
    assert abs(hi - lo) < 1e-12 * abs(hi)
    assert NMOS.small_signal(0.0) == pytest.approx(beta * 2.6)


def test_series_of_two_resistors_is_exact(rng):
    g1, g2 = rng.uniform(1e-6, 1e-4, 500), rng.uniform(1e-6, 1e-3, 500)
    ur, uc = rng.uniform(-1, 1, 500), rng.uniform(-1, 1, 500)
    i, gr, gc = SeriesCell(Ohmic(g1), Ohmic(g2)).branch(ur, uc)
    gs = g1 * g2 / (g1 + g2)
    # Rounding of the ~1 V potentials: an absolute floor at 1e-13 of the largest current.
    np.testing.assert_allclose(i, gs * (ur - uc), rtol=1e-13, atol=1e-13 * np.abs(i).max())
    np.testing.assert_allclose(gr, gs, rtol=1e-13)
    np.testing.assert_allclose(gc, -gs, rtol=1e-13)


@pytest.mark.parametrize("access", ["selector", "mosfet"])
def test_series_cell_internal_node_satisfies_kcl(access, rng):
    dev = Sinh(rng.uniform(1e-6, 1e-4, 3000), 0.25)
    acc = Sinh(1e-9, 0.08, 1e-10) if access == "selector" else NMOS
    cell = SeriesCell(dev, acc)
    ur, uc = rng.uniform(-1.5, 1.5, 3000), rng.uniform(-0.2, 0.2, 3000)
    m = cell.mid(ur, uc)
    assert np.all((m >= np.minimum(ur, uc)) & (m <= np.maximum(ur, uc)))
    i_d, i_a = dev.branch(ur, m)[0], acc.branch(m, uc)[0]
    np.testing.assert_allclose(i_d, i_a, rtol=1e-12, atol=1e-12 * np.abs(i_d).max())


def test_mosfet_cut_off_cell_carries_nothing():
    cell = SeriesCell(Ohmic(1e-4), Mosfet(2.7e-4, 0.7, 0.1, 0.0))  # deselected word line
    i, gr, gc = cell.branch(np.array([1.0, -1.0]), np.array([0.0, 0.0]))
    # Negative row: the row terminal becomes the source at -1 V, v_gs = 1 V > vt, so it conducts.
    assert i[0] == 0.0 and gr[0] == 0.0 and i[1] < 0.0


@pytest.mark.parametrize("card, model, iv", [("vteam_default", "vteam", 0), ("vteam_default", "vteam", 1),
                                             ("stanford_pku_default", "stanford_pku", None),
                                             ("imprecise", "pulse_nl", None)])
def test_device_law_equals_the_models_current(card, model, iv, rng):
    """VTEAM with linear (iv = 0) and exponential (iv = 1) R(w), Stanford–PKU, pulse_nl."""
    m, params = MODELS[model], dict(load_card(CARDS / f"{card}.toml").params)
    if iv is not None:
        params["iv"] = iv
    lo, hi = m.state_bounds(params)
    state = rng.uniform(lo, hi, (16, 16))
    law = device_law(m, state, params)
    v = rng.uniform(-1.0, 1.0, (16, 16))
    np.testing.assert_allclose(law.branch(v, 0.0)[0], m.current(state, v, params), rtol=1e-12, atol=0)
    # The small-signal conductance is the chord conductance's zero-bias limit.
    np.testing.assert_allclose(law.small_signal(), m.conductance(state, 1e-9, params), rtol=1e-8)


def test_published_selector_card_reproduces_its_figures_of_merit():
    # Luo et al. 2017 (abstract): selectivity 5e4, ~10 pA off-state, 100 uA at the assumed
    # 2 V operating point (1 MA/cm^2 over the card's assumed 100 nm x 100 nm).
    p = load_access_card("selector_taox_luo2017").params
    law = Sinh(p["i_s"], p["v_s"], p["g_leak"])
    i = {v: float(law.branch(v, 0.0)[0]) for v in (0.5, 1.0, 2.0)}
    assert i[2.0] == pytest.approx(1e-4, rel=1e-3) and i[2.0] / i[1.0] == pytest.approx(5e4, rel=1e-3)
    assert 5e-12 < i[0.5] < 20e-12


def test_shipped_access_cards_load_and_bad_ones_are_refused(tmp_path):
    sel, nmos = load_access_card("selector_default"), load_access_card("nmos_l1_default")
    assert sel.model == "selector" and nmos.model == "nmos_l1" and nmos.v_gate == 3.3
    law = nmos.law(np.array([True, False]), (2, 3))
    assert law.v_gate.shape == (2, 3) and law.v_gate[1, 0] == 0.0
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "nmos_l1"\n[params]\nvt = 0.7\nkp = -1.0\nw = 1e-6\nl = 5e-7\nlambda = 0.1\n'
                   '[bias]\nv_gate = 3.3\n')
    with pytest.raises(SpecError, match=r"bad\.toml: params\.kp must be in"):
        load_access_card(bad)
    bad.write_text('model = "nmos_l1"\n[params]\nvt = 0.7\nkp = 1e-4\nw = 1e-6\nl = 5e-7\nlambda = 0.1\n')
    with pytest.raises(SpecError, match=r"bias\.v_gate is missing"):
        load_access_card(bad)
    with pytest.raises(SpecError, match="model must be one of"):
        AccessCard(model="diode", params={})


def _compiled(name: str):
    pytest.importorskip("verilogae")
    if shutil.which("ld") is None:
        pytest.skip("verilogae needs a system linker (ld)")
    from cosim.devices.compiled import compile_va

    return compile_va(Path(models_dir()) / f"{name}.va").functions


@pytest.mark.parametrize("card,v_max", [("selector_default", 1.5), ("selector_taox_luo2017", 3.0)])
def test_selector_va_equals_numpy_law(card, v_max, rng):
    fn = _compiled("selector")["i_sel"]
    p = load_access_card(card).params
    v = rng.uniform(-v_max, v_max, 4000)
    got = fn.eval(temperature=300.0, voltages={"br_pn": v}, **{s.name: float(p[s.name]) for s in ACCESS_SPECS["selector"]})
    want = Sinh(p["i_s"], p["v_s"], p["g_leak"]).branch(v, 0.0)[0]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


def test_nmos_va_equals_numpy_law(rng):
    fn = _compiled("nmos_l1")["i_ds"]
    card = load_access_card("nmos_l1_default")
    p = card.params
    vd, vg, vs = rng.uniform(-1, 3, 4000), rng.uniform(0, 3.3, 4000), rng.uniform(-1, 3, 4000)
    got = fn.eval(temperature=300.0, voltages={"br_ds": vd - vs, "br_gs": vg - vs, "br_gd": vg - vd},
                  **{s.name: float(p[s.name]) for s in ACCESS_SPECS["nmos_l1"]})
    want = Mosfet(p["kp"] * p["w"] / p["l"], p["vt"], p["lambda"], vg).branch(vd, vs)[0]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-18)
