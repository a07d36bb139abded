"""Datasets for the training study; nothing is ever downloaded.

- :func:`load_digits_split`: scikit-learn's bundled 8×8 digits (1797 images, 16 grey levels),
  scaled to [0, 1], split train/test with a seeded, class-stratified split.
- :func:`load_idx_dataset`: MNIST or Fashion-MNIST from the four IDX files in a directory the
  user names (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, each plain or ``.gz``; the ``train-images.idx3-ubyte`` spelling of
  some mirrors is accepted too), scaled to [0, 1].
- :func:`read_idx`: one IDX file (LeCun's format: 2 zero bytes, a type code, the number of
  dimensions, big-endian uint32 sizes, then the data, big-endian), validated.

Images come flattened, (n, H·W·C) float64, with ``image_shape`` (H, W, C) alongside; labels
are int64.
"""

from __future__ import annotations

import gzip
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from cosim.errors import InputError, SpecError

log = logging.getLogger(__name__)

IdxKind = Literal["mnist", "fashion"]
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_STEMS = {"train_images": "train-images", "train_labels": "train-labels",
              "test_images": "t10k-images", "test_labels": "t10k-labels"}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


@dataclass(frozen=True, slots=True)
class Dataset:
    """A train/test split ready for a network.

    Attributes:
        name: "digits", "mnist" or "fashion".
        x_train, x_test: (n, H·W·C) float64 inputs in [0, 1].
        y_train, y_test: (n,) int64 class labels in 0..n_classes-1.
        image_shape: (H, W, C) of one input.
        n_classes: number of classes.
        class_names: one label per class.
        source: where the data came from (path or "sklearn").
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int, int]
    n_classes: int
    class_names: tuple[str, ...]
    source: str

    @property
    def n_features(self) -> int:
        return int(np.prod(self.image_shape))


def _subset(n_total: int, n: int | None, rng: np.random.Generator, what: str) -> np.ndarray:
    if n is None:
        return np.arange(n_total)
    if not (isinstance(n, int | np.integer) and 1 <= n):
        raise SpecError(f"data.{what} must be a positive integer or none, got {n!r}")
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(rng.choice(n_total, size=int(n), replace=False))


def load_digits_split(seed: int = 0, test_fraction: float = 0.25, *, subset: int | None = None) -> Dataset:
    """scikit-learn's 8×8 digits, pixel values /16 → [0, 1], stratified split seeded by ``seed``.

    ``subset`` keeps a seeded random subset of that many training samples (the test set stays).
    """
    if not (isinstance(test_fraction, float | int) and 0 < test_fraction < 1):
        raise SpecError(f"data.test_fraction must lie in (0, 1), got {test_fraction!r}")
    from sklearn.datasets import load_digits  # heavy import kept off `import cosim`
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.data.astype(float) / 16.0
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    keep = _subset(len(y_tr), subset, np.random.default_rng(seed), "subset")
    return Dataset("digits", x_tr[keep], y_tr[keep], x_te, y_te, (8, 8, 1), 10,
                   tuple(str(i) for i in range(10)), "sklearn.datasets.load_digits")


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain, or gzip when the name ends in .gz); every error names the file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; a truncated gz raises EOFError
        raise InputError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise InputError(f"{path}: not an IDX file (magic must start with two zero bytes, got {raw[:4].hex() or 'empty'})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise InputError(f"{path}: unknown IDX type code 0x{code:02x} (expected one of "
                         f"{', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})")
    header = 4 + 4 * ndim
    if ndim < 1 or len(raw) < header:
        raise InputError(f"{path}: IDX header declares {ndim} dimensions but the file is {len(raw)} bytes")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise InputError(f"{path}: IDX data is {len(raw) - header} bytes, the header's dimensions "
                         f"{'×'.join(map(str, dims))} need {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find(directory: Path, stem: str, ext: str) -> Path:
    names = [f"{stem}-{ext}", f"{stem}.{ext}"]
    for name in names:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise InputError(f"{directory}: missing {stem}-{ext} (looked for {', '.join(n + '[.gz]' for n in names)})")


def _load_pair(directory: Path, part: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    img_path = _find(directory, _IDX_STEMS[f"{part}_images"], "idx3-ubyte")
    lab_path = _find(directory, _IDX_STEMS[f"{part}_labels"], "idx1-ubyte")
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise InputError(f"{img_path}: expected unsigned-byte images with 3 dimensions (magic 0x00000803), "
                         f"got {images.dtype} with {images.ndim}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise InputError(f"{lab_path}: expected unsigned-byte labels with 1 dimension (magic 0x00000801), "
                         f"got {labels.dtype} with {labels.ndim}")
    if len(labels) != len(images):
        raise InputError(f"{lab_path}: {len(labels)} labels for the {len(images)} images of {img_path.name}")
    if labels.size and labels.max() > 9:
        raise InputError(f"{lab_path}: labels must lie in 0..9, found {int(labels.max())}")
    shape = (int(images.shape[1]), int(images.shape[2]), 1)
    return images.reshape(len(images), -1), labels.astype(np.int64), shape


def load_idx_dataset(directory: str | Path, kind: IdxKind = "mnist", *, subset: int | None = None,
                     test_subset: int | None = None, seed: int = 0) -> Dataset:
    """MNIST-format train and test sets from ``directory``, pixels /255 → [0, 1].

    ``subset`` / ``test_subset`` keep a seeded random subset (order preserved) of that many
    training / test samples. ``kind`` only names the classes ("fashion" has clothing names).
    """
    if kind not in ("mnist", "fashion"):
        raise SpecError(f"data.kind must be 'mnist' or 'fashion', got {kind!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory (expected the four MNIST IDX files there)")
    x_tr, y_tr, shape = _load_pair(directory, "train")
    x_te, y_te, shape_te = _load_pair(directory, "test")
    if shape_te != shape:
        raise InputError(f"{directory}: test images are {shape_te[0]}×{shape_te[1]}, train images {shape[0]}×{shape[1]}")
    rng = np.random.default_rng(seed)
    keep_tr = _subset(len(y_tr), subset, rng, "subset")
    keep_te = _subset(len(y_te), test_subset, rng, "test_subset")
    log.info("loaded %s from %s: %d train, %d test images of %s", kind, directory, len(keep_tr), len(keep_te), shape)
    names = FASHION_CLASSES if kind == "fashion" else tuple(str(i) for i in range(10))
    return Dataset(kind, x_tr[keep_tr] / 255.0, y_tr[keep_tr], x_te[keep_te] / 255.0, y_te[keep_te], shape, 10,
                   names, str(directory))
