"""The two network families of the training study, and a name-based factory.

- :class:`MLP`: dense layers with one activation, e.g. 64-64-10 for 8×8 digits or 784-100-10
  for MNIST.
- :class:`CNN`: LeNet-style convolution/pool blocks then dense layers. ``CNN.for_input`` picks
  the digits variant (3×3 convs, "same" padding: 8×8×1 → 8 maps, pool → 4×4×8 → 16 maps, pool →
  2×2×16 → 10) for small images and LeNet-5 (5×5 "valid" convs → 6, pool, → 16, pool, dense
  120, 84, 10) for 28×28 or larger.
"""

from __future__ import annotations

from collections.abc import Sequence

from cosim.errors import SpecError
from cosim.schema import close_match
from cosim.train.networks.base import Network
from cosim.train.networks.stages import Activation, Conv2D, Dense, Flatten, Pool2D


class MLP(Network):
    """Dense network ``sizes[0] → … → sizes[-1]`` with ``activation`` between layers.

    Args:
        sizes: layer widths including input and output (≥ 2 entries, each ≥ 1).
        activation: "relu", "tanh" or "sigmoid" (none after the last layer: logits).
        bias: fold a bias row into every weight matrix (see :mod:`.base`).
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", *, bias: bool = True) -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise SpecError(f"network.sizes needs ≥ 2 positive widths, got {sizes}")
        stages: list = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            stages.append(Dense(a, b, bias=bias))
            if i < len(sizes) - 2:
                stages.append(Activation((b,), activation))
        super().__init__(stages, name="mlp " + "-".join(map(str, sizes)), input_shape=(sizes[0],),
                         n_classes=sizes[-1], activation=activation)


class CNN(Network):
    """Convolution blocks (conv k×k → activation → p×p pool) then dense layers.

    Args:
        input_shape: (H, W, C) of one image.
        convs: one (c_out, k, pool) per block; pool 1 means no pooling.
        dense: widths of hidden dense layers after flattening.
        n_classes: number of outputs.
        activation: "relu", "tanh" or "sigmoid".
        pool: "max" or "avg".
        padding: "same" (pad (k−1)/2, odd k) or "valid" (no padding).
        bias: fold a bias row into every weight matrix.
    """

    def __init__(self, input_shape: Sequence[int], convs: Sequence[Sequence[int]], dense: Sequence[int] = (),
                 n_classes: int = 10, *, activation: str = "relu", pool: str = "max",
                 padding: str = "same", bias: bool = True) -> None:
        if padding not in ("same", "valid"):
            raise SpecError(f"network.padding must be 'same' or 'valid', got {padding!r}")
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise SpecError(f"network.input_shape must be (H, W, C) with positive sizes, got {tuple(input_shape)}")
        in_shape = shape
        stages: list = []
        for c_out, k, p in convs:
            if padding == "same" and k % 2 == 0:
                raise SpecError(f"'same' padding needs an odd kernel size, got {k}")
            stages.append(Conv2D(shape, int(c_out), int(k), pad=(k - 1) // 2 if padding == "same" else 0, bias=bias))
            stages.append(Activation(stages[-1].out_shape, activation))
            if p > 1:
                stages.append(Pool2D(stages[-1].out_shape, int(p), pool))
            shape = stages[-1].out_shape
        stages.append(Flatten(shape))
        width = stages[-1].out_shape[0]
        for h in dense:
            stages += [Dense(width, int(h), bias=bias), Activation((int(h),), activation)]
            width = int(h)
        stages.append(Dense(width, int(n_classes), bias=bias))
        desc = ",".join(f"c{c}k{k}p{p}" for c, k, p in convs) + "".join(f",d{h}" for h in dense)
        super().__init__(stages, name=f"cnn {desc},{n_classes}", input_shape=in_shape,
                         n_classes=int(n_classes), activation=activation)

    @classmethod
    def lenet_digits(cls, n_classes: int = 10, **kw) -> CNN:
        """8×8×1 → conv3×3→8, pool 2 → conv3×3→16, pool 2 → dense 10 (layers 10×8, 73×16, 65×10)."""
        return cls((8, 8, 1), ((8, 3, 2), (16, 3, 2)), (), n_classes, padding="same", **kw)

    @classmethod
    def lenet5(cls, input_shape: Sequence[int] = (28, 28, 1), n_classes: int = 10, **kw) -> CNN:
        """LeNet-5: conv5×5→6, pool 2, conv5×5→16, pool 2, dense 120, 84, n_classes ("valid" convs)."""
        return cls(input_shape, ((6, 5, 2), (16, 5, 2)), (120, 84), n_classes, padding="valid", **kw)

    @classmethod
    def for_input(cls, input_shape: Sequence[int], n_classes: int = 10, **kw) -> CNN:
        """The digits variant for images under 16×16, LeNet-5 otherwise (both channel-agnostic)."""
        h, w, c = input_shape
        if min(h, w) < 16:
            if h % 4 or w % 4:
                raise SpecError(f"the small CNN needs H and W divisible by 4, got {h}×{w}")
            return cls((h, w, c), ((8, 3, 2), (16, 3, 2)), (), n_classes, padding="same", **kw)
        return cls.lenet5((h, w, c), n_classes, **kw)


NETWORK_KINDS = ("mlp", "cnn", "lenet5")


def make_network(kind: str, input_shape: Sequence[int], n_classes: int, *, hidden: Sequence[int] | None = None,
                 activation: str = "relu", pool: str = "max", bias: bool = True) -> Network:
    """Build a network for a dataset's image shape (H, W, C) and class count.

    ``kind`` "mlp": sizes (H·W·C, *hidden, n_classes), ``hidden`` defaulting to (64,) for inputs
    up to 256 features and (100,) above (64-64-10 digits, 784-100-10 MNIST). "cnn":
    :meth:`CNN.for_input`. "lenet5": :meth:`CNN.lenet5`. ``hidden`` applies to "mlp" only.
    """
    if kind not in NETWORK_KINDS:
        raise SpecError(f"network must be one of {', '.join(NETWORK_KINDS)}, got {kind!r}"
                        f"{close_match(kind, NETWORK_KINDS)}")
    shape = tuple(int(s) for s in input_shape)
    if kind == "mlp":
        n_in = 1
        for s in shape:
            n_in *= s
        hidden = tuple(hidden) if hidden is not None else ((64,) if n_in <= 256 else (100,))
        return MLP((n_in, *hidden, n_classes), activation, bias=bias)
    if hidden is not None:
        raise SpecError(f"network.hidden applies to 'mlp' only, not {kind!r}")
    if kind == "cnn":
        return CNN.for_input(shape, n_classes, activation=activation, pool=pool, bias=bias)
    return CNN.lenet5(shape, n_classes, activation=activation, pool=pool, bias=bias)
