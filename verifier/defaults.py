"""Every default and every choice a user can set, written once.

The click options, :class:`jobs.train.TrainOptions`, the library functions, the
benchmarks and the plots read them from here. No heavy imports: the CLI imports
this module to build its ``--help``.
"""
from __future__ import annotations

BACKBONE_NAMES = ("vgg19", "mobilenet_v2", "efficientnet_b0", "resnet50", "tiny", "dlib-resnet")
DEFAULT_BACKBONE = "vgg19"
HEADS = ("adapter", "dense", "none")
"""``adapter``: a square linear layer on the backbone's embedding, started at the
identity and pulled back toward it (training starts from the face network's own
embedding); ``dense``: pooling + a new Dense(``--embedding-dim``) (the tutorial);
``none``: the backbone's output is the embedding."""
DETECTOR_SETTINGS = {
    "mtcnn-fast": {"min_face_size": 20 / 0.709, "nms_onet": 0.5},
    "mtcnn": {"min_face_size": 20},
    "mtcnn-30px": {"min_face_size": 30},
}
"""MTCNN's networks (the ``mtcnn`` package's weights) with the settings of each named
detector (:meth:`verifier.mtcnn_pipeline.MTCNNPipeline.detect`'s keywords).
``mtcnn`` is the package's own configuration, face for face. ``mtcnn-fast``, the
default, runs the package's image pyramid without its finest level (it starts at
20 / 0.709 = 28.2 px, the package's second level, so every other level is the
package's) and drops a face lying more than half inside a surer one (the package:
more than 0.7; a chin was taken for a second face). On the seed photos, their seven
degradations, face-free images and group photos it finds the faces ``mtcnn`` finds
and names the same people at the same threshold, in about 65% of the time
(``benchmarks/detector_settings.py`` compares settings, ``faces_speed.py`` and
``group_photos.py`` both detectors side by side; the figures are in
``docs/benchmarks.md``). ``mtcnn-30px`` is the package's settings from 30 px (other
levels: two faces of the group photos lost). A face under 40 px gets no name with
any of them (its quality is under the default floor, ``verifier.quality``)."""
YUNET = "yunet"
"""YuNet (:mod:`verifier.yunet`) finding the faces, ONet placing their landmarks. Not
the default: it finds more faces than ``mtcnn-fast`` on the degraded seed photos and
fewer on face-free images in about a third of the time, with no higher pair EER
(``benchmarks/faces_speed.py``, ``group_photos.py``), but the README's defaults
trained with it leave 2 of 144 clean known probes unnamed in
``benchmarks/open_set.py`` (revision 2; revision 1 also named a stranger), where
``mtcnn-fast`` names all 144, and 2 of 915 group faces (``docs/cli.md``)."""
DETECTORS = (YUNET, *DETECTOR_SETTINGS, "none")
DEFAULT_DETECTOR = "mtcnn-fast"
DEFAULT_PADDING = 0.25
"""Margin around the aligned face template (0.25 with 150 px gives dlib's chips)."""
AUGMENTATIONS = ("none", "flip", "degrade")
"""``flip``: mirrored photos; ``degrade``: mirrored photos and every degradation of
:mod:`verifier.degrade` (grayscale, side light, small faces, JPEG, blur, a band
over the eyes) applied to the whole photo, the face found again and aligned as a
query of such a photo would be, each cached once per photo."""
TTA = ("none", "flip")
DEFAULT_TTA = "flip"
"""Test-time augmentation: ``flip`` averages the embeddings of a face and its mirror
(one batch, twice the inputs). The default since `benchmarks/hard_photos.py` measured
a lower EER with it for dlib-resnet on the clean and the degraded seed photos
(``docs/training.md``); ``none`` embeds each face once."""
DEFAULT_FINE_TUNE = 0.10
"""Fraction of backbone layers left trainable for the ImageNet backbones (the tutorial's)."""

