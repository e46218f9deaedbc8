"""FAISS index files: one per model version, an ID map whose ids are embedding row ids.

Every index file travels with a JSON sidecar (dimension, metric, model, count, the
file's SHA-256 and a checksum of its ids). Both are written atomically, the index
first, so a crash between the two leaves a sidecar that no longer matches and is
refused on load. Distances returned are euclidean (not squared).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import IndexMismatch, IndexStale, StorageError
from .files import write_bytes_atomic, write_json_atomic
from .lock import pair_lock


DEFAULT_FACTORY = "Flat"
HNSW_EF_SEARCH = 256
REPAIR_HINT = "run `verifier doctor --repair` to rebuild it from the stored vectors"


class IndexBuildError(StorageError):
    """An index of the requested type cannot be built (bad factory string, too few vectors)."""


@dataclass(frozen=True)
class IndexInfo:
    """The sidecar of an index file."""

    model: str
    dimension: int
    count: int
    factory: str
    ids_sha256: str
    file_sha256: str = ""
    metric: str = "l2"
    file_size: int = -1
    hidden: tuple[int, ...] = ()
    """Ids still inside the file but removed from the gallery (HNSW cannot remove);
    ``count`` and ``ids_sha256`` describe the live ids only."""
    seq: int = -1
    """The gallery change (``gallery_changes.seq``) the snapshot reflects: every change
    up to it is in the file. -1: written before the change log (rebuilt when opened)."""


def ids_checksum(ids: np.ndarray) -> str:
    return hashlib.sha256(np.sort(np.asarray(ids, dtype=np.int64)).tobytes()).hexdigest()


def is_exact(factory: str) -> bool:
    return factory.replace(" ", "") in ("Flat", "IDMap,Flat", "IDMap2,Flat")


def build_index(vectors: np.ndarray, ids: np.ndarray, factory: str = DEFAULT_FACTORY):
    """An ``IndexIDMap2`` over ``faiss.index_factory(d, factory)``, trained on
    ``vectors`` when the type needs it, holding ``vectors`` under ``ids``."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise IndexBuildError("vectors must be a 2-D array")
    return build_index_streaming([(ids, vectors)], vectors.shape[1], factory, vectors)


def save_index(path: Path, index, model: str, factory: str,
               hidden: np.ndarray | None = None, seq: int = -1) -> IndexInfo:
    """Write ``path`` and ``path.json`` atomically; return the sidecar. ``hidden``:
    ids inside ``index`` that are not part of the gallery any more; ``seq``: the last
    gallery change the index reflects."""
    import faiss

    data = faiss.serialize_index(index).tobytes()
    ids = faiss.vector_to_array(index.id_map) if index.ntotal else np.zeros(0, np.int64)
    hidden = np.zeros(0, np.int64) if hidden is None else np.asarray(hidden, np.int64)
    ids = ids[~np.isin(ids, hidden)] if len(hidden) else ids
    info = IndexInfo(model=model, dimension=int(index.d), count=len(ids),
                     factory=factory, ids_sha256=ids_checksum(ids),
                     file_sha256=hashlib.sha256(data).hexdigest(), file_size=len(data),
                     hidden=tuple(sorted(int(i) for i in hidden)), seq=int(seq))
    path.parent.mkdir(parents=True, exist_ok=True)
    with pair_lock(lock_path(path)):  # no reader sees this file with another writer's sidecar
        write_bytes_atomic(path, data)
        write_json_atomic(sidecar_path(path), asdict(info))
    return info


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def lock_path(path: Path) -> Path:
    """The lock that keeps an index file and its sidecar together (:func:`pair_lock`):
    two servers that snapshot at once wrote one's file beside the other's sidecar."""
    return path.with_name(path.name + ".lock")


def read_sidecar(path: Path) -> IndexInfo:
    side = sidecar_path(path)
    try:
        raw = json.loads(side.read_text("utf-8"))
        raw["hidden"] = tuple(raw.get("hidden", ()))
        return IndexInfo(**raw)
    except FileNotFoundError:
        raise IndexMismatch(f"index sidecar {side} is missing; {REPAIR_HINT}") from None
    except (ValueError, TypeError) as exc:
        raise IndexMismatch(f"index sidecar {side} is corrupt ({exc}); {REPAIR_HINT}") from None


def is_current(path: Path, *, model: str, dimension: int, seq: int,
               factory: str | None = None) -> bool:
    """Whether the snapshot at ``path`` already reflects gallery change ``seq`` for
    ``model`` (of ``factory``'s type, when given), judged from its sidecar and the
    file's size, without FAISS or a read of the file: what an unchanged run checks
    before deciding it has nothing to write. A damaged file of the same size is found
    by :func:`load_index` when a server or ``verifier doctor`` opens it."""
    path = Path(path)
    with pair_lock(lock_path(path), shared=True):
        try:
            info = read_sidecar(path)
            size = path.stat().st_size
        except (IndexMismatch, OSError):
            return False
    return (0 <= info.seq == seq and info.model == model and info.dimension == dimension
            and info.file_size == size and (factory is None or info.factory == factory))


