"""Reads through the unit excitations of the ports a batch touches (transfer.partial_read) against
the direct factorisation, and the rules that pick and certify them.

Truth: SuperLU on the assembled nodal matrix (method "direct"), for every circuit option of
tests/test_solvers.py's cases, forward and transposed. Tolerances as there: reads at rtol = 1e-10
must match the direct answer to 1e-9 relative (ℓ1 of the currents returned) and stay within their
certified bound plus the direct path's own round-off (1e-11).

Training batches touch few ports (a 10-output layer's transpose read drives 10 columns, a
layer's last row block holds a few rows, a forward read keeps the block's columns): "auto" then
reads them from one excitation per touched port, shared by both directions of the array, instead
of one PCG solve per input vector.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_solvers import DIRECT_ROUNDOFF, TOL, direct, rel_l1, spec_cases

from cosim.array.tile import ArraySpec, Tile
from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit
from cosim.circuit.engines.nodal_crossbar import CrossbarPrepared
from cosim.circuit.solvers import transfer
from cosim.errors import ConvergenceError, EngineError

CASES = spec_cases(np.random.default_rng(0))


def auto(spec: CrossbarSpec, transpose: bool = False, **options) -> CrossbarPrepared:
    """The crossbar read with method "auto" (the engine would take the direct path on arrays
    this small)."""
    return CrossbarPrepared.prepare(build_circuit(spec, transpose=transpose), SolverOptions(**options), spec=spec)


def few_ports(rng, n_inputs: int, live: np.ndarray) -> np.ndarray:
    """A mixed batch driving only the inputs ``live``: random signed, all-zero, tiny, large,
    repeated, scaled and negated copies (exactly dependent), 16 vectors."""
    v = np.zeros((16, n_inputs))
    v[:, live] = rng.uniform(-0.5, 0.5, (16, live.size))
    v[1] = 0.0
    v[3] *= 1e-6
    v[4, live] = rng.uniform(0.5, 1.0, live.size)
    v[6] = v[0]
    v[9] = 3.0 * v[2]
    v[10] = -v[5]
    return v


def check(got: np.ndarray, exp: np.ndarray, bound: float | None = None) -> None:
    err = rel_l1(got, exp)
    assert err <= TOL
    if bound is not None:
        assert err <= bound + DIRECT_ROUNDOFF


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("transpose", [False, True])
def test_few_driven_inputs_read_from_their_excitations(case, transpose, rng):
    spec = CASES[case]
    prep = auto(spec, transpose)
    n_in = prep.circuit.n_inputs
    v = few_ports(rng, n_in, np.array([0, n_in - 1]) if n_in > 1 else np.array([0]))
    got = prep.solve(v)
    exp = direct(spec, transpose).solve(v).currents
    # a single line: exciting its one port is the full transfer
    assert got.info["method"] == ("transfer" if case.startswith("single") else "ports")
    check(got.currents, exp, got.info["error_bound"])
    assert len(prep.shared.excitations.y) <= 2  # one per touched input port, nothing else
    # a part of the outputs, through the same excitations
    keep = np.arange(prep.circuit.n_outputs)[::2]
    check(prep.solve_outputs(v, keep), exp[:, keep])


@pytest.mark.parametrize("case", [k for k in CASES if not k.startswith("single")])  # ≥ 4 lines each way
@pytest.mark.parametrize("transpose", [False, True])
def test_few_wanted_outputs_read_from_their_excitations(case, transpose, rng):
    """Every input driven, two outputs kept: the outputs' ports are excited (reciprocity)."""
    spec = CASES[case]
    prep = auto(spec, transpose)
    n_in, n_out = prep.circuit.n_inputs, prep.circuit.n_outputs
    v = few_ports(rng, n_in, np.arange(n_in))
    keep = np.array([0, n_out - 1])
    got = prep.solve_outputs(v, keep)
    check(got, direct(spec, transpose).solve(v).currents[:, keep])
    sources = np.unique(prep.circuit.out_src[np.isin(prep.circuit.out_index, keep)])
    assert sorted(prep.shared.excitations.y) == sorted(sources.tolist())


