"""ONNX models in and out (cosim.train.onnx_model).

Truth: onnx's own reference evaluator (onnx.reference.ReferenceEvaluator) on the same model and
inputs. Models are built here with onnx.helper in float64, so both sides compute in double and
the only difference is summation order: 1e-6 absolute on outputs of order 1 is generous by
~1e8 and still catches any layout mistake (a wrong transpose moves outputs by O(1)).
Each supported operator gets its own model; an unsupported one is a one-line error naming the
node and the operator. cosim's own networks, saved as ONNX, must load back to the same function
and agree with the reference evaluator.
"""

from __future__ import annotations

import numpy as np
import onnx  # the dev extra installs it: a missing onnx fails here rather than skipping
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from cosim.errors import CosimError, SpecError
from cosim.train.networks import CNN, MLP, float_layers
from cosim.train.onnx_model import load_onnx, save_onnx

TOL = 1e-6
D = TensorProto.DOUBLE


def _model(tmp_path, nodes, in_shape, out_shape, inits, name="m"):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", D, ["N", *in_shape])],
                              [helper.make_tensor_value_info("y", D, ["N", *out_shape])],
                              [numpy_helper.from_array(np.asarray(v), name=k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _check(path, x):
    ref = ReferenceEvaluator(str(path)).run(None, {"x": x})[0]
    m = load_onnx(path)
    ours = m.network.predict(float_layers(m.weights), x)
    np.testing.assert_allclose(ours.reshape(ref.shape), ref, atol=TOL, rtol=0)
    return m


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _dense_inits(rng, n_in=6, n_out=4):
    return {"W": rng.standard_normal((n_in, n_out)), "b": rng.standard_normal(n_out)}


def test_gemm_with_alpha_beta_transb(tmp_path, rng):
    w, b = rng.standard_normal((4, 6)), rng.standard_normal((1, 4))
    n = helper.make_node("Gemm", ["x", "W", "b"], ["y"], alpha=0.7, beta=1.3, transB=1)
    m = _check(_model(tmp_path, [n], [6], [4], {"W": w, "b": b}), rng.standard_normal((5, 6)))
    assert m.network.layer_shapes == ((7, 4),)  # bias row folded into the crossbar matrix


def test_matmul_then_add_folds_into_bias_row(tmp_path, rng):
    i = _dense_inits(rng)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    m = _check(_model(tmp_path, nodes, [6], [4], i), rng.standard_normal((5, 6)))
    assert m.network.layer_shapes == ((7, 4),) and len(m.network.stages) == 1


def test_add_not_per_channel_is_a_digital_add(tmp_path, rng):
    i = {"W": rng.standard_normal((3, 2, 3, 3)), "c": rng.standard_normal((2, 4, 4))}
    nodes = [helper.make_node("Conv", ["x", "W"], ["h"], pads=[1, 1, 1, 1]), helper.make_node("Add", ["h", "c"], ["y"])]
    _check(_model(tmp_path, nodes, [2, 4, 4], [3, 4, 4], {"W": i["W"], "c": np.stack([i["c"][0]] * 3)}),
           rng.standard_normal((2, 2, 4, 4)))


@pytest.mark.parametrize("attrs", [{}, {"pads": [1, 0, 2, 1]}, {"strides": [2, 1], "pads": [1, 1, 1, 1]},
                                   {"auto_pad": "VALID", "strides": [2, 2]}])
def test_conv(tmp_path, rng, attrs):
    w, b = rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    n = helper.make_node("Conv", ["x", "W", "b"], ["y"], **attrs)
    x = rng.standard_normal((2, 2, 7, 6))
    out = ReferenceEvaluator(_model(tmp_path, [n], [2, 7, 6], ["C", "H", "W"], {"W": w, "b": b}, "probe")
                             .read_bytes()).run(None, {"x": x})[0]
    _check(_model(tmp_path, [n], [2, 7, 6], list(out.shape[1:]), {"W": w, "b": b}), x)


def test_relu_tanh_sigmoid(tmp_path, rng):
    i = _dense_inits(rng)
    for op in ("Relu", "Tanh", "Sigmoid"):
        nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"]), helper.make_node(op, ["h"], ["y"])]
        _check(_model(tmp_path, nodes, [6], [4], i, op), rng.standard_normal((5, 6)))


@pytest.mark.parametrize("op,attrs,out", [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}, [2, 3, 3]),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]}, [2, 6, 6]),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, [2, 3, 3]),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, [2, 3, 3]),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
     [2, 3, 3]),
])
def test_pools(tmp_path, rng, op, attrs, out):
    # a pool alone has no weights to deploy: a 1x1 convolution goes in front
    graph_nodes = [helper.make_node("Conv", ["x", "W"], ["h"]), helper.make_node(op, ["h"], ["y"], **attrs)]
    _check(_model(tmp_path, graph_nodes, [2, 6, 6], out, {"W": rng.standard_normal((2, 2, 1, 1))}),
           rng.standard_normal((3, 2, 6, 6)))


