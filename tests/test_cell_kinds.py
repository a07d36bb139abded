"""Cell kinds above the circuit: ``CrossbarSpec(cell=…, law=…)`` read by every engine, the CLI
options, the tile's reads and the refusals.

Truths checked:
- nodal (Newton) vs ngspice running the deck cosim's own netlist writer emits for the spec
  (the spice engine), per nonlinear kind, forward and transpose, with a bias scheme: ≤ 1e-6
  relative on the output currents (ngspice at RELTOL 1e-8, cosim certified to 1e-10; see
  tests/test_newton_ngspice.py for why 1e-6);
- the small-signal limit: inputs of 10 µV make a sinh cell ohmic to (v/v0)²/6 ≈ 3e-10, so the
  nonlinear read equals the 0T1R read with the cells' small-signal conductance to 1e-9;
- without wires every cell sees its input exactly, so the nodal read equals the ideal engine's
  cell-law read (an independent sum of the laws) to the solver's 1e-10;
- a tile on nonlinear cells reads (forward and transpose) what the nodal engine reads on the
  spec built from its devices' states, and stuck/dead devices keep their fault in the law.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.array.cells import access_card_for, compose, law_from_conductances, population_law
from cosim.catalog import ENGINES
from cosim.circuit import CrossbarSpec, SolverOptions, read
from cosim.circuit.engines.base import Engine
from cosim.devices import get_model, load_card
from cosim.devices.paths import models_dir
from cosim.errors import EngineError, SpecError
from tests.clirun import run as run_cli

KINDS = ("device", "1S1R", "1T1R-mos")


def _spku(n, m, seed=0):
    card = load_card(models_dir() / "cards" / "stanford_pku_default.toml")
    p = dict(card.params)
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(p["g_min"], p["g_max"], (n, m))
    return card, get_model("stanford_pku").conductance(gaps, card.programming.v_read, p), rng


def spec_of(kind, n=8, m=6, seed=0, **kw):
    card, g, rng = _spku(n, m, seed)
    law = compose(kind, law_from_conductances(g, card), access_card_for(kind), g.shape) if kind in KINDS else None
    return CrossbarSpec(conductances=g, cell=kind, law=law, **kw), rng


@pytest.mark.ngspice
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("transpose", [False, True])
def test_nodal_matches_ngspice_on_the_written_deck(kind, transpose):
    bias = dict(r_row=1.0, r_col=2.0, r_driver=1.0, r_sense=1.0, selected_rows=[0, 2, 5], selected_cols=[1, 2, 3],
                unselected="v/2", v_select=0.3)
    spec, rng = spec_of(kind, **bias)
    x = rng.uniform(0.0, 0.3, (2, spec.n_cols if transpose else spec.n_rows))
    nodal = read(spec, x, transpose=transpose)
    assert nodal.info["method"] in ("chord", "chord+newton", "newton", "compiled-newton", "compiled-newton+newton")
    spice = read(spec, x, transpose=transpose, options=SolverOptions(engine="spice", ngspice="subprocess"))
    scale = np.abs(spice.currents).max()
    np.testing.assert_allclose(nodal.currents, spice.currents, rtol=0, atol=1e-6 * scale)
    assert spice.residual < 1e-6


@pytest.mark.parametrize("kind", ("device", "1S1R"))
def test_small_signal_limit_is_the_ohmic_read(kind):
    spec, rng = spec_of(kind, r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    x = rng.uniform(0.0, 1e-5, (2, spec.n_rows))
    nl = read(spec, x, options=SolverOptions(rtol=1e-12))
    g0 = spec.law.small_signal()
    lin = read(spec.replace(cell="0T1R", law=None, conductances=np.broadcast_to(g0, spec.shape)), x,
               options=SolverOptions(method="direct"))
    np.testing.assert_allclose(nl.currents, lin.currents, rtol=1e-9, atol=1e-9 * np.abs(lin.currents).max())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("transpose", [False, True])
def test_without_wires_nodal_equals_the_ideal_cell_law_read(kind, transpose):
    spec, rng = spec_of(kind, selected_cols=[0, 2, 3, 5], unselected="grounded")
    x = rng.uniform(0.0, 0.3, (3, spec.n_cols if transpose else spec.n_rows))
    ideal = read(spec, x, engine="ideal", transpose=transpose, want_cells=True)
    assert ideal.info["method"] == "cell law"
    # the ideal read by hand: each cell's law at (input, 0 V), summed per sensed line
    v_r, v_c = (np.zeros((3, spec.n_rows, spec.n_cols)) for _ in range(2))
    if transpose:
        v_c += x[:, None, :]
    else:
        v_r += x[:, :, None]
    cells = spec.law.branch(v_r, v_c)[0] * spec.selected_cols[None, None, :]
    by_hand = -cells.sum(axis=2) if transpose else cells.sum(axis=1)
    np.testing.assert_allclose(ideal.currents, by_hand, rtol=1e-12)
    nodal = read(spec, x, transpose=transpose)
    np.testing.assert_allclose(nodal.currents, ideal.currents, rtol=0, atol=1e-9 * np.abs(ideal.currents).max())


class _OhmicOnly(Engine):
    """An engine that never heard of nonlinear cells (the base class's default)."""

    name = "ohmic_only"

    def prepare(self, circuit, options, *, spec=None):  # pragma: no cover - must not be reached
        raise AssertionError("prepare() let a nonlinear circuit through")


OHMIC_ONLY = _OhmicOnly()


def test_spec_refuses_a_law_that_does_not_fit(monkeypatch):
    spec, _ = spec_of("1S1R")
    with pytest.raises(SpecError, match="spec.law applies to the nonlinear cells"):
        spec.replace(cell="0T1R")
    with pytest.raises(SpecError, match="spec.law must be a SeriesCell with a Mosfet"):
        spec.replace(cell="1T1R-mos")
    with pytest.raises(SpecError, match="spec.law must be a two-terminal law"):
        spec.replace(cell="device", law=None)
    other = spec.replace(law=compose("1S1R", law_from_conductances(spec.conductances * 1.01, _spku(1, 1)[0]),
                                     access_card_for("1S1R"), spec.shape))
    assert other.key() != spec.key()  # caches keyed by the spec see a new law
    monkeypatch.setitem(ENGINES, "ohmic_only", "tests.test_cell_kinds:OHMIC_ONLY")
    with pytest.raises(EngineError, match="engine 'ohmic_only' does not model nonlinear cells"):
        read(spec, np.zeros(8), engine="ohmic_only")


def test_cli_read_and_compare_solve_nonlinear_cells(tmp_path):
    card, g, rng = _spku(6, 5, 1)
    np.save(tmp_path / "G.npy", g)
    np.save(tmp_path / "V.npy", rng.uniform(0, 0.3, (2, 6)))
    common = ["--conductance", str(tmp_path / "G.npy"), "--voltages", str(tmp_path / "V.npy"), "--r-row", "1",
              "--r-col", "1"]
    code, out, err = run_cli(["read", *common, "--cell", "1S1R", "--device-card", "stanford_pku_default",
                              "-o", str(tmp_path / "I.npy")])
    assert code == 0, err
    assert "engine nodal (chord" in out and "1S1R array" in out
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0, cell="1S1R",
                        law=compose("1S1R", law_from_conductances(g, card), access_card_for("1S1R"), g.shape))
    np.testing.assert_allclose(np.load(tmp_path / "I.npy"), read(spec, np.load(tmp_path / "V.npy")).currents,
                               rtol=1e-12)
    code, out, err = run_cli(["compare", *common, "--cell", "1T1R-mos", "--device-card", "stanford_pku_default",
                              "--v-gate", "2.5", "--engines", "ideal,nodal"])
    assert code == 0 and "1T1R-mos array" in out, err


