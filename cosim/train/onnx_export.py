"""A cosim network and its weights as an ONNX graph (opset 13), the inverse of :func:`load_onnx`.

Layout: cosim's own convolutional networks run NHWC with kernel-matrix rows ordered
(di, dj, c); ONNX runs NCHW. The exported model takes (N, C, H, W) (for one channel the same
flattened pixels as cosim's (N, H·W)), each kernel matrix is reshaped to (C_out, C_in, kh, kw),
and cosim's Flatten (features in (h, w, c) order) becomes ONNX's Flatten (order (c, h, w)) with
the next dense layer's rows permuted to match, so the exported model computes the same function.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosim.errors import SpecError
from cosim.train.networks.base import Network
from cosim.train.networks.onnx_stages import (
    ConstAdd,
    OnnxConv,
    OnnxFlatten,
    OnnxPool,
    Softmax,
    ToNCHW,
    ToNHWC,
)
from cosim.train.networks.stages import Activation, Conv2D, Dense, Flatten, Pool2D

OPSET = 13
_ACT = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def _hwc_to_chw(h: int, w: int, c: int) -> np.ndarray:
    """perm with perm[chw index] = hwc index of the same (c, h, w) element."""
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


def network_to_onnx(net: Network, weights: list[np.ndarray], *, dtype: Any = np.float32):
    """An ``onnx.ModelProto`` computing ``net`` with ``weights`` (one per weight stage)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = [np.asarray(w, dtype=float) for w in weights]
    if len(weights) != net.n_layers:
        raise SpecError(f"{net.name} has {net.n_layers} weight layers, got {len(weights)} matrices")
    for k, (w, s) in enumerate(zip(weights, net.layer_shapes)):
        if w.shape != tuple(s):
            raise SpecError(f"weight matrix {k} has shape {w.shape}, the network expects {tuple(s)}")
    elem = TensorProto.DOUBLE if np.dtype(dtype) == np.float64 else TensorProto.FLOAT
    nodes, inits = [], []
    counter = iter(range(10**6))

    def const(name: str, value: np.ndarray) -> str:
        arr = np.asarray(value, dtype=np.int64 if name.startswith("shape") else dtype)
        inits.append(numpy_helper.from_array(arr, name=f"{name}{next(counter)}"))
        return inits[-1].name

    def node(op: str, inputs: list[str], **attrs) -> str:
        out = f"t{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}{len(nodes)}", **attrs))
        return out

    native_image = len(net.input_shape) == 3 and not isinstance(net.stages[0], ToNHWC)
    if native_image:
        h, w, c = net.input_shape
        in_dims = [c, h, w]
    else:
        in_dims = list(net.input_shape)
    x = "input"
    perm = None  # row permutation owed to the next dense layer after cosim's NHWC Flatten
    wi = 0
    for st in net.stages:
        if st.weight_shape is not None:
            m = weights[wi]
            wi += 1
            n_in = st.weight_shape[0] - int(st.bias)
            mat, bias = m[:n_in], (m[n_in] if st.bias else None)
            if isinstance(st, Dense):
                if perm is not None:
                    mat, perm = mat[perm], None
                args = [x, const("W", mat)] + ([const("B", bias)] if bias is not None else [])
                x = node("Gemm", args)
            elif isinstance(st, Conv2D | OnnxConv):
                kh, kw = (st.k, st.k) if isinstance(st, Conv2D) else st.kernel
                c_in = st.in_shape[2]
                kern = mat.reshape(kh, kw, c_in, -1).transpose(3, 2, 0, 1)
                pads = [st.pad] * 4 if isinstance(st, Conv2D) else list(st.pads)
                strides = [1, 1] if isinstance(st, Conv2D) else list(st.strides)
                args = [x, const("W", kern)] + ([const("B", bias)] if bias is not None else [])
                x = node("Conv", args, kernel_shape=[kh, kw], pads=pads, strides=strides)
            else:
                raise SpecError(f"cannot export weight stage {type(st).__name__} to ONNX")
        elif isinstance(st, Activation):
            x = node(_ACT[st.kind], [x])
        elif isinstance(st, Pool2D):
            x = node("MaxPool" if st.mode == "max" else "AveragePool", [x], kernel_shape=[st.p, st.p],
                     strides=[st.p, st.p])
        elif isinstance(st, OnnxPool):
            x = node("MaxPool" if st.mode == "max" else "AveragePool", [x], kernel_shape=list(st.kernel),
                     strides=list(st.strides), pads=list(st.pads),
                     **({"count_include_pad": 1} if st.count_include_pad else {}))
        elif isinstance(st, Flatten):
            if len(st.in_shape) == 3:
                x = node("Flatten", [x], axis=1)
                perm = _hwc_to_chw(*st.in_shape)
        elif isinstance(st, OnnxFlatten):
            x = node("Flatten", [x], axis=1)
        elif isinstance(st, ConstAdd):
            v = st.value.transpose(2, 0, 1) if st.value.ndim == 3 else st.value
            x = node("Add", [x, const("C", v[None])])
        elif isinstance(st, Softmax):
            x = node("Softmax", [x], axis=-1)
        elif isinstance(st, ToNHWC | ToNCHW):
            continue
        else:
            raise SpecError(f"cannot export stage {type(st).__name__} to ONNX")
    nodes[-1].output[0] = "output"
    out_dims = list(net.stages[-1].out_shape)
    graph = helper.make_graph(nodes, net.name.replace(" ", "_"),
                              [helper.make_tensor_value_info("input", elem, ["N", *in_dims])],
                              [helper.make_tensor_value_info("output", elem, ["N", *out_dims])], inits)
    model = helper.make_model(graph, producer_name="cosim", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = min(model.ir_version, 8)  # readable by older runtimes
    onnx.checker.check_model(model)
    return model
