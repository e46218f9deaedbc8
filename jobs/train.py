"""The train use case: scan a face folder, build pairs, train, save a model version."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from storage.files import atomic_folder, write_json_atomic
from storage.workspace import Workspace, check_model_name
from verifier import defaults as d
from verifier.faces import cache_name
from verifier.images import Dataset, scan_dataset
from verifier.pairs import PairSet, make_pairs
from verifier.preparation import FaceStatus, PhotoPreparer

from .progress import bar
from .selection import choose_and_calibrate


@dataclass
class TrainOptions:
    """Everything ``verifier train`` accepts; defaults are the tutorial's."""

    data: Path
    backbone: str = d.DEFAULT_BACKBONE
    weights: str = "default"
    head: str | None = None
    """``None``: the backbone's recipe (:data:`verifier.defaults.RECIPES`), as
    ``fine_tune``, ``augment``, ``hard_negatives`` and ``margin``."""
    detector: str = d.DEFAULT_DETECTOR
    face_padding: float = d.DEFAULT_PADDING
    require_face: bool = False
    augment: str | None = None
    tta: str = d.DEFAULT_TTA
    fine_tune: float | None = None
    hard_negatives: int | None = None
    target_far: float = d.TARGET_FAR
    keep_trained: bool = False
    """Save the trained model even when it is not better than the starting network."""
    image_size: int | None = None
    embedding_dim: int = d.DEFAULT_EMBEDDING_DIM
    margin: float | None = None
    epochs: int = d.DEFAULT_EPOCHS
    batch_size: int = d.DEFAULT_BATCH_SIZE
    seed: int = d.DEFAULT_SEED
    protocol: str = d.DEFAULT_PROTOCOL
    patience: int | None = None
    name: str | None = None
    max_pixels: int = d.DEFAULT_MAX_PIXELS


    def resolved(self) -> "TrainOptions":
        """These options with every ``None`` replaced by the backbone's recipe."""
        from dataclasses import replace

        from verifier.backbones import get_spec

        recipe = get_spec(self.backbone).recipe()
        return replace(self, **{k: v for k, v in recipe.items() if getattr(self, k) is None})


@dataclass
class TrainResult:
    name: str
    path: Path
    dataset: Dataset
    pairs: PairSet
    history: dict
    seconds: dict = field(default_factory=dict)
    trainable_layers: int = 0
    backbone_layers: int = 0
    selection: dict = field(default_factory=dict)
    """The starting and the trained model on validation, and which one was saved."""
    threshold: float | None = None
    threshold_rule: str = ""


def _detect_all(dataset: Dataset, preparer: PhotoPreparer, quiet: bool,
                echo: Callable[[str], None]) -> None:
    """Detect faces once per photo (cached by content); with ``require_face`` the
    photos without one leave the dataset, recorded as skipped."""
    from verifier.images import Skipped

    counts: dict[str, int] = {}
    kept = []
    with bar(len(dataset.photos), "detecting faces", quiet=quiet) as progress:
        for photo in dataset.photos:
            status = preparer.face_status(photo.path)
            if status is FaceStatus.NO_FACE and preparer.require_face:
                dataset.skipped.append(Skipped(photo.path, "no_face"))
            else:
                kept.append(photo)
            counts[status] = counts.get(status, 0) + 1
            progress.update(1)
    dataset.photos = kept
    if not kept:
        from verifier.errors import DatasetError

        raise DatasetError(f"no photo under {dataset.root} has a face the detector can find; "
                           "drop --require-face to use whole photos, or use --detector none")
    echo(f"faces ({preparer.detector}): " + ", ".join(f"{v} {k.replace('_', ' ')}"
                                                      for k, v in sorted(counts.items())))


