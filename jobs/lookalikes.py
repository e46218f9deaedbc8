"""The gallery check: pairs of named people the model nearly takes for one
(:mod:`verifier.lookalikes`), with the photos that bridge them, for a person to look at. Nothing is changed: merging two people is a user's
decision (`verifier gallery rename OLD NEW --merge`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from storage import gallery
from verifier.lookalikes import MARGIN, look_alikes

from .errors import NotCalibrated
from .live import Verifier


@dataclass(frozen=True)
class BridgePhotos:
    """A photo of each of two people, ``distance`` apart."""

    photo_a: int
    photo_b: int
    distance: float
    path_a: str = field(repr=False, default="")
    path_b: str = field(repr=False, default="")


@dataclass(frozen=True)
class LookAlikePair:
    """Two people whose closest photos are ``distance`` apart, under ``limit`` (the
    threshold plus the margin)."""

    first: str
    second: str
    distance: float
    limit: float
    bridges: tuple[BridgePhotos, ...]

    def as_dict(self, paths: bool = True) -> dict:
        return {"first": self.first, "second": self.second, "distance": round(self.distance, 4),
                "limit": round(self.limit, 4),
                "bridges": [{"photo_a": b.photo_a, "photo_b": b.photo_b, "distance": round(b.distance, 4)}
                            | ({"path_a": b.path_a, "path_b": b.path_b} if paths else {})
                            for b in self.bridges]}


@dataclass(frozen=True)
class GalleryCheck:
    """The look-alike pairs of a model's gallery, most overlapping first."""

    model: str
    threshold: float
    people: int
    photos: int
    pairs: list[LookAlikePair]

    def as_dict(self, paths: bool = True) -> dict:
        return {"model": self.model, "threshold": self.threshold, "people": self.people,
                "photos": self.photos, "pairs": [p.as_dict(paths) for p in self.pairs]}

    @property
    def limit(self) -> float:
        return self.threshold * (1 + MARGIN)

    def lines(self) -> list[str]:
        head = (f"model {self.model}: {self.people} {'person' if self.people == 1 else 'people'}, "
                f"{self.photos} photo{'s' * (self.photos != 1)}")
        if not self.pairs:
            return [head + f"; no look-alikes (no photo comes within {self.limit:.3f} of "
                    "another person's)"]
        out = [head + f"; {len(self.pairs)} pair{'s' * (len(self.pairs) != 1)} of people to check "
               f"(a photo of each within {self.limit:.3f}, the threshold {self.threshold:.3f} "
               f"and {MARGIN:.0%}):"]
        for p in self.pairs:
            out.append(f"  {p.first} ~ {p.second}: closest photos {p.distance:.3f} apart")
            out += [f"    {b.path_a} ~ {b.path_b}: {b.distance:.3f}" for b in p.bridges]
        out.append("the same person under two names? verifier gallery rename NAME OTHER --merge")
        return out


def check_gallery(verifier: Verifier) -> GalleryCheck:
    """The look-alike pairs among the people of ``verifier``'s gallery, from the vectors
    the database holds, at the model's calibrated threshold."""
    if verifier.threshold is None:
        raise NotCalibrated(f"model {verifier.model!r} has no calibrated threshold yet; run "
                            "`verifier evaluate` once")
    with verifier.sessions() as session:
        photos = gallery.embedded_photos(session, verifier.model_id)
        ids, vectors = gallery.model_vectors(session, verifier.model_id)
    keep = np.array([int(i) in photos for i in ids], dtype=bool)
    ids, vectors = ids[keep], vectors[keep]
    names = sorted({photos[int(i)].identity for i in ids})
    number = {name: n for n, name in enumerate(names)}
    labels = np.array([number[photos[int(i)].identity] for i in ids], dtype=np.int64)
    pairs = [] if len(ids) == 0 else look_alikes(vectors, labels, float(verifier.threshold))

    def photo(index: int) -> gallery.GalleryPhoto:
        return photos[int(ids[index])]

    found = [LookAlikePair(names[p.first], names[p.second], p.distance, p.limit,
                           tuple(BridgePhotos(photo(b.first).image_id, photo(b.second).image_id, b.distance,
                                              photo(b.first).path, photo(b.second).path)
                                 for b in p.bridges))
             for p in pairs]
    return GalleryCheck(verifier.model, float(verifier.threshold), len(names), len(ids), found)
