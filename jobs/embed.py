"""The embed use case: bring a gallery folder's photos into the database and index.

Content-addressed: a file is identified by the SHA-256 of its bytes. Unchanged files
cost one hash and no model call; a moved or renamed file only has its path
updated; a changed file is embedded again; files gone from the folder are reported
(and deleted with ``prune``). Embeddings are committed batch by batch, and the
index is rebuilt from the database at the end, so a run killed at any moment is
completed by the next one.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery, models, runs
from storage.errors import InvalidName
from storage.follower import Follower
from storage.index import is_current
from storage.lock import job_lock
from storage.schema import FaceFlag, RunKind, RunStatus
from storage.workspace import Workspace
from verifier.defaults import DEFAULT_EMBED_BATCH_SIZE, DEFAULT_MAX_PIXELS, DEFAULT_MIN_QUALITY
from verifier.errors import ImageError
from verifier.images import iter_image_files, sha256_bytes

from .engines import check_engine, embedding_batches
from .models import LoadedModel, load_model, read_config
from .progress import bar

log = logging.getLogger(__name__)


@dataclass
class EmbedSummary:
    model: str
    added: int = 0
    unchanged: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    missing: int = 0
    left_out: int = 0  # photos removed from the gallery on request, left out
    restored: int = 0  # such photos brought back (--restore-removed)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    flagged: dict[str, int] = field(default_factory=dict)  # no_face / several_faces -> count
    model_calls: int = 0
    index_rebuilt: bool = False
    gallery_size: int = 0
    seconds: float = 0.0
    run: int | None = None
    """The run's number among embed runs."""

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def lines(self) -> list[str]:
        out = [f"model {self.model}: {self.added} added, {self.unchanged} unchanged, "
               f"{self.updated} updated, {self.moved} moved, {self.removed} removed, "
               f"{len(self.skipped)} skipped; gallery holds {self.gallery_size} embeddings "
               f"({self.seconds:.1f} s, {self.model_calls} model calls)"]
        if self.flagged:
            out.append("faces: " + ", ".join(f"{n} photos {k.replace('_', ' ')}"
                                             for k, n in sorted(self.flagged.items()))
                       + " (no face: the whole photo was used; several: the largest)")
        if self.missing:
            out.append(f"{self.missing} photos are gone from the folder but kept; "
                       "pass --prune to remove them")
        if self.left_out:
            out.append(f"{self.left_out} photos were removed from the gallery on request and are "
                       "left out; pass --restore-removed to bring them back")
        if self.restored:
            out.append(f"{self.restored} photos removed before are back in the gallery")
        out += [f"  skipped {path}: {reason}" for path, reason in sorted(self.skipped.items())]
        return out


def scan_folder(known: dict[str, str], root: Path, summary: EmbedSummary,
                max_pixels: int) -> list[gallery.ScannedFile]:
    """Every photo file under ``root``, hashed; the header of a file is read only when
    its bytes are not those ``known`` (path to SHA-256) already. Unreadable files are
    recorded in ``summary`` and left out."""
    out: list[gallery.ScannedFile] = []
    for folder, path in iter_image_files(root):
        key = str(path)
        try:
            identity = gallery.identity_name(folder)
        except InvalidName:
            summary.skipped[key] = "invalid_name"
            log.warning("skipping %s: the folder name %r cannot be an identity", path, folder)
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            summary.skipped[key] = "unreadable"
            log.warning("cannot read %s: %s", path, exc)
            continue
        digest = sha256_bytes(data)
        if known.get(key) == digest:
            out.append(gallery.ScannedFile(identity, key, digest))
            continue
        try:  # header only; the bytes are let go here and read again when embedded
            width, height = _dimensions(data, path, max_pixels)
            reason = None
        except ImageError as exc:
            width = height = None
            reason = exc.reason
        del data
        out.append(gallery.ScannedFile(identity, key, digest, width, height, reason))
    return out


def _sync_folder(sessions: sessionmaker[Session], root: Path, summary: EmbedSummary, prune: bool,
                 max_pixels: int, model_id: int, restore_removed: bool = False
                 ) -> tuple[set[int], list, int]:
    """Bring the images table in line with the folder (no model involved): the files
    are read and hashed first, then one transaction under the gallery write lock
    stores what changed. Returns the ids of images whose bytes changed (to embed
    again), the photos to embed with the model and the folder's usable photos."""
    with sessions() as session:
        stored = {path: row.sha256 for path, row in gallery.folder_photos(session, root).items()}
    scanned = scan_folder(stored, root, summary, max_pixels)

    def sync(session: Session):
        synced = gallery.sync_folder(session, root, scanned, prune, restore_removed=restore_removed)
        return (synced, gallery.unembedded_photos(session, root, model_id),
                gallery.folder_count(session, root))

    synced, todo, ok_total = gallery.transaction(sessions, sync)
    summary.skipped.update(synced.skipped)
    summary.moved += synced.moved
    summary.removed += synced.removed
    summary.missing += synced.missing
    summary.left_out += synced.left_out
    summary.restored += synced.restored
    return synced.changed, todo, int(ok_total)


def _dimensions(data: bytes, path: Path, max_pixels: int) -> tuple[int, int]:
    # header only: the pixels are decoded once, when the photo is embedded
    from verifier.images import read_header

    return read_header(data, name=path, max_pixels=max_pixels)