def test_flatten_reshape_softmax_cnn(tmp_path, rng):
    w1, w2 = rng.standard_normal((3, 1, 3, 3)), rng.standard_normal((27, 5))
    shape = np.array([-1, 27], dtype=np.int64)
    for flat in ("Flatten", "Reshape"):
        nodes = [helper.make_node("Conv", ["x", "W1"], ["a"], strides=[2, 2]),
                 helper.make_node("Relu", ["a"], ["r"]),
                 helper.make_node("Flatten", ["r"], ["f"], axis=1) if flat == "Flatten"
                 else helper.make_node("Reshape", ["r", "s"], ["f"]),
                 helper.make_node("MatMul", ["f", "W2"], ["z"]), helper.make_node("Softmax", ["z"], ["y"])]
        inits = {"W1": w1, "W2": w2} | ({"s": shape} if flat == "Reshape" else {})
        _check(_model(tmp_path, nodes, [1, 7, 7], [5], inits, flat), rng.standard_normal((4, 1, 7, 7)))


def test_batchnorm_folds_into_conv_and_gemm(tmp_path, rng):
    c = 3
    bn = {"g": rng.uniform(0.5, 2, c), "be": rng.standard_normal(c), "mu": rng.standard_normal(c),
          "var": rng.uniform(0.1, 2, c)}
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["a", "g", "be", "mu", "var"], ["y"], epsilon=1e-3)]
    m = _check(_model(tmp_path, nodes, [2, 5, 5], [c, 5, 5],
                      {"W": rng.standard_normal((c, 2, 3, 3)), "b": rng.standard_normal(c), **bn}),
               rng.standard_normal((2, 2, 5, 5)))
    assert m.network.n_layers == 1
    nodes = [helper.make_node("Gemm", ["x", "W"], ["a"]),
             helper.make_node("BatchNormalization", ["a", "g", "be", "mu", "var"], ["y"])]
    m = _check(_model(tmp_path, nodes, [6], [c], {"W": rng.standard_normal((6, c)), **bn}, "g"),
               rng.standard_normal((4, 6)))
    assert m.network.layer_shapes == ((7, c),)  # BN made a bias where the Gemm had none


def test_constant_node_feeds_reshape(tmp_path, rng):
    nodes = [helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(np.array([0, -1], np.int64))),
             helper.make_node("Reshape", ["x", "s"], ["f"]), helper.make_node("MatMul", ["f", "W"], ["y"])]
    _check(_model(tmp_path, nodes, [1, 2, 3], [4], {"W": rng.standard_normal((6, 4))}), rng.standard_normal((3, 1, 2, 3)))


@pytest.mark.parametrize("node,inits,match", [
    (helper.make_node("LeakyRelu", ["h"], ["y"], name="act1"), {}, r"node 'act1' \(LeakyRelu\): operator not supported"),
    (helper.make_node("Gemm", ["h", "h"], ["y"], name="sq"), {}, r"node 'sq' \(Gemm\): reads"),
    (helper.make_node("BatchNormalization", ["r", "g", "g", "g", "g"], ["y"], name="bn"), {"g": np.ones(4)},
     r"node 'bn' \(BatchNormalization\): only a BatchNormalization right after"),
])
def test_unsupported_is_one_line(tmp_path, rng, node, inits, match):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"])]
    if node.op_type == "BatchNormalization":
        nodes.append(helper.make_node("Relu", ["h"], ["r"]))
    nodes.append(node)
    path = _model(tmp_path, nodes, [6], [4], {"W": rng.standard_normal((6, 4)), **inits})
    with pytest.raises(SpecError, match=match) as info:
        load_onnx(path)
    assert "\n" not in str(info.value)


def test_not_onnx_is_one_line(tmp_path):
    p = tmp_path / "junk.onnx"
    p.write_bytes(b"not a model")
    with pytest.raises(CosimError, match="not a valid ONNX model") as info:
        load_onnx(p)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("make", [lambda: MLP([6, 5, 3], "tanh"), lambda: CNN.lenet_digits(),
                                  lambda: CNN((8, 8, 2), ((4, 3, 2),), (6,), 3, pool="avg", activation="sigmoid")])
def test_cosim_networks_round_trip(tmp_path, rng, make):
    net = make()
    w = net.init_weights(rng)
    w = [a + 0.1 * rng.standard_normal(a.shape) for a in w]  # non-zero biases
    path = save_onnx(tmp_path / "net.onnx", net, w, dtype=np.float64)
    x = rng.uniform(0, 1, (5, int(np.prod(net.input_shape))))
    want = net.predict(float_layers(w), x)
    back = load_onnx(path)
    h, wd, c = net.input_shape if len(net.input_shape) == 3 else (None, None, None)
    xr = x if h is None else x.reshape(-1, h, wd, c).transpose(0, 3, 1, 2)  # ONNX takes NCHW
    np.testing.assert_allclose(back.network.predict(float_layers(back.weights), xr), want, atol=TOL, rtol=0)
    ref = ReferenceEvaluator(str(path)).run(None, {"input": xr})[0]
    np.testing.assert_allclose(ref, want, atol=TOL, rtol=0)
    # and the loaded network exports again to the same function
    again = load_onnx(save_onnx(tmp_path / "again.onnx", back.network, back.weights, dtype=np.float64))
    np.testing.assert_allclose(again.network.predict(float_layers(again.weights), xr), want, atol=TOL, rtol=0)
