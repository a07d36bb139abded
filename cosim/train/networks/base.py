"""The seam between a network and its weights, the loss, and the sequential engine.

A network owns no weights. Each weight layer's product goes through an injected :class:`MatVec`:
``forward(x)`` (B, n_in) → (B, n_out) is the array read, ``backward(delta)`` (B, n_out) →
(B, n_in) the transpose read of backpropagation, ``weights()`` the (n_in, n_out) matrix for the
float path. :class:`FloatLayerWeights` is the software one; a crossbar tile is the hardware one.

Biases are folded into the array: every weight layer gets one extra input row driven by the
constant :data:`BIAS_INPUT` (1.0, the DAC full scale for inputs in [0, 1]), so the bias is one
more crossbar row, trained by the same pulse optimizer, and the network has no parameter of its
own. The transpose read returns that row's output too; the network drops it.

Gradients: with the per-sample error δ = ∂L_b/∂y of each layer (for softmax cross-entropy on
the logits, δ = softmax(z) − onehot(y)), the weight gradient of the batch-mean loss is
dW = x̂ᵀ·δ / B (x̂ the bias-augmented input, B the batch size), computed digitally from the
stored activations. :meth:`Network.backward` returns one dW per layer and never updates anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cosim.errors import InputError, SpecError

BIAS_INPUT = 1.0


@runtime_checkable
class MatVec(Protocol):
    """One weight layer's matrix products (see module docstring)."""

    def forward(self, x: np.ndarray) -> np.ndarray: ...

    def backward(self, delta: np.ndarray) -> np.ndarray: ...

    def weights(self) -> np.ndarray: ...


class FloatLayerWeights:
    """Software weights: exact float products, the reference every hardware layer is judged by.

    ``update(dw)`` adds ``dw`` in place; only the training loop's float reference calls it.
    """

    __slots__ = ("w",)

    def __init__(self, w: np.ndarray) -> None:
        w = np.array(w, dtype=float)
        if w.ndim != 2:
            raise InputError(f"FloatLayerWeights needs a 2-D (n_in, n_out) matrix, got shape {w.shape}")
        self.w = w

    @property
    def shape(self) -> tuple[int, int]:
        return self.w.shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x @ self.w

    def backward(self, delta: np.ndarray) -> np.ndarray:
        return delta @ self.w.T

    def weights(self) -> np.ndarray:
        return self.w.copy()

    def update(self, dw: np.ndarray) -> None:
        self.w += dw


class RecordingMatVec:
    """A MatVec that passes every product to ``inner`` and keeps the first input batch it was
    asked to multiply (``x``): a probe of what a layer sees, e.g. to drive a tile's test bench."""

    def __init__(self, inner: MatVec) -> None:
        self.inner, self.x = inner, None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.x is None:
            self.x = np.array(x, dtype=float)
        return self.inner.forward(x)

    def backward(self, delta: np.ndarray) -> np.ndarray:
        return self.inner.backward(delta)

    def weights(self) -> np.ndarray:
        return self.inner.weights()


def float_layers(weights: Sequence[np.ndarray]) -> list[FloatLayerWeights]:
    """One :class:`FloatLayerWeights` per weight matrix (copies)."""
    return [FloatLayerWeights(w) for w in weights]


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of the softmax and its per-sample gradient softmax(z) − onehot(y)."""
    labels = np.asarray(labels)
    b, k = logits.shape
    if labels.shape != (b,) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be {b} integers, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise InputError(f"labels must lie in 0..{k - 1}, got {labels.min()}..{labels.max()}")
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(b)
    loss = float(-logp[rows, labels].mean())
    dlogits = np.exp(logp)
    dlogits[rows, labels] -= 1.0
    return loss, dlogits


class Stage(Protocol):
    """One step of a sequential network; weight stages have a ``weight_shape``, others None."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight_shape: tuple[int, int] | None
    fan: tuple[int, int]

    def forward(self, x: np.ndarray, mat: MatVec | None) -> tuple[np.ndarray, Any]: ...

    def backward(self, dy: np.ndarray, cache: Any, mat: MatVec | None,
                 need_dx: bool) -> tuple[np.ndarray | None, np.ndarray | None]: ...


