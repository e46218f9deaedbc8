"""Small Keras convolutional networks (MTCNN's PNet, RNet and ONet) as ONNX Runtime
sessions, built from the layers' own weights.

Only the layer types those networks use are translated: ``Conv2D``, ``PReLU``,
``MaxPooling2D``, ``Permute``, ``Flatten`` and ``Dense``, with linear or softmax
activations. The network is a chain of such layers ending in one head per model
output, each head reading the chain's last tensor. Every translated network is run
once against the Keras model on a probe input before it is used; a mismatch is an
:class:`OnnxMismatch`, never silently different detections.
"""
from __future__ import annotations

import numpy as np

OPSET = 17
TOLERANCE = 1e-4
"""Largest difference allowed between the Keras and the ONNX outputs on the probe."""


class OnnxMismatch(RuntimeError):
    """A network's ONNX translation does not compute what the Keras model computes."""


class _Graph:
    """Nodes and weights of the graph being built; tensors are NCHW until a Permute
    or Flatten puts them back in Keras' channels-last order."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.weights: list = []
        self._names = 0

    def name(self, hint: str) -> str:
        self._names += 1
        return f"{hint}_{self._names}"

    def const(self, hint: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.weights.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def op(self, kind: str, inputs: list[str], hint: str, **attributes) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(kind, inputs, [out], **attributes))
        return out


def _same_pads(size: int | None, kernel: int, stride: int) -> tuple[int, int] | None:
    """TensorFlow's "same" padding (the odd pixel after), or ``None`` when the size is
    unknown and ONNX's ``ceil_mode`` gives the same result (kernel equal to stride 2)."""
    if size is None:
        if kernel == stride == 2:
            return None
        raise OnnxMismatch(f"a {kernel}x{kernel}/{stride} 'same' max-pool needs a known input size")
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _layer(g: _Graph, layer, x: str, layout: str, size: int | None):
    """Emit one layer; returns the new tensor, its layout and its spatial size."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        if layer.strides != (1, 1) or layer.padding != "valid":
            raise OnnxMismatch(f"{layer.name}: only stride-1 'valid' convolutions are translated")
        kernel = layer.kernel.numpy().transpose(3, 2, 0, 1)
        x = g.op("Conv", [x, g.const("kernel", kernel), g.const("bias", layer.bias.numpy())], "conv")
        size = None if size is None else size - kernel.shape[2] + 1
        return _activation(g, layer, x, axis=1), layout, size
    if kind == "Dense":
        x = g.op("Gemm", [x, g.const("kernel", layer.kernel.numpy()), g.const("bias", layer.bias.numpy())],
                 "dense")
        return _activation(g, layer, x, axis=1), layout, size
    if kind == "PReLU":
        alpha = layer.alpha.numpy()
        slope = alpha.reshape(-1, 1, 1) if layout == "nchw" else alpha.reshape(-1)
        return g.op("PRelu", [x, g.const("alpha", slope)], "prelu"), layout, size
    if kind == "MaxPooling2D":
        (k, _), (s, _) = layer.pool_size, layer.strides
        if layer.padding == "valid":
            x = g.op("MaxPool", [x], "pool", kernel_shape=[k, k], strides=[s, s])
            return x, layout, None if size is None else (size - k) // s + 1
        pads = _same_pads(size, k, s)
        if pads is None:
            x = g.op("MaxPool", [x], "pool", kernel_shape=[k, k], strides=[s, s], ceil_mode=1)
        else:
            x = g.op("MaxPool", [x], "pool", kernel_shape=[k, k], strides=[s, s],
                     pads=[pads[0], pads[0], pads[1], pads[1]])
        return x, layout, None if size is None else -(-size // s)
    if kind == "Permute":
        to_nchw = {1: 2, 2: 3, 3: 1}  # Keras' (H, W, C) axes in an NCHW tensor
        return g.op("Transpose", [x], "permute", perm=[0] + [to_nchw[d] for d in layer.dims]), "keras", size
    if kind == "Flatten":
        if layout == "nchw":
            x = g.op("Transpose", [x], "nhwc", perm=[0, 2, 3, 1])
        return g.op("Flatten", [x], "flatten", axis=1), "flat", size
    raise OnnxMismatch(f"{layer.name}: layer type {kind} is not translated")


def _activation(g: _Graph, layer, x: str, axis: int) -> str:
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name == "linear":
        return x
    if name == "softmax":
        return g.op("Softmax", [x], "softmax", axis=axis)
    raise OnnxMismatch(f"{layer.name}: activation {name} is not translated")


def to_onnx(model, input_size: int | None) -> bytes:
    """The serialized ONNX model computing ``model`` (input NHWC float32,
    ``input_size`` x ``input_size`` or any size when ``None``; outputs as the model's,
    channels last), checked against Keras on a probe input (:class:`OnnxMismatch`)."""
    from onnx import TensorProto, helper

    probe_side = input_size or 37
    probe = np.random.default_rng(0).uniform(-1, 1, (2, probe_side, probe_side, 3)).astype(np.float32)
    expected = [np.asarray(o) for o in model(probe)]
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    chain, heads = layers[:-len(expected)], layers[-len(expected):]

    g = _Graph()
    x, layout, size = g.op("Transpose", ["input"], "nchw", perm=[0, 3, 1, 2]), "nchw", input_size
    for layer in chain:
        x, layout, size = _layer(g, layer, x, layout, size)
    outputs = []
    for k, head in enumerate(heads):
        y, head_layout, _ = _layer(g, head, x, layout, size)
        if head_layout == "nchw":
            y = g.op("Transpose", [y], "nhwc", perm=[0, 2, 3, 1])
        g.nodes.append(helper.make_node("Identity", [y], [f"output{k}"]))
        outputs.append(helper.make_tensor_value_info(f"output{k}", TensorProto.FLOAT, None))
    sides = [input_size, input_size] if input_size else ["h", "w"]
    graph = helper.make_graph(g.nodes, model.name, [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, ["n", *sides, 3])], outputs, g.weights)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]).SerializeToString()
    got = session(data, 1).run(None, {"input": probe})
    for k, (a, b) in enumerate(zip(got, expected)):
        if a.shape != b.shape or not np.allclose(a, b, atol=TOLERANCE, rtol=0):
            raise OnnxMismatch(f"{model.name} output {k}: ONNX {a.shape} differs from Keras {b.shape} "
                               f"(largest difference {np.abs(a - b).max() if a.shape == b.shape else 'n/a'})")
    return data


def session(model: bytes | str, threads: int = 1):
    """An ``onnxruntime.InferenceSession`` on the CPU for a serialized model (or the
    path of one), with ``threads`` intra-op threads that do not spin when idle."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def to_session(model, input_size: int | None, threads: int = 1):
    """:func:`to_onnx` as a ready session."""
    return session(to_onnx(model, input_size), threads)
