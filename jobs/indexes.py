"""``verifier index``: build a model's index anew by streaming the stored vectors
(any FAISS type, IVF-PQ for 10-100 million faces), and describe the index in use."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery, models
from storage.errors import IndexMismatch
from storage.index import build_index_streaming, load_index, read_sidecar, save_index
from storage.lock import job_lock
from storage.workspace import Workspace
from verifier.defaults import DEFAULT_TRAIN_SAMPLE

"""Vectors an index type that needs training (IVF, PQ) is trained on: enough for
65,536 lists x 4 (FAISS asks for 39 per centroid to stop warning; 4 works)."""
CHUNK = 100_000


@dataclass
class IndexReport:
    model: str
    factory: str
    count: int
    hidden: int
    file_bytes: int
    database_count: int
    snapshot_seq: int  # the last gallery change the snapshot holds (-1: before the log)
    database_seq: int  # the last gallery change in the database
    behind: int  # database vectors the snapshot does not hold (caught up when loaded)
    ahead: int   # snapshot vectors the database removed since
    seconds: float = 0.0
    trained_on: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def build(ws: Workspace, sessions: sessionmaker[Session], *, model: str | None = None,
          index_factory: str, train_sample: int = DEFAULT_TRAIN_SAMPLE, seed: int = 0,
          wait: bool = False) -> IndexReport:
    """Build a ``index_factory`` index of every stored vector of a model, streaming
    them from the database in chunks, and swap it in atomically (the file and its
    sidecar replace the old ones whole; a process that loaded the old index keeps
    answering from it)."""
    name = ws.resolve_model(model)
    t = time.perf_counter()
    with job_lock(ws.locks_dir / "gallery.lock", wait=wait, what="index build or embed"):
        with sessions() as session:
            model_id = models.get_model(session, name).id
            seq = gallery.changes.head(session)  # before the vectors: changes after it are re-applied
            ids = gallery.model_ids(session, model_id)
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(ids, min(len(ids), train_sample), replace=False)) \
                if len(ids) else ids
            train = gallery.vectors_of(session, sample) if len(sample) else None
            dimension = train.shape[1] if train is not None else _dimension(session, model_id)
            index = build_index_streaming(gallery.iter_model_vectors(session, model_id, CHUNK),
                                          dimension, index_factory,
                                          train if train is not None else np.zeros((0, dimension)))
        save_index(ws.index_path(name), index, name, index_factory, seq=seq)
    report = info(ws, sessions, model=name)
    report.seconds = time.perf_counter() - t
    report.trained_on = len(sample)
    return report


def _dimension(session: Session, model_id: int) -> int:
    return gallery.vector_dimension(session, model_id) or 128


def info(ws: Workspace, sessions: sessionmaker[Session], *, model: str | None = None) -> IndexReport:
    """The index file of a model: type, vectors, size, and how it stands against the
    database."""
    name = ws.resolve_model(model)
    path = ws.index_path(name)
    sidecar = read_sidecar(path)
    index, _ = load_index(path, model=name)
    with sessions() as session:
        model_id = models.get_model(session, name).id
        db_ids = gallery.model_ids(session, model_id)
        head = gallery.changes.head(session)
    import faiss

    have = faiss.vector_to_array(index.id_map).astype(np.int64) if index.ntotal else np.zeros(0, np.int64)
    have = have[~np.isin(have, np.asarray(sidecar.hidden, np.int64))]
    if sidecar.file_size < 0:
        raise IndexMismatch(f"index {path} has an old sidecar; run `verifier doctor --repair`")
    return IndexReport(name, sidecar.factory, sidecar.count, len(sidecar.hidden), sidecar.file_size,
                       len(db_ids), sidecar.seq, head, len(np.setdiff1d(db_ids, have)),
                       len(np.setdiff1d(have, db_ids)))
