"""Workspace checks: database, every index and sidecar, model folders, photo files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from storage import gallery
from storage.errors import IndexMismatch
from storage.follower import Follower, audit
from storage.index import load_index
from storage.models import models as registered_models
from storage.schema import Model
from storage.workspace import Workspace

from .embed import sync_index


@dataclass
class DoctorReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.problems


def _check_index(ws: Workspace, sessions: sessionmaker[Session], model: Model,
                 report: DoctorReport, repair: bool) -> None:
    """The snapshot of one model: intact, and once the change log after it is
    applied (as a server does when it loads it), holding exactly the stored vectors,
    compared id by id (all, or a seeded sample above 100,000)."""
    path = ws.index_path(model.name)
    with sessions() as session:
        count = gallery.model_count(session, model.id)
        head = gallery.changes.head(session)
    if not count and not path.exists():
        return
    try:
        info = load_index(path, model=model.name, full_check=True)[1]
    except IndexMismatch as exc:
        _fix(ws, sessions, model, report, repair, str(exc), count)
        return
    follower = Follower(sessions, path, model=model.name, model_id=model.id, dimension=info.dimension)
    caught = follower.load()
    found = audit(follower.index, sessions, model.id)
    report.checked[f"vectors of {model.name}"] = found.checked
    if found.sampled:
        report.notes.append(f"model {model.name}: compared a seeded sample of {found.checked} of "
                            f"{found.total} vectors with the database")
    if not found.ok:
        _fix(ws, sessions, model, report, repair,
             f"the index disagrees with the stored vectors: {found.describe()}", count)
    elif caught.rebuilt:
        _fix(ws, sessions, model, report, repair,
             "the index snapshot predates the change log or is of another database", count,
             problem=False)
    elif info.seq < head:
        if repair:
            follower.save(force=True)
            report.repaired.append(f"brought the index snapshot of {model.name} up to date "
                                   f"(change {info.seq} -> {follower.seq})")
        else:
            report.notes.append(f"model {model.name}: the index snapshot is {head - info.seq} "
                                "gallery changes behind the database; they are applied when it is "
                                "loaded (--repair rewrites it)")


def _fix(ws: Workspace, sessions: sessionmaker[Session], model: Model, report: DoctorReport,
         repair: bool, what: str, count: int, problem: bool = True) -> None:
    if repair:
        sync_index(ws, sessions, model.name, model.id, force=True)
        report.repaired.append(f"rebuilt the index of {model.name} from {count} stored vectors "
                               f"({what})")
    elif problem:
        report.problems.append(f"model {model.name}: {what}; run `verifier doctor --repair`")
    else:
        report.notes.append(f"model {model.name}: {what}; it is rebuilt when loaded "
                            "(--repair does it now)")


def check_workspace(ws: Workspace, sessions: sessionmaker[Session], *,
                    repair: bool = False) -> DoctorReport:
    """List every disagreement between database, index files and disk; with
    ``repair``, rebuild or update indexes from the stored vectors."""
    report = DoctorReport()
    with sessions() as session:
        models = registered_models(session)
        photos = gallery.gallery_contents(session)
    report.checked = {"models": len(models), "photos": len(photos)}
    for model in models:
        folder = ws.models_dir / model.name
        if not (folder / "branch.keras").is_file() or not (folder / "config.json").is_file():
            report.problems.append(f"model {model.name}: its folder {folder} is missing or incomplete")
        _check_index(ws, sessions, model, report, repair)
    known = {m.name for m in models}
    for path in sorted(ws.indexes_dir.glob("*.faiss")):
        if path.stem not in known:
            if repair:
                path.unlink()
                path.with_name(path.name + ".json").unlink(missing_ok=True)
                report.repaired.append(f"removed {path.name}: no such model in the database")
            else:
                report.problems.append(f"index {path.name} belongs to no model in the database")
    _check_files(ws, sessions, photos, report, repair)
    return report


def _copy_of(ws: Workspace, sessions: sessionmaker[Session], photo: gallery.StoredPhoto) -> Path | None:
    """A file elsewhere with a photo's bytes (another photo's, an upload), verified."""
    from verifier.images import sha256_bytes

    with sessions() as session:
        candidates = [Path(p) for p in gallery.paths_with_content(session, photo.sha256)]
    candidates.append(ws.upload_path(photo.sha256, Path(photo.path).suffix.lstrip(".") or "jpg"))
    for path in candidates:
        if str(path) != photo.path and path.is_file() and sha256_bytes(path.read_bytes()) == photo.sha256:
            return path
    return None


def _check_files(ws: Workspace, sessions: sessionmaker[Session],
                 photos: list[gallery.StoredPhoto], report: DoctorReport, repair: bool) -> None:
    """Every gallery photo has its file. An enrolled photo's lost file is restored
    with ``repair`` from a copy of the same bytes where one is left (else said so);
    a folder's photo gone is the user's to prune."""
    from storage.files import write_bytes_atomic

    missing = [p for p in photos if not Path(p.path).is_file()]
    lost = [p for p in missing if ws.is_enrolled(p.path)]
    for photo in lost:
        copy = _copy_of(ws, sessions, photo) if repair else None
        if copy is not None:
            write_bytes_atomic(photo.path, copy.read_bytes())
            report.repaired.append(f"restored the file of enrolled photo {photo.image_id} from "
                                   f"{copy}")
        elif repair:
            report.problems.append(f"enrolled photo {photo.image_id}: its file is gone and no copy "
                                   "of its bytes is left; it still answers searches. Enroll the "
                                   f"photo again, or remove it (DELETE /v1/photos/{photo.image_id})")
        else:
            report.problems.append(f"enrolled photo {photo.image_id}: its file {photo.path} is gone "
                                   "(run `verifier doctor --repair` to restore it from a copy of "
                                   "the same bytes)")
    folder = [p for p in missing if not ws.is_enrolled(p.path)]
    for p in folder[:20]:
        report.problems.append(f"photo {p.path} is in the gallery but gone from disk "
                               "(run `verifier embed --data DIR --prune` to drop it)")
    if len(folder) > 20:
        report.problems.append(f"... and {len(folder) - 20} more photos gone from disk")
