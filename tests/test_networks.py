"""Networks: gradients against finite differences, im2col against direct convolution, the MatVec
seam, and a float training run on digits that must learn. Budget ≈ 15 s."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate

from cosim.errors import InputError, SpecError
from cosim.train.data import load_digits_split
from cosim.train.networks import (
    CNN,
    MLP,
    FloatLayerWeights,
    col2im,
    float_layers,
    im2col,
    make_network,
    softmax_cross_entropy,
)
from cosim.train.optimizers import FloatSGD, FloatSGDConfig


def _fd_check(net, rng, batch=3):
    """Largest per-layer relative error ‖g − g_fd‖/‖g‖ between backprop and central differences.

    Float64 with h = 1e-5: truncation error ~h²·f''' ≈ 1e-10 and round-off ~ε·L/h ≈ 1e-11, so a
    correct gradient sits near 1e-9; 1e-6 leaves three decades of margin while any wrong term
    (a transposed kernel, a lost bias row, a mis-routed pool gradient) gives O(1).
    """
    weights = net.init_weights(rng)
    # Scale up so activations leave tanh's linear region and pool maxima are distinct.
    weights = [w * 1.5 + 0.05 * rng.standard_normal(w.shape) for w in weights]
    x = rng.random((batch, int(np.prod(net.input_shape))))
    y = rng.integers(0, net.n_classes, batch)
    _, grads, _ = net.loss_and_grads(float_layers(weights), x, y)
    h = 1e-5
    worst = 0.0
    for li, w in enumerate(weights):
        fd = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            losses = []
            for sign in (1, -1):
                trial = [v.copy() for v in weights]
                trial[li][idx] += sign * h
                losses.append(net.loss_and_grads(float_layers(trial), x, y)[0])
            fd[idx] = (losses[0] - losses[1]) / (2 * h)
        assert np.linalg.norm(fd) > 1e-3, "vacuous check: the layer's gradient is ~0"
        worst = max(worst, np.linalg.norm(grads[li] - fd) / np.linalg.norm(fd))
    return worst


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid"])
def test_mlp_gradient_matches_finite_differences(activation, rng):
    assert _fd_check(MLP((5, 4, 3, 3), activation), rng) < 1e-6


@pytest.mark.parametrize("kw", [
    dict(input_shape=(6, 6, 2), convs=((3, 3, 2),), dense=(5,), n_classes=4, activation="tanh",
         pool="max", padding="same"),
    dict(input_shape=(6, 6, 1), convs=((2, 3, 1), (3, 3, 2)), dense=(), n_classes=3, activation="relu",
         pool="avg", padding="valid"),
])
def test_cnn_gradient_matches_finite_differences(kw, rng):
    assert _fd_check(CNN(**kw), rng) < 1e-6


def test_im2col_convolution_equals_direct_correlation(rng):
    """A conv layer's output equals scipy's direct cross-correlation summed over input channels."""
    net = CNN((7, 5, 2), ((3, 3, 1),), (), n_classes=2, padding="same", bias=True)
    conv = net.stages[0]
    w = rng.standard_normal(conv.weight_shape)
    x = rng.standard_normal((2, 7, 5, 2))
    y, _ = conv.forward(x, FloatLayerWeights(w))
    kern = w[:-1].reshape(3, 3, 2, 3)  # rows ordered (di, dj, c_in)
    for b in range(2):
        for co in range(3):
            ref = sum(correlate(x[b, :, :, ci], kern[:, :, ci, co], mode="same") for ci in range(2)) + w[-1, co]
            np.testing.assert_allclose(y[b, :, :, co], ref, rtol=1e-12, atol=1e-12)


def test_col2im_is_the_adjoint_of_im2col(rng):
    """<im2col(x), C> = <x, col2im(C)> for every x, C: the backward pass is the exact transpose."""
    for pad in (0, 1, 2):
        x = rng.standard_normal((2, 6, 5, 3))
        cols = im2col(x, 3, pad)
        c = rng.standard_normal(cols.shape)
        np.testing.assert_allclose(np.sum(cols * c), np.sum(x * col2im(c, x.shape, 3, pad)), rtol=1e-12)


def test_pooling_against_loops(rng):
    net = CNN((4, 4, 1), ((2, 1, 2),), (), n_classes=2, pool="max", padding="valid")
    pool = net.stages[2]
    x = rng.standard_normal((3, 4, 4, 2))
    y, _ = pool.forward(x, None)
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(y[:, i, j, :], x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :].max(axis=(1, 2)))


def test_softmax_cross_entropy_closed_form_and_overflow():
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    loss, d = softmax_cross_entropy(z, np.array([2, 0]))
    ref0 = np.log(np.exp(1) + np.exp(2) + np.exp(3)) - 3.0
    assert loss == pytest.approx(0.5 * (ref0 + 0.0), rel=1e-12)
    np.testing.assert_allclose(d.sum(axis=1), 0.0, atol=1e-15)
    assert np.all(np.isfinite(d))
    with pytest.raises(InputError, match="labels must lie in 0..2"):
        softmax_cross_entropy(z, np.array([0, 3]))


def test_bias_row_is_driven_at_constant_input(rng):
    """y = x·W[:-1] + W[-1]: the last crossbar row carries the bias."""
    net = MLP((3, 2))
    w = rng.standard_normal((4, 2))
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(net.predict([FloatLayerWeights(w)], x), x @ w[:3] + w[3], rtol=1e-13)


class _Spy:
    """A MatVec that records its calls, standing in for a crossbar tile."""

    def __init__(self, w):
        self.inner = FloatLayerWeights(w)
        self.calls = []

    def forward(self, x):
        self.calls.append(("forward", x.shape))
        return self.inner.forward(x)

    def backward(self, d):
        self.calls.append(("backward", d.shape))
        return self.inner.backward(d)

    def weights(self):
        return self.inner.weights()


def test_network_uses_only_the_injected_matvec_and_never_updates(rng):
    net = CNN.lenet_digits()
    weights = net.init_weights(rng)
    spies = [_Spy(w) for w in weights]
    x, y = rng.random((4, 64)), rng.integers(0, 10, 4)
    _, grads, _ = net.loss_and_grads(spies, x, y)
    # Layer 0 (conv on 8×8 'same' patches): one read of 4·64 patch rows, no transpose read.
    assert spies[0].calls == [("forward", (4 * 64, 10))]
    assert spies[1].calls == [("forward", (4 * 16, 73)), ("backward", (4 * 16, 16))]
    assert spies[2].calls == [("forward", (4, 65)), ("backward", (4, 10))]
    for spy, w, g in zip(spies, weights, grads):
        np.testing.assert_array_equal(spy.weights(), w)
        assert g.shape == w.shape


def test_layer_shapes_and_factory():
    assert CNN.lenet5().layer_shapes == ((26, 6), (151, 16), (257, 120), (121, 84), (85, 10))
    assert make_network("mlp", (28, 28, 1), 10).layer_shapes == ((785, 100), (101, 10))
    assert make_network("mlp", (8, 8, 1), 10).layer_shapes == ((65, 64), (65, 10))
    assert make_network("cnn", (8, 8, 1), 10).layer_shapes == CNN.lenet_digits().layer_shapes
    with pytest.raises(SpecError, match="did you mean 'lenet5'"):
        make_network("lenet", (28, 28, 1), 10)
    with pytest.raises(SpecError, match="divisible by 2"):
        CNN((7, 7, 1), ((4, 3, 2),))
    with pytest.raises(InputError, match=r"expects inputs of shape \(B, 64\)"):
        MLP((64, 10)).predict([FloatLayerWeights(np.zeros((65, 10)))], np.zeros((2, 63)))


def _train(net, data, rng, epochs, lr, beta, batch=32):
    mats = float_layers(net.init_weights(rng))
    opt = FloatSGD(FloatSGDConfig(lr=lr, beta=beta))
    for _ in range(epochs):
        order = rng.permutation(len(data.y_train))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            _, grads, _ = net.loss_and_grads(mats, data.x_train[idx], data.y_train[idx])
            for i, (m, g) in enumerate(zip(mats, grads)):
                m.update(opt.step(i, g))
    return float(np.mean(net.predict(mats, data.x_test).argmax(axis=1) == data.y_test))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_float_training_on_digits_learns(kind):
    """Plain momentum SGD through FloatLayerWeights reaches > 90 % test accuracy in 5 epochs
    (chance is 10 %; sklearn's own MLP reaches ~97 %), proving forward and backward learn."""
    data = load_digits_split(seed=0)
    rng = np.random.default_rng(0)
    acc = _train(make_network(kind, data.image_shape, 10), data, rng, epochs=5, lr=0.5, beta=0.9)
    assert acc > 0.90, acc
