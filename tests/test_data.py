"""Datasets: the digits split, and IDX files written byte by byte in tmp_path. Budget ≈ 3 s."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from cosim.errors import InputError, SpecError
from cosim.train.data import load_digits_split, load_idx_dataset, read_idx


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    dt = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(dt).tobytes()


def _write(path, data: bytes, gz: bool):
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def _make_mnist(directory, rng, n_train=12, n_test=5, size=(4, 3), gz=False, sep="-"):
    imgs = {p: rng.integers(0, 256, (n, *size), dtype=np.uint8) for p, n in (("train", n_train), ("t10k", n_test))}
    labs = {p: rng.integers(0, 10, len(imgs[p]), dtype=np.uint8) for p in imgs}
    for p in imgs:
        _write(directory / f"{p}-images{sep}idx3-ubyte", _idx_bytes(imgs[p]), gz)
        _write(directory / f"{p}-labels{sep}idx1-ubyte", _idx_bytes(labs[p]), gz)
    return imgs, labs


def test_digits_split_is_scaled_stratified_and_seeded():
    a = load_digits_split(seed=3)
    assert a.x_train.shape == (1347, 64) and a.x_test.shape == (450, 64)
    assert a.image_shape == (8, 8, 1) and a.n_classes == 10
    assert a.x_train.min() == 0.0 and a.x_train.max() == 1.0
    # Stratified: every class keeps its share (≈ 10 %) in the test set, to within one sample.
    counts = np.bincount(a.y_test, minlength=10)
    full = np.bincount(np.concatenate([a.y_train, a.y_test]))
    assert np.all(np.abs(counts - full * 450 / 1797) <= 1)
    b = load_digits_split(seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    c = load_digits_split(seed=4)
    assert not np.array_equal(a.y_train, c.y_train)
    d = load_digits_split(seed=3, test_fraction=0.5, subset=100)
    assert len(d.y_train) == 100 and len(d.y_test) == 899
    with pytest.raises(SpecError, match="test_fraction"):
        load_digits_split(test_fraction=1.0)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("sep", ["-", "."])
def test_idx_round_trip(tmp_path, rng, gz, sep):
    imgs, labs = _make_mnist(tmp_path, rng, gz=gz, sep=sep)
    ds = load_idx_dataset(tmp_path, "fashion")
    assert ds.image_shape == (4, 3, 1) and ds.class_names[9] == "Ankle boot"
    np.testing.assert_array_equal(ds.x_train, imgs["train"].reshape(12, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_train, labs["train"])
    np.testing.assert_array_equal(ds.x_test, imgs["t10k"].reshape(5, -1) / 255.0)
    assert ds.y_test.dtype == np.int64


def test_idx_subset_is_seeded(tmp_path, rng):
    imgs, labs = _make_mnist(tmp_path, rng)
    a = load_idx_dataset(tmp_path, subset=7, test_subset=3, seed=1)
    b = load_idx_dataset(tmp_path, subset=7, test_subset=3, seed=1)
    assert len(a.y_train) == 7 and len(a.y_test) == 3
    np.testing.assert_array_equal(a.x_train, b.x_train)
    # Each kept row is a real training row, in original order.
    flat = imgs["train"].reshape(12, -1) / 255.0
    rows = [int(np.flatnonzero((flat == r).all(axis=1))[0]) for r in a.x_train]
    assert rows == sorted(rows)


def test_read_idx_other_types(tmp_path):
    arr = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    p = _write(tmp_path / "x.idx", _idx_bytes(arr, 0x0B), gz=False)
    np.testing.assert_array_equal(read_idx(p), arr)
    f = np.linspace(0, 1, 5, dtype=np.float32)
    np.testing.assert_array_equal(read_idx(_write(tmp_path / "f.idx", _idx_bytes(f, 0x0D), gz=True)), f)


def test_idx_errors_name_the_file(tmp_path, rng):
    _make_mnist(tmp_path, rng)
    lab = tmp_path / "train-labels-idx1-ubyte"
    good = lab.read_bytes()

    lab.write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(InputError, match=r"train-labels-idx1-ubyte: not an IDX file"):
        load_idx_dataset(tmp_path)

    lab.write_bytes(good[:-3])
    with pytest.raises(InputError, match=r"train-labels-idx1-ubyte: IDX data is 9 bytes.*need 12"):
        load_idx_dataset(tmp_path)

    lab.write_bytes(_idx_bytes(np.zeros(11, dtype=np.uint8)))
    with pytest.raises(InputError, match="11 labels for the 12 images"):
        load_idx_dataset(tmp_path)

    lab.write_bytes(_idx_bytes(np.full(12, 10, dtype=np.uint8)))
    with pytest.raises(InputError, match="labels must lie in 0..9, found 10"):
        load_idx_dataset(tmp_path)

    lab.write_bytes(_idx_bytes(np.zeros((12, 2), dtype=np.uint8)))
    with pytest.raises(InputError, match="magic 0x00000801"):
        load_idx_dataset(tmp_path)

    lab.unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match=r"train-labels-idx1-ubyte.gz: cannot read"):
        load_idx_dataset(tmp_path)

    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InputError, match=r"missing train-labels-idx1-ubyte \(looked for"):
        load_idx_dataset(tmp_path)

    with pytest.raises(InputError, match="not a directory"):
        load_idx_dataset(tmp_path / "nowhere")
    with pytest.raises(SpecError, match="data.kind"):
        load_idx_dataset(tmp_path, kind="cifar")


def test_truncated_gzip_is_an_input_error(tmp_path, rng):
    _make_mnist(tmp_path, rng, gz=True)
    p = tmp_path / "t10k-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-12])
    with pytest.raises(InputError, match="t10k-images-idx3-ubyte.gz"):
        load_idx_dataset(tmp_path)
