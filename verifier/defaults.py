"""Every default and every choice a user can set, written once.

The click options, :class:`jobs.train.TrainOptions`, the library functions, the
benchmarks and the plots read them from here. No heavy imports: the CLI imports
this module to build its ``--help``.
"""
from __future__ import annotations

BACKBONE_NAMES = ("vgg19", "mobilenet_v2", "efficientnet_b0", "resnet50", "tiny", "dlib-resnet")
DEFAULT_BACKBONE = "vgg19"
HEADS = ("dense", "none")
DEFAULT_HEAD = "dense"
DETECTORS = ("mtcnn", "none")
DEFAULT_DETECTOR = "mtcnn"
DEFAULT_PADDING = 0.25
"""Margin around the aligned face template (0.25 with 150 px gives dlib's chips)."""
AUGMENTATIONS = ("none", "flip")
TTA = ("none", "flip")
DEFAULT_TTA = "flip"
"""Test-time augmentation: ``flip`` averages the embeddings of a face and its mirror
(one batch, twice the inputs). The default since `benchmarks/hard_photos.py`:
dlib-resnet's EER on the degraded seed photos 7.92% -> 7.27% and on the clean seed
pairs 0.64% -> 0.42%; ``none`` embeds each face once."""
DEFAULT_FINE_TUNE = 0.10
DEFAULT_EMBEDDING_DIM = 64
DEFAULT_MARGIN = 1.0
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 64
"""Photos per training step (two groups of 32; every pair among them is used)."""
DEFAULT_EMBED_BATCH_SIZE = 32
"""Photos per forward pass when embedding a gallery."""
PROTOCOLS = ("seed", "image-disjoint", "identity-disjoint")
DEFAULT_PROTOCOL = "seed"
DEFAULT_SEED = 0
DEFAULT_MAX_PIXELS = 50_000_000
"""Photos with more pixels (width x height) are refused."""
TUTORIAL_THRESHOLD = 0.5
"""The tutorial's fixed distance threshold, reported beside the calibrated one."""
REPORT_FORMATS = ("html", "csv", "json")
DEFAULT_REPORT_FORMAT = "html"
DATASETS = ("seed-faces", "lfw")
"""Data sets `verifier datasets fetch` knows."""
DEFAULT_K = 5
"""Identities listed by a query."""
DEFAULT_MAX_FACES = 20
"""Faces reported per photo by `verifier detect` and ``/v1/detect``, largest first."""
DEFAULT_MIN_QUALITY = 0.0
"""The face quality (0-1) an enrollment needs; 0 accepts every face found
(``--min-quality`` raises it for `embed` and `serve`)."""

INFERENCE_ENGINES = ("onnx", "keras")
DEFAULT_INFERENCE_ENGINE = "onnx"
"""What runs a model version's branch: ONNX Runtime on its exported ``branch.onnx``
(no TensorFlow), or Keras on ``branch.keras`` (TensorFlow). The environment
variable ``VERIFIER_ENGINE`` overrides it, for comparison or as a fallback."""

DEFAULT_NEIGHBOURS = 30
"""`verifier cluster`: neighbours per face in the k-nearest-neighbour graph (a person
with more photos stays connected through chains of neighbours)."""
DEFAULT_MIN_SIZE = 2
"""`verifier cluster`: groups smaller than this are reported as unclustered."""
