"""Serializable Keras layers of this project (input preprocessing)."""
from __future__ import annotations

import keras
from keras import ops

# Per-backbone input conventions; every branch takes RGB pixels in [0, 255].
PREPROCESSING = ("caffe", "tf", "torch", "unit", "raw", "dlib")
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_DLIB_RGB_MEAN = (122.782, 117.001, 104.298)


@keras.saving.register_keras_serializable(package="verifier")
class Preprocess(keras.layers.Layer):
    """Map RGB pixels in [0, 255] to what a backbone was trained on.

    ``caffe``: BGR minus the ImageNet mean (VGG, ResNet50); ``tf``: [-1, 1]
    (MobileNetV2); ``torch``: ImageNet mean/std; ``unit``: [0, 1] (the tutorial and
    ``tiny``); ``raw``: unchanged (EfficientNet rescales inside); ``dlib``: dlib's
    ``(pixel - mean) / 256``.
    """

    def __init__(self, mode: str = "unit", **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in PREPROCESSING:
            raise ValueError(f"unknown preprocessing {mode!r}")
        self.mode = mode

    def call(self, x):
        x = ops.cast(x, "float32")
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(_CAFFE_BGR_MEAN)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            return (x / 255.0 - ops.convert_to_tensor(_TORCH_MEAN)) / ops.convert_to_tensor(_TORCH_STD)
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "dlib":
            return (x - ops.convert_to_tensor(_DLIB_RGB_MEAN)) / 256.0
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="verifier")
class PadAdd(keras.layers.Layer):
    """dlib's ``add_prev``: add two tensors, zero-padding the smaller one at the end of
    each axis (extra channels, extra bottom rows and right columns)."""

    def call(self, inputs):
        a, b = inputs
        shape = [max(int(x), int(y)) for x, y in zip(a.shape[1:], b.shape[1:])]

        def pad(t):
            amounts = [[0, 0]] + [[0, s - int(d)] for s, d in zip(shape, t.shape[1:])]
            return ops.pad(t, amounts) if any(p[1] for p in amounts) else t

        return pad(a) + pad(b)

    def compute_output_shape(self, input_shapes):
        a, b = input_shapes
        return (a[0],) + tuple(max(x, y) for x, y in zip(a[1:], b[1:]))


@keras.saving.register_keras_serializable(package="verifier")
class TowardIdentity(keras.regularizers.Regularizer):
    """``strength`` times the squared distance of a square kernel from the identity."""

    def __init__(self, strength: float = 0.01) -> None:
        self.strength = float(strength)

    def __call__(self, kernel):
        eye = ops.eye(kernel.shape[0], kernel.shape[1], dtype=kernel.dtype)
        return self.strength * ops.sum(ops.square(kernel - eye))

    def get_config(self) -> dict:
        return {"strength": self.strength}


@keras.saving.register_keras_serializable(package="verifier")
class Adapter(keras.layers.Layer):
    """``x @ W + b`` with ``W`` square, started at the identity and ``b`` at zero, so an
    untrained adapter returns the face network's own embedding unchanged; training
    is pulled back toward it (``pull``, :class:`TowardIdentity`, and the same on
    ``b``), so a few dozen photos adjust the embedding instead of replacing it."""

    def __init__(self, pull: float = 0.01, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pull = float(pull)

    def build(self, input_shape) -> None:
        dim = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(dim, dim), initializer="identity",
                                      regularizer=TowardIdentity(self.pull))
        self.bias = self.add_weight(name="bias", shape=(dim,), initializer="zeros",
                                    regularizer=keras.regularizers.L2(self.pull))

    def call(self, x):
        return ops.matmul(x, self.kernel) + self.bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "pull": self.pull}
