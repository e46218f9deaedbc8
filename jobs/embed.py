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
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery
from storage.live_index import open_live_index
from storage.lock import job_lock
from storage.schema import Embedding, Image
from storage.workspace import Workspace
from verifier.errors import ImageError, NoFaceFound, VerifierError
from verifier.defaults import DEFAULT_EMBED_BATCH_SIZE, DEFAULT_MAX_PIXELS
from verifier.images import iter_image_files, sha256_bytes

from .models import LoadedModel, load_model, read_config
from .progress import bar

log = logging.getLogger(__name__)


class EmbedError(VerifierError):
    """An embedding run cannot start (an unknown engine, Ray not installed)."""


@dataclass
class EmbedSummary:
    model: str
    added: int = 0
    unchanged: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    missing: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    flagged: dict[str, int] = field(default_factory=dict)  # no_face / several_faces -> count
    model_calls: int = 0
    index_rebuilt: bool = False
    gallery_size: int = 0
    seconds: float = 0.0
    run_id: int | None = None

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
        out += [f"  skipped {path}: {reason}" for path, reason in sorted(self.skipped.items())]
        return out


def _sync_folder(session: Session, root: Path, summary: EmbedSummary, prune: bool,
                 max_pixels: int) -> set[int]:
    """Bring the images table in line with the folder (no model involved). Returns
    the ids of images whose bytes changed (to embed again)."""
    changed: set[int] = set()
    prefix = str(root) + "/"
    known = {row.path: row for row in session.scalars(
        select(Image).where(Image.path.startswith(prefix, autoescape=True)))}
    seen: set[str] = set()
    by_sha: dict[str, list[Image]] = {}
    for row in known.values():
        by_sha.setdefault(row.sha256, []).append(row)
    new_files: list[tuple[str, Path, str, int | None, int | None, str | None]] = []
    for identity, path in iter_image_files(root):
        key = str(path)
        seen.add(key)
        try:
            data = path.read_bytes()
        except OSError as exc:
            summary.skipped[key] = "unreadable"
            log.warning("cannot read %s: %s", path, exc)
            continue
        digest = sha256_bytes(data)
        row = known.get(key)
        if row is not None and row.sha256 == digest:
            if row.status == "skipped":
                summary.skipped[key] = row.reason or "skipped"
            elif row.status == "missing":
                row.status = "ok"
            continue  # "removed" photos stay removed until their bytes change
        try:  # header only; the bytes are let go here and read again when embedded
            width, height = _dimensions(data, path, max_pixels)
            reason = None
        except ImageError as exc:
            width = height = None
            reason = exc.reason
        del data
        new_files.append((identity, path, digest, width, height, reason))
    gone = {p: r for p, r in known.items() if p not in seen}
    identity_ids: dict[str, int] = {}
    for identity, path, digest, width, height, reason in new_files:
        key = str(path)
        if identity not in identity_ids:
            identity_ids[identity] = gallery.identity_id(session, identity)
        ident = identity_ids[identity]
        status = "ok" if reason is None else "skipped"
        if reason is not None:
            summary.skipped[key] = reason
        row = known.get(key)
        if row is not None:  # same path, new bytes: embed again
            gallery.delete_embeddings_of(session, [row.id])
            row.sha256, row.width, row.height = digest, width, height
            row.status, row.reason, row.identity_id = status, reason, ident
            if status == "ok":
                changed.add(row.id)  # counted as updated once its new vector is stored
            continue
        moved = next((r for r in by_sha.get(digest, []) if r.path in gone), None)
        if moved is not None:  # same bytes under a new name: keep its embeddings
            del gone[moved.path]
            moved.path, moved.identity_id, moved.status = key, ident, status
            summary.moved += 1
            continue
        session.add(Image(path=key, sha256=digest, identity_id=ident, width=width,
                          height=height, status=status, reason=reason))
    for path, row in gone.items():
        if prune:
            session.delete(row)
            summary.removed += 1
        else:
            row.status = "missing"
            summary.missing += 1
    session.flush()
    return changed


def _dimensions(data: bytes, path: Path, max_pixels: int) -> tuple[int, int]:
    # header only: the pixels are decoded once, when the photo is embedded
    from verifier.images import read_header

    return read_header(data, name=path, max_pixels=max_pixels)


