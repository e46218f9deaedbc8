"""The races of issue 36 between two real `verifier serve` processes on one database,
round after round: run by ``tests/jobs/test_gallery_races.py`` (a few rounds) and
``benchmarks/gallery_races.py`` (as many as asked)."""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sqlalchemy import select

from storage.schema import Identity, Image, ImageStatus
from storage.workspace import Workspace
from tests.servers import Server


@dataclass
class RaceCounts:
    rounds: int = 0
    wrong_names: int = 0        # a server answering a photo by another name than the database's
    lost_files: set[str] = field(default_factory=set)  # gallery photos found without their file
    server_errors: int = 0      # answers 5xx

    @property
    def clean(self) -> bool:
        return not (self.wrong_names or self.lost_files or self.server_errors)

    def describe(self) -> str:
        return (f"{self.rounds} rounds: {self.wrong_names} wrong names, {len(self.lost_files)} "
                f"photos that lost their file, {self.server_errors} answers 5xx")


def at_once(*calls: Callable) -> list[int]:
    """Run ``calls`` (each an HTTP request) together; their statuses."""
    codes: list[int] = []
    threads = [threading.Thread(target=lambda c=c: codes.append(c().status_code)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def race_rounds(home: Path, db_url: str, sessions, rounds: int,
                photo: Callable[[int, int], bytes]) -> RaceCounts:
    """``rounds`` rounds of both races through two servers over workspace ``home``:
    server A renames (odd rounds) or merges a person while server B enrolls a new
    photo of them; A removes an enrolled photo while B enrolls its bytes again. After
    each round both servers are caught up and checked against the database."""
    ws = Workspace.open(home)
    a, b = Server(home, db_url, refresh=0.2), Server(home, db_url, refresh=0.2)
    out = RaceCounts()
    a.start()
    b.start()
    try:
        for n in range(rounds):
            person, fresh = f"r{n}", photo(n % 5, 10_000 + n)
            assert a.enroll(person, [photo(n % 5, 20_000 + n)]) == 201
            codes = at_once(
                lambda: a.client.patch(f"/v1/identities/{person}",
                                       json={"name": f"s{n}" if n % 2 else "r_merged", "merge": True}),
                lambda: b.client.post(f"/v1/identities/{person}/photos", files=[("photos", ("p.png", fresh))]))
            again = photo((n + 1) % 5, 30_000 + n)
            r = a.client.post("/v1/identities/keeper/photos", files=[("photos", ("k.png", again))])
            photo_id = r.json()["photos"][0]["photo_id"]
            codes += at_once(lambda: a.client.delete(f"/v1/photos/{photo_id}"),
                             lambda: b.client.post("/v1/identities/keeper/photos",
                                                   files=[("photos", ("k.png", again))]))
            out.server_errors += sum(c >= 500 for c in codes)
            for server in (a, b):
                server.wait_caught_up()
            with sessions() as s:
                truth = s.scalar(select(Identity.name).join(Image, Image.identity_id == Identity.id)
                                 .where(Image.sha256 == hashlib.sha256(fresh).hexdigest()))
                paths = s.scalars(select(Image.path).where(Image.status == ImageStatus.OK)).all()
            for server in (a, b):
                top = server.search(fresh, k=1)[0]
                out.wrong_names += top["distance"] < 1e-4 and top["identity"] != truth
            out.lost_files.update(p for p in paths if ws.is_enrolled(p) and not Path(p).is_file())
            out.rounds += 1
    finally:
        a.kill()
        b.kill()
    return out
