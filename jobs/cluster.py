"""The cluster use case: group the faces of unlabeled photos into people, record the
run, and enroll a group under a name.

Every face is embedded once per photo content and model (``face_vectors``; the
detections are cached as for ``embed``), so a rerun on a grown folder embeds only
the new photos. Groups come from Chinese whispers over a k-nearest-neighbour graph
(:mod:`verifier.clustering`) with the model's calibrated threshold as the distance
cut. A group keeps its id in a later run when its members are the same.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from storage import clusters as store
from storage import gallery
from storage.errors import GalleryConflict
from storage.models import model_by_id
from storage.schema import RunStatus
from storage.workspace import Workspace
from verifier.clustering import cluster_vectors
from verifier.defaults import (CLUSTER_ALGORITHMS, DEFAULT_CLUSTER_ALGORITHM, DEFAULT_GROUP_CENTRE,
                               DEFAULT_MAX_FACES, DEFAULT_MIN_SIZE, DEFAULT_NEIGHBOURS)
from verifier.errors import VerifierError
from verifier.images import image_format, is_image_file, read_header, read_photo_bytes, sha256_bytes
from verifier.preparation import FaceStatus, Prepared

from .errors import GalleryEmpty, IdentityNotFound, NotCalibrated
from .live import Verifier

log = logging.getLogger(__name__)

BATCH = 32
"""Photos read, detected and embedded together."""
PROGRESS_EVERY_S = 0.5
"""How often a run writes its progress to the database."""


class ClusterError(VerifierError):
    """A cluster run or a naming that cannot go ahead."""


class RunNotDone(ClusterError):
    """The run is still going, or failed."""


class OtherModel(ClusterError):
    """The run was made with another model than the one loaded."""


@dataclass(frozen=True)
class PhotoItem:
    """A photo to cluster: where it is read, and the name it is shown by."""

    path: Path
    name: str


def photo_items(items: Sequence[str | Path]) -> list[PhotoItem]:
    """Photos named on the command line; a folder stands for every photo under it
    (its sub-folder names are not labels). Shown by the path as given."""
    out = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out += [PhotoItem(p, str(p)) for p in sorted(path.rglob("*"))
                    if is_image_file(p) and not any(part.startswith(".") for part in p.relative_to(path).parts)]
        else:
            out.append(PhotoItem(path, str(item)))
    return out


@dataclass(frozen=True)
class GroupFace:
    photo: str
    box: list[int] | None
    face: int
    face_id: int
    path: str


@dataclass
class Group:
    cluster: int
    faces: list[GroupFace]
    suggestion: str | None = None
    distance: float | None = None
    named: str | None = None
    new: int = 0
    """Faces that joined the group in this run (all of them in a run made anew)."""

    @property
    def size(self) -> int:
        return len(self.faces)

    @property
    def photos(self) -> list[str]:
        return list(dict.fromkeys(f.photo for f in self.faces))

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, "size": self.size, "photos": self.photos,
                "faces": [{"photo": f.photo, "box": f.box} for f in self.faces],
                "suggestion": None if self.suggestion is None else
                {"identity": self.suggestion, "distance": round(self.distance, 4)},
                "named": self.named, "new_faces": self.new}


@dataclass
class ClusterRun:
    """A cluster run: its groups (largest first), the faces left alone, and what
    could not be used."""

    run: int
    model: str
    status: RunStatus
    threshold: float | None = None
    min_size: int = DEFAULT_MIN_SIZE
    groups: list[Group] = field(default_factory=list)
    alone: list[GroupFace] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    error: str | None = None
    origin: str = "cli"
    """Who started the run: ``cli`` (photos named by their paths) or ``service``."""

    @property
    def unclustered(self) -> list[str]:
        return list(dict.fromkeys(f.photo for f in self.alone))

    def as_dict(self) -> dict:
        return {"run": self.run, "model": self.model, "status": self.status,
                "threshold": self.threshold, "min_size": self.min_size,
                "progress": {"done": self.counts.get("done", 0), "total": self.counts.get("total", 0)},
                "clusters": [g.as_dict() for g in self.groups],
                "unclustered": self.unclustered,
                "unclustered_faces": [{"photo": f.photo, "box": f.box} for f in self.alone],
                "skipped": dict(self.skipped), "counts": dict(self.counts), "error": self.error}

    def lines(self) -> list[str]:
        if self.status != RunStatus.DONE:
            done, total = self.counts.get("done", 0), self.counts.get("total", 0)
            return [f"cluster run {self.run} ({self.model}): {self.status}, {done}/{total} photos"
                    + (f": {self.error}" if self.error else "")]
        c = self.counts
        out = [f"cluster run {self.run} ({self.model}, threshold {self.threshold:.4f}): "
               f"{c.get('faces', 0)} faces in {c.get('photos', 0)} photos -> {len(self.groups)} groups, "
               f"{len(self.alone)} faces unclustered ({c.get('embedded', 0)} faces embedded, "
               f"{c.get('reused', 0)} reused; {c.get('seconds', 0):.1f} s)"]
        if c.get("continued"):
            out.append(f"continues cluster run {c['continued']}: {c.get('carried', 0)} faces kept in "
                       f"their groups, {c.get('new_faces', 0)} new faces joined them "
                       f"({c.get('to_named', 0)} to named people, {c.get('to_groups', 0)} to other "
                       f"groups, {c.get('to_new', 0)} in new groups)")
        grew = bool(c.get("continued"))  # a "new" column where faces joined earlier groups
        if self.groups:
            out.append(f"{'group':>6} {'faces':>5}{' new' if grew else ''}  {'suggestion':<28} photos")
        for g in self.groups:
            hint = f"{g.suggestion} ({g.distance:.3f})" if g.suggestion else "-"
            if g.named:
                hint = f"named {g.named}"
            shown = ", ".join(g.photos[:3]) + (f", ... ({len(g.photos) - 3} more)" if len(g.photos) > 3 else "")
            new = f" {'+' + str(g.new) if g.new else '':>3}" if grew else ""
            out.append(f"{g.cluster:>6} {g.size:>5}{new}  {hint:<28} {shown}")
        if self.alone:
            out.append(f"unclustered: {', '.join(self.unclustered[:5])}"
                       + (f", ... ({len(self.unclustered) - 5} more)" if len(self.unclustered) > 5 else ""))
        out += [f"  skipped {name}: {reason}" for name, reason in sorted(self.skipped.items())]
        if self.groups:
            out.append(f"name a group: verifier cluster name {self.run} GROUP NAME")
        return out


def _model_row(session: Session, model_id: int | None):
    row = model_by_id(session, model_id)
    if row is None:
        raise ClusterError("the model of this cluster run is gone")
    return row


def start_run(sessions: sessionmaker[Session], verifier: Verifier, *, threshold: float | None = None,
              min_size: int = DEFAULT_MIN_SIZE, neighbours: int = DEFAULT_NEIGHBOURS,
              max_faces: int = DEFAULT_MAX_FACES, photos: int = 0, origin: str = "cli",
              algorithm: str = DEFAULT_CLUSTER_ALGORITHM, regroup: bool = False) -> int:
    """Record a new run (status ``running``) and return its number; the threshold
    must be known (given, or calibrated by ``verifier evaluate``). ``algorithm``
    ``incremental`` continues the groups of the model's last run (unless
    ``regroup``); ``chinese-whispers`` groups the run's faces anew."""
    if algorithm not in CLUSTER_ALGORITHMS:
        raise ClusterError(f"unknown grouping {algorithm!r}; choose one of {', '.join(CLUSTER_ALGORITHMS)}")
    threshold = verifier.threshold if threshold is None else threshold
    if threshold is None:
        raise NotCalibrated(f"model {verifier.model!r} has no calibrated threshold yet; run "
                            "`verifier evaluate` once, or pass --threshold")
    params = {"threshold": float(threshold), "min_size": min_size, "neighbours": neighbours,
              "max_faces": max_faces, "algorithm": algorithm, "regroup": bool(regroup),
              "centre": DEFAULT_GROUP_CENTRE, "origin": origin,
              "host": socket.gethostname(), "pid": os.getpid(),
              "process_started": process_started(os.getpid())}
    with sessions.begin() as session:
        run_id = store.start(session, verifier.model_id, params, photos)
    return run_id