def embed_gallery(ws: Workspace, sessions: sessionmaker[Session], data: Path, *,
                  model: str | None = None, batch_size: int = DEFAULT_EMBED_BATCH_SIZE, prune: bool = False,
                  wait: bool = False, index_factory: str | None = None,
                  max_pixels: int = DEFAULT_MAX_PIXELS, quiet: bool = False,
                  loaded: LoadedModel | None = None, engine: str = "local",
                  ray_address: str | None = None, workers: int | None = None,
                  min_quality: float = DEFAULT_MIN_QUALITY,
                  restore_removed: bool = False) -> EmbedSummary:
    """Embed every usable photo of ``data`` with a model version (default: latest).
    Photos removed from the gallery on request stay out (counted in ``left_out``)
    unless ``restore_removed`` brings them back.

    ``engine="ray"`` runs the same preprocessing and model on Ray actors (a
    local Ray, or the cluster at ``ray_address``); batches come back to this process
    and are committed exactly as locally. A photo whose face is under ``min_quality``
    is skipped (reason ``poor_quality: ...``) and retried when its bytes change."""
    check_engine(engine)
    root = Path(data).resolve()
    name = loaded.name if loaded else ws.resolve_model(model)
    t0 = time.perf_counter()
    with job_lock(ws.locks_dir / "gallery.lock", wait=wait, what="embed"):
        summary = EmbedSummary(model=name)
        config = loaded.config if loaded else read_config(ws, name)
        with sessions.begin() as session:
            model_row = models.ensure_model(session, name, config.as_dict(), ws.model_dir(name))
            model_id = model_row.id
            started = runs.start_run(session, RunKind.EMBED, {
                "data": str(root), "prune": prune, "batch_size": batch_size,
                "index_factory": index_factory, "min_quality": min_quality,
                "restore_removed": restore_removed}, model_id)
            run_id, summary.run = started.id, started.number
        try:
            changed, todo, ok_total = _sync_folder(sessions, root, summary, prune, max_pixels,
                                                   model_id, restore_removed)
            summary.unchanged = max(0, int(ok_total) - len(todo) - summary.moved)
            if todo:
                batches = embedding_batches(engine, ws, name, todo, batch_size, loaded=loaded,
                                            ray_address=ray_address, workers=workers,
                                            min_quality=min_quality)
                _commit_batches(sessions, model_id, batches, len(todo), summary, quiet, changed)
            summary.index_rebuilt = sync_index(ws, sessions, name, model_id, index_factory)
            with sessions.begin() as session:
                summary.gallery_size = len(gallery.model_ids(session, model_id))
                summary.seconds = time.perf_counter() - t0
                runs.finish_run(session, run_id, RunStatus.DONE, _counts(summary))
        except BaseException as exc:
            with sessions.begin() as session:
                runs.finish_run(session, run_id, RunStatus.FAILED, _counts(summary),
                                   f"{type(exc).__name__}: {exc}")
            raise
    return summary


def _counts(summary: EmbedSummary) -> dict:
    return {k: v for k, v in summary.as_dict().items() if isinstance(v, (int, float))
            and not isinstance(v, bool)} | {"skipped": len(summary.skipped)}


def _commit_batches(sessions: sessionmaker[Session], model_id: int,
                    batches: Iterable[tuple[list, np.ndarray]], total: int,
                    summary: EmbedSummary, quiet: bool, changed: set[int]) -> None:
    """Commit each batch in its own transaction, whatever engine made it; counts
    ``added`` (new photos) and ``updated`` (``changed`` ones) as they are stored."""
    with bar(total, "embedding", quiet=quiet) as progress:
        for rows, batch_vectors in batches:
            summary.model_calls += bool(len(batch_vectors))
            added = gallery.transaction(  # one transaction per batch
                sessions, lambda session: gallery.store_batch(session, model_id, rows, batch_vectors))
            for row in rows:
                if row.reason is not None:
                    summary.skipped[row.path] = row.reason
                elif (flag := FaceFlag.of(row.face)) is not None:
                    summary.flagged[flag.value] = summary.flagged.get(flag.value, 0) + 1
            updated = sum(row.image_id in changed for row in rows if row.reason is None)
            summary.updated += updated
            summary.added += len(added) - updated
            progress.update(len(rows))


def sync_index(ws: Workspace, sessions: sessionmaker[Session], name: str, model_id: int,
               index_factory: str | None = None, force: bool = False) -> bool:
    """Bring the model's index snapshot up to date with the database: apply the
    change log after the snapshot's sequence, or build it anew when it is missing,
    damaged or older than the log, when ``index_factory`` asks for another type, or
    with ``force``. Returns whether the snapshot was written. When nothing was logged
    since the snapshot, only its sidecar and size are checked (:func:`is_current`)."""
    dimension = _model_dimension(ws, name)
    if not force:
        with sessions() as session:
            head = gallery.changes.head(session)
        if is_current(ws.index_path(name), model=name, dimension=dimension, seq=head,
                      factory=index_factory):
            return False  # nothing logged since the snapshot: no FAISS, no read of the file
    follower = Follower(sessions, ws.index_path(name), model=name, model_id=model_id,
                        dimension=dimension)
    caught = follower.load(index_factory, rebuild=force)
    return follower.save() if caught.changed else False


def _model_dimension(ws: Workspace, name: str) -> int:
    config = read_config(ws, name)
    return config.embedding_dim or load_model(ws, name).dimension  # not recorded: the branch says