@pytest.mark.parametrize("extra, message", [
    (["--cell", "device"], "--cell device reads the devices' own I-V: give --device-card"),
    (["--cell", "1S1R", "--device-card", "stanford_pku_default", "--v-gate", "2"], "--v-gate applies to --cell 1T1R-mos"),
    (["--access-card", "selector_default"], "--access-card applies to the nonlinear cells"),
    (["--cell", "1S1R", "--device-card", "stanford_pku_default", "--access-card", "nmos_l1_default"],
     "a 1S1R cell needs a selector card"),
    (["--cell", "device", "--device-card", "stanford_pku_default", "--method", "direct"],
     "solver.method 'direct' does not solve nonlinear cells"),
    (["--cell", "device", "--device-card", "nope_card"], "--device-card nope_card"),
])
def test_cli_refusals_are_one_line(tmp_path, extra, message):
    _, g, rng = _spku(4, 3, 2)
    np.save(tmp_path / "G.npy", g)
    np.save(tmp_path / "V.npy", rng.uniform(0, 0.3, 4))
    code, out, err = run_cli(["read", "--conductance", str(tmp_path / "G.npy"), "--voltages",
                              str(tmp_path / "V.npy"), *extra])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out


@pytest.mark.parametrize("kind", KINDS)
def test_tile_reads_through_the_cells_law(kind):
    from cosim.array.tile import ArraySpec, Tile
    from cosim.devices import DevicePopulation

    card = load_card(models_dir() / "cards" / "stanford_pku_default.toml")
    pop = DevicePopulation.create(card, (6, 5), seed=3)
    rng = np.random.default_rng(4)
    lo, hi = pop.window()
    pop.set_conductance(rng.uniform(lo, hi))
    pop.stuck_on[0], pop.dead[7] = True, True  # faults must reach the law
    pop.healthy = ~(pop.stuck_on | pop.stuck_off | pop.dead)
    array = ArraySpec(rows=6, cols=5, r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0, cell=kind)
    tile = Tile(array, pop, SolverOptions(rtol=1e-11))
    law = population_law(pop)
    np.testing.assert_allclose(law.branch(0.1, 0.0)[0] / 0.1, pop.conductance(0.1), rtol=1e-12)  # faults too
    spec = array.crossbar(pop.conductance(), law)
    x, y = rng.uniform(0, 0.2, (3, 6)), rng.uniform(0, 0.2, (3, 5))
    np.testing.assert_allclose(tile.read(x), read(spec, x).currents, rtol=1e-9)
    np.testing.assert_allclose(tile.read_transposed(y), read(spec, y, transpose=True).currents, rtol=1e-9)
    # after a write the tile reads the new states (warm-started Newton, same answer)
    pop.set_conductance(rng.uniform(lo, hi))
    tile.invalidate()
    spec = array.crossbar(pop.conductance(), population_law(pop))
    np.testing.assert_allclose(tile.read(x), read(spec, x).currents, rtol=1e-9)
    with pytest.raises(SpecError, match="array.v_gate applies to cell 1T1R-mos"):
        ArraySpec(cell="1S1R", v_gate=2.0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("transpose", [False, True])
def test_tile_update_of_cells_equals_a_rebuilt_circuit(kind, transpose, monkeypatch):
    """After a write the tile updates its nonlinear read in place (Prepared.update_cells: the
    cell block and law replaced, no rebuild) where the builder would not rewrite the law per row
    (1T1R-mos gates follow the selection, so those are rebuilt): the same circuit arrays, law and
    answer as a circuit built from the spec."""
    from cosim.array.tile import ArraySpec, Tile
    from cosim.circuit import build_circuit, prepare
    from cosim.devices import DevicePopulation

    card = load_card(models_dir() / "cards" / "stanford_pku_default.toml")
    pop = DevicePopulation.create(card, (7, 6), seed=5)
    rng = np.random.default_rng(6)
    lo, hi = pop.window()
    pop.set_conductance(rng.uniform(lo, hi))
    array = ArraySpec(rows=7, cols=6, r_row=1.0, r_col=2.0, r_driver=1.0, r_sense=1.0, cell=kind)
    tile = Tile(array, pop, SolverOptions(rtol=1e-11))
    x = rng.uniform(0, 0.2, (3, 6 if transpose else 7))
    read_tile = tile.read_transposed if transpose else tile.read
    read_tile(x)
    import cosim.array.tile as tile_module

    builds = []
    monkeypatch.setattr(tile_module, "build_circuit", lambda *a, **k: builds.append(1) or build_circuit(*a, **k))
    pop.set_conductance(rng.uniform(lo, hi))
    tile.invalidate()
    got = read_tile(x)
    after = tile._prepared[transpose]
    assert len(builds) == (kind == "1T1R-mos")  # the others updated in place
    built = build_circuit(tile.crossbar_spec(), transpose=transpose)
    for name in ("res_a", "res_b", "res_g", "vsrc_dc", "vsrc_input"):
        np.testing.assert_array_equal(getattr(after.circuit, name), getattr(built, name))
    np.testing.assert_array_equal(after.circuit.layout.ideal_g, built.layout.ideal_g)
    u_r, u_c = np.full((7, 6), 0.15), np.full((7, 6), 0.02)
    np.testing.assert_array_equal(after.circuit.cell_law.branch(u_r, u_c)[0], built.cell_law.branch(u_r, u_c)[0])
    want = prepare(built, SolverOptions(rtol=1e-11)).solve(x).currents
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())