def cluster_photos(ws: Workspace, sessions: sessionmaker[Session], photos: Sequence[PhotoItem], *,
                   verifier: Verifier, run_id: int | None = None, threshold: float | None = None,
                   min_size: int = DEFAULT_MIN_SIZE, neighbours: int = DEFAULT_NEIGHBOURS,
                   max_faces: int = DEFAULT_MAX_FACES,
                   on_progress: Callable[[int, int], None] | None = None,
                   threads: int | None = None,
                   stopping: Callable[[], bool] | None = None,
                   algorithm: str = DEFAULT_CLUSTER_ALGORITHM, regroup: bool = False) -> ClusterRun:
    """Embed every face of ``photos`` not embedded before, group all of them, record
    the run and return it. ``run_id``: a run made by :func:`start_run` (the service
    answers with its number before the work starts). ``threads`` prepare photos
    (default: every core); ``stopping`` is asked between batches and ends the run
    when true. A run that fails or stops is recorded as ``failed`` with its error;
    the faces embedded so far are kept for the next run. With the ``incremental``
    ``algorithm`` the faces of the model's last run keep their groups and the new ones
    join them (``regroup``: this run's faces are grouped anew by the same rule)."""
    if run_id is None:
        run_id = start_run(sessions, verifier, threshold=threshold, min_size=min_size,
                           neighbours=neighbours, max_faces=max_faces, photos=len(photos),
                           algorithm=algorithm, regroup=regroup)
    try:
        return _cluster(sessions, list(photos), verifier, run_id, on_progress,
                        threads or os.cpu_count() or 1, stopping or (lambda: False))
    except BaseException as exc:
        with sessions.begin() as session:
            store.fail(session, run_id, str(exc) or type(exc).__name__)
        raise


