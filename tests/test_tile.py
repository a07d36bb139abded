"""Tile: reads through the engines against independent truth, pulses, write-verify, caching.

Budget: ~3 s. Truths: the matrix product V·G with zero wires; a hand-solved 1×2 array with a
row wire; reciprocity (the transpose read of a resistive network is the forward read's
transpose); the exact compact-model pulse path for the fast table path.
"""

from __future__ import annotations

import numpy as np
import pytest

from cosim.array import ArraySpec, Tile
from cosim.circuit import SolverOptions
from cosim.devices import DevicePopulation, PulseTable, card_from_dict, load_card
from cosim.devices.paths import models_dir
from cosim.errors import InputError, SpecError


def _card(**variation):
    import tomllib

    raw = tomllib.loads((models_dir() / "cards" / "imprecise.toml").read_text())
    if variation is not None:
        raw["variation"] = variation
    return card_from_dict(raw, "test-card")


def _tile(shape=(6, 5), engine="ideal", card=None, seed=0, update="model", **wires) -> Tile:
    card = card or load_card(models_dir() / "cards" / "imprecise.toml")
    pop = DevicePopulation.create(card, shape, seed=seed, backend="numpy")
    table = PulseTable.from_card(card) if update == "table" else None
    return Tile(ArraySpec(rows=shape[0], cols=shape[1], **wires), pop, SolverOptions(engine=engine),
                update=update, table=table)


@pytest.mark.parametrize("engine", ["ideal", "nodal"])
def test_zero_wire_reads_are_v_times_g(engine, rng):
    """With no wire resistance both engines read exactly I = V·G and the transpose V·Gᵀ
    (relative 1e-12: only round-off of a 6-term sum)."""
    tile = _tile(engine=engine)
    g = rng.uniform(1e-6, 1e-4, tile.shape)
    tile.set_conductances(g)
    g = tile.conductances()  # faulty devices keep their own values
    v = rng.uniform(-0.2, 0.2, (4, 6))
    np.testing.assert_allclose(tile.read(v), v @ g, rtol=1e-12, atol=1e-18)
    w = rng.uniform(-0.2, 0.2, (3, 5))
    np.testing.assert_allclose(tile.read_transposed(w), w @ g.T, rtol=1e-12, atol=1e-18)


def test_nodal_read_with_a_row_wire_matches_hand_solution():
    """1×2 array, driver at the left end, one row segment r between the cells, columns held at
    0 V: I0 = g0·V, I1 = g1·V/(1 + r·g1) (the segment and the second cell in series)."""
    card = _card()
    tile = _tile(shape=(1, 2), engine="nodal", card=card, r_row=1000.0)
    g = np.array([[4e-5, 8e-5]])
    tile.set_conductances(g)
    v = np.array([[0.2], [-0.1]])
    expect = np.hstack([g[0, 0] * v, g[0, 1] * v / (1 + 1000.0 * g[0, 1])])
    np.testing.assert_allclose(tile.read(v), expect, rtol=1e-12)


def test_wired_reads_are_reciprocal_and_differ_from_ideal(rng):
    """With wires the forward transfer T (column currents per row volt) and the transpose read's
    transfer are transposes of each other (reciprocity, to 1e-12), and IR drop makes them
    differ from G by more than 1e-3 relative."""
    tile = _tile(shape=(7, 5), engine="nodal", r_row=5.0, r_col=5.0, r_sense=10.0)
    tile.set_conductances(rng.uniform(1e-5, 1e-4, tile.shape))
    t_fwd = tile.read(np.eye(7))
    t_bwd = tile.read_transposed(np.eye(5))
    np.testing.assert_allclose(t_bwd, t_fwd.T, rtol=1e-12, atol=1e-20)
    g = tile.conductances()
    assert np.max(np.abs(t_fwd - g) / np.abs(g).max()) > 1e-3


def test_unused_cells_load_the_wires(rng):
    """Only the top-left 3×3 block is driven and read, yet raising the unused cells'
    conductance changes its currents when wires have resistance (and not when they do not)."""
    v = np.zeros((1, 6))
    v[0, :3] = 0.2
    for r, changes in ((2.0, True), (0.0, False)):
        tile = _tile(shape=(6, 6), engine="nodal", r_row=r, r_col=r)
        g = np.full(tile.shape, 2e-5)
        tile.set_conductances(g)
        before = tile.read(v)[0, :3]
        g[3:, :] = g[:, 3:] = 9e-5
        tile.set_conductances(g)
        after = tile.read(v)[0, :3]
        assert (np.max(np.abs(after - before) / np.abs(before)) > 1e-4) == changes


def test_circuit_is_prepared_again_only_after_a_change(rng):
    tile = _tile(engine="nodal", r_row=1.0)
    v = rng.uniform(0, 0.2, (2, 6))
    tile.read(v)
    tile.read(v)
    tile.read_transposed(np.ones((1, 5)))
    assert tile.stats.prepares == 2  # one per direction
    report = tile.apply_pulses(np.zeros(tile.shape, dtype=int), rng)
    tile.read(v)
    assert report.devices == 0 and tile.stats.prepares == 2
    n = np.zeros(tile.shape, dtype=int)
    n[1, 2] = 3
    tile.apply_pulses(n, rng)
    tile.read(v)
    assert tile.stats.prepares == 3


