"""Forward-only stages for networks loaded from ONNX (:mod:`cosim.train.onnx_model`).

ONNX images are NCHW; cosim's stages work on NHWC (B, H, W, C) so that a convolution's patch
matrix has rows ordered (di, dj, c), the order its kernel matrix sits on the crossbar.
:class:`ToNHWC` turns the model input around once; :class:`OnnxFlatten` turns it back before
flattening, so a dense layer after it sees features in ONNX's (c, h, w) order and the model's
own weights apply unchanged.

These stages carry ONNX's general attributes (strides, asymmetric pads, rectangular kernels,
overlapping pools) that cosim's trainable stages do not; they implement only ``forward``: a
loaded network is deployed and read, not trained (``backward`` raises).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cosim.errors import InputError
from cosim.train.networks.base import BIAS_INPUT, MatVec


class _ForwardOnly:
    weight_shape: tuple[int, int] | None = None
    fan = (0, 0)

    def backward(self, dy, cache, mat, need_dx):
        raise InputError(f"{type(self).__name__}: a network loaded from ONNX is for inference only (no backward)")


def patches(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], pads: tuple[int, int, int, int],
            fill: float = 0.0) -> np.ndarray:
    """(B, H, W, C) → (B, Ho, Wo, kh·kw·C) windows, last axis ordered (di, dj, c).

    ``pads`` is (top, left, bottom, right) as in ONNX's ``pads`` attribute (begins, then ends);
    padded cells hold ``fill``.
    """
    t, left, b, r = pads
    if any(pads):
        x = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=fill)
    win = sliding_window_view(x, kernel, axis=(1, 2))[:, ::strides[0], ::strides[1]]  # (B, Ho, Wo, C, kh, kw)
    bs, ho, wo, c = win.shape[:4]
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(bs, ho, wo, kernel[0] * kernel[1] * c)


def out_size(n: int, k: int, s: int, p0: int, p1: int) -> int:
    return (n + p0 + p1 - k) // s + 1


class ToNHWC(_ForwardOnly):
    """(B, C, H, W) → (B, H, W, C)."""

    def __init__(self, chw: tuple[int, int, int]) -> None:
        c, h, w = chw
        self.in_shape, self.out_shape = (c, h, w), (h, w, c)

    def forward(self, x, mat):
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)), None


class ToNCHW(_ForwardOnly):
    """(B, H, W, C) → (B, C, H, W): a model whose output is an image hands it back in ONNX's layout."""

    def __init__(self, hwc: tuple[int, int, int]) -> None:
        h, w, c = hwc
        self.in_shape, self.out_shape = (h, w, c), (c, h, w)

    def forward(self, x, mat):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), None


class OnnxConv(_ForwardOnly):
    """Convolution (group 1, dilation 1) as one matrix product on patches: kernel matrix rows
    (di, dj, c_in) plus one bias row when ``bias``; output NHWC."""

    def __init__(self, in_shape: tuple[int, int, int], c_out: int, kernel: tuple[int, int],
                 strides: tuple[int, int], pads: tuple[int, int, int, int], *, bias: bool) -> None:
        h, w, c = in_shape
        ho = out_size(h, kernel[0], strides[0], pads[0], pads[2])
        wo = out_size(w, kernel[1], strides[1], pads[1], pads[3])
        self.in_shape, self.out_shape = (h, w, c), (ho, wo, c_out)
        self.kernel, self.strides, self.pads, self.bias = kernel, strides, pads, bias
        n = kernel[0] * kernel[1] * c
        self.weight_shape = (n + int(bias), c_out)
        self.fan = (n, kernel[0] * kernel[1] * c_out)

    def forward(self, x, mat: MatVec):
        p = patches(x, self.kernel, self.strides, self.pads)
        cols = p.reshape(-1, p.shape[-1])
        if self.bias:
            cols = np.concatenate([cols, np.full((cols.shape[0], 1), BIAS_INPUT)], axis=1)
        return mat.forward(cols).reshape((x.shape[0], *self.out_shape)), None


class OnnxPool(_ForwardOnly):
    """MaxPool / AveragePool with kernel, strides and pads (NHWC). Max pads with −∞; average
    divides by the window's real cells unless ``count_include_pad``."""

    def __init__(self, in_shape: tuple[int, int, int], mode: str, kernel: tuple[int, int], strides: tuple[int, int],
                 pads: tuple[int, int, int, int], count_include_pad: bool = False) -> None:
        h, w, c = in_shape
        ho = out_size(h, kernel[0], strides[0], pads[0], pads[2])
        wo = out_size(w, kernel[1], strides[1], pads[1], pads[3])
        self.in_shape, self.out_shape = (h, w, c), (ho, wo, c)
        self.mode, self.kernel, self.strides, self.pads = mode, kernel, strides, pads
        self.count_include_pad = count_include_pad

    def _win(self, x: np.ndarray, fill: float) -> np.ndarray:
        p = patches(x, self.kernel, self.strides, self.pads, fill)
        b, ho, wo, _ = p.shape
        return p.reshape(b, ho, wo, self.kernel[0] * self.kernel[1], x.shape[3])

    def forward(self, x, mat):
        if self.mode == "max":
            return self._win(x, -np.inf).max(axis=3), None
        total = self._win(x, 0.0).sum(axis=3)
        if self.count_include_pad or not any(self.pads):
            return total / (self.kernel[0] * self.kernel[1]), None
        count = self._win(np.ones((1, *self.in_shape[:2], 1)), 0.0).sum(axis=3)
        return total / count, None


class OnnxFlatten(_ForwardOnly):
    """ONNX Flatten (axis 1): an image goes back to NCHW first, so features are (c, h, w)."""

    def __init__(self, in_shape: tuple[int, ...]) -> None:
        self.in_shape, self.out_shape = tuple(in_shape), (int(np.prod(in_shape)),)

    def forward(self, x, mat):
        if x.ndim == 4:
            x = x.transpose(0, 3, 1, 2)
        return x.reshape(x.shape[0], -1), None


class ConstAdd(_ForwardOnly):
    """Adds a constant (already in the internal layout: (F,) or (H, W, C)) that could not be
    folded into a weight layer's bias row."""

    def __init__(self, shape: tuple[int, ...], value: np.ndarray) -> None:
        self.in_shape = self.out_shape = tuple(shape)
        self.value = np.asarray(value, dtype=float)

    def forward(self, x, mat):
        return x + self.value, None


class Softmax(_ForwardOnly):
    """Softmax over the features of (B, F)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.in_shape = self.out_shape = tuple(shape)

    def forward(self, x, mat):
        z = np.exp(x - x.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True), None