@dataclass
class _Found:
    """What the faces pass of a run gathered: per photo, the faces of its content
    (``None`` when skipped), why photos were skipped, and how many faces were
    embedded now or reused from earlier runs."""

    faces: list[list[store.StoredFace] | None] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    embedded: int = 0
    reused: int = 0


def _cluster(sessions: sessionmaker[Session], photos: list[PhotoItem], verifier: Verifier,
             run_id: int, on_progress: Callable[[int, int], None] | None, threads: int,
             stopping: Callable[[], bool]) -> ClusterRun:
    started = time.perf_counter()
    with sessions() as session:
        params = store.get_run(session, run_id, members=False).params
    threshold, min_size = float(params["threshold"]), int(params["min_size"])
    total = len(photos)
    found = _find_faces(sessions, photos, verifier, run_id, params, on_progress, threads, stopping)
    # one vector per face content; several paths may show the same content
    members: list[tuple[PhotoItem, store.StoredFace]] = [
        (item, face) for item, faces in zip(photos, found.faces) if faces for face in faces]
    if params.get("algorithm", "chinese-whispers") == "incremental":
        grown = _grown(sessions, verifier, run_id, members, params)
    else:
        unique = {face.id: face for _, face in members}
        groups, alone = _groups(sessions, verifier, run_id, members, unique, params)
        _suggest(verifier, groups, unique, threshold)
        rows = ([store.MemberRow(g.cluster, f.face_id, f.path, f.photo) for g in groups for f in g.faces]
                + [store.MemberRow(None, face.id, str(item.path), item.name) for item, face in alone])
        for g in groups:
            g.new = g.size
        grown = _Grown(groups, [_group_face(item, face) for item, face in alone], rows)
    grown.groups.sort(key=lambda g: (-g.size, g.cluster))
    skipped = found.skipped
    counts = {"done": total, "total": total,
              "photos": len({r.photo for r in grown.rows}) if grown.continued else total - len(skipped),
              "faces": len(grown.rows), "embedded": found.embedded, "reused": found.reused,
              "skipped": len(skipped), "groups": len(grown.groups), "unclustered": len(grown.alone),
              "seconds": round(time.perf_counter() - started, 3), **grown.counts}
    with sessions.begin() as session:
        store.finish(session, run_id,
                     [store.GroupRow(g.cluster, g.size, g.suggestion, g.distance) for g in grown.groups],
                     grown.rows, dict(counts, skipped_photos=skipped,
                                      new_by_group={str(g.cluster): g.new for g in grown.groups}))
        for g in grown.groups:
            if g.named:
                store.mark_named(session, run_id, g.cluster, g.named)
    return ClusterRun(run_id, verifier.model, RunStatus.DONE, threshold, min_size, grown.groups,
                      grown.alone, skipped, counts, origin=params.get("origin", "cli"))