@pytest.mark.ngspice
@pytest.mark.parametrize("kind", KINDS)
def test_tapeout_of_nonlinear_cells_runs_in_ngspice_and_agrees(tmp_path, kind):
    """The exported subcircuit, its bench and top.cir instantiate the cells as the engine
    modelled them: ngspice on the written files equals cosim's Newton read to 1e-6."""
    from cosim.array.tapeout import TileExport, verify_tapeout, write_tapeout

    spec, rng = spec_of(kind, n=6, m=5, r_row=1.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
    v = rng.uniform(0.0, 0.3, 6)
    files = write_tapeout([TileExport(name="arr", spec=spec, inputs=v, row_nets=tuple(f"x{i}" for i in range(6)),
                                      devices={"device": np.full(spec.shape, "cell", dtype=object)})], tmp_path / "t")
    sub = (tmp_path / "t" / "tiles" / "arr.sub").read_text()
    assert ("sinh(" in sub) and (("mt0_0" in sub) == (kind == "1T1R-mos")) and (("bs0_0" in sub) == (kind == "1S1R"))
    np.testing.assert_allclose(files.currents["arr"], read(spec, v).currents[0], rtol=1e-9)
    errors = verify_tapeout(tmp_path / "t")
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.ngspice
def test_cosim_netlist_with_cells_runs_in_ngspice(tmp_path):
    from cosim.array.tapeout import run_deck

    card, g, rng = _spku(5, 4, 5)
    np.save(tmp_path / "G.npy", g)
    np.save(tmp_path / "V.npy", rng.uniform(0, 0.3, 5))
    common = ["--conductance", str(tmp_path / "G.npy"), "--r-row", "2", "--r-col", "1", "--cell", "1S1R",
              "--device-card", "stanford_pku_default"]
    code, _, err = run_cli(["netlist", *common, "--voltages", str(tmp_path / "V.npy"), "-o", str(tmp_path / "d.cir")])
    assert code == 0, err
    printed = run_deck(tmp_path / "d.cir")
    code, _, err = run_cli(["read", *common, "--voltages", str(tmp_path / "V.npy"), "-o", str(tmp_path / "I.npy")])
    assert code == 0, err
    mine = np.load(tmp_path / "I.npy")
    theirs = np.array([printed[f"vs{j}#branch"] for j in range(4)])
    np.testing.assert_allclose(theirs, mine, rtol=1e-6)


def test_chord_path_equals_newton_for_every_vector():
    """The batch fast path (chord iteration) against Newton vector by vector (the reference)."""
    from cosim.circuit import build_circuit, prepare

    for kind in KINDS:
        spec, rng = spec_of(kind, n=12, m=10, r_row=2.0, r_col=2.0, r_driver=1.0, r_sense=1.0)
        x = rng.uniform(0.0, 0.3, (5, 12))
        fast = prepare(build_circuit(spec), SolverOptions(rtol=1e-11))
        slow = prepare(build_circuit(spec), SolverOptions(rtol=1e-11))
        slow.chord = False
        fast.compiled = False  # the sinh cells' compiled Newton: tests/test_sinhnewton.py
        a, b = fast.solve(x), slow.solve(x)
        assert a.info["method"].startswith("chord") and b.info["method"] == "newton"
        np.testing.assert_allclose(a.currents, b.currents, rtol=0, atol=1e-10 * np.abs(b.currents).max())
    # large voltages on a selector: the chord stalls and Newton finishes those vectors
    spec, rng = spec_of("1S1R", n=8, m=8, r_row=5.0, r_col=5.0)
    x = np.vstack([rng.uniform(0.0, 0.05, 8), np.full(8, 1.5)])
    res = read(spec, x, options=SolverOptions(rtol=1e-10))
    ref = prepare(build_circuit(spec), SolverOptions(rtol=1e-10))
    ref.chord = False
    np.testing.assert_allclose(res.currents, ref.solve(x).currents, rtol=1e-8)
    assert res.residual <= 1e-10 and res.info["method"] == "chord+newton" and res.info["newton_vectors"] >= 1


def test_compiled_sinh_passes_equal_the_numpy_law():
    """The chord's compiled law passes (lawkernels) against Sinh.branch on random cells, a leak
    and scalar parameters, with IR drops inside the series range (|Δx| ≤ 0.125: the sum formula
    with the series) and beyond it (math.sinh). The sum formula rounds like sinh of a sum
    (a few ulps of cosh x0 in absolute terms), hence 1e-15 of the largest current; the slope
    is the same arithmetic as numpy's, 1e-14."""
    from cosim.circuit.cells import Sinh
    from cosim.circuit.solvers import kernels, lawkernels

    if not kernels.ENABLED:
        pytest.skip("numba kernels disabled")
    rng = np.random.default_rng(3)
    bsz, n, m = 4, 7, 5
    s_r, s_c = rng.uniform(-0.3, 0.3, (bsz, n)), rng.uniform(-0.1, 0.1, (bsz, m))
    g0 = rng.uniform(1e-6, 1e-4, (n, m))
    for law in (Sinh(rng.uniform(1e-7, 1e-5, (n, m)), rng.uniform(0.1, 0.4, (n, m)), rng.uniform(0, 1e-6, (n, m))),
                Sinh(2e-6, 0.25)):
        p = lawkernels.SinhPasses(law, s_r, s_c)
        slope = law.branch(np.broadcast_to(s_r[:, :, None], (bsz, n, m)), np.broadcast_to(s_c[:, None, :], (bsz, n, m)))[1]
        np.testing.assert_allclose(p.mean_slope(), np.broadcast_to(slope, (bsz, n, m)).mean(axis=0), rtol=1e-14)
        for drop in (1e-3, 1e-1):  # |Δx| ≤ 0.01 (series everywhere), up to 1 (rows by math.sinh)
            d_r, d_c = rng.uniform(-drop, drop, (2, bsz, n, m))
            cur, drive = np.empty((bsz, n, m)), np.empty((bsz, n, m))
            p.drive(d_r, d_c, g0, cur, drive)
            i_ref = law.branch(s_r[:, :, None] + d_r, s_c[:, None, :] + d_c)[0]
            scale = np.abs(i_ref).max()
            np.testing.assert_allclose(cur, i_ref, rtol=1e-14, atol=1e-15 * scale)
            np.testing.assert_allclose(drive, i_ref - g0 * (d_r - d_c), rtol=0, atol=1e-15 * scale)


def test_study_config_with_the_cell_axis(tmp_path):
    """configs/study_cells.toml plans, runs (in process) and stores every cell kind; the
    selector's cells carry far less current, so the wires pull their reads far less."""
    import json
    import sqlite3
    from pathlib import Path

    cfg = Path(__file__).parent.parent / "configs" / "study_cells.toml"
    store = tmp_path / "cells.sqlite"
    code, out, err = run_cli(["sweep", str(cfg), "--store", str(store), "--dry-run"])
    assert code == 0 and "6 points" in out, err
    code, out, err = run_cli(["sweep", str(cfg), "--store", str(store), "--workers", "0"])
    assert code == 0 and "6 done, 0 failed" in out, err
    rows = sqlite3.connect(store).execute("select config, metrics from points where status = 'done'").fetchall()
    got = {(json.loads(c)["array"]["cell"], json.loads(c)["array"]["rows"]): json.loads(m) for c, m in rows}
    assert {k for k, _ in got} == {"0T1R", "device", "1S1R"}
    for size in (16, 32):
        assert got["1S1R", size]["ir_err_max"] < 1e-2 * got["device", size]["ir_err_max"]
        assert all(got[k, size]["kcl_residual"] <= 1e-10 for k in ("0T1R", "device", "1S1R"))
