"""The extension recipes of docs/architecture.md, followed literally: a toy engine and a toy
optimizer, each one new file plus one registry line, then used through every public door.

Truths checked: the toy engine (an exact dense solve of the crossbar's nodal equations with
numpy, wires included) agrees with the nodal engine to 1e-9 relative (both exact; the
tolerance covers round-off of two different factorisations), through ``read``, a ``Tile`` (which
falls back on the interface's defaults: no warm-up, no reuse) and ``SolverOptions``; the toy
optimizer's pulses are the sign rule it states, its config errors name ``optimizer.<field>``,
and a short training run goes through both.
"""

from __future__ import annotations

import argparse
import textwrap

import numpy as np
import pytest

from cosim.catalog import ENGINES
from cosim.circuit import CrossbarSpec, SolverOptions, read
from cosim.errors import SpecError
from cosim.train.optimizers import OPTIMIZERS, make_optimizer

TOY_ENGINE = '''
"""A toy engine: the circuit's nodal equations, dense, solved by numpy (tiny arrays only)."""

import time

import numpy as np

from cosim.circuit.engines.base import Engine, Prepared, ReadResult
from cosim.circuit.mna import assemble_nodal
from cosim.circuit.model import as_batch


class DensePrepared(Prepared):
    def __init__(self, circuit):
        self.circuit = circuit
        self.system = assemble_nodal(circuit, dense=False)
        self.a = self.system.a.toarray()

    def solve(self, inputs, *, want_nodes=False, want_cells=False):
        v, _ = as_batch(inputs, self.circuit.n_inputs)
        t0 = time.perf_counter()
        rhs, vk = self.system.rhs(self.circuit.source_values(v))
        x = np.linalg.solve(self.a, rhs) if self.a.size else rhs
        _, branch, resid = self.system.recover(x, vk)
        return ReadResult(currents=self.circuit.outputs_from_branches(branch), engine="dense",
                          elapsed=time.perf_counter() - t0, residual=resid)


class DenseEngine(Engine):
    name = "dense"

    def prepare(self, circuit, options, *, spec=None):
        return DensePrepared(circuit)


ENGINE = DenseEngine()
'''

TOY_OPTIMIZER = '''
"""A toy optimizer: ``n`` pulses against the gradient's sign on every weight it touches."""

from dataclasses import dataclass

import numpy as np

from cosim.schema import param
from cosim.train.optimizers.base import PulseConfig, PulseOptimizer
from cosim.train.optimizers.pairs import split_pair_update


@dataclass(frozen=True, kw_only=True, slots=True)
class SignConfig(PulseConfig):
    n: int = param(1, type="int", minimum=1, doc="pulses per touched device per step")


class Sign(PulseOptimizer):
    name = "toy-sign"
    config_cls = SignConfig

    def _step(self, state, grad, g_plus, g_minus, curve, rng, scale, lr):
        want_p, want_m = split_pair_update(-np.sign(grad), self.config.policy)
        return (np.sign(want_p) * self.config.n).astype(np.int64), (np.sign(want_m) * self.config.n).astype(np.int64)
'''


@pytest.fixture
def toys(tmp_path, monkeypatch):
    """The two recipe files written as new modules, and their one registry line each."""
    (tmp_path / "toy_engine.py").write_text(textwrap.dedent(TOY_ENGINE))
    (tmp_path / "toy_optimizer.py").write_text(textwrap.dedent(TOY_OPTIMIZER))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(ENGINES, "dense", "toy_engine:ENGINE")  # cosim/catalog.py: one line
    from toy_optimizer import Sign

    monkeypatch.setitem(OPTIMIZERS, "toy-sign", Sign)  # cosim/train/optimizers/__init__.py: one line
    return Sign


def test_toy_engine_reads_like_the_nodal_engine(toys):
    rng = np.random.default_rng(3)
    spec = CrossbarSpec(conductances=rng.uniform(1e-6, 1e-5, (5, 4)), r_row=50.0, r_col=80.0, r_driver=100.0)
    v = rng.uniform(0, 0.2, (3, 5))
    for transpose in (False, True):
        vin = v if not transpose else v[:, :4]
        dense = read(spec, vin, engine="dense", transpose=transpose)
        nodal = read(spec, vin, options=SolverOptions(method="direct"), transpose=transpose)
        assert dense.engine == "dense"
        np.testing.assert_allclose(dense.currents, nodal.currents, rtol=1e-9, atol=0)
        ideal = read(spec, vin, engine="ideal", transpose=transpose).currents
        assert np.abs(dense.currents - ideal).max() > 1e-3 * np.abs(ideal).max()  # the wires do act


def test_toy_engine_behind_a_tile_and_the_cli_options(toys):
    from cosim.array import ArraySpec, Tile
    from cosim.cli.common import add_solver_options
    from cosim.devices import DevicePopulation, load_card
    from cosim.devices.paths import models_dir

    card = load_card(models_dir() / "cards" / "imprecise.toml")
    array = ArraySpec(rows=4, cols=3, r_row=1.0, r_col=1.0)
    tiles = {e: Tile(array, DevicePopulation.create(card, (4, 3), seed=0), SolverOptions(engine=e, method="direct"))
             for e in ("dense", "nodal")}
    v = np.random.default_rng(1).uniform(0, 0.2, (2, 4))
    np.testing.assert_allclose(tiles["dense"].read(v), tiles["nodal"].read(v), rtol=1e-9)
    for t in tiles.values():  # the devices move: the dense engine has no update in place, it prepares again
        t.apply_pulses(np.full((4, 3), 3, dtype=np.int64), None)
    np.testing.assert_allclose(tiles["dense"].read(v), tiles["nodal"].read(v), rtol=1e-9)
    np.testing.assert_allclose(tiles["dense"].read_transposed(v[:, :3]), tiles["nodal"].read_transposed(v[:, :3]),
                               rtol=1e-9)
    assert tiles["dense"].stats.prepares == 3
    parser = argparse.ArgumentParser()
    add_solver_options(parser)
    assert parser.parse_args(["--engine", "dense"]).engine == "dense"


def test_toy_optimizer_from_its_registry_line(toys):
    opt = make_optimizer("toy-sign", n=3, policy="split")
    grad = np.array([[0.5, -2.0], [0.0, 1e-9]])
    g = np.full((2, 2), 5e-6)
    n_p, n_m = opt.step("fc", grad, g, g, None, None, scale=1.0)
    np.testing.assert_array_equal(n_p, [[-3, 3], [0, -3]])
    np.testing.assert_array_equal(n_m, [[3, -3], [0, 3]])
    with pytest.raises(SpecError, match=r"^optimizer\.n must be ≥ 1, got 0$"):
        make_optimizer("toy-sign", n=0)
    with pytest.raises(SpecError, match="optimizer.policy must be one of"):
        make_optimizer("toy-sign", policy="both")


def test_training_runs_through_the_toy_engine_and_optimizer(toys):
    from cosim.train import load_config, run_training

    sets = ['optimizer.name="toy-sign"', "optimizer.n=1", 'solver.engine="dense"', "array.rows=16",
            "array.cols=16", "array.r_row=1.0", "array.r_col=1.0", "network.hidden=[8]", "train.epochs=1",
            "train.batch=50", "data.subset=100", "data.test_subset=50", "train.reference=false",
            "converters.dac_bits=none", "converters.adc_bits=none"]
    result = run_training(load_config(None, sets), progress=False, output_dir=None)
    assert result.metrics["pulses_total"] > 0 and 0.0 <= result.metrics["final_test_acc"] <= 1.0