@dataclass
class _Grown:
    """A run's groups, the faces left alone, every member row in arrival order, and
    (continuing a run) what the new faces did."""

    groups: list["Group"]
    alone: list[GroupFace]
    rows: list[store.MemberRow]
    counts: dict = field(default_factory=dict)

    @property
    def continued(self) -> bool:
        return bool(self.counts.get("continued"))


def _previous_run(sessions: sessionmaker[Session], verifier: Verifier, run_id: int,
                  params: dict) -> store.StoredRun | None:
    """The model's last finished run, when this one continues it: made by the same
    rule with the same threshold, neighbours and centre, every face labelled, and by
    the same front end (the service's runs show their photos by upload names, the
    CLI's by paths on the server, which the service never shows)."""
    if params.get("regroup"):
        return None
    with sessions() as session:
        last = store.last_done(session, verifier.model_id, run_id, params.get("origin", "cli"))
        previous = None if last is None else store.get_run(session, last)
    if previous is None or previous.params.get("algorithm") != "incremental" or any(
            previous.params.get(key, "cli" if key == "origin" else None) != params.get(key)
            for key in ("threshold", "neighbours", "centre", "origin")):
        return None
    if any(m.label is None for m in previous.members):
        return None
    return previous


def _grown(sessions: sessionmaker[Session], verifier: Verifier, run_id: int,
           members: list[tuple[PhotoItem, store.StoredFace]], params: dict) -> _Grown:
    """The groups of an incremental run: the faces of the run it continues keep their
    groups (and names), and each face new to them joins a group as it arrives
    (:class:`verifier.assignment.Groups`), in the order of the photos given."""
    from verifier.assignment import Groups

    previous = _previous_run(sessions, verifier, run_id, params)
    kept = previous.members if previous is not None else []
    rows = [store.MemberRow(m.label, m.face.id, m.photo, m.source, m.label) for m in kept]
    faces = {m.face.id: m.face for m in kept}
    start = list(dict.fromkeys(m.face.id for m in kept))
    label_of = {m.face.id: m.label for m in kept}
    named = {g.cluster: g.named for g in previous.groups if g.named} if previous else {}
    groups = Groups(float(params["threshold"]), int(params["neighbours"]), centre=params.get("centre"),
                    vectors=np.stack([faces[i].vector for i in start]) if start else None,
                    labels=np.array([label_of[i] for i in start], np.int64) if start else None,
                    names=named)
    new = [f for f in dict((face.id, face) for _, face in members).values() if f.id not in faces]
    if new:
        groups.add(np.stack([f.vector for f in new]))
    seen = {(r.face_id, r.photo) for r in rows}
    for item, face in members:
        if (face.id, str(item.path)) not in seen:
            seen.add((face.id, str(item.path)))
            rows.append(store.MemberRow(None, face.id, str(item.path), item.name))
    faces.update((f.id, f) for f in new)
    final = dict(zip(start + [f.id for f in new], groups.labels.tolist()))
    return _grown_groups(verifier, previous, rows, faces, final, {f.id for f in new}, named, params)


