"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as a
Keras model: a 150x150 aligned face chip in, the 128-d descriptor out.

The weights ship in the optional package ``face_recognition_models`` (CC0 1.0);
install it with ``pip install 'siamese-verifier[dlib]'``. The file is read by
:mod:`verifier.dlib_format`; the wiring (which tensors residual adds join) is dlib's
``anet_type`` from its face recognition example, since the file does not store it.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from .dlib_format import DlibFormatError, Network, read_network_file
from .errors import BackboneError

log = logging.getLogger(__name__)

WEIGHTS_NAME = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
DESCRIPTOR_THRESHOLD = 0.6
"""dlib's own same-person distance threshold for these descriptors."""


def packaged_weights() -> Path:
    """The weights file inside ``face_recognition_models``."""
    try:
        import face_recognition_models
    except ImportError:
        raise BackboneError("the dlib-resnet backbone needs its weights from the optional extra: "
                            "pip install 'siamese-verifier[dlib]' (or pass --weights PATH to "
                            f"{WEIGHTS_NAME})") from None
    return Path(face_recognition_models.face_recognition_model_location())


def _conv_padding(settings: dict, explicit: bool = False) -> str:
    """``same`` where dlib's zero padding equals it (stride 1, odd kernel, pad = k // 2),
    else ``valid`` after an explicit pad.

    Why not always an explicit ``ZeroPadding2D``: TensorFlow's oneDNN graph pass fuses a
    ``Pad`` feeding a ``Conv2D`` and, in TF 2.21, intermittently crashes the process
    (segfault in ``MklLayoutRewritePass``) when it compiles such a graph.
    """
    s = settings
    if not explicit and (s["stride_y"], s["stride_x"]) == (1, 1) and s["rows"] % 2 and s["cols"] % 2 \
            and (s["pad_y"], s["pad_x"]) == (s["rows"] // 2, s["cols"] // 2):
        return "same"
    return "valid"


def _convolution(layers, layer, batch_norm, name: str, explicit_padding: bool):
    """A dlib convolution as Keras layers (a function of the tensor), its frozen batch
    norm (``batch_norm``, the ``affine`` layer after it, or ``None``) folded in."""
    w, b = layer.weights["filters"], layer.weights["bias"]
    if batch_norm is not None:
        g, beta = batch_norm.weights["gamma"], batch_norm.weights["beta"]
        w = w * g[:, None, None, None]
        b = b * g + beta
    s = layer.settings
    padding = _conv_padding(s, explicit_padding)
    pad = (layers.ZeroPadding2D(((s["pad_y"],) * 2, (s["pad_x"],) * 2))
           if padding == "valid" and (s["pad_y"] or s["pad_x"]) else None)
    conv = layers.Conv2D(s["num_filters"], (s["rows"], s["cols"]), strides=(s["stride_y"], s["stride_x"]),
                         padding=padding, name=name)

    def apply(x):
        x = conv(pad(x) if pad is not None else x)
        conv.set_weights([np.transpose(w, (2, 3, 1, 0)), b])
        return x
    return apply


def build_from_network(net: Network, name: str = "dlib_resnet", *, explicit_padding: bool = False):
    """Build the Keras model of a decoded dlib network (input: preprocessed chip).

    ``explicit_padding`` rebuilds the graph of releases before 0.2 (a ``ZeroPadding2D``
    before every padded convolution), for tests and benchmarks of the crash it caused."""
    import keras
    from keras import layers

    from .layers import PadAdd

    size = (net.input.settings["rows"], net.input.settings["cols"])
    inputs = keras.Input((*size, 3), name=f"{name}_input")
    x = inputs
    block_input = None
    pooled = None
    items = net.layers
    i = 0
    n_conv = 0
    while i < len(items):
        layer = items[i]
        if layer.name == "con":
            if block_input is None and i > 0:
                block_input = x  # dlib's tag1: the start of a residual block
            n_conv += 1
            batch_norm = items[i + 1] if i + 1 < len(items) and items[i + 1].name == "affine" else None
            x = _convolution(layers, layer, batch_norm, f"{name}_conv{n_conv}", explicit_padding)(x)
            i += batch_norm is not None
        elif layer.name == "affine":
            raise DlibFormatError("an affine layer that does not follow a convolution")
        elif layer.name == "relu":
            x = layers.ReLU()(x)
        elif layer.name == "max_pool":
            s = layer.settings
            x = layers.MaxPooling2D((s["rows"], s["cols"]), (s["stride_y"], s["stride_x"]),
                                    padding="valid")(x)
        elif layer.name == "avg_pool":
            s = layer.settings
            if s["rows"] == 0 and s["cols"] == 0:
                x = layers.GlobalAveragePooling2D()(x)
            else:  # the pooled shortcut of a downsampling block (dlib's skip1)
                if block_input is None:
                    raise DlibFormatError("a pooled shortcut outside a residual block")
                pooled = layers.AveragePooling2D((s["rows"], s["cols"]),
                                                 (s["stride_y"], s["stride_x"]),
                                                 padding="valid")(block_input)
        elif layer.name == "add_prev":
            shortcut = pooled if pooled is not None else block_input
            if shortcut is None:
                raise DlibFormatError("a residual add without a block start")
            x = PadAdd()([x, shortcut])
            block_input = pooled = None
        elif layer.name == "fc":
            dense = layers.Dense(layer.settings["num_outputs"], use_bias="bias" in layer.weights,
                                 name=f"{name}_fc")
            x = dense(x)
            dense.set_weights([layer.weights["kernel"]] +
                              ([layer.weights["bias"]] if "bias" in layer.weights else []))
        i += 1
    return keras.Model(inputs, x, name=name)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def build_dlib_resnet(weights: str | None = None, cache_dir: Path | None = None):
    """The Keras port of dlib's network. ``weights``: a path to the ``.dat`` file, or
    ``None``/``dlib``/``default`` for the packaged one. The converted weights are
    cached in ``cache_dir`` (keyed by the file's hash) and loaded from there later."""
    source = packaged_weights() if weights in (None, "", "dlib", "default") else Path(weights)
    if not source.is_file():
        raise BackboneError(f"dlib weights file {source} does not exist")
    digest = _file_digest(source)
    cached = Path(cache_dir) / f"dlib_resnet_{digest}.weights.h5" if cache_dir else None
    try:
        net = read_network_file(source)
    except DlibFormatError as exc:
        raise BackboneError(f"{source} is not a dlib face recognition network: {exc}") from None
    if cached is not None and cached.is_file():
        model = build_from_network(net)  # architecture; weights come from the cache
        try:
            model.load_weights(cached)
            return model
        except Exception as exc:  # a broken cache is rebuilt, never fatal
            log.warning("ignoring unreadable cache %s: %s", cached, exc)
    model = build_from_network(net)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.weights.h5")
        model.save_weights(tmp)
        os.replace(tmp, cached)
    return model


def has_padded_convolutions(model) -> bool:
    """Whether ``model`` (or a model nested in it) feeds a ``ZeroPadding2D`` straight
    into a convolution: the graph that crashes TensorFlow's oneDNN pass (see
    :func:`_conv_padding`). Branches saved by releases before 0.2 have it."""
    import keras

    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.ZeroPadding2D):
            for node in layer._outbound_nodes:
                if isinstance(node.operation, keras.layers.Conv2D):
                    return True
    return False
