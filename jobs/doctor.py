"""Workspace checks: database, every index and sidecar, model folders, photo files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage import gallery
from storage.errors import IndexMismatch, IndexStale
from storage.index import load_index
from storage.schema import Image, Model
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


def check_workspace(ws: Workspace, factory: sessionmaker[Session], *,
                    repair: bool = False) -> DoctorReport:
    """List every disagreement between database, index files and disk; with
    ``repair``, rebuild indexes from the stored vectors and re-check."""
    report = DoctorReport()
    with factory() as session:
        models = list(session.scalars(select(Model)))
        photos = session.execute(select(Image.path).where(Image.status == "ok")).scalars().all()
    report.checked = {"models": len(models), "photos": len(photos)}
    for model in models:
        folder = ws.models_dir / model.name
        if not (folder / "branch.keras").is_file() or not (folder / "config.json").is_file():
            report.problems.append(f"model {model.name}: its folder {folder} is missing or incomplete")
        with factory() as session:
            ids = gallery.model_ids(session, model.id)
        path = ws.index_path(model.name)
        if not len(ids) and not path.exists():
            continue
        try:
            load_index(path, model=model.name, ids=ids, full_check=True)
        except IndexStale:
            if repair:
                sync_index(ws, factory, model.name, model.id)
                report.repaired.append(f"brought the index snapshot of {model.name} up to date")
            else:
                report.notes.append(f"model {model.name}: the index snapshot is behind the "
                                    "database; it catches up when loaded (--repair rewrites it)")
        except IndexMismatch as exc:
            if repair:
                sync_index(ws, factory, model.name, model.id, force=True)
                report.repaired.append(f"rebuilt the index of {model.name} from "
                                       f"{len(ids)} stored vectors")
            else:
                report.problems.append(f"model {model.name}: {exc}")
    known = {m.name for m in models}
    for path in sorted(ws.indexes_dir.glob("*.faiss")):
        if path.stem not in known:
            if repair:
                path.unlink()
                path.with_name(path.name + ".json").unlink(missing_ok=True)
                report.repaired.append(f"removed {path.name}: no such model in the database")
            else:
                report.problems.append(f"index {path.name} belongs to no model in the database")
    missing = [p for p in photos if not Path(p).is_file()]
    for p in missing[:20]:
        report.problems.append(f"photo {p} is in the gallery but gone from disk "
                               "(run `verifier embed --data DIR --prune` to drop it)")
    if len(missing) > 20:
        report.problems.append(f"... and {len(missing) - 20} more photos gone from disk")
    return report