def test_both_directions_share_the_excitations(rng):
    """A forward read keeping 3 columns excites their ports; the transpose read driving those 3
    columns (backpropagation) then needs no solve at all."""
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (20, 12)), r_row=1.0, r_col=1.0, r_sense=2.0)
    fwd = auto(spec)
    back_read = fwd.for_circuit(build_circuit(spec, transpose=True), spec=spec)
    v = rng.uniform(0.0, 0.5, (16, 20))
    keep = np.arange(3)
    check(fwd.solve_outputs(v, keep), direct(spec, False).solve(v).currents[:, keep])
    assert len(fwd.shared.excitations.y) == 3
    d = np.zeros((16, 12))
    d[:, keep] = rng.uniform(-0.3, 0.3, (16, 3))
    back = back_read.solve(d)
    assert back.info["method"] == "ports" and back.info["new_excitations"] == 0
    check(back.currents, direct(spec, True).solve(d).currents, back.info["error_bound"])


def test_uncertified_reads_fall_back_to_pcg(rng):
    """Reads whose certified bound exceeds rtol are solved by PCG; here the excitation of one
    port is made to report a residual 1e6× its own, so every read driving that port fails."""
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (9, 7)), r_row=1.0, r_col=1.0, v_sense=0.2)
    prep = auto(spec)
    v = few_ports(rng, 9, np.array([0, 4]))
    v[[2, 7], 0] = 0.0  # these two drive port 4 alone
    assert prep.solve(v).info["method"] == "ports"
    prep.shared.excitations.rho[0] *= 1e6
    got = prep.solve(v)
    assert got.info["method"] == "ports"
    # every read driving port 0 noticeably (the 1e-6 V one reads mostly the v_sense offset)
    assert got.info["resolved_by_pcg"] >= np.count_nonzero(np.abs(v[:, 0]) > 1e-3)
    check(got.currents, direct(spec, False).solve(v).currents, got.info["error_bound"])
    assert got.info["error_bound"] <= 1e-10


def test_uncertified_reads_are_solved_once_per_direction(rng, monkeypatch):
    """Without bias sources a read is linear in its inputs: the failing reads that are multiples
    of one another (a convolution's patches that drive a single port, at any level) cost one PCG
    solve per direction, and each still equals the direct answer to 1e-9."""
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (9, 7)), r_row=1.0, r_col=1.0)
    prep = auto(spec)
    v = np.zeros((24, 9))
    v[:8, 3] = rng.uniform(-0.5, 0.5, 8)  # one port, eight levels (signed)
    # one direction on two ports, at scales that normalise exactly (directions are compared
    # bit for bit: merging nearly equal ones would leave their difference out of the bound)
    v[8:16, [1, 6]] = rng.uniform(0.0, 0.5, 2) * 2.0 ** rng.integers(-4, 3, (8, 1))
    v[16:, :4] = rng.uniform(-0.5, 0.5, (8, 4))  # eight directions
    v[20] = 0.0
    assert prep.solve(v).info["method"] == "ports"
    for p in list(prep.shared.excitations.rho):
        prep.shared.excitations.rho[p] *= 1e6  # every read fails its bound
    solved = []
    solve_pcg = CrossbarPrepared._solve_pcg
    monkeypatch.setattr(CrossbarPrepared, "_solve_pcg",
                        lambda self, w, *a: solved.append(w.shape[0]) or solve_pcg(self, w, *a))
    got = prep.solve(v)
    assert got.info["resolved_by_pcg"] == 23 and solved == [1 + 1 + 7]
    check(got.currents, direct(spec, False).solve(v).currents, got.info["error_bound"])
    assert got.info["error_bound"] <= 1e-10


def test_reads_that_drive_little_beyond_a_common_bias_are_split(rng):
    """A convolution's patches of an empty background drive their bias row and little else. The
    bound through the outputs' excitations (max |input| · Σ ρ, each ρ against the column's
    current from every row) then fails against such a small read, here because the rows the
    patches do not drive hold the read columns' large cells. So the batch's common part (the bias
    row, equal in every vector) is solved once by PCG and the rest read through the excitations;
    each read still equals the direct answer to 1e-9, within its bound."""
    g = rng.uniform(1e-6, 1e-4, (32, 32))
    g[9:31, :4] = 1e-4
    g[:9, :4] = rng.uniform(1e-6, 5e-6, (9, 4))
    g[31, :4] = 1e-6
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)
    v = np.zeros((64, 32))
    v[:, 31] = 0.2  # the bias row
    for k in range(40, 64):  # faint patches: a few pixels at a few percent of the bias
        v[k, rng.choice(9, rng.integers(1, 4), replace=False)] = rng.uniform(0.0, 0.03)
    outputs = np.arange(4)
    exp = direct(spec, False).solve(v).currents[:, outputs]
    prep = auto(spec)
    res = prep._solve_ports(v, outputs)
    assert res["info"]["method"] == "ports" and res["info"]["new_excitations"] == 4
    assert res["info"]["less_common_part"] >= 40 and res["info"]["resolved_by_pcg"] < 24
    check(res["currents"], exp, res["info"]["error_bound"])
    check(prep.solve_outputs(v, outputs), exp)
    assert res["info"]["error_bound"] <= 1e-10


