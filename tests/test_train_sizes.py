"""Memory guards of `cosim train` and `cosim infer` (issue 15, cosim/train/sizes.py).

Truths checked: a config that cannot fit (network width, array size × tiles, epochs) is refused
in one line naming the figure and the limit, before anything is allocated; --max-memory moves
the limit both ways; the estimate is a lower bound of what a real run allocates (tracemalloc's
peak over a small training run and a small deployment).
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from clirun import refused, run

from cosim.errors import InputError
from cosim.guards import check_memory
from cosim.train.config import load_config
from cosim.train.infer import run_inference
from cosim.train.infer_config import load_inference_config
from cosim.train.loop import run_training
from cosim.train.networks import MLP
from cosim.train.sizes import check_inference_memory, check_training_memory, data_images, tile_cells


@pytest.mark.parametrize(("setting", "words"), [
    ("network.hidden=[10000000]", ["7.5e+08 weights", "GiB", "over the limit of"]),
    ("array.rows=2000000", ["devices", "over the limit of"]),
    ("train.epochs=2000000000", ["2000000000 epochs", "TiB"]),
])
def test_training_that_cannot_fit_is_refused_fast(setting, words):
    t0 = time.perf_counter()
    line = refused(["--max-memory", "8G", "train", "--check", "--set", setting])
    assert time.perf_counter() - t0 < 5  # refused before allocating, not after trying
    assert all(w in line for w in words) and "8 GiB" in line and "--max-memory" in line, line


def test_max_memory_moves_the_training_limit():
    assert "over the limit of 1 MiB" in refused(["--max-memory", "1M", "train", "--check"])
    rc, _, err = run(["--max-memory", "1P", "train", "--check", "--set", "network.hidden=[10000000]"])
    assert rc == 0, err


def test_sizes_that_are_clipped_by_the_data_are_not_refused():
    # a batch or subset larger than the data set is cut to it, so it costs nothing more
    cfg = load_config(None, ["train.batch=100000000", "data.subset=1000000", "data.test_subset=1000000"])
    check_training_memory(cfg)
    assert data_images("digits", 10**6, 10**6, 0.25) == (1347, 450)
    assert data_images("mnist", 100, None, 0.25) == (100, 10_000)
    assert tile_cells([(65, 64), (65, 10)], 64, 64, None, None, "differential") == 2 * 2 * 2 * 64 * 64
    assert tile_cells([(65, 64)], 64, 64, None, None, "reference") == 2 * 2 * 64 * 64  # 63 columns a tile, one side


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _limit_of(monkeypatch, fn) -> float:
    """The estimate ``fn`` checks (captured from check_memory)."""
    seen = []
    monkeypatch.setattr("cosim.train.sizes.check_memory", lambda n, what: seen.append(n))
    fn()
    monkeypatch.undo()
    return seen[0]


def test_training_estimate_is_a_lower_bound(monkeypatch):
    cfg = load_config(None, ["train.epochs=1", "data.subset=64", "data.test_subset=32", "network.hidden=[200]",
                             "array.rows=32", "array.cols=32", "train.reference=false", "train.batch=64"])
    estimate = _limit_of(monkeypatch, lambda: check_training_memory(cfg))
    run_training(cfg, progress=False)  # imports and caches (pulse tables) out of the measured peak
    peak = _peak(lambda: run_training(cfg, progress=False))
    assert 0.1 * peak < estimate <= peak, (estimate, peak)  # a lower bound, and not a vacuous one (6x measured)


def test_inference_estimate_is_a_lower_bound_and_refusal(monkeypatch):
    net = MLP([64, 24, 10])
    weights = net.init_weights(np.random.default_rng(0))
    cfg = load_inference_config(None, ['deploy.method="open-loop"', "array.rows=32", "array.cols=32",
                                       'solver.engine="nodal"', "deploy.batch=200"])
    estimate = _limit_of(monkeypatch, lambda: check_inference_memory(cfg, [w.shape for w in weights], 64))
    run_inference(net, weights, cfg)
    peak = _peak(lambda: run_inference(net, weights, cfg))
    assert 0.1 * peak < estimate <= peak, (estimate, peak)
    big = load_inference_config(None, ["array.rows=1000000", "array.cols=1000"])
    with pytest.raises(InputError, match=r"inference \(.*needs at least .* over the limit of"):
        run_inference(net, weights, big)
    check_memory(1.0, "anything")  # the guard itself is untouched by the tests above