DEFAULT_MARGIN = 1.0
"""The contrastive loss's margin for a new head (the tutorial's)."""
FACE_MARGIN = 0.8
"""The margin for a face network's adapter: about the network's own mean distance
between different people (0.85 on the seed photos), so training pushes apart the
pairs near the threshold instead of spreading the easy ones beyond 1.0, which made
the threshold calibrated at the target rate stricter and left known people unnamed
(``docs/training.md``, measured with the folds of `benchmarks/open_set.py`)."""

RECIPES = {
    "face": {"head": "adapter", "fine_tune": 0.0, "augment": "degrade", "hard_negatives": 4,
             "margin": FACE_MARGIN},
    "generic": {"head": "dense", "fine_tune": DEFAULT_FINE_TUNE, "augment": "none",
                "hard_negatives": 0, "margin": DEFAULT_MARGIN},
}
"""What ``--head``, ``--fine-tune``, ``--augment``, ``--hard-negatives`` and
``--margin`` mean when not given: ``face`` for a backbone that is already a face
network (``dlib-resnet``: an identity adapter trained on degraded copies with hard
negatives, the network itself frozen), ``generic`` for the ImageNet backbones and
``tiny`` (the tutorial's Dense head on the last 10% of the layers, every pair)."""
ADAPTER_PULL = 0.01
"""Strength of the pull of an adapter toward the identity (times the squared
distance of its weights from it): measured on the seed photos, 0.001 let it learn
the trained people at strangers' cost, 0.1 barely moved it."""
TARGET_FAR = 1e-4
"""False-accept rate (per pair) the threshold is calibrated for at train time, on
validation pairs that share no photo with training; the rate at which the open-set
benchmark (`benchmarks/open_set.py`) names no stranger."""
MIN_TAIL_NEGATIVES = 10
"""Below this many expected false accepts (negatives x target FAR) the empirical
threshold is not trusted alone: a normal fitted to the impostor distances gives one
too, and the lower of the two is used."""
DEFAULT_EMBEDDING_DIM = 64
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 64
"""Photos per training step (two groups of 32; every pair among them is used)."""
DEFAULT_EMBED_BATCH_SIZE = 32
"""Photos per forward pass when embedding a gallery."""
PROTOCOLS = ("open-set", "seed", "image-disjoint", "identity-disjoint")
DEFAULT_PROTOCOL = "open-set"
"""Validation and test photos are never in training, and some people are held out
whole (so the threshold is calibrated on new photos and new people)."""
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
DEFAULT_TRAIN_SAMPLE = 262_144
"""Vectors an index type that needs training (IVF, PQ) is trained on, drawn at random."""
DEFAULT_MAX_FACES = 20
"""Faces reported per photo by `verifier detect` and ``/v1/detect``, largest first."""
DEFAULT_MIN_QUALITY = 0.2
"""The quality floor (0-1): a face under it is answered ``unknown`` with reason
``poor_quality`` by query, verify, the service and the page, is left out of
cluster suggestions, and is not enrolled by embed, the service or ``cluster name``
(``--min-quality`` moves it; 0 takes every face found). Chosen between the scores of
clean seed faces and of blurred faces and background patches taken for faces
(``docs/training.md``; `benchmarks/open_set.py` prints the answers per quality band)."""

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
CLUSTER_ALGORITHMS = ("incremental", "chinese-whispers")
"""`verifier cluster`: ``incremental`` gives each new face a group as it arrives and
continues the groups of the run before (:mod:`verifier.assignment`);
``chinese-whispers`` groups the run's faces anew as a whole (:mod:`verifier.clustering`)."""
DEFAULT_CLUSTER_ALGORITHM = "incremental"
DEFAULT_GROUP_CENTRE = 1.2
"""`verifier cluster` (incremental): how far from a group's centre a face may be and
still join it, as a multiple of the distance a face of the group's person would be
at the threshold (:meth:`verifier.assignment.Groups._near_centre`). Chosen on the seed
photos and the synthetic people of ``benchmarks/cluster_quality.py``."""
