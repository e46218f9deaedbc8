"""Group photos composed from the seed photos, and a dlib-resnet workspace over a
few seed people: shared by the multi-face tests, the page's browser tests and the
group-photo benchmark."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from tests.conftest import SEED_FACES
from verifier.synthetic import compose_group


def seed(person: str, n: int) -> Path:
    """The ``n``-th seed photo of ``person`` (sorted by name)."""
    return sorted((SEED_FACES / person).iterdir())[n]


def compose(photos: Sequence[Path], sides: Sequence[int], **kw) -> bytes:
    """The photos side by side as one PNG (:func:`verifier.synthetic.compose_group`)."""
    return compose_group(list(photos), list(sides), **kw)[0]


def dlib_home(base: Path, people: Sequence[str], photos: int = 4, threshold: float = 0.6):
    """A workspace with the dlib-resnet model (MTCNN faces) over the first
    ``photos`` seed photos of each of ``people``, embedded, its threshold set to
    dlib's own. Returns ``(workspace, sessions, data folder)``."""
    from jobs.embed import embed_gallery
    from jobs.train import TrainOptions, train
    from storage import models
    from storage.database import open_database
    from storage.workspace import Workspace

    data = base / "gallery"
    for person in people:
        (data / person).mkdir(parents=True)
        for photo in sorted((SEED_FACES / person).iterdir())[:photos]:
            shutil.copy(photo, data / person / photo.name)
    ws = Workspace.open(base / "home")
    sessions = open_database(ws.database_url)
    train(ws, TrainOptions(data=data, backbone="dlib-resnet", head="none", fine_tune=0.0,
                           name="dlib"), quiet=True, echo=lambda s: None, database=sessions)
    embed_gallery(ws, sessions, data, model="dlib", quiet=True)
    with sessions.begin() as s:
        models.get_model(s, "dlib").threshold = threshold
    return ws, sessions, data