def _grown_groups(verifier: Verifier, previous: store.StoredRun | None, rows: list[store.MemberRow],
                  faces: dict[int, store.StoredFace], final: dict[int, int], fresh: set[int],
                  named: dict[int, str], params: dict) -> _Grown:
    """Groups from the final label of every face: those of at least ``min_size``
    member rows shown, names carried over (a merge into a named group keeps its name),
    and every group's suggestion worked out against the gallery as it is now (people
    enrolled or removed since the run before count)."""
    by_label: dict[int, list[store.MemberRow]] = {}
    for r in rows:
        by_label.setdefault(final[r.face_id], []).append(r)
    big = {lab for lab, rs in by_label.items() if len(rs) >= int(params["min_size"])}
    rows = [r._replace(cluster=final[r.face_id] if final[r.face_id] in big else None,
                       label=final[r.face_id]) for r in rows]
    shown: dict[int, list[GroupFace]] = {}
    for r in rows:
        if r.cluster is not None:
            shown.setdefault(r.cluster, []).append(_row_face(r, faces[r.face_id]))
    groups = [Group(lab, shown[lab], named=named.get(lab), new=sum(r.face_id in fresh for r in by_label[lab]))
              for lab in sorted(big)]
    _suggest(verifier, groups, faces, float(params["threshold"]))
    alone = [_row_face(r, faces[r.face_id]) for r in rows if r.cluster is None]
    counts = {}
    if previous is not None:
        joined = [final[i] for i in fresh]
        old_labels = {lab for i, lab in final.items() if i not in fresh}
        counts = {"continued": previous.number, "carried": len(final) - len(fresh), "new_faces": len(fresh),
                  "to_named": sum(lab in named for lab in joined),
                  "to_groups": sum(lab in old_labels and lab not in named for lab in joined)}
        counts["to_new"] = counts["new_faces"] - counts["to_named"] - counts["to_groups"]
    return _Grown(groups, alone, rows, counts)


def _row_face(row: store.MemberRow, face: store.StoredFace) -> GroupFace:
    return GroupFace(row.source or row.photo, face.box, face.face, face.id, row.photo)


def _find_faces(sessions: sessionmaker[Session], photos: list[PhotoItem], verifier: Verifier,
                run_id: int, params: dict, on_progress: Callable[[int, int], None] | None,
                threads: int, stopping: Callable[[], bool]) -> _Found:
    """The faces of every photo, batch by batch: those of a content seen before are
    read back, the others detected, embedded and stored; progress is recorded."""
    total = len(photos)
    found = _Found()
    last = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for at in range(0, total, BATCH):
            if stopping():
                raise ClusterError(f"cluster run {run_id} stopped after {at} of {total} photos "
                                   "(the server shut down); start it again: the faces embedded "
                                   "so far are kept")
            _find_batch(sessions, photos[at:at + BATCH], verifier, params, pool, found)
            done = min(at + BATCH, total)
            if on_progress:
                on_progress(done, total)
            if time.monotonic() - last >= PROGRESS_EVERY_S or done == total:
                with sessions.begin() as session:
                    store.progress(session, run_id, done, total)
                last = time.monotonic()
    return found


def _find_batch(sessions: sessionmaker[Session], chunk: list[PhotoItem], verifier: Verifier,
                params: dict, pool: ThreadPoolExecutor, found: _Found) -> None:
    datas: list[bytes | None] = []
    for item in chunk:
        try:
            datas.append(read_photo_bytes(item.path))
        except VerifierError as exc:  # shown by its name, not where it lies
            found.skipped[item.name] = str(exc).replace(str(item.path), item.name)
            datas.append(None)
    shas = [sha256_bytes(d) if d is not None else None for d in datas]
    with sessions() as session:
        known = store.faces_of(session, verifier.model_id, [s for s in shas if s])
    todo = {s: (d, item) for s, d, item in zip(shas, datas, chunk) if s and s not in known}
    prepared = dict(zip(todo, pool.map(lambda kv: _prepare(verifier, *kv, params), todo.values())))
    new = _stored_faces(verifier, prepared)
    if new:
        with sessions.begin() as session:
            known.update(store.store_faces(session, verifier.model_id, new))
        found.embedded += len(new)
    for sha, item in zip(shas, chunk):
        if sha is None:
            found.faces.append(None)
        elif isinstance(prepared.get(sha), str):
            found.skipped[item.name] = prepared[sha]
            found.faces.append(None)
        else:
            if sha not in prepared:
                found.reused += len(known.get(sha, []))
            found.faces.append(known.get(sha, []))


