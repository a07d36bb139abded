"""The spice engine against the nodal engine, the committed decks against ngspice, failure paths.

Tolerance: 1e-9 relative (to the largest current or voltage of the case). Both engines solve the
same linear system directly (ngspice's op of a linear circuit is one sparse LU solve), so they
agree to ~1e-14; 1e-9 leaves room for pivoting differences on ill-conditioned arrays (1 Ω wires
against 1 µS devices) while still catching any modelling difference (a 1 mΩ short, a lost
element, a sign) by orders of magnitude.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, get_engine
from cosim.circuit.engines import spice
from cosim.circuit.model import Circuit, ListNames
from cosim.circuit.netlist_read import read_netlist
from cosim.errors import EngineError

pytestmark = pytest.mark.ngspice
NETLISTS = Path(__file__).resolve().parents[1] / "netlists"
RTOL = 1e-9


def solve(circuit, inputs, engine, mode="auto", **kw):
    opts = SolverOptions(engine=engine, ngspice=mode)
    return get_engine(engine).prepare(circuit, opts).solve(inputs, **kw)


def assert_same(got, ref, what):
    scale = np.nanmax(np.abs(ref)) if np.isfinite(ref).any() else 1.0
    assert np.array_equal(np.isnan(got), np.isnan(ref)), f"{what}: NaN pattern differs"
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def random_spec(rng, n, m, **kw):
    base = dict(
        conductances=rng.uniform(1e-6, 1e-4, (n, m)),
        r_row=rng.uniform(0.5, 3.0, (n, m - 1)), r_col=rng.uniform(0.5, 3.0, (n - 1, m)),
        r_driver=float(rng.choice([0.0, 2.0])), r_sense=float(rng.choice([0.0, 2.0])),
    )
    base.update(kw)
    return CrossbarSpec(**base)


CASES = [
    ("plain_32x32", 32, 32, dict(), False),
    ("both_sides_9x12", 9, 12, dict(drive="both", sense="both"), False),
    ("right_top_transpose", 7, 5, dict(drive="right", sense="top", v_sense=0.1), True),
    ("1t1r_16x16", 16, 16, dict(cell="1T1R", r_access=2e3, selected_rows=[0, 3, 4, 9]), False),
    ("1t1r_transpose", 6, 8, dict(cell="1T1R", r_access=500.0, drive="both"), True),
    ("floating_12x10", 12, 10, dict(selected_rows=[1, 2, 7], selected_cols=[0, 4, 5], unselected="floating"), False),
    ("floating_transpose", 8, 8, dict(selected_cols=[2, 6], unselected="floating", sense="both"), True),
    ("grounded_v3", 6, 6, dict(selected_rows=[2], unselected="v/3", v_select=0.9), False),
]


@pytest.mark.parametrize("name, n, m, kw, transpose", CASES, ids=[c[0] for c in CASES])
def test_spice_matches_nodal_on_crossbars(rng, name, n, m, kw, transpose):
    circuit = build_circuit(random_spec(rng, n, m, **kw), transpose=transpose)
    inputs = rng.uniform(-0.3, 0.3, (2, circuit.n_inputs))
    ref = solve(circuit, inputs, "nodal", want_nodes=True, want_cells=True)
    got = solve(circuit, inputs, "spice", want_nodes=True, want_cells=True)
    assert got.engine == "spice" and got.info["ops"] == 2
    assert np.abs(ref.currents).max() > 0
    assert_same(got.currents, ref.currents, "currents")
    assert_same(got.branch_currents, ref.branch_currents, "branch currents")
    assert_same(got.node_voltages, ref.node_voltages, "node voltages")
    assert_same(got.cell_currents, ref.cell_currents, "cell currents")
    assert got.residual < 1e-9


@pytest.mark.parametrize("mode", ["shared", "subprocess"])
def test_both_ways_of_running_ngspice(rng, mode):
    circuit = build_circuit(random_spec(rng, 10, 6, drive="both"))
    inputs = rng.uniform(0.0, 0.3, (3, 10))
    inputs[1] = inputs[0]  # an unchanged vector: no alter needed, same answer
    got = solve(circuit, inputs, "spice", mode=mode, want_nodes=True)
    ref = solve(circuit, inputs, "nodal", want_nodes=True)
    assert got.info["mode"] == mode
    assert_same(got.currents, ref.currents, f"{mode} currents")
    assert_same(got.node_voltages, ref.node_voltages, f"{mode} node voltages")
    assert got.node_voltages is not None and got.cell_currents is None


def test_shared_library_switches_between_prepared_circuits(rng):
    opts = SolverOptions(engine="spice", ngspice="shared")
    a = build_circuit(random_spec(rng, 5, 4))
    b = build_circuit(random_spec(rng, 5, 4), transpose=True)
    pa, pb = (get_engine("spice").prepare(c, opts) for c in (a, b))
    va, vb = rng.uniform(0, 0.3, (2, 5)), rng.uniform(0, 0.3, (2, 4))
    first = pa.solve(va).currents
    pb.solve(vb)
    assert_same(pa.solve(va).currents, first, "reloaded circuit")
    assert_same(first, solve(a, va, "nodal").currents, "circuit a")


def random_netlist(rng, n_nodes: int) -> str:
    """A connected resistor network with grounded and floating V sources and I sources, written
    with mixed case, suffixes, params and a subcircuit."""
    nodes = ["0"] + [f"N{k}" if k % 3 else f"n{k}" for k in range(1, n_nodes)]
    lines = ["random resistor netlist", ".param rscale=1.5k", ".subckt tee a b c rr=1k",
             "R1 a x {rr}", "R2 x b {2*rr}", "R3 x c 'rr/2'", ".ends"]

    def value(r):
        form = rng.integers(4)
        return [f"{r:.6g}", f"{r / 1e3:.6g}k", f"{{rscale*{r / 1.5e3:.6g}}}", f"{r * 1e3:.6g}m"][form]

    edges = [(k, int(rng.integers(0, k))) for k in range(1, n_nodes)]
    edges += [tuple(rng.choice(n_nodes, 2, replace=False)) for _ in range(n_nodes // 2)]
    for k, (a, b) in enumerate(edges):
        lines.append(f"R{k} {nodes[a]} {nodes[b]} {value(rng.uniform(10.0, 1e5))}")
    fixed = rng.choice(np.arange(1, n_nodes), 3, replace=False)
    for k, a in enumerate(fixed):
        lines.append(f"V{k} {nodes[a]} 0 DC {rng.uniform(-1, 1):.6g}")
    free = [k for k in range(1, n_nodes) if k not in fixed]
    lines.append(f"Vf {nodes[free[0]]} {nodes[free[1]]} {rng.uniform(-0.5, 0.5):.6g}")
    for k in range(2):
        a, b = rng.choice(n_nodes, 2, replace=False)
        lines.append(f"I{k} {nodes[a]} {nodes[b]} {rng.uniform(-1, 1):.6g}m")
    lines.append(f"Xt {nodes[free[2]]} {nodes[free[3]]} 0 tee rr={rng.uniform(100, 1e4):.6g}")
    return "\n".join(lines + [".op", ".end"]) + "\n"


@pytest.mark.parametrize("seed, n_nodes", [(1, 8), (2, 20), (3, 40)])
@pytest.mark.parametrize("mode", ["shared", "subprocess"])
def test_spice_matches_nodal_on_random_netlists(tmp_path, seed, n_nodes, mode):
    text = random_netlist(np.random.default_rng(seed), n_nodes)
    circuit = read_netlist(tmp_path / "random.cir", text=text)
    assert circuit.vsrc_p.size == 4 and circuit.isrc_dc.size == 2 and "xt.x" in circuit.node_names
    ref = solve(circuit, np.zeros(0), "nodal", want_nodes=True)
    got = solve(circuit, np.zeros(0), "spice", mode=mode, want_nodes=True)
    assert_same(got.branch_currents, ref.branch_currents, "branch currents")
    assert_same(got.node_voltages, ref.node_voltages, "node voltages")
    assert_same(got.currents, ref.currents, "outputs (all source currents)")


def example_module():
    spec = importlib.util.spec_from_file_location("make_examples", NETLISTS / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def printed_currents(stdout: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"^(\S+#branch) = (\S+)$", stdout, flags=re.M)}


@pytest.mark.parametrize("name", ["tiny_2x3.cir", "xbar_8x8.cir", "xbar_32x32.cir", "xbar_1t1r_8x8.cir"])
def test_committed_decks_run_in_ngspice_and_print_the_currents(name):
    proc = subprocess.run(["ngspice", "-b", name], cwd=NETLISTS, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    spec, v = example_module().examples()[name]
    ref = solve(build_circuit(spec), v, "nodal").currents[0]
    got = printed_currents(proc.stdout)
    assert list(got) == [f"vs{j}#branch" for j in range(spec.n_cols)]
    np.testing.assert_allclose(list(got.values()), ref, rtol=RTOL, atol=RTOL * np.abs(ref).max())


def test_stored_reference_output_is_what_ngspice_prints_now():
    stored = printed_currents((NETLISTS / "tiny_2x3.ngspice.txt").read_text())
    proc = subprocess.run(["ngspice", "-b", "tiny_2x3.cir"], cwd=NETLISTS, capture_output=True, text=True)
    assert len(stored) == 3 and printed_currents(proc.stdout) == stored


@pytest.fixture
def no_ngspice(monkeypatch, tmp_path):
    """No shared library (the loader fails) and no executable on PATH."""
    def fail():
        raise OSError("libngspice.so: cannot open shared object file")

    monkeypatch.setattr(spice, "_load_shared", fail)
    monkeypatch.setitem(spice._SHARED, "ng", None)
    monkeypatch.setitem(spice._SHARED, "loaded", None)
    monkeypatch.setenv("PATH", str(tmp_path))


@pytest.mark.parametrize("mode", ["auto", "shared", "subprocess"])
def test_missing_ngspice_is_one_clear_error(no_ngspice, mode):
    circuit = build_circuit(CrossbarSpec(conductances=np.full((2, 2), 1e-5)))
    with pytest.raises(EngineError) as err:
        get_engine("spice").prepare(circuit, SolverOptions(engine="spice", ngspice=mode))
    assert str(err.value) == "ngspice not found: install Debian's ngspice and libngspice0-dev (make system)"


def test_auto_falls_back_to_the_executable(monkeypatch, rng):
    def fail():
        raise OSError("no libngspice")

    monkeypatch.setattr(spice, "_load_shared", fail)
    monkeypatch.setitem(spice._SHARED, "ng", None)
    monkeypatch.setitem(spice._SHARED, "loaded", None)
    circuit = build_circuit(random_spec(rng, 4, 4))
    v = rng.uniform(0, 0.3, 4)
    got = solve(circuit, v, "spice")
    assert got.info["mode"] == "subprocess"
    assert_same(got.currents, solve(circuit, v, "nodal").currents, "fallback currents")


def source_loop() -> Circuit:
    """Two sources fixing one node at different values: ngspice's op fails (singular matrix)."""
    return Circuit(node_names=ListNames(["0", "a"]), res_a=[1], res_b=[0], res_g=[1e-3],
                   res_names=ListNames(["r1"]), vsrc_p=[1, 1], vsrc_n=[0, 0], vsrc_dc=[1.0, 2.0],
                   vsrc_input=[-1, -1], vsrc_scale=[0.0, 0.0], vsrc_names=ListNames(["v1", "v2"]),
                   out_src=[0], out_index=[0], n_outputs=1)


@pytest.mark.parametrize("mode, status", [("shared", "shared library reported an error"),
                                          ("subprocess", "exit status 0")])
def test_ngspice_failure_names_deck_status_and_output(rng, mode, status):
    opts = SolverOptions(engine="spice", ngspice=mode, check_topology=False)
    with pytest.raises(EngineError) as err:
        get_engine("spice").prepare(source_loop(), opts).solve(np.zeros(0))
    msg = str(err.value)
    deck = Path(re.match(r"ngspice failed on (\S+) \(", msg).group(1))
    assert deck.exists() and "v2 a 0 dc 2" in deck.read_text()  # kept for the designer to rerun
    assert f"({status})" in msg and "singular matrix" in msg
    # the shared instance recovers: the next circuit solves
    circuit = build_circuit(random_spec(rng, 3, 3))
    v = rng.uniform(0, 0.3, 3)
    assert_same(solve(circuit, v, "spice", mode=mode).currents, solve(circuit, v, "nodal").currents, "after failure")


def test_topology_is_checked_before_ngspice_papers_over_it():
    from cosim.errors import TopologyError

    with pytest.raises(TopologyError):
        get_engine("spice").prepare(source_loop(), SolverOptions(engine="spice"))