ENGINES = ("local", "ray")
PREPARE_THREADS = max(1, min(4, os.cpu_count() or 1))
"""Threads that prepare (read, decode, detect, align) the photos of a batch."""


def _prefetch(items: list, load: Callable, batch_size: int) -> Iterator:
    """Yield ``load(batch)`` for each batch, decoding the next batch while the model
    runs on this one. The first batch is small so that the model starts early."""
    first = min(len(items), max(1, batch_size // 4))
    bounds = [0, first] + list(range(first + batch_size, len(items), batch_size)) + [len(items)]
    batches = [items[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(load, batches[0]) if batches else None
        for i in range(len(batches)):
            result = future.result()
            if i + 1 < len(batches):
                future = pool.submit(load, batches[i + 1])
            yield result


def embed_gallery(ws: Workspace, factory: sessionmaker[Session], data: Path, *,
                  model: str | None = None, batch_size: int = DEFAULT_EMBED_BATCH_SIZE, prune: bool = False,
                  wait: bool = False, index_factory: str | None = None,
                  max_pixels: int = DEFAULT_MAX_PIXELS, quiet: bool = False,
                  loaded: LoadedModel | None = None, engine: str = "local",
                  ray_address: str | None = None, workers: int | None = None) -> EmbedSummary:
    """Embed every usable photo of ``data`` with a model version (default: latest).

    ``engine="ray"`` runs the same preprocessing and model on Ray Data workers (a
    local Ray, or the cluster at ``ray_address``); batches come back to this process
    and are committed exactly as locally."""
    if engine not in ENGINES:
        raise EmbedError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    root = Path(data).resolve()
    name = loaded.name if loaded else ws.resolve_model(model)
    t0 = time.perf_counter()
    with job_lock(ws.locks_dir / "gallery.lock", wait=wait, what="embed"):
        summary = EmbedSummary(model=name)
        config = loaded.config if loaded else read_config(ws, name)
        with factory.begin() as session:
            model_row = gallery.ensure_model(session, name, config, ws.model_dir(name))
            model_id = model_row.id
            run_id = gallery.start_run(session, "embed", {
                "data": str(root), "prune": prune, "batch_size": batch_size,
                "index_factory": index_factory}, model_id).id
        summary.run_id = run_id
        try:
            with factory.begin() as session:
                changed = _sync_folder(session, root, summary, prune, max_pixels)
                todo = session.execute(
                    select(Image.id, Image.path).where(
                        Image.path.startswith(str(root) + "/", autoescape=True),
                        Image.status == "ok",
                        ~select(Embedding.id).where(Embedding.image_id == Image.id,
                                                    Embedding.model_id == model_id).exists())
                    .order_by(Image.path)).all()
                ok_total = session.scalar(select(func.count(Image.id)).where(
                    Image.path.startswith(str(root) + "/", autoescape=True), Image.status == "ok"))
            summary.unchanged = max(0, int(ok_total) - len(todo) - summary.moved)
            if todo:
                if engine == "ray":
                    from .ray_engine import ray_batches

                    batches = ray_batches(ws, name, todo, batch_size, address=ray_address,
                                          workers=workers)
                else:
                    loaded = loaded or load_model(ws, name)
                    batches = local_batches(loaded, todo, batch_size)
                _commit_batches(factory, model_id, batches, len(todo), summary, quiet, changed)
            summary.index_rebuilt = sync_index(ws, factory, name, model_id, index_factory)
            with factory.begin() as session:
                summary.gallery_size = len(gallery.model_ids(session, model_id))
                summary.seconds = time.perf_counter() - t0
                gallery.finish_run(session, run_id, "ok", _counts(summary))
        except BaseException as exc:
            with factory.begin() as session:
                gallery.finish_run(session, run_id, "failed", _counts(summary),
                                   f"{type(exc).__name__}: {exc}")
            raise
    return summary


def _counts(summary: EmbedSummary) -> dict:
    return {k: v for k, v in summary.as_dict().items() if isinstance(v, (int, float))
            and not isinstance(v, bool)} | {"skipped": len(summary.skipped)}


Row = tuple  # (image_id, path, reason or None, face status or None)


def prepare_row(loaded: LoadedModel, image_id: int, path: str) -> tuple[Row, np.ndarray | None]:
    """One photo of a batch: its row, and its branch input unless it is unusable (the
    reason is recorded instead). Shared by every engine."""
    try:
        prepared = loaded.preparer.prepare(Path(path))
    except ImageError as exc:
        return (image_id, path, exc.reason, None), None
    except NoFaceFound:
        return (image_id, path, "no_face", None), None
    return (image_id, path, None, prepared.status), prepared.pixels


def prepare_batch(loaded: LoadedModel, batch: list, pool: ThreadPoolExecutor
                  ) -> tuple[list[Row], np.ndarray | None]:
    """The rows of a batch of ``(image_id, path)`` and the stacked branch inputs of its
    usable photos, prepared on ``pool``'s threads (decoding, the detector's networks
    and alignment release the GIL). Shared by every engine."""
    done = list(pool.map(lambda item: prepare_row(loaded, *item), batch))
    pixels = [p for _, p in done if p is not None]
    return [row for row, _ in done], (np.stack(pixels) if pixels else None)


def local_batches(loaded: LoadedModel, todo: list, batch_size: int) -> Iterator[tuple[list, np.ndarray]]:
    """``(rows, vectors of the usable rows)`` per batch, in this process: the photos of a
    batch are prepared on every core at once while the model runs on the batch before."""
    with ThreadPoolExecutor(max_workers=PREPARE_THREADS) as pool:
        for rows, pixels in _prefetch(todo, lambda batch: prepare_batch(loaded, batch, pool), batch_size):
            yield rows, (loaded.embed(pixels) if pixels is not None
                         else np.zeros((0, loaded.dimension), np.float32))


def _commit_batches(factory: sessionmaker[Session], model_id: int,
                    batches: Iterable[tuple[list, np.ndarray]], total: int,
                    summary: EmbedSummary, quiet: bool, changed: set[int]) -> None:
    """Commit each batch in its own transaction, whatever engine made it; counts
    ``added`` (new photos) and ``updated`` (``changed`` ones) as they are stored."""
    with bar(total, "embedding", quiet=quiet) as progress:
        for rows, batch_vectors in batches:
            vectors = iter(batch_vectors)
            summary.model_calls += bool(len(batch_vectors))
            inserts, updates = [], []
            for image_id, path, reason, face in rows:
                if reason is not None:
                    updates.append({"id": image_id, "status": "skipped", "reason": reason})
                    summary.skipped[path] = reason
                    continue
                if face in ("no_face", "several_faces"):
                    updates.append({"id": image_id, "flags": face})
                    summary.flagged[face] = summary.flagged.get(face, 0) + 1
                inserts.append({"image_id": int(image_id), "model_id": model_id,
                                "vector": gallery.vector_to_bytes(next(vectors))})
            with factory.begin() as session:  # one transaction per batch
                if inserts:
                    session.execute(insert(Embedding), inserts)
                for values in updates:
                    session.execute(update(Image).where(Image.id == int(values.pop("id"))).values(**values))
            updated = sum(row["image_id"] in changed for row in inserts)
            summary.updated += updated
            summary.added += len(inserts) - updated
            progress.update(len(rows))


def sync_index(ws: Workspace, factory: sessionmaker[Session], name: str, model_id: int,
               index_factory: str | None = None, force: bool = False) -> bool:
    """Bring the model's index snapshot up to date with the database: catch up in
    place (additions and removals), or build it anew when it is missing or damaged,
    when ``index_factory`` asks for another type, or with ``force``. Returns whether
    the snapshot was written."""
    path = ws.index_path(name)
    with factory() as session:
        ids = gallery.model_ids(session, model_id)

    def fetch(wanted: np.ndarray) -> np.ndarray:
        with factory() as session:
            return gallery.vectors_of(session, wanted)

    index, caught = open_live_index(path, model=name, dimension=_model_dimension(ws, name),
                                    db_ids=ids, fetch=fetch, factory=index_factory, rebuild=force)
    if not caught.changed:
        return False
    index.save(path)
    return True


def _model_dimension(ws: Workspace, name: str) -> int:
    return int(read_config(ws, name).get("embedding_dim") or 128)
