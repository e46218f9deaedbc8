"""The backbone registry: name -> builder, input preprocessing and weights file.

``--weights`` takes ``imagenet`` (Keras downloads and caches the file), a path to a
local weights file, or ``none`` (random initialisation).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import BackboneError, WeightsDownloadError


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone (without its classification top)."""

    name: str
    preprocessing: str
    keras_name: str | None = None
    weights_file: str | None = None
    """The file Keras downloads for ``--weights imagenet`` (no top)."""
    default_size: int = 224
    face_network: bool = False
    """Already trained to tell faces apart: its output is a face embedding, and
    training starts from it (:data:`verifier.defaults.RECIPES`)."""

    def recipe(self) -> dict:
        """The training defaults for this backbone (head, fine-tune, augment, hard negatives)."""
        from .defaults import RECIPES

        return dict(RECIPES["face" if self.face_network else "generic"])


BACKBONES: dict[str, BackboneSpec] = {
    "vgg19": BackboneSpec("vgg19", "caffe", "VGG19",
                          "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "mobilenet_v2": BackboneSpec("mobilenet_v2", "tf", "MobileNetV2",
                                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"),
    "efficientnet_b0": BackboneSpec("efficientnet_b0", "raw", "EfficientNetB0",
                                    "efficientnetb0_notop.h5"),
    "resnet50": BackboneSpec("resnet50", "caffe", "ResNet50",
                             "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "tiny": BackboneSpec("tiny", "unit", default_size=64),
    "dlib-resnet": BackboneSpec("dlib-resnet", "dlib", default_size=150, face_network=True),
}


def default_weights(name: str) -> str:
    """What ``--weights`` means when not given: ImageNet for the Keras applications,
    dlib's own file for ``dlib-resnet``, random for ``tiny``."""
    return {"tiny": "none", "dlib-resnet": "dlib"}.get(name, "imagenet")


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise BackboneError(f"unknown backbone {name!r}; choose one of "
                            f"{', '.join(sorted(BACKBONES))}") from None


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights (``$KERAS_HOME/models``, default ``~/.keras/models``)."""
    try:
        from keras.src.backend.config import keras_home  # what get_file really uses
        home = keras_home()
    except ImportError:  # pragma: no cover - other Keras layouts
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def weights_file_name(spec: BackboneSpec, image_size: int) -> str | None:
    if spec.weights_file is None:
        return None
    # Keras ships MobileNetV2 weights for a few input sizes and falls back to 224.
    size = image_size if image_size in (96, 128, 160, 192, 224) else 224
    return spec.weights_file.format(size=size)


def _build_tiny(image_size: int):
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 3), name="tiny_input")
    x = inputs
    for i, filters in enumerate((16, 32, 64, 64)):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                          name=f"tiny_conv{i + 1}")(x)
    return keras.Model(inputs, x, name="tiny")


def build_backbone(name: str, *, weights: str = "default", image_size: int = 224,
                   cache_dir: Path | None = None):
    """Build a backbone without its top, taking preprocessed ``image_size`` inputs.

    Raises :class:`WeightsDownloadError` when ImageNet weights cannot be fetched
    (the message names the file, the cache folder and ``--weights PATH``) and
    :class:`BackboneError` for unknown names or unreadable weight files.
    """
    import keras

    spec = get_spec(name)
    source = (weights or "default").strip()
    if source == "default":
        source = default_weights(name)
    if name == "dlib-resnet":
        from .dlib_resnet import CHIP_SIZE, build_dlib_resnet

        if image_size != CHIP_SIZE:
            raise BackboneError(f"dlib-resnet takes {CHIP_SIZE}x{CHIP_SIZE} face chips; "
                                f"drop --image-size or pass {CHIP_SIZE}")
        if source == "none":
            raise BackboneError("dlib-resnet has no random initialisation here; use its own "
                                "weights (the default) or --weights PATH to a dlib .dat file")
        return build_dlib_resnet(None if source in ("dlib", "imagenet") else source, cache_dir)
    if name == "tiny":
        if source == "imagenet":
            raise BackboneError("the tiny backbone has no ImageNet weights; use --weights none or PATH")
        model = _build_tiny(image_size)
    else:
        ctor: Callable = getattr(keras.applications, spec.keras_name)
        shape = (image_size, image_size, 3)
        if source == "imagenet":
            try:
                model = ctor(include_top=False, weights="imagenet", input_shape=shape)
            except Exception as exc:  # Keras wraps every fetch failure in Exception
                fname = weights_file_name(spec, image_size)
                raise WeightsDownloadError(
                    f"could not download the ImageNet weights of {name} ({fname}): "
                    f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
                    f"Put that file into {keras_cache_dir()} (Keras' cache) and run again, "
                    f"or pass --weights PATH to a local copy, or --weights none to start "
                    f"from random weights.") from None
            return model
        model = ctor(include_top=False, weights=None, input_shape=shape)
    if source not in ("none", "imagenet"):
        path = Path(source).expanduser()
        if not path.is_file():
            raise BackboneError(f"weights file {path} does not exist; pass --weights imagenet, "
                                "none, or the path of a Keras weights file (.h5 / .weights.h5)")
        try:
            model.load_weights(str(path), skip_mismatch=False)
        except Exception as exc:
            raise BackboneError(f"cannot load weights {path} into {name}: {exc}") from None
    return model