def _stored_faces(verifier: Verifier, prepared: dict[str, list[Prepared] | str]) -> list[store.StoredFace]:
    """The prepared faces of a batch (by photo content) embedded in one call, as rows
    to store; a photo that could not be used (its reason) has none."""
    faces = [(sha, p) for sha, ps in prepared.items() if not isinstance(ps, str) for p in ps]
    vectors = verifier.embed([p for _, p in faces])
    return [store.StoredFace(sha, p.index, max(p.found, 1),
                             list(p.box) if p.face is not None else None,
                             None if p.face is None else float(p.face.confidence), vector,
                             None if p.quality is None else p.quality.score)
            for (sha, p), vector in zip(faces, vectors)]


def _groups(sessions: sessionmaker[Session], verifier: Verifier, run_id: int,
            members: list[tuple[PhotoItem, store.StoredFace]], unique: dict[int, store.StoredFace],
            params: dict) -> tuple[list["Group"], list[tuple[PhotoItem, store.StoredFace]]]:
    """The groups of at least ``min_size`` faces (numbered as in the run before where
    their faces are the same) and the faces left alone."""
    ids = np.fromiter(unique, dtype=np.int64, count=len(unique))
    vectors = np.stack([unique[i].vector for i in ids]) if len(ids) else np.zeros((0, 1), np.float32)
    labels = cluster_vectors(vectors, float(params["threshold"]), k=int(params["neighbours"]),
                             min_size=1) if len(ids) else np.zeros(0, np.int64)
    label_of = dict(zip(ids.tolist(), labels.tolist()))
    by_label: dict[int, list[tuple[PhotoItem, store.StoredFace]]] = {}
    for item, face in members:
        by_label.setdefault(label_of[face.id], []).append((item, face))
    big = {lab: m for lab, m in by_label.items() if len(m) >= int(params["min_size"])}
    alone = [m for lab, ms in by_label.items() if lab not in big for m in ms]
    with sessions() as session:
        previous, top = store.previous_groups(session, verifier.model_id, run_id)
    groups: list[Group] = []
    fresh = top + 1
    for lab, ms in sorted(big.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        key = frozenset(face.id for _, face in ms)
        if key in previous:
            number = previous[key]
        else:
            number, fresh = fresh, fresh + 1
        groups.append(Group(number, [_group_face(item, face) for item, face in ms]))
    return groups, alone


def _prepare(verifier: Verifier, data: bytes, item: PhotoItem, params: dict) -> list[Prepared] | str:
    """Every face of one photo (detection cached by content), or why it cannot be used."""
    try:
        return verifier.prepare_faces(data, item.name, max_faces=int(params["max_faces"]), remember=True)
    except VerifierError as exc:
        return str(exc)


def _group_face(item: PhotoItem, face: store.StoredFace) -> GroupFace:
    return GroupFace(item.name, face.box, face.face, face.id, str(item.path))


def _suggest(verifier: Verifier, groups: list[Group], faces: dict[int, store.StoredFace],
             threshold: float) -> None:
    """Each group's suggestion: the gallery identity that most of its faces find
    nearest within the threshold (distance: the median of those faces'), if any. A
    face under the verifier's quality floor has no vote: it names nobody."""
    if not groups:
        return
    ids = [f.face_id for g in groups for f in g.faces]
    try:
        ranked, _ = verifier.rank_many(np.stack([faces[i].vector for i in ids]), 1)
    except GalleryEmpty:
        return
    at = 0
    for g in groups:
        votes: dict[str, list[float]] = {}
        for face, matches in zip(g.faces, ranked[at:at + g.size]):
            quality = faces[face.face_id].quality
            if quality is not None and quality < verifier.min_quality:
                continue
            if matches and matches[0].distance <= threshold:
                votes.setdefault(matches[0].identity, []).append(matches[0].distance)
        at += g.size
        if votes:
            name, distances = max(votes.items(), key=lambda kv: (len(kv[1]), -min(kv[1])))
            g.suggestion, g.distance = name, float(np.median(distances))


def process_started(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc``; ``None``
    where unknown): with the pid it names one process, even where pids come again (a
    restarted container's first process has the pid of the one before)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def run_gone(params: dict) -> bool:
    """Whether the process that ran a run on this machine is gone (killed, or its
    pid now another process's)."""
    if params.get("host") != socket.gethostname() or not params.get("pid"):
        return False
    try:
        os.kill(int(params["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    started = params.get("process_started")
    return started is not None and process_started(int(params["pid"])) != started


GONE = ("the process that ran it (pid {pid}) is gone; run the same command again: the faces "
        "embedded so far are kept")


def load_run(sessions: sessionmaker[Session], run_id: int) -> ClusterRun:
    """A recorded run as :func:`cluster_photos` returned it (or its progress). A run
    still marked running whose process on this machine is gone (killed) is shown as
    failed, with what to do."""
    return _load_run(sessions, run_id)[0]


def _load_run(sessions: sessionmaker[Session], run_id: int
              ) -> tuple[ClusterRun, dict[int, store.StoredFace]]:
    """The run, and its stored faces by id (their vectors, for naming)."""
    with sessions() as session:
        stored = store.get_run(session, run_id)
        model = _model_row(session, stored.model_id).name
    if stored.status == RunStatus.RUNNING and run_gone(stored.params):
        stored = stored._replace(status=RunStatus.FAILED, error=GONE.format(pid=stored.params["pid"]))
    counts = dict(stored.counts)
    skipped = counts.pop("skipped_photos", {}) or {}
    new = counts.pop("new_by_group", {}) or {}
    groups = {g.cluster: Group(g.cluster, [], g.suggestion, g.distance, g.named,
                               int(new.get(str(g.cluster), 0))) for g in stored.groups}
    alone = []
    for m in stored.members:
        face = GroupFace(m.source or m.photo, m.face.box, m.face.face, m.face.id, m.photo)
        (groups[m.cluster].faces if m.cluster in groups else alone).append(face)
    run = ClusterRun(stored.number, model, stored.status, stored.params.get("threshold"),
                     int(stored.params.get("min_size", DEFAULT_MIN_SIZE)),
                     sorted(groups.values(), key=lambda g: (-g.size, g.cluster)), alone,
                     skipped, counts, stored.error, stored.params.get("origin", "cli"))
    return run, {m.face.id: m.face for m in stored.members}


def group_face(sessions: sessionmaker[Session], run_id: int, cluster: int | None, index: int) -> GroupFace:
    """Face ``index`` of group ``cluster`` (``None``: the unclustered faces) of a run."""
    with sessions() as session:
        m = store.member(session, run_id, cluster, index)
    return GroupFace(m.source or m.photo, m.face.box, m.face.face, m.face.id, m.photo)


@dataclass
class Named:
    run: int
    cluster: int
    identity: str
    enrolled: int
    already: int
    skipped: dict[str, str]

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def lines(self) -> list[str]:
        out = [f"group {self.cluster} of run {self.run} -> {self.identity}: {self.enrolled} photos "
               f"enrolled, {self.already} already there"]
        out += [f"  skipped {name}: {reason}" for name, reason in sorted(self.skipped.items())]
        return out


def _photos_to_enroll(verifier: Verifier, run_id: int, group: "Group", faces: dict,
                      skipped: dict[str, str]) -> tuple[list[gallery.NewPhoto], list[bytes]]:
    """The group's photos as gallery photos with the vectors the run stored, and their
    bytes; a photo that cannot be read, changed since the run or whose face is under
    the quality floor is left out with its reason in ``skipped``."""
    new: list[gallery.NewPhoto] = []
    datas: list[bytes] = []
    for face in sorted(group.faces, key=lambda f: f.face):  # a photo's largest face first
        stored = faces[face.face_id]
        try:
            data = read_photo_bytes(Path(face.path))
        except VerifierError as exc:
            skipped[face.photo] = str(exc)
            continue
        sha = sha256_bytes(data)
        if sha != stored.sha256:
            skipped[face.photo] = f"the photo changed since cluster run {run_id}"
            continue
        if stored.quality is not None and stored.quality < verifier.min_quality:
            skipped[face.photo] = (f"face quality {stored.quality:.2f} is below the minimum "
                                   f"{verifier.min_quality:.2f}")
            continue
        path = str(verifier.ws.enrolled_path(sha, image_format(data)))
        if any(n.path == path and n.face_index == stored.face for n in new):
            continue
        new.append(gallery.NewPhoto(path, sha, *read_header(data),
                                    FaceStatus.of(max(stored.faces, 1)).value,
                                    Path(face.photo).name, stored.vector,
                                    None if stored.box is None else tuple(stored.box), stored.quality,
                                    stored.face))
        datas.append(data)
    return new, datas


def name_group(sessions: sessionmaker[Session], verifier: Verifier, run_id: int, cluster: int,
               name: str, *, merge: bool = False) -> Named:
    """Enroll the faces of group ``cluster`` of run ``run_id`` as person ``name``
    through the gallery's one write path, with the vectors the run computed (nothing
    is embedded again). ``name`` must be new, or an existing person with ``merge``.
    Each face is enrolled as the face it is in its photo: a group photo's other
    faces stay free for their own people. A photo that changed since the run, or a
    face the gallery holds as someone else, is skipped and reported."""
    name = gallery.identity_name(name)
    run, faces = _load_run(sessions, run_id)
    if run.status != RunStatus.DONE:
        raise RunNotDone(f"cluster run {run_id} is {run.status}; name its groups once it is done")
    if run.model != verifier.model:
        raise OtherModel(f"cluster run {run_id} was made with model {run.model!r}, not {verifier.model!r}")
    group = next((g for g in run.groups if g.cluster == cluster), None)
    if group is None:
        raise store.RunNotFound(f"cluster run {run_id} has no group {cluster}")
    with sessions() as session:
        exists = gallery.identity_exists(session, name)
    if exists and not merge:
        raise GalleryConflict(f"there is already a person named {name!r}; merge the group into "
                              "them on purpose (--merge-into / merge=true) or choose another name")
    if merge and not exists:
        raise IdentityNotFound(f"no identity {name!r} in the gallery to merge into")
    skipped: dict[str, str] = {}
    new, datas = _photos_to_enroll(verifier, run_id, group, faces, skipped)
    with sessions() as session:
        taken = gallery.enrolled_as(session, [n.path for n in new])
    keep = []
    for n, data in zip(new, datas):
        other = taken.get((n.path, n.face_index))
        if other is not None and other != name:
            skipped[n.source] = f"this face is in the gallery as {other!r} already"
        else:
            keep.append((n, data))
    done = verifier.enroll_embedded(name, [n for n, _ in keep], [d for _, d in keep]) if keep else []
    with sessions.begin() as session:
        store.mark_named(session, run_id, cluster, name)
    created = sum(e.created for e in done)
    return Named(run_id, cluster, name, created, len(done) - created, skipped)



def enroll_named(sessions: sessionmaker[Session], verifier: Verifier, run: ClusterRun) -> list[Named]:
    """Enroll the new faces of every named group of a finished run as that group's
    person, with the vectors the run computed (what ``cluster name --merge-into``
    does for one group): faces that joined people the user named join the gallery.
    Faces under the quality floor, or in the gallery as someone else, are skipped and
    listed; a group whose person was removed from the gallery since is left alone."""
    out = []
    for g in run.groups:
        if g.named and g.new:
            try:
                out.append(name_group(sessions, verifier, run.run, g.cluster, g.named, merge=True))
            except IdentityNotFound:
                log.info("group %d of run %d: %r is no longer in the gallery", g.cluster, run.run, g.named)
    return out