def test_pulse_report_counts_and_energy(rng):
    """Counts split by sign; energy = Σ|n|·V²·G·t_pulse with G before the pulses (card: ±1.6 V,
    100 ns)."""
    tile = _tile(card=_card())
    tile.set_conductances(np.full(tile.shape, 3e-5))
    g0 = tile.conductances()
    n = np.zeros(tile.shape, dtype=int)
    n[0, 0], n[2, 3], n[5, 4] = 2, -3, 1
    rep = tile.apply_pulses(n, None)
    assert (rep.set_pulses, rep.reset_pulses, rep.devices) == (3, 3, 3)
    expect = (2 * g0[0, 0] + 3 * g0[2, 3] + g0[5, 4]) * 1.6**2 * 100e-9
    assert rep.energy == pytest.approx(expect, rel=1e-12)
    g1 = tile.conductances()
    assert g1[0, 0] > g0[0, 0] and g1[2, 3] < g0[2, 3] and g1[1, 1] == g0[1, 1]


def test_table_path_equals_the_compact_model_without_variation(rng):
    """Without d2d, c2c or faults the fast table path lands where the exact closed-form pulse
    of the compact model does (1e-9 relative: linear interpolation between samples of an
    exponential curve in pulse number, exact at whole pulses)."""
    card = _card()
    exact, fast = _tile(card=card, update="model"), _tile(card=card, update="table")
    g = rng.uniform(2e-6, 9e-5, exact.shape)
    exact.set_conductances(g)
    fast.set_conductances(g)
    for _ in range(3):
        n = rng.integers(-4, 5, exact.shape)
        exact.apply_pulses(n, None)
        fast.apply_pulses(n, None)
    np.testing.assert_allclose(fast.conductances(), exact.conductances(), rtol=1e-9)


def test_write_verify_with_mask_and_window_clipping(rng):
    tile = _tile(card=load_card(models_dir() / "cards" / "imprecise.toml"))
    g0 = tile.conductances()
    lo, hi = tile.window()
    mask = np.zeros(tile.shape, dtype=bool)
    mask[:2] = True
    healthy = ~tile.faults()
    i, j = np.argwhere(mask & healthy)[0]  # a healthy masked device, whatever the fault draw
    target = np.full(tile.shape, 5e-5)
    target[i, j] = 1.0  # far above any window: lands on the device's own g_max
    tile.set_conductances(target, mask)
    g = tile.conductances()
    np.testing.assert_array_equal(g[~mask], g0[~mask])
    ok = mask & healthy
    ok[i, j] = False
    np.testing.assert_allclose(g[ok], 5e-5, rtol=1e-12)
    assert g[i, j] == pytest.approx(hi[i, j]) and tile.stats.target_clipped == 1


def test_bad_tile_inputs():
    with pytest.raises(SpecError, match="array.rows"):
        ArraySpec(rows=0)
    with pytest.raises(SpecError, match="array.r_row"):
        ArraySpec(r_row=-1.0)
    tile = _tile()
    with pytest.raises(InputError, match="shape"):
        tile.apply_pulses(np.zeros((2, 2), dtype=int), None)
    with pytest.raises(SpecError, match="device.update"):
        Tile(ArraySpec(rows=6, cols=5), tile.population, SolverOptions(), update="fast")


def test_shared_and_updated_preparations_equal_fresh_ones(rng):
    """The fast paths: forward/transpose sharing and warm-started updates after pulses give the
    reads of a tile that prepares from scratch (reuse off), to the engine's certified tolerance
    (rtol 1e-10 → 1e-9 here)."""
    card = _card()
    fast = _tile(shape=(64, 64), engine="nodal", card=card, seed=4, r_row=1.0, r_col=1.0)
    slow = Tile(fast.array, DevicePopulation.create(card, (64, 64), seed=4, backend="numpy"),
                SolverOptions(engine="nodal"), reuse=False)
    g = rng.uniform(1e-6, 1e-4, (64, 64))
    for t in (fast, slow):
        t.set_conductances(g)
    v = rng.uniform(0, 0.2, (6, 64))
    d = rng.normal(size=(5, 64)) * 0.1
    for _ in range(3):
        np.testing.assert_allclose(fast.read(v), slow.read(v), rtol=1e-9)
        np.testing.assert_allclose(fast.read_transposed(d), slow.read_transposed(d), rtol=1e-9)
        n = (rng.random((64, 64)) < 0.05) * rng.integers(-2, 3, (64, 64))
        fast.apply_pulses(n, None)
        slow.apply_pulses(n, None)
    np.testing.assert_array_equal(fast.conductances(), slow.conductances())


def test_an_all_identical_batch_is_solved_once(rng, monkeypatch):
    """A batch of one repeated vector (a bias-only tile) is solved as one vector and repeated;
    any other batch, even one with a repeated row, is solved whole; the ideal engine (a matmul)
    never takes the shortcut. The answers equal the whole-batch solve."""
    tile = _tile(shape=(8, 6), engine="nodal", r_row=1.0, r_col=1.0)
    solved: list[int] = []
    prep = tile._prepare(False)
    real = type(prep).solve
    monkeypatch.setattr(type(prep), "solve", lambda self, v, **kw: (solved.append(len(v)), real(self, v, **kw))[1])
    same = np.tile(rng.uniform(0, 0.2, (1, 8)), (5, 1))
    out = tile.read(same)
    assert solved == [1]
    np.testing.assert_allclose(out, real(prep, same).currents, rtol=1e-12)
    mixed = same.copy()
    mixed[2] *= 0.5  # one row differs: no shortcut
    tile.read(mixed)
    assert solved == [1, 5]
    ideal = _tile(shape=(8, 6), engine="ideal")
    assert ideal._prepare(False).repeat_identical is False