def test_failed_excitations_leave_the_reads_to_pcg(rng, monkeypatch):
    def fail(*a, **k):
        raise ConvergenceError("stagnated")

    monkeypatch.setattr(transfer.Excitations, "add", fail)
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (12, 10)), r_row=1.0, r_col=1.0)
    prep = auto(spec)
    v = few_ports(rng, 12, np.array([2, 5]))[:8]  # fewer than the full transfer's 11 solves
    got = prep.solve(v)
    assert got.info["method"] == "pcg" and prep.shared.ports_failed
    check(got.currents, direct(spec, False).solve(v).currents, got.info["error_bound"])


def test_the_rule_counts_solves(rng):
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (12, 10)), r_row=1.0, r_col=1.0)
    v = few_ports(rng, 12, np.arange(6))
    # 6 excitations cost more than 4 vectors: PCG
    assert auto(spec).solve(v[:4]).info["method"] == "pcg"
    # explicit methods never take this path
    assert auto(spec, method="pcg").solve(v).info["method"] == "pcg"
    assert auto(spec, method="transfer").solve(v).info["method"] == "transfer"
    # touching as many ports as the full transfer excites: the full transfer, built once
    w = rng.uniform(0.0, 0.5, (30, 12))
    assert auto(spec).solve(w).info["method"] == "transfer"


def test_updated_conductances_are_excited_again(rng):
    g = rng.uniform(1e-6, 1e-4, (12, 10))
    spec = CrossbarSpec(conductances=g, r_row=1.0, r_col=1.0)
    prep = auto(spec)
    v = few_ports(rng, 12, np.array([1, 7]))
    prep.solve(v)
    g2 = g * rng.uniform(0.9, 1.1, g.shape)
    new = prep.update_conductances(g2)
    assert not new.shared.excitations.y
    got = new.solve(v)
    assert got.info["method"] == "ports"
    check(got.currents, direct(spec.replace(conductances=g2), False).solve(v).currents, got.info["error_bound"])


def test_solve_outputs_refuses_bad_indices(rng):
    prep = auto(CrossbarSpec(conductances=rng.uniform(1e-6, 1e-4, (12, 10)), r_row=1.0))
    with pytest.raises(EngineError, match="outputs must be indices"):
        prep.solve_outputs(np.zeros((1, 12)), np.array([10]))


@pytest.mark.parametrize("engine", ["ideal", "nodal"])
def test_tile_reads_of_some_outputs_equal_the_full_read(engine, rng):
    from cosim.devices import DevicePopulation, load_card
    from cosim.devices.paths import models_dir

    array = ArraySpec(rows=12, cols=10, r_row=1.0, r_col=1.0)
    pop = DevicePopulation.create(load_card(models_dir() / "cards" / "imprecise.toml"), (12, 10), seed=3)
    tiles = [Tile(array, pop, SolverOptions(engine=engine)) for _ in range(2)]
    v = few_ports(rng, 12, np.arange(12))
    keep = np.array([0, 3, 4])
    np.testing.assert_allclose(tiles[0].read(v, keep), tiles[1].read(v)[:, keep], rtol=1e-9, atol=0)
    d = few_ports(rng, 10, keep)
    np.testing.assert_allclose(tiles[0].read_transposed(d, np.arange(5)), tiles[1].read_transposed(d)[:, :5],
                               rtol=1e-9, atol=1e-18)
    # read noise: the same draws whichever outputs are kept (a seed gives one stream)
    for t in tiles:
        t.set_read_noise(0.05, np.random.default_rng(7))
    np.testing.assert_allclose(tiles[0].read(v, keep), tiles[1].read(v)[:, keep], rtol=1e-9, atol=0)
