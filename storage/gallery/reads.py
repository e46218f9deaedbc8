"""Reads of the gallery tables (the writes are in ``writes.py``)."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import VectorsMissing
from ..schema import Embedding, Identity, Image, ImageStatus


def model_vectors(session: Session, model_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of every stored embedding of a model, sorted by id."""
    rows = session.execute(select(Embedding.id, Embedding.vector)
                           .where(Embedding.model_id == model_id).order_by(Embedding.id)).all()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.stack([np.frombuffer(r.vector, dtype=np.float32) for r in rows])
    return ids, vectors


def vectors_found(session: Session, ids: np.ndarray, chunk: int = 10_000
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of those embedding ``ids`` that still exist, in the order
    asked (a follower asks for embeddings that a later change may have removed)."""
    ids = np.asarray(ids, dtype=np.int64)
    found: dict[int, bytes] = {}
    for start in range(0, len(ids), chunk):
        part = [int(i) for i in ids[start:start + chunk]]
        found.update(session.execute(select(Embedding.id, Embedding.vector)
                                     .where(Embedding.id.in_(part))).tuples().all())
    kept = np.asarray([i for i in ids if int(i) in found], dtype=np.int64)
    if not len(kept):
        return kept, np.zeros((0, 0), np.float32)
    return kept, np.stack([np.frombuffer(found[int(i)], dtype=np.float32) for i in kept])


def vectors_of(session: Session, ids: np.ndarray, chunk: int = 10_000) -> np.ndarray:
    """The stored vectors of embedding ``ids``, one row per id in that order
    (:class:`VectorsMissing` when one is not stored)."""
    kept, vectors = vectors_found(session, ids, chunk)
    if len(kept) != len(ids):
        missing = np.setdiff1d(np.asarray(ids, np.int64), kept)
        raise VectorsMissing(f"embeddings {missing[:5].tolist()} are not in the database; "
                             "run `verifier doctor --repair`")
    return vectors


def iter_model_vectors(session: Session, model_id: int, chunk: int = 100_000):
    """``(ids, vectors)`` of a model's embeddings, ``chunk`` rows at a time, by id."""
    last = -1
    while True:
        rows = session.execute(select(Embedding.id, Embedding.vector)
                               .where(Embedding.model_id == model_id, Embedding.id > last)
                               .order_by(Embedding.id).limit(chunk)).all()
        if not rows:
            return
        last = rows[-1].id
        yield (np.fromiter((r.id for r in rows), np.int64, len(rows)),
               np.stack([np.frombuffer(r.vector, np.float32) for r in rows]))


def model_ids(session: Session, model_id: int) -> np.ndarray:
    ids = session.scalars(select(Embedding.id).where(Embedding.model_id == model_id)).all()
    return np.asarray(sorted(ids), dtype=np.int64)


def model_count(session: Session, model_id: int) -> int:
    """How many embeddings a model has."""
    return int(session.scalar(select(func.count(Embedding.id))
                              .where(Embedding.model_id == model_id)) or 0)


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


class GalleryPhoto(NamedTuple):
    """A stored photo with its identity, as later jobs read it."""

    image_id: int
    path: str
    sha256: str
    identity: str


def _photos_by_embedding(session: Session, model_id: int, where=None, values=None,
                         chunk: int = 10_000) -> dict[int, GalleryPhoto]:
    """Embedding id -> photo for a model's embeddings; with ``where`` (a column) only
    those whose ``where`` is in ``values``, asked ``chunk`` values at a time."""
    query = (select(Embedding.id.label("embedding_id"), Image.id, Image.path, Image.sha256,
                    Identity.name)
             .join(Image, Embedding.image_id == Image.id)
             .join(Identity, Image.identity_id == Identity.id)
             .where(Embedding.model_id == model_id))
    if where is None:
        chunks = [session.execute(query)]
    else:
        values = sorted(int(v) for v in values)
        chunks = (session.execute(query.where(where.in_(values[a:a + chunk])))
                  for a in range(0, len(values), chunk))
    return {r.embedding_id: GalleryPhoto(r.id, r.path, r.sha256, r.name)
            for rows in chunks for r in rows}


def embedded_photos(session: Session, model_id: int,
                    ids: np.ndarray | None = None) -> dict[int, GalleryPhoto]:
    """Embedding id -> photo, for a model (only embedding ``ids`` when given)."""
    return _photos_by_embedding(session, model_id, None if ids is None else Embedding.id, ids)


def embedded_photos_of_images(session: Session, model_id: int,
                              image_ids: set[int]) -> dict[int, GalleryPhoto]:
    """Embedding id -> photo, for the embeddings of ``image_ids`` under a model."""
    return _photos_by_embedding(session, model_id, Image.id, image_ids)


def identity_counts(session: Session) -> list[tuple[str, int]]:
    rows = session.execute(
        select(Identity.name, func.count(Image.id))
        .join(Image, Image.identity_id == Identity.id)
        .where(Image.status == ImageStatus.OK).group_by(Identity.name).order_by(Identity.name)).all()
    return [(name, int(n)) for name, n in rows]


def identities_page(session: Session, offset: int = 0, limit: int = 50
                    ) -> tuple[int, list[tuple[str, int]]]:
    """``(total, [(name, photos)])``: identities with at least one photo in the
    gallery, by name."""
    counted = (select(Identity.name, func.count(Image.id).label("n"))
               .join(Image, Image.identity_id == Identity.id)
               .where(Image.status == ImageStatus.OK).group_by(Identity.name))
    total = session.scalar(select(func.count()).select_from(counted.subquery()))
    rows = session.execute(counted.order_by(Identity.name).offset(offset).limit(limit)).all()
    return int(total or 0), [(name, int(n)) for name, n in rows]


def identity_photos(session: Session, name: str) -> list[Image]:
    """The gallery photos of identity ``name`` (empty when unknown)."""
    return list(session.scalars(select(Image).join(Identity, Image.identity_id == Identity.id)
                                .where(Identity.name == name, Image.status == ImageStatus.OK)
                                .order_by(Image.id)))


class PhotoFace(NamedTuple):
    """One gallery face of a photo: its position (largest first), entry, person, box."""

    face: int
    id: int
    identity: str
    box: list[int] | None


def faces_in_photos(session: Session, paths: Sequence[str]) -> dict[str, list[PhotoFace]]:
    """Every gallery face of the photos at ``paths``, by path, largest face first: who
    else a group photo shows."""
    out: dict[str, list[PhotoFace]] = {}
    rows = session.execute(select(Image.path, Image.face, Image.id, Identity.name, Image.face_box)
                           .join(Identity, Identity.id == Image.identity_id)
                           .where(Image.path.in_(list(paths)), Image.status == ImageStatus.OK)
                           .order_by(Image.path, Image.face))
    for path, face, entry, name, box in rows:
        out.setdefault(path, []).append(PhotoFace(face, entry, name, box))
    return out


def identity_faces(session: Session, name: str) -> list[tuple[Image, list[PhotoFace]]]:
    """The gallery faces of identity ``name``, each with the other gallery faces of
    its photo (a group photo's other people)."""
    rows = identity_photos(session, name)
    shown = faces_in_photos(session, [r.path for r in rows])
    return [(r, [f for f in shown.get(r.path, []) if f.id != r.id]) for r in rows]


def photo_vector(session: Session, photo_id: int, model_id: int) -> np.ndarray | None:
    """The stored vector of gallery photo ``photo_id`` under a model, if any."""
    blob = session.scalar(select(Embedding.vector).join(Image, Embedding.image_id == Image.id)
                          .where(Image.id == int(photo_id), Image.status == ImageStatus.OK,
                                 Embedding.model_id == model_id))
    return None if blob is None else np.frombuffer(blob, dtype=np.float32)


def paths_in_use(session: Session, paths: list[str]) -> set[str]:
    """Those of ``paths`` that a photo not taken out of the gallery has (its file
    and cached faces are still needed)."""
    return set(session.scalars(select(Image.path).where(Image.path.in_(paths),
                                                        Image.status != ImageStatus.REMOVED)))


def unembedded_photos(session: Session, root: Path, model_id: int) -> list[tuple[int, str]]:
    """``(image id, path)`` of the usable photos under folder ``root`` with no vector
    under the model yet, by path."""
    rows = session.execute(
        select(Image.id, Image.path).where(
            Image.path.startswith(str(root) + "/", autoescape=True), Image.status == ImageStatus.OK,
            ~select(Embedding.id).where(Embedding.image_id == Image.id,
                                        Embedding.model_id == model_id).exists())
        .order_by(Image.path)).all()
    return [(row.id, row.path) for row in rows]


def folder_count(session: Session, root: Path) -> int:
    """Usable photos stored under folder ``root``."""
    return int(session.scalar(select(func.count(Image.id)).where(
        Image.path.startswith(str(root) + "/", autoescape=True), Image.status == ImageStatus.OK)) or 0)


class StoredPhoto(NamedTuple):
    image_id: int
    path: str
    sha256: str


def gallery_contents(session: Session) -> list[StoredPhoto]:
    """``(id, path, sha256)`` of every photo in the gallery."""
    return [StoredPhoto(*row) for row in session.execute(
        select(Image.id, Image.path, Image.sha256).where(Image.status == ImageStatus.OK))]


def paths_with_content(session: Session, sha256: str) -> list[str]:
    """Every stored photo's path with these bytes (in the gallery or not)."""
    return list(session.scalars(select(Image.path).where(Image.sha256 == sha256)))


def vector_dimension(session: Session, model_id: int) -> int | None:
    """The length of a model's stored vectors (``None`` when it has none)."""
    blob = session.scalar(select(Embedding.vector).where(Embedding.model_id == model_id).limit(1))
    return len(blob) // 4 if blob else None


def folder_vectors(session: Session, root: Path, model_id: int) -> dict[str, tuple[int, bytes]]:
    """sha256 -> ``(image id, vector)`` of the photos under folder ``root`` embedded
    with a model."""
    rows = session.execute(
        select(Image.id, Image.sha256, Embedding.vector)
        .join(Embedding, Embedding.image_id == Image.id)
        .where(Embedding.model_id == model_id,
               Image.path.startswith(str(root) + "/", autoescape=True))).all()
    return {r.sha256: (r.id, r.vector) for r in rows}


class FolderPhoto(NamedTuple):
    """A stored photo under a folder, with its vector under a model (``None`` when
    it has none)."""

    path: str
    id: int
    sha256: str
    status: ImageStatus
    reason: str | None
    vector: bytes | None


def folder_photos_with_vectors(session: Session, root: Path, model_id: int) -> list[FolderPhoto]:
    """Every stored photo under folder ``root`` (any status) with its vector under a model."""
    rows = session.execute(
        select(Image.path, Image.id, Image.sha256, Image.status, Image.reason, Embedding.vector)
        .outerjoin(Embedding, (Embedding.image_id == Image.id) & (Embedding.model_id == model_id))
        .where(Image.path.startswith(str(root) + "/", autoescape=True))).all()
    return [FolderPhoto(*row) for row in rows]


def gallery_photo(session: Session, photo_id: int) -> Image | None:
    row = session.get(Image, int(photo_id))
    return row if row is not None and row.status == ImageStatus.OK else None


def faces_of_photo(session: Session, image_id: int) -> list[int]:
    """The gallery entries of every face of ``image_id``'s photo (its own included),
    largest face first."""
    path = session.scalar(select(Image.path).where(Image.id == int(image_id)))
    return list(session.scalars(select(Image.id).where(Image.path == path, Image.status == ImageStatus.OK)
                                .order_by(Image.face)))


def enrolled_as(session: Session, paths: Sequence[str]) -> dict[tuple[str, int], str]:
    """The identity each face of the photos at ``paths`` is in the gallery as, by
    ``(path, face)`` (faces not in it are absent)."""
    rows = session.execute(select(Image.path, Image.face, Identity.name)
                           .join(Identity, Identity.id == Image.identity_id)
                           .where(Image.path.in_(list(paths)), Image.status == ImageStatus.OK))
    return {(path, face): name for path, face, name in rows}


def identity_exists(session: Session, name: str) -> bool:
    """Whether ``name`` has a photo in the gallery."""
    return session.scalar(select(func.count(Image.id)).join(Identity, Identity.id == Image.identity_id)
                          .where(Identity.name == name, Image.status == ImageStatus.OK)) > 0


def folder_photos(session: Session, root: Path) -> dict[str, Image]:
    """The stored photos under folder ``root``, by path."""
    prefix = str(root) + "/"
    return {row.path: row for row in session.scalars(
        select(Image).where(Image.path.startswith(prefix, autoescape=True)))}
