"""The stages of a sequential network: dense, convolution (im2col), pooling, activation, flatten.

Images are NHWC: (B, H, W, C). A convolution is a matrix product on unrolled patches: im2col
turns each k×k×C_in receptive field into one row, so the kernel matrix on the crossbar is
(k·k·C_in [+1 bias row], C_out) with rows ordered (di, dj, c). Stride 1 only (LeNet). All loops
run over kernel offsets (k² iterations) or none; never over pixels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cosim.errors import SpecError
from cosim.train.networks.base import BIAS_INPUT, MatVec


def _augment(x: np.ndarray, bias: bool) -> np.ndarray:
    if not bias:
        return x
    return np.concatenate([x, np.full((x.shape[0], 1), BIAS_INPUT)], axis=1)


class Dense:
    """y = [x, 1]·W through the layer's MatVec; dW = x̂ᵀ·δ / B."""

    def __init__(self, n_in: int, n_out: int, *, bias: bool = True) -> None:
        self.in_shape, self.out_shape = (n_in,), (n_out,)
        self.bias = bias
        self.weight_shape = (n_in + int(bias), n_out)
        self.fan = (n_in, n_out)

    def forward(self, x: np.ndarray, mat: MatVec) -> tuple[np.ndarray, np.ndarray]:
        xa = _augment(x, self.bias)
        return mat.forward(xa), xa

    def backward(self, dy, xa, mat, need_dx):
        dw = xa.T @ dy / dy.shape[0]
        dx = mat.backward(dy)[:, : self.in_shape[0]] if need_dx else None
        return dx, dw


def im2col(x: np.ndarray, k: int, pad: int) -> np.ndarray:
    """(B, H, W, C) → (B·Ho·Wo, k·k·C) patches, rows ordered (b, i, j), columns (di, dj, c)."""
    b, _, _, c = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else x
    win = sliding_window_view(xp, (k, k), axis=(1, 2))  # (B, Ho, Wo, C, k, k)
    ho, wo = win.shape[1], win.shape[2]
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(b * ho * wo, k * k * c)


def col2im(cols: np.ndarray, in_shape: tuple[int, int, int, int], k: int, pad: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: sums each patch gradient back onto the (B, H, W, C) input."""
    b, h, w, c = in_shape
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = cols.reshape(b, ho, wo, k, k, c)
    dxp = np.zeros((b, h + 2 * pad, w + 2 * pad, c))
    for di in range(k):
        for dj in range(k):
            dxp[:, di:di + ho, dj:dj + wo, :] += cols[:, :, :, di, dj, :]
    return dxp[:, pad:pad + h, pad:pad + w, :]


class Conv2D:
    """k×k convolution, stride 1, zero padding ``pad``, as a matrix product on im2col patches."""

    def __init__(self, in_shape: tuple[int, int, int], c_out: int, k: int, *, pad: int = 0,
                 bias: bool = True) -> None:
        h, w, c = in_shape
        ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
        if k < 1 or pad < 0 or ho < 1 or wo < 1:
            raise SpecError(f"conv {k}×{k} with padding {pad} does not fit an input of {h}×{w}")
        self.in_shape, self.out_shape = (h, w, c), (ho, wo, c_out)
        self.k, self.pad, self.bias = k, pad, bias
        self.weight_shape = (k * k * c + int(bias), c_out)
        self.fan = (k * k * c, k * k * c_out)

    def forward(self, x: np.ndarray, mat: MatVec) -> tuple[np.ndarray, np.ndarray]:
        cols = _augment(im2col(x, self.k, self.pad), self.bias)
        y = mat.forward(cols)
        return y.reshape((x.shape[0], *self.out_shape)), cols

    def backward(self, dy, cols, mat, need_dx):
        b = dy.shape[0]
        d = dy.reshape(-1, self.out_shape[2])
        dw = cols.T @ d / b
        dx = None
        if need_dx:
            dcols = mat.backward(d)[:, : self.weight_shape[0] - int(self.bias)]
            dx = col2im(dcols, (b, *self.in_shape), self.k, self.pad)
        return dx, dw


class Pool2D:
    """Non-overlapping p×p max or average pooling (H and W must be multiples of p)."""

    weight_shape = None
    fan = (0, 0)

    def __init__(self, in_shape: tuple[int, int, int], p: int, mode: str = "max") -> None:
        h, w, c = in_shape
        if mode not in ("max", "avg"):
            raise SpecError(f"pool must be 'max' or 'avg', got {mode!r}")
        if p < 1 or h % p or w % p:
            raise SpecError(f"pooling {p}×{p} needs H and W divisible by {p}, got {h}×{w}")
        self.in_shape, self.out_shape = (h, w, c), (h // p, w // p, c)
        self.p, self.mode = p, mode

    def _windows(self, x: np.ndarray) -> np.ndarray:
        b, (h, w, c), p = x.shape[0], self.in_shape, self.p
        return x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 5, 2, 4).reshape(b, h // p, w // p, c, p * p)

    def _unwindow(self, g: np.ndarray) -> np.ndarray:
        b, (h, w, c), p = g.shape[0], self.in_shape, self.p
        return g.reshape(b, h // p, w // p, c, p, p).transpose(0, 1, 4, 2, 5, 3).reshape(b, h, w, c)

    def forward(self, x, mat):
        win = self._windows(x)
        if self.mode == "avg":
            return win.mean(axis=-1), None
        idx = win.argmax(axis=-1)[..., None]  # ties go to the first element, as the derivative does
        return np.take_along_axis(win, idx, axis=-1)[..., 0], idx

    def backward(self, dy, idx, mat, need_dx):
        if self.mode == "avg":
            g = np.broadcast_to(dy[..., None] / self.p**2, (*dy.shape, self.p**2))
        else:
            g = np.zeros((*dy.shape, self.p**2))
            np.put_along_axis(g, idx, dy[..., None], axis=-1)
        return self._unwindow(np.ascontiguousarray(g)), None


class Activation:
    """Element-wise relu, tanh or sigmoid."""

    weight_shape = None
    fan = (0, 0)
    KINDS = ("relu", "tanh", "sigmoid")

    def __init__(self, shape: tuple[int, ...], kind: str) -> None:
        if kind not in self.KINDS:
            raise SpecError(f"activation must be one of {', '.join(self.KINDS)}, got {kind!r}")
        self.in_shape = self.out_shape = tuple(shape)
        self.kind = kind

    def forward(self, x, mat):
        if self.kind == "relu":
            y = np.maximum(x, 0.0)
        elif self.kind == "tanh":
            y = np.tanh(x)
        else:
            y = 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic
        return y, y

    def backward(self, dy, y, mat, need_dx):
        if self.kind == "relu":
            return dy * (y > 0), None
        if self.kind == "tanh":
            return dy * (1.0 - y * y), None
        return dy * y * (1.0 - y), None


class Flatten:
    """(B, H, W, C) → (B, H·W·C)."""

    weight_shape = None
    fan = (0, 0)

    def __init__(self, in_shape: tuple[int, ...]) -> None:
        self.in_shape, self.out_shape = tuple(in_shape), (int(np.prod(in_shape)),)

    def forward(self, x, mat):
        return x.reshape(x.shape[0], -1), None

    def backward(self, dy, cache, mat, need_dx):
        return dy.reshape((dy.shape[0], *self.in_shape)), None
