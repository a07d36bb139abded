"""The pulse model's optional I–V nonlinearity: I = G·v_nl·sinh(V/v_nl) (card parameter v_nl).

Truths checked, with tolerances:
- ohmic when the card omits v_nl (default 0): I = G·V exactly, as before;
- small-signal limit: at µV the device, and a whole array read through its cells, equal the
  ohmic law with the small-signal G to 1e-9 (sinh(u)/u − 1 = u²/6 ≈ 2e-12 at 1 µV / 0.3 V);
- ohmic limit: v_nl = 100 V is ohmic to 1e-6 at 0.2 V (u²/6 = 7e-7);
- half-bias nonlinearity I(V)/I(V/2) = 2·cosh(V/(2·v_nl)) (1e-12);
- the card schema refuses a negative v_nl and one in (0, 10 mV) in one line naming the field;
- models/pulse_nl.va (verilogae) evaluates the same current (1e-10), the behavioural ngspice
  twin's current source equals the model's current along a pulse train (1e-6), and an array read
  through the cells equals ngspice on the same circuit (1e-6).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cosim.array.cells import population_law
from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, read
from cosim.circuit.cells import Sinh
from cosim.circuit.netlist_cells import ngspice_read
from cosim.circuit.solvers.newton import read_nonlinear
from cosim.devices import DevicePopulation, Pulse, card_from_dict, get_model, load_card
from cosim.devices.paths import models_dir
from cosim.errors import SpecError

BASE = load_card(models_dir() / "cards" / "imprecise.toml")
MODEL = get_model("pulse_nl")


def card(v_nl: float | None, **variation):
    params = dict(BASE.params)
    params.pop("v_nl", None)
    if v_nl is not None:
        params["v_nl"] = v_nl
    prog = BASE.programming
    return card_from_dict({"model": "pulse_nl", "params": params, "variation": variation,
                           "programming": {"amplitude_set": prog.amplitude_set, "amplitude_reset": prog.amplitude_reset,
                                           "width": prog.width, "v_read": prog.v_read}})


def test_default_is_ohmic_and_the_law_is_exact(rng):
    x = rng.uniform(0, 1, 50)
    v = rng.uniform(-2, 2, 50)
    ohmic = dict(card(None).params)
    assert ohmic["v_nl"] == 0.0
    g = MODEL.small_signal(x, ohmic)
    np.testing.assert_array_equal(MODEL.current(x, v, ohmic), g * v)
    p = dict(card(0.3).params)
    np.testing.assert_allclose(MODEL.current(x, v, p), g * 0.3 * np.sinh(v / 0.3), rtol=1e-14)
    # Half-bias nonlinearity of the sinh law.
    np.testing.assert_allclose(MODEL.current(x, 1.6, p) / MODEL.current(x, 0.8, p), 2 * np.cosh(0.8 / 0.3), rtol=1e-12)
    # Read conductance is the chord at v_read, and state_for_conductance inverts it.
    gr = MODEL.conductance(x, 0.2, p)
    np.testing.assert_allclose(gr, MODEL.current(x, 0.2, p) / 0.2, rtol=1e-14)
    np.testing.assert_allclose(MODEL.state_for_conductance(gr, 0.2, p), x, rtol=1e-12, atol=1e-14)


def test_small_signal_and_ohmic_limits(rng):
    x = rng.uniform(0, 1, 50)
    p = dict(card(0.3).params)
    g = MODEL.small_signal(x, p)
    np.testing.assert_allclose(MODEL.conductance(x, 1e-6, p), g, rtol=1e-9)
    np.testing.assert_allclose(MODEL.conductance(x, 0.2, dict(card(100.0).params)), g, rtol=1e-6)
    # A whole array read through the cells at µV inputs equals the ohmic read of G (1e-9).
    pop = DevicePopulation.create(card(0.3), (6, 5), seed=1)
    law = population_law(pop)
    assert isinstance(law, Sinh)
    spec = CrossbarSpec(conductances=np.ones((6, 5)), r_row=1.0, r_col=2.0, r_driver=3.0, r_sense=1.0)
    v = rng.uniform(0.0, 1e-6, (1, 6))
    got = read_nonlinear(spec, law, v, SolverOptions(rtol=1e-12)).currents
    ohmic = read(spec.replace(conductances=MODEL.small_signal(pop.state, dict(pop.card.params)).reshape(6, 5)), v,
                 engine="nodal").currents
    np.testing.assert_allclose(got, ohmic, rtol=1e-9)


def test_card_schema_refuses_bad_values():
    with pytest.raises(SpecError, match=r"params\.v_nl must be in \[0, 100\] V"):
        card(-0.1)
    with pytest.raises(SpecError, match=r"v_nl = 0 \(ohmic\) or v_nl >= 0\.01 V"):
        card(0.001)


def test_verilog_a_evaluates_the_same_current(rng):
    pytest.importorskip("verilogae")
    if shutil.which("ld") is None:
        pytest.skip("verilogae needs a system linker (ld)")
    fast = get_model("pulse_nl", "compiled")
    p = dict(card(0.3).params)
    x, v = rng.uniform(0, 1, 2000), rng.uniform(-3, 3, 2000)
    np.testing.assert_allclose(fast.current(x, v, p), MODEL.current(x, v, p), rtol=1e-10, atol=0)


@pytest.mark.ngspice
def test_behavioural_twin_current_equals_the_model():
    from cosim.array.transient import device_pulse_train

    p = dict(card(0.5).params)
    width = BASE.programming.width
    pulse = Pulse(amplitude=1.6, width=width, rise=width / 10, fall=width / 10)
    train = device_pulse_train("pulse_nl", p, state=0.0, pulse=pulse, n_pulses=5)
    assert train.state_after[-1] > 0.01  # the pulses moved the device
    i_model = MODEL.current(np.clip(train.state, 0, 1), train.v_device, p)
    np.testing.assert_allclose(train.current, i_model, rtol=1e-6, atol=1e-9 * np.abs(i_model).max())
    assert np.abs(i_model).max() > 1.05 * np.abs(MODEL.small_signal(train.state, p) * train.v_device).max()


@pytest.mark.ngspice
def test_array_read_through_the_cells_equals_ngspice(rng):
    pop = DevicePopulation.create(card(0.3, d2d={"g_max": 0.1}), (8, 8), seed=2)
    pop.set_state(rng.uniform(0, 1, (8, 8)))
    law = population_law(pop)
    spec = CrossbarSpec(conductances=np.ones((8, 8)), r_row=2.0, r_col=1.0, r_driver=2.0, r_sense=1.0)
    x = rng.uniform(0.2, 0.9, (1, 8))
    got = read_nonlinear(spec, law, x).currents
    want = ngspice_read(build_circuit(spec), law, x)
    np.testing.assert_allclose(got, want, rtol=1e-6)
