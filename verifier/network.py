"""The Siamese network: a branch (preprocess -> backbone -> pooling -> Dense) shared
by two inputs, joined by the euclidean distance.

The branch is built as ``frozen`` (preprocessing plus the non-trainable prefix of the
backbone) followed by ``head`` (the trainable tail of the backbone, global average
pooling, Dense). The fast trainer caches ``frozen`` outputs once per photo and only
runs ``head`` in training steps; ``model`` chains both and is what gets saved.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import layers

from .defaults import ADAPTER_PULL, DEFAULT_EMBEDDING_DIM, DEFAULT_FINE_TUNE, HEADS
from .backbones import build_backbone, get_spec
from .errors import BackboneError
from .layers import Adapter, Preprocess
from .losses import euclidean_distance



@dataclass
class Branch:
    """A built branch and its frozen / trainable parts."""

    model: keras.Model
    frozen: keras.Model
    head: keras.Model
    backbone_layers: int
    trainable_layers: int
    cut_layer: str


def trainable_layer_count(n_layers: int, fine_tune: float) -> int:
    """Layers left trainable for a fraction ``fine_tune`` of ``n_layers``.

    As the tutorial, the first ``int(n * (1 - fine_tune))`` layers are frozen
    (VGG19's 22 layers and 0.10 leave the last 3 trainable).
    """
    if not 0.0 <= fine_tune <= 1.0:
        raise BackboneError(f"--fine-tune must be between 0 and 1, got {fine_tune}")
    if fine_tune == 0.0:
        return 0
    return n_layers - int(math.floor(n_layers * (1.0 - fine_tune) + 1e-9))


def _cut_index(backbone: keras.Model, wanted: int) -> int:
    """Index of the first trainable layer: the largest cut at or before
    ``len(layers) - wanted`` across which a single tensor flows."""
    model_layers = backbone.layers
    n = len(model_layers)
    if wanted <= 0:
        return n
    for k in range(n - wanted, 0, -1):
        before = {id(layer) for layer in model_layers[:k]}
        crossing = set()
        for layer in model_layers[k:]:
            for node in layer._inbound_nodes:
                for tensor in node.input_tensors:
                    source = tensor._keras_history.operation
                    if id(source) in before:
                        crossing.add(id(tensor))
        if len(crossing) == 1:
            return k
    return 1


def build_branch(backbone: str = "vgg19", *, weights: str = "default", image_size: int = 224,
                 embedding_dim: int = DEFAULT_EMBEDDING_DIM,
                 fine_tune: float = DEFAULT_FINE_TUNE, head: str = "dense",
                 cache_dir=None, pull: float = ADAPTER_PULL) -> Branch:
    """Build a branch whose first part is frozen and last part trainable.

    ``head="none"`` uses the backbone's own output (pooled if spatial) as the
    embedding, with no Dense layer; ``head="adapter"`` puts an :class:`Adapter`
    (the identity at first, pulled toward it with ``pull``) on that output."""
    if head not in HEADS:
        raise BackboneError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    spec = get_spec(backbone)
    base = build_backbone(backbone, weights=weights, image_size=image_size, cache_dir=cache_dir)
    n_layers = len(base.layers)
    cut = _cut_index(base, trainable_layer_count(n_layers, fine_tune))
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= cut

    pixels = keras.Input((image_size, image_size, 3), name="pixels")
    prepped = Preprocess(spec.preprocessing, name="preprocess")(pixels)
    if cut >= n_layers:
        cut_tensor, tail = base.output, None
    elif cut <= 1:
        cut_tensor, tail = base.input, base
    else:
        cut_tensor = base.layers[cut].input
        tail = keras.Model(cut_tensor, base.output, name="tail")
    if tail is base:
        frozen = keras.Model(pixels, prepped, name="frozen")
    else:
        prefix = keras.Model(base.input, cut_tensor, name="prefix")
        prefix.trainable = False
        frozen = keras.Model(pixels, prefix(prepped), name="frozen")

    features = keras.Input(tuple(cut_tensor.shape[1:]), name="features")
    x = tail(features) if tail is not None else features
    x = layers.GlobalAveragePooling2D(name="pool")(x) if len(x.shape) == 4 else x
    if head == "dense":
        x = layers.Dense(embedding_dim, name="embedding")(x)
    elif head == "adapter":
        x = Adapter(pull, name="adapter")(x)
    head_model = keras.Model(features, x, name="head")
    model = keras.Model(pixels, head_model(frozen(pixels)), name="branch")
    cut_name = base.layers[cut].name if cut < n_layers else "(none)"
    return Branch(model, frozen, head_model, n_layers, n_layers - cut, cut_name)


def build_siamese(branch: keras.Model) -> keras.Model:
    """Two inputs sharing ``branch``; output = euclidean distance of the embeddings."""
    shape = tuple(branch.input.shape[1:])
    a = keras.Input(shape, name="photo_a")
    b = keras.Input(shape, name="photo_b")
    ea, eb = branch(a), branch(b)
    distance = layers.Lambda(lambda t: euclidean_distance(t[0], t[1]), name="distance",
                             output_shape=(None,))([ea, eb])
    return keras.Model([a, b], distance, name="siamese")


def inference_function(model: keras.Model):
    """``model`` in inference mode as one compiled graph for every batch size, so a
    last, smaller batch does not trigger a retrace (which costs seconds)."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, *model.input.shape[1:]], tf.float32)

    @tf.function(input_signature=[spec], autograph=False)
    def run(x):
        return model(x, training=False)

    return lambda x: run(tf.convert_to_tensor(x, dtype=tf.float32)).numpy()