class Network:
    """A sequence of stages with one :class:`MatVec` per weight stage, passed to every call.

    Attributes:
        name: human-readable description.
        input_shape: per-sample input shape; inputs may also come flattened (B, prod(shape)).
        n_classes: number of logits.
        layer_shapes: (rows, cols) of each weight matrix, bias row included.
    """

    def __init__(self, stages: Sequence[Stage], *, name: str, input_shape: tuple[int, ...],
                 n_classes: int, activation: str) -> None:
        self.stages = tuple(stages)
        self.name = name
        self.input_shape = tuple(input_shape)
        self.n_classes = n_classes
        self.activation = activation
        self._weight_idx = [i for i, s in enumerate(self.stages) if s.weight_shape is not None]
        self.layer_shapes = tuple(self.stages[i].weight_shape for i in self._weight_idx)

    @property
    def n_layers(self) -> int:
        return len(self._weight_idx)

    def __repr__(self) -> str:
        return f"<Network {self.name}: layers {self.layer_shapes}>"

    def init_weights(self, rng: np.random.Generator, scheme: str | None = None) -> list[np.ndarray]:
        """Initial float weights: "he" (normal, std √(2/fan_in)) for ReLU, "xavier" (uniform,
        ±√(6/(fan_in+fan_out))) otherwise; bias rows start at 0. ``scheme`` None picks by activation."""
        scheme = scheme or ("he" if self.activation == "relu" else "xavier")
        if scheme not in ("he", "xavier"):
            raise SpecError(f"network.init must be 'he' or 'xavier', got {scheme!r}")
        out = []
        for i in self._weight_idx:
            rows, cols = self.stages[i].weight_shape
            fan_in, fan_out = self.stages[i].fan
            if scheme == "he":
                w = rng.standard_normal((rows, cols)) * np.sqrt(2.0 / fan_in)
            else:
                lim = np.sqrt(6.0 / (fan_in + fan_out))
                w = rng.uniform(-lim, lim, (rows, cols))
            w[fan_in:] = 0.0
            out.append(w)
        return out

    def _check(self, mats: Sequence[MatVec], x: np.ndarray) -> np.ndarray:
        if len(mats) != self.n_layers:
            raise InputError(f"{self.name} needs {self.n_layers} weight layers, got {len(mats)}")
        x = np.asarray(x, dtype=float)
        size = int(np.prod(self.input_shape))
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != size:
            raise InputError(f"{self.name} expects inputs of shape (B, {size}) or (B, *{self.input_shape}), got {x.shape}")
        return x.reshape((x.shape[0], *self.input_shape))

    def forward(self, mats: Sequence[MatVec], x: np.ndarray) -> tuple[np.ndarray, list]:
        """Logits (B, n_classes) and the cache of activations :meth:`backward` needs."""
        h = self._check(mats, x)
        caches = []
        mat_of = dict(zip(self._weight_idx, mats))
        for i, stage in enumerate(self.stages):
            h, c = stage.forward(h, mat_of.get(i))
            caches.append(c)
        return h, caches

    def predict(self, mats: Sequence[MatVec], x: np.ndarray) -> np.ndarray:
        return self.forward(mats, x)[0]

    def backward(self, mats: Sequence[MatVec], caches: list, dlogits: np.ndarray) -> list[np.ndarray]:
        """dW per weight layer (layer order) for the per-sample output error ``dlogits``.

        The transpose read is skipped below the first weight layer, where no one needs it.
        """
        mat_of = dict(zip(self._weight_idx, mats))
        first = self._weight_idx[0]
        grads: list[np.ndarray] = []
        d = dlogits
        for i in range(len(self.stages) - 1, first - 1, -1):
            d, dw = self.stages[i].backward(d, caches[i], mat_of.get(i), need_dx=i > first)
            if dw is not None:
                grads.append(dw)
        return grads[::-1]

    def loss_and_grads(self, mats: Sequence[MatVec], x: np.ndarray,
                       labels: np.ndarray) -> tuple[float, list[np.ndarray], np.ndarray]:
        """Batch-mean softmax cross-entropy, dW per layer, and the logits."""
        logits, caches = self.forward(mats, x)
        loss, dlogits = softmax_cross_entropy(logits, labels)
        return loss, self.backward(mats, caches, dlogits), logits
