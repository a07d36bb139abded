"""Networks in and out of ONNX: pretrained models load as cosim networks, cosim's own save as ONNX.

:func:`load_onnx` turns a *sequential* ONNX graph (every compute node reads the previous node's
output and constants) into a :class:`~cosim.train.networks.Network` and its float weight
matrices, ready to be deployed onto tiles. Supported operators:

- ``Gemm`` (alpha, beta, transB; not transA), ``MatMul`` with a constant right operand: a dense
  layer; ``Conv`` (group 1, dilation 1, any kernel, strides and pads; auto_pad NOTSET/VALID): a
  convolution as a matrix product on patches. Their weights become crossbar matrices.
- ``Add`` of a constant: folded into the bias row of the weight layer right before it when it is
  per output channel, else a digital addition; ``BatchNormalization`` (inference mode) folded
  into the preceding weight layer: W' = W·s, b' = (b − mean)·s + β with s = γ/√(var + ε).
- ``Relu`` (and ``Tanh``, ``Sigmoid``, which cosim's own networks use), ``MaxPool`` /
  ``AveragePool`` (kernel, strides, pads, count_include_pad; ceil_mode 0), ``Flatten`` (axis 1),
  ``Reshape`` to (batch, features), ``Softmax`` over the features; ``Constant`` nodes as inputs.

Anything else is refused with one line naming the node and its operator. A bias becomes one
more crossbar row driven at :data:`~cosim.train.networks.BIAS_INPUT`, as in training.

:func:`save_onnx` writes a cosim network with its weights (the float reference or the weights
read back from trained devices) as an ONNX model that loads here, in the reference evaluator
and in ONNX runtimes. Both use the ``onnx`` package (a dependency), imported only when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import InputError, SpecError
from cosim.io import atomic_path
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
from cosim.train.networks.stages import Activation, Dense

SUPPORTED = ("Gemm", "MatMul", "Add", "Conv", "Relu", "Tanh", "Sigmoid", "MaxPool", "AveragePool", "Flatten",
             "Reshape", "Softmax", "BatchNormalization", "Constant")
_ACT = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid"}


def _onnx():
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401
    except ImportError:
        raise SpecError("ONNX models need the 'onnx' package (a cosim dependency): pip install onnx") from None
    return onnx


@dataclass
class LoadedModel:
    """A network from ONNX: its stages, one float (rows, cols) matrix per weight layer (bias row
    last when it has one), where it came from and its producer."""

    network: Network
    weights: list[np.ndarray]
    source: str
    producer: str = ""


@dataclass
class _Weight:
    kind: str  # "dense" | "conv"
    w: np.ndarray  # (n_in, n_out) matrix, rows in patch order for conv
    b: np.ndarray | None
    in_shape: tuple[int, ...]
    attrs: dict


class _Builder:
    def __init__(self, where: str, shape: tuple[int, ...]) -> None:
        self.where = where
        self.items: list[Any] = []
        self.shape = shape  # internal layout: (F,) or (H, W, C)
        self.pending: _Weight | None = None  # weight layer whose output is the current tensor

    def fail(self, node, msg: str) -> SpecError:
        return SpecError(f"{self.where}: node {node.name or '(unnamed)'!r} ({node.op_type}): {msg}")

    def image(self, node) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise self.fail(node, f"needs an image (N, C, H, W) input, got features {self.shape}")
        return self.shape

    def add_weight(self, rec: _Weight, out_shape: tuple[int, ...]) -> None:
        self.items.append(rec)
        self.pending = rec
        self.shape = out_shape

    def add_stage(self, stage) -> None:
        self.items.append(stage)
        self.pending = None
        self.shape = tuple(stage.out_shape)


def _attrs(onnx, node) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads(b: _Builder, node, a: dict, kernel: tuple[int, int]) -> tuple[int, int, int, int]:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "VALID"):
        raise b.fail(node, f"auto_pad {auto} is not supported (use explicit pads)")
    pads = tuple(int(p) for p in a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else (0, 0, 0, 0)
    if len(pads) != 4 or min(pads) < 0:
        raise b.fail(node, f"needs 4 non-negative 2-D pads, got {pads}")
    return pads


def _window(b: _Builder, node, a: dict, kernel) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    kernel = tuple(int(k) for k in kernel)
    if len(kernel) != 2:
        raise b.fail(node, f"only 2-D kernels are supported, got {kernel}")
    strides = tuple(int(s) for s in a.get("strides", (1, 1)))
    if any(int(d) != 1 for d in a.get("dilations", (1, 1))):
        raise b.fail(node, "dilations other than 1 are not supported")
    return kernel, strides, _pads(b, node, a, kernel)


def _per_channel(c: np.ndarray, n: int, image: bool) -> np.ndarray | None:
    """The constant as a per-output-channel vector (n,), or None if it varies otherwise."""
    c = np.asarray(c, dtype=float)
    if c.size == 1:
        return np.full(n, float(c.reshape(-1)[0]))
    shape = (n, 1, 1) if image else (n,)
    squeezed = c.reshape(c.shape[c.ndim - len(shape):]) if c.ndim > len(shape) and all(
        s == 1 for s in c.shape[:c.ndim - len(shape)]) else c
    return squeezed.reshape(n) if squeezed.shape == shape else None


def _node(onnx, b: _Builder, node, const: dict[str, np.ndarray], opset: int) -> None:
    op, a = node.op_type, _attrs(onnx, node)
    args = [const.get(i) for i in node.input[1:]]
    if op in ("Gemm", "MatMul"):
        if len(b.shape) != 1:
            raise b.fail(node, f"needs a (batch, features) input, got an image {b.shape}; add a Flatten")
        w = args[0]
        if w is None or w.ndim != 2:
            raise b.fail(node, "the second operand must be a constant 2-D weight matrix")
        if op == "Gemm":
            if a.get("transA", 0):
                raise b.fail(node, "transA = 1 is not supported")
            w = (w.T if a.get("transB", 0) else w) * float(a.get("alpha", 1.0))
        if w.shape[0] != b.shape[0]:
            raise b.fail(node, f"weights have {w.shape[0]} rows for {b.shape[0]} input features")
        bias = None
        if op == "Gemm" and len(args) > 1 and node.input[2]:
            if args[1] is None:
                raise b.fail(node, "the bias C must be a constant")
            bias = _per_channel(args[1], w.shape[1], False)
            if bias is None:
                raise b.fail(node, f"bias of shape {args[1].shape} is not per output feature")
            bias = bias * float(a.get("beta", 1.0))
        b.add_weight(_Weight("dense", w, bias, b.shape, {}), (w.shape[1],))
    elif op == "Conv":
        h, wd, c = b.image(node)
        w = args[0]
        if w is None or w.ndim != 4:
            raise b.fail(node, "the weights must be a constant (C_out, C_in, kh, kw) tensor")
        if int(a.get("group", 1)) != 1:
            raise b.fail(node, "grouped convolutions are not supported")
        if w.shape[1] != c:
            raise b.fail(node, f"weights expect {w.shape[1]} input channels, the input has {c}")
        kernel, strides, pads = _window(b, node, a, w.shape[2:])
        stage = OnnxConv((h, wd, c), w.shape[0], kernel, strides, pads, bias=False)
        mat = w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0])
        bias = args[1] if len(args) > 1 and node.input[2] else None
        if bias is not None and bias.shape != (w.shape[0],):
            raise b.fail(node, f"bias must have shape ({w.shape[0]},), got {bias.shape}")
        b.add_weight(_Weight("conv", mat, bias, (h, wd, c), {"kernel": kernel, "strides": strides, "pads": pads}),
                     stage.out_shape)
    elif op == "Add":
        dyn = [i for i in node.input if i not in const]
        other = next((const[i] for i in node.input if i in const), None)
        if len(dyn) != 1 or other is None:
            raise b.fail(node, "only the addition of a constant is supported")
        image = len(b.shape) == 3
        rec = b.pending
        vec = _per_channel(other, b.shape[-1], image) if rec is not None else None
        if rec is not None and vec is not None:
            rec.b = vec if rec.b is None else rec.b + vec
            return
        try:
            full = np.broadcast_to(other, (1, b.shape[2], b.shape[0], b.shape[1]) if image else (1, *b.shape))[0]
        except ValueError:
            raise b.fail(node, f"constant of shape {other.shape} does not broadcast to the tensor") from None
        b.add_stage(ConstAdd(b.shape, full.transpose(1, 2, 0) if image else full))
    elif op == "BatchNormalization":
        rec = b.pending
        if rec is None:
            raise b.fail(node, "only a BatchNormalization right after a Conv/Gemm/MatMul can be folded into it")
        if a.get("training_mode", 0):
            raise b.fail(node, "training_mode = 1 is not an inference graph")
        if any(x is None for x in args[:4]):
            raise b.fail(node, "scale, B, mean and var must be constants")
        gamma, beta, mean, var = (np.asarray(x, dtype=float).reshape(-1) for x in args[:4])
        s = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        rec.w = rec.w * s
        rec.b = ((rec.b if rec.b is not None else 0.0) - mean) * s + beta
    elif op in _ACT:
        b.add_stage(Activation(b.shape, _ACT[op]))
    elif op in ("MaxPool", "AveragePool"):
        shape = b.image(node)
        if a.get("ceil_mode", 0):
            raise b.fail(node, "ceil_mode = 1 is not supported")
        if a.get("storage_order", 0):
            raise b.fail(node, "storage_order = 1 is not supported")
        if len(node.output) > 1 and node.output[1]:
            raise b.fail(node, "the Indices output is not supported")
        kernel, strides, pads = _window(b, node, a, a.get("kernel_shape", ()))
        b.add_stage(OnnxPool(shape, "max" if op == "MaxPool" else "avg", kernel, strides, pads,
                             bool(a.get("count_include_pad", 0))))
    elif op == "Flatten":
        if int(a.get("axis", 1)) != 1:
            raise b.fail(node, f"only axis 1 (keep the batch) is supported, got {a.get('axis')}")
        if len(b.shape) > 1:
            b.add_stage(OnnxFlatten(b.shape))
    elif op == "Reshape":
        target = args[0]
        n = int(np.prod(b.shape))
        if target is None or target.ndim != 1:
            raise b.fail(node, "the target shape must be a constant")
        t = [int(v) for v in target]
        if not (len(t) == 2 and (t[1] == n or t == [0, -1])):
            raise b.fail(node, f"only a reshape to (batch, {n}) is supported, got {t}")
        if len(b.shape) > 1:
            b.add_stage(OnnxFlatten(b.shape))
    elif op == "Softmax":
        axis = int(a.get("axis", -1 if opset >= 13 else 1))
        if len(b.shape) != 1 or axis not in (1, -1):
            raise b.fail(node, "only a softmax over the features of (batch, features) is supported")
        b.add_stage(Softmax(b.shape))
    else:
        raise b.fail(node, f"operator not supported (cosim loads {', '.join(SUPPORTED)})")


def load_onnx(path: str | Path) -> LoadedModel:
    """The network and float weights of the ONNX model at ``path`` (see the module docstring)."""
    onnx = _onnx()
    where = str(path)
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except FileNotFoundError:
        raise InputError(f"ONNX model not found: {where}") from None
    except Exception as exc:  # onnx raises its own types (DecodeError, ValidationError …)
        raise InputError(f"{where}: not a valid ONNX model: {' '.join(str(exc).split())[:200]}") from None
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    const = {t.name: onnx.numpy_helper.to_array(t).astype(float) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in const]
    if len(inputs) != 1 or len(g.output) != 1:
        raise SpecError(f"{where}: cosim loads models with one input and one output, got {len(inputs)} and {len(g.output)}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)[1:]
    if len(shape) not in (1, 3) or any(s is None or s < 1 for s in shape):
        raise SpecError(f"{where}: input {inputs[0].name!r} must be (N, features) or (N, C, H, W) with known sizes, "
                        f"got {tuple(d.dim_value or d.dim_param for d in dims)}")
    b = _Builder(where, shape if len(shape) == 1 else (shape[1], shape[2], shape[0]))
    if len(shape) == 3:
        b.items.append(ToNHWC(shape))
    current = inputs[0].name
    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            raise b.fail(node, f"operator of domain {node.domain!r} not supported")
        if node.op_type == "Constant":
            a = _attrs(onnx, node)
            if "value" not in a:
                raise b.fail(node, "only Constant nodes with a tensor 'value' are supported")
            const[node.output[0]] = onnx.numpy_helper.to_array(a["value"]).astype(float)
            continue
        dyn = [i for i in node.input if i and i not in const]
        if dyn != [current]:
            raise b.fail(node, f"reads {dyn}, not just the previous output {current!r}: only sequential "
                               "networks are supported")
        _node(onnx, b, node, const, opset)
        current = node.output[0]
    if current != g.output[0].name:
        raise SpecError(f"{where}: the graph output {g.output[0].name!r} is not the last node's output")
    return _finish(b, where, model.producer_name)


def _finish(b: _Builder, where: str, producer: str) -> LoadedModel:
    stages, weights = [], []
    for item in b.items:
        if isinstance(item, _Weight):
            bias = item.b is not None
            if item.kind == "dense":
                stage = Dense(item.w.shape[0], item.w.shape[1], bias=bias)
            else:
                stage = OnnxConv(item.in_shape, item.w.shape[1], bias=bias, **item.attrs)
            weights.append(np.vstack([item.w, item.b[None, :]]) if bias else item.w.copy())
            stages.append(stage)
        else:
            stages.append(item)
    if len(b.shape) == 3:
        stages.append(ToNCHW(b.shape))
    if not weights:
        raise SpecError(f"{where}: the model has no weight layer (Gemm, MatMul or Conv) to put on a crossbar")
    acts = {s.kind for s in stages if isinstance(s, Activation)}
    out = stages[-1].out_shape
    net = Network(stages, name=f"onnx {Path(where).name}", input_shape=stages[0].in_shape,
                  n_classes=int(np.prod(out)), activation=acts.pop() if len(acts) == 1 else "relu")
    return LoadedModel(network=net, weights=weights, source=where, producer=producer)


def save_onnx(path: str | Path, network: Network, weights: list[np.ndarray], *, dtype: Any = np.float32) -> Path:
    """Write ``network`` with ``weights`` as an ONNX model at ``path`` (atomically); returns it."""
    from cosim.train.onnx_export import network_to_onnx

    onnx = _onnx()
    model = network_to_onnx(network, weights, dtype=dtype)
    path = Path(path)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path