def load_index(path: Path, *, model: str, dimension: int | None = None,
               ids: np.ndarray | None = None, full_check: bool = False):
    """Load an index and check it against its sidecar and the expected model,
    dimension and ids (from the database). Returns ``(index, info)``.

    The file's size is always checked; its SHA-256 (a second read of a large file)
    only with ``full_check`` (``verifier doctor``) or when the size is unknown.
    Raises :class:`IndexMismatch` naming ``verifier doctor --repair``.
    """
    import faiss

    with pair_lock(lock_path(Path(path)), shared=True):
        info = read_sidecar(path)
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise IndexMismatch(f"index file {path} is missing; {REPAIR_HINT}") from None
    if len(data) != info.file_size and info.file_size >= 0:
        raise IndexMismatch(f"index file {path} has {len(data)} bytes, its sidecar says "
                            f"{info.file_size} (truncated or replaced); {REPAIR_HINT}")
    if (full_check or info.file_size < 0) and hashlib.sha256(data).hexdigest() != info.file_sha256:
        raise IndexMismatch(f"index file {path} does not match its sidecar (truncated or "
                            f"replaced); {REPAIR_HINT}")
    if info.model != model:
        raise IndexMismatch(f"index file {path} belongs to model {info.model!r}, not {model!r}; "
                            f"{REPAIR_HINT}")
    if dimension is not None and info.dimension != dimension:
        raise IndexMismatch(f"index file {path} holds {info.dimension}-d vectors but model "
                            f"{model!r} makes {dimension}-d ones; {REPAIR_HINT}")
    if ids is not None and (len(ids) != info.count or ids_checksum(ids) != info.ids_sha256):
        raise IndexStale(f"index file {path} holds {info.count} vectors but the database has "
                            f"{len(ids)} for model {model!r} (or other ids); {REPAIR_HINT}")
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexMismatch(f"index file {path} cannot be read ({exc}); {REPAIR_HINT}") from None
    if index.d != info.dimension or index.ntotal != info.count + len(info.hidden):
        raise IndexMismatch(f"index file {path} disagrees with its sidecar; {REPAIR_HINT}")
    return index, info


def search(index, queries: np.ndarray, k: int, *, exact: bool = True,
           rerank_factor: int = 4, stored=None) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, ids)`` of the ``k`` nearest vectors, euclidean, nearest first.

    Through an approximate index, ``rerank_factor * k`` candidates are fetched and
    re-ranked by their exact distance. Missing neighbours have id -1, distance inf.
    """
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    k = max(1, min(k, index.ntotal)) if index.ntotal else 1
    if index.ntotal == 0:
        n = len(queries)
        return np.full((n, k), np.inf), np.full((n, k), -1, dtype=np.int64)
    if exact:
        sq, ids = index.search(queries, k)
        return np.sqrt(np.maximum(sq, 0.0)), ids
    cand_k = min(index.ntotal, k * rerank_factor)
    _, cand = index.search(queries, cand_k)
    out_d = np.full((len(queries), k), np.inf)
    out_i = np.full((len(queries), k), -1, dtype=np.int64)
    for row, (q, ids) in enumerate(zip(queries, cand)):
        ids = ids[ids >= 0]
        if not len(ids):
            continue
        # the stored (exact) vectors when the caller has them; a compressed index
        # (PQ) only reconstructs approximations
        vecs = stored(ids) if stored is not None else \
            np.stack([index.reconstruct(int(i)) for i in ids])
        d = np.sqrt(((vecs - q) ** 2).sum(axis=1))
        order = np.argsort(d, kind="stable")[:k]
        out_d[row, : len(order)] = d[order]
        out_i[row, : len(order)] = ids[order]
    return out_d, out_i


def build_index_streaming(chunks, dimension: int, factory: str, train: np.ndarray):
    """An ``IndexIDMap2`` of type ``factory`` trained on the sample ``train`` (when the
    type needs training) and filled from ``chunks`` of ``(ids, vectors)``, so that the
    gallery is never held in memory at once as float32."""
    import faiss

    try:
        base = faiss.index_factory(dimension, factory, faiss.METRIC_L2)
    except RuntimeError as exc:
        raise IndexBuildError(f"FAISS does not understand the index factory {factory!r}: "
                              f"{str(exc).splitlines()[-1]}") from None
    if not base.is_trained:
        ivf = faiss.try_extract_index_ivf(base)
        need = ivf.nlist if ivf is not None else 1
        if len(train) < need:
            raise IndexBuildError(f"index factory {factory!r} must be trained on at least "
                                  f"{need} vectors, there are {len(train)}; use Flat or HNSW32 "
                                  "for small galleries")
        base.train(np.ascontiguousarray(train, dtype=np.float32))
    ivf = faiss.try_extract_index_ivf(base)
    if ivf is not None:
        ivf.nprobe = max(ivf.nprobe, min(ivf.nlist, 16))
        ivf.make_direct_map()  # reconstruct() for re-ranking when no stored vectors are given
    hnsw = getattr(faiss.downcast_index(base), "hnsw", None)
    if hnsw is not None:
        # FAISS' default (16) loses recall past ~100k vectors; it is saved with the index
        hnsw.efSearch = max(hnsw.efSearch, HNSW_EF_SEARCH)
    index = faiss.IndexIDMap2(base)
    for ids, vectors in chunks:
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                               np.ascontiguousarray(ids, dtype=np.int64))
    return index
