"""Memory guards of ``cosim train`` and ``cosim infer``: the bytes a run will certainly allocate,
estimated from the config alone (before the data set, the tiles or a read is allocated) and
checked against the limit of :mod:`cosim.guards` (``cosim --max-memory`` raises it).

Every term is a lower bound, so a refusal means the run cannot fit:

- the data set as float64 images (train + test, after the subsets);
- the tiles: every block of a weight matrix gets a full array.rows × array.cols tile per side,
  and every device keeps at least 15 B (the shipped cards' states measure 15–64 B per device);
- per weight: the initial and float-reference weights, the start conductances of both sides and
  the pulse log's six int64 counters (train SET/RESET and programming, per side);
- one tile read of one vector (:func:`cosim.guards.read_bytes`: the nodal engine may read a
  whole batch from a few port excitations, so no more is certain) and the batch's activations;
- one row of figures per epoch (a dict of ~15 numbers; ``sys.getsizeof`` alone is > 600 B).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cosim.guards import check_memory, read_bytes

# (image shape, train images, test images) of the data sets cosim reads; digits is split by
# data.test_fraction from its 1,797 images.
DATASETS = {"digits": ((8, 8, 1), 1797, 0), "mnist": ((28, 28, 1), 60_000, 10_000),
            "fashion": ((28, 28, 1), 60_000, 10_000)}
N_CLASSES = 10
# tracemalloc over the tiles of a 65-200-10 MLP on 64×64 arrays: 15.1 B per device for the
# vteam, pulse_nl and stanford_pku cards, 64 B for imprecise; the smallest is the bound
DEVICE_BYTES = 15
WEIGHT_BYTES = 8 * 2 + 8 * 2 + 8 * 6  # weights, start conductances (g⁺, g⁻), pulse-log counters
EPOCH_ROW_BYTES = 600
EVAL_BATCH = 512  # the accuracy pass reads the test set in batches of this many (cosim.train.loop.accuracy)


def data_images(name: str, subset: int | None, test_subset: int | None, test_fraction: float) -> tuple[int, int]:
    """(train, test) images a data config keeps."""
    _, n_train, n_test = DATASETS[name]
    if name == "digits":
        n_test = math.ceil(n_train * test_fraction)
        n_train -= n_test
    return min(n_train, subset or n_train), min(n_test, test_subset or n_test)


def tile_cells(shapes: Sequence[tuple[int, int]], rows: int, cols: int, tile_rows: int | None,
               tile_cols: int | None, mapping: str) -> float:
    """Devices on the tiles of weight matrices ``shapes`` (full tiles, both sides)."""
    ref = mapping == "reference"
    br = tile_rows or rows
    bc = tile_cols or max(cols - 1 if ref else cols, 1)
    blocks = sum(math.ceil(r / br) * math.ceil(c / bc) for r, c in shapes)
    return float(blocks) * (1 if ref else 2) * float(rows) * float(cols)


def _bytes(shapes, array, engine: str, batch: int, images: int, features: int) -> tuple[float, str]:
    weights = sum(float(r) * float(c) for r, c in shapes)
    cells = tile_cells(shapes, array.rows, array.cols, array.tile_rows, array.tile_cols, array.mapping)
    widths = sum(float(r) + float(c) for r, c in shapes)
    total = (8.0 * features * images + DEVICE_BYTES * cells + WEIGHT_BYTES * weights
             + read_bytes(array.rows, array.cols, 1, engine=engine) + 8.0 * batch * widths)
    return total, f"{weights:.4g} weights on {cells:.4g} devices, batch {batch}, {images} images"


def check_training_memory(cfg) -> None:
    """Refuse a training config (:class:`~cosim.train.config.TrainingConfig`) that cannot fit."""
    from cosim.train.networks import make_network

    d, tr = cfg.data, cfg.train
    shape, _, _ = DATASETS[d.name]
    n_train, n_test = data_images(d.name, d.subset, d.test_subset, d.test_fraction)
    net = make_network(cfg.network.kind, shape, N_CLASSES, hidden=cfg.network.hidden,
                       activation=cfg.network.activation, pool=cfg.network.pool)  # shapes only
    batch = max(min(tr.batch, n_train), min(EVAL_BATCH, n_test))
    total, what = _bytes(net.layer_shapes, cfg.array, cfg.solver.engine, batch, n_train + n_test, math.prod(shape))
    total += EPOCH_ROW_BYTES * float(tr.epochs)
    check_memory(total, f"training ({what}, {tr.epochs} epochs)")


def check_inference_memory(cfg, shapes: Sequence[tuple[int, int]], features: int) -> None:
    """Refuse an inference config (:class:`~cosim.train.infer_config.InferenceConfig`) for weight
    matrices ``shapes`` and ``features`` inputs that cannot fit."""
    d = cfg.data
    _, n_test = data_images(d.name, d.subset, d.test_subset, d.test_fraction)
    batch = max(min(cfg.deploy.batch, n_test), min(cfg.deploy.calibration, n_test))
    total, what = _bytes(shapes, cfg.array, cfg.solver.engine, batch, n_test, features)
    check_memory(total, f"inference ({what})")