def _default_name(backbone: str) -> str:
    return f"{backbone}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def train(ws: Workspace, opts: TrainOptions, *, quiet: bool = False,
          echo: Callable[[str], None] = print, database=None) -> TrainResult:
    """Train a Siamese branch on ``opts.data`` and save it as a model version.

    Nothing is written to the workspace until training has finished: an
    interruption leaves no half-written version. Stages: scan (photos, faces,
    pairs), features (the frozen backbone, once per photo), fit (the head), save.
    """
    import keras

    from verifier.backbones import default_weights, get_spec
    from verifier.network import build_branch

    opts = opts.resolved()
    spec = get_spec(opts.backbone)
    size = opts.image_size or spec.default_size
    name = check_model_name(opts.name or _default_name(opts.backbone))
    if ws.model_dir(name).exists():
        from storage.errors import WorkspaceError
        raise WorkspaceError(f"model version {name!r} already exists in {ws.root}; "
                             "choose another --name")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dataset, preparer, pairs = _scan(ws, opts, size, quiet, echo)
    timings["scan"] = time.perf_counter() - t0

    keras.utils.set_random_seed(opts.seed)
    weights = default_weights(opts.backbone) if opts.weights == "default" else opts.weights
    branch = build_branch(opts.backbone, weights=weights, image_size=size,
                          embedding_dim=opts.embedding_dim, fine_tune=opts.fine_tune,
                          head=opts.head, cache_dir=ws.cache_dir)
    trains = (f"{branch.trainable_layers} of {branch.backbone_layers} backbone layers trainable "
              f"(from {branch.cut_layer})" if branch.trainable_layers else "backbone frozen")
    echo(f"{opts.backbone}: {trains}, head {opts.head}; input {size}x{size}")
    t1 = time.perf_counter()
    views, rows = _features(ws, opts, dataset, preparer, pairs, branch, quiet)
    timings["features"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    start_weights = branch.head.get_weights()
    history, trainer = _fit(opts, branch, views, rows, pairs, echo)
    timings["train"] = time.perf_counter() - t2
    chosen = choose_and_calibrate(trainer, start_weights, views, rows, pairs, dataset, opts, echo)

    config = _config(name, opts, weights, spec, size, branch, chosen, pairs)
    _save(ws, name, branch, dataset, pairs, history, timings, config, database)
    timings["total"] = time.perf_counter() - t0
    echo(f"saved model version {name} to {ws.model_dir(name)}")
    return TrainResult(name, ws.model_dir(name), dataset, pairs, history.as_dict(), timings,
                       branch.trainable_layers, branch.backbone_layers, chosen.selection,
                       chosen.threshold, chosen.rule)


def _config(name: str, opts: TrainOptions, weights: str | None, spec, size: int, branch,
            chosen, pairs: PairSet) -> dict:
    """The config saved with a model version: how it was trained and calibrated."""
    import keras

    return {
        "name": name, "created": datetime.now(timezone.utc).isoformat(),
        "backbone": opts.backbone, "weights": weights, "preprocessing": spec.preprocessing,
        "head": opts.head, "detector": opts.detector, "face_padding": opts.face_padding,
        "require_face": opts.require_face, "augment": opts.augment, "tta": opts.tta,
        "image_size": size, "embedding_dim": int(branch.model.output.shape[-1]), "margin": opts.margin,
        "fine_tune": opts.fine_tune, "trainable_layers": branch.trainable_layers,
        "cut_layer": branch.cut_layer, "epochs": opts.epochs, "batch_size": opts.batch_size,
        "protocol": opts.protocol, "seed": opts.seed, "patience": opts.patience,
        "hard_negatives": opts.hard_negatives, "selection": chosen.selection,
        "threshold": chosen.threshold, "threshold_rule": chosen.rule, "target_far": opts.target_far,
        "data_root": str(Path(opts.data).resolve()),
        "pair_counts": pairs.counts(), "keras_version": keras.__version__,
    }


def _scan(ws: Workspace, opts: TrainOptions, size: int, quiet: bool,
          echo: Callable[[str], None]) -> tuple[Dataset, PhotoPreparer, PairSet]:
    """The photos of ``opts.data`` (faces detected once each) and their pair splits."""
    dataset = scan_dataset(opts.data, max_pixels=opts.max_pixels)
    preparer = PhotoPreparer(size, opts.detector, opts.face_padding, ws.face_cache(cache_name(opts.detector)),
                             require_face=opts.require_face, max_pixels=opts.max_pixels)
    if opts.detector != "none":
        _detect_all(dataset, preparer, quiet, echo)
    echo(dataset.summary())
    for s in dataset.skipped:
        echo(f"  skipped {s.path}: {s.reason}{' (' + s.detail + ')' if s.detail else ''}")
    pairs = make_pairs([p.identity for p in dataset.photos], opts.protocol, opts.seed)
    for split, c in pairs.counts().items():
        echo(f"  {split:<10} {c['pairs']:>7} pairs ({c['positive']} same, {c['negative']} different)")
    return dataset, preparer, pairs


def view_names(opts: TrainOptions) -> list[str]:
    """The versions of each photo whose frozen features training caches: ``clean``,
    its mirror (for flip averaging or augmentation), and with ``--augment degrade``
    every degradation (and its mirror under flip averaging)."""
    from verifier.degrade import DEGRADATIONS

    names = ["clean"]
    if opts.tta == "flip" or opts.augment in ("flip", "degrade"):
        names.append("flip")
    if opts.augment == "degrade":
        for name in DEGRADATIONS:
            names += [name, f"{name}+flip"] if opts.tta == "flip" else [name]
    return names


def _photo_views(preparer: PhotoPreparer, path: Path, names: list[str], seed: int,
                 photo: int, padding: float) -> list[np.ndarray]:
    """The pixels of every version of one photo (:func:`view_names`). A degradation is
    applied to the whole photo and the face found again, as a query of such a photo
    would be (:meth:`PhotoPreparer.prepare_degraded`); where the detector no longer
    finds it (or the photo has no face) the aligned face is degraded instead
    (:func:`verifier.degrade.degrade_chip`). Each version is seeded by ``seed``, the
    photo and the version."""
    from verifier.degrade import degrade_chip
    from verifier.images import read_photo_bytes

    first: dict[str, int] = {}  # a degradation's first version: its mirror is the same face mirrored
    for v, view in enumerate(names):
        first.setdefault(view.partition("+")[0], v)
    wanted = [(name, np.random.default_rng([seed, photo, v])) for name, v in first.items()
              if name not in ("clean", "flip")]
    prepared, found = preparer.prepare_degraded(read_photo_bytes(path), path, wanted) if wanted \
        else (preparer.prepare(path), [])
    chip = prepared.pixels
    faces = {"clean": chip, "flip": chip[:, ::-1]}
    for (name, r), face in zip(wanted, found):
        faces[name] = face if face is not None else degrade_chip(chip, name, r, padding)
    return [faces[view.partition("+")[0]][:, ::-1] if view.endswith("+flip") else faces[view]
            for view in names]


def _features(ws: Workspace, opts: TrainOptions, dataset: Dataset, preparer: PhotoPreparer,
              pairs: PairSet, branch, quiet: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The frozen backbone's features of every photo a training or validation pair
    uses, in every version of :func:`view_names`, each computed once (``rows`` maps
    a photo to its feature row). A photo is read and its versions made once
    (:func:`_photo_views`)."""
    from verifier.network import inference_function
    from verifier.trainer import compute_features

    used = np.unique(np.concatenate([pairs.train.photos(), pairs.validation.photos()]))
    rows = np.full(len(dataset.photos), -1, dtype=np.int64)
    rows[used] = np.arange(len(used))
    paths = [dataset.photos[i].path for i in used]
    frozen = inference_function(branch.frozen)
    names = view_names(opts)
    per = len(names)
    views: dict[int, list[np.ndarray]] = {}

    def load(idx):
        wanted = {i // per for i in idx}
        for photo in list(views):  # batches walk the photos in order: keep only theirs
            if photo not in wanted:
                del views[photo]
        out = []
        for i in idx:
            photo, view = divmod(i, per)
            if photo not in views:
                views[photo] = _photo_views(preparer, paths[photo], names, opts.seed,
                                            int(used[photo]), opts.face_padding)
            out.append(views[photo][view])
        return np.stack(out)

    with bar(len(used) * per, "frozen features", quiet=quiet) as progress:
        features = compute_features(frozen, load, len(used) * per, cache_dir=ws.cache_dir,
                                    progress=progress.update)
    return {name: features[v::per] for v, name in enumerate(names)}, rows


def _fit(opts: TrainOptions, branch, views: dict[str, np.ndarray], rows: np.ndarray,
         pairs: PairSet, echo: Callable[[str], None]):
    """Train the head on the features (or, with nothing to train, score validation);
    the history and the trainer (which embeds cached features with the head)."""
    from verifier.trainer import FastTrainer, History

    trainer = FastTrainer(branch.head, margin=opts.margin, hard_negatives=opts.hard_negatives)
    features = views["clean"]
    variants = [] if opts.augment == "none" else [
        v for name, v in views.items() if name != "clean" and (opts.augment == "degrade" or name == "flip")]

    def report(epoch: int, history) -> None:
        line = f"epoch {epoch + 1}/{opts.epochs}  loss {history.loss[-1]:.4f}"
        if history.val_loss:
            line += f"  val_loss {history.val_loss[-1]:.4f}"
        if history.val_auc and history.val_auc[-1] is not None:
            line += f"  val_auc {history.val_auc[-1]:.3f}"
        echo(line)

    if branch.head.trainable_weights:
        return trainer.fit(features, rows, pairs.train, pairs.validation, epochs=opts.epochs,
                           batch_size=opts.batch_size, seed=opts.seed, patience=opts.patience,
                           on_epoch=report, variants=variants), trainer
    # --head none on a frozen backbone: the descriptor is the embedding
    history = History()
    loss, auc = trainer.evaluate(features, rows, pairs.validation)
    history.val_loss.append(loss)
    history.val_auc.append(auc)
    echo("nothing to train (--head none and --fine-tune 0): the backbone's output is the "
         f"embedding; validation ROC AUC {auc if auc is None else round(auc, 4)}")
    return history, trainer


def _save(ws: Workspace, name: str, branch, dataset: Dataset, pairs: PairSet, history,
          timings: dict, config: dict, database) -> None:
    """The model version's folder, written whole or not at all, and its database row."""
    photos = [{"path": str(p.path.relative_to(dataset.root)), "identity": p.identity,
               "sha256": p.sha256} for p in dataset.photos]
    from verifier.onnx_branch import BRANCH_FILE, export_branch

    with atomic_folder(ws.model_dir(name)) as tmp:
        branch.model.save(tmp / "branch.keras")
        # what inference runs, without TensorFlow
        export_branch(branch.model, tmp / BRANCH_FILE, saved=tmp / "branch.keras")
        np.savez_compressed(tmp / "pairs.npz", **pairs.to_arrays())
        write_json_atomic(tmp / "photos.json", photos)
        write_json_atomic(tmp / "history.json", {**history.as_dict(), "seconds": timings})
        write_json_atomic(tmp / "config.json", config)
    if database is not None:
        from storage.models import ensure_model

        with database.begin() as session:
            ensure_model(session, name, config, ws.model_dir(name))


def training_photos(folder: Path) -> list[dict]:
    """The photos a model version (its folder) was trained on: path, identity, sha256."""
    return json.loads((Path(folder) / "photos.json").read_text("utf-8"))


def load_pairs(ws: Workspace, name: str) -> tuple[PairSet, list[dict]]:
    """The pair splits and photo list saved with a model version."""
    from .models import read_config

    folder = ws.model_dir(name)
    config = read_config(ws, name)
    with np.load(folder / "pairs.npz") as arrays:
        pairs = PairSet.from_arrays(config.protocol, config.seed, dict(arrays))
    return pairs, training_photos(folder)

