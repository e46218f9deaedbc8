"""The gallery check: pairs of named people the model nearly takes for one
(:mod:`verifier.lookalikes`), with the photos that bridge them, and the unnamed
groups of the latest cluster run that come as near a person other than the one they
are suggested as, for a person to look at. Nothing is changed: merging two people
(`verifier gallery rename OLD NEW --merge`) or naming a group is a user's decision."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from storage import clusters, gallery
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
class GroupLookAlike:
    """An unnamed group of a cluster run with a face within the limit of a photo of
    ``person``, who is not the person the group is suggested as: naming the group
    after either needs a look first."""

    run: int
    cluster: int
    size: int
    suggestion: str | None
    person: str
    distance: float
    face: int
    """The bridging face's position in its group (``/v1/clusters/{run}/{cluster}/faces/{face}``)."""
    photo: str
    """That face's photo, by the name the run shows it by."""
    photo_id: int
    """The person's gallery entry nearest to it."""

    def as_dict(self, paths: bool = True) -> dict:
        from pathlib import Path

        return {"run": self.run, "cluster": self.cluster, "size": self.size, "suggestion": self.suggestion,
                "person": self.person, "distance": round(self.distance, 4), "face": self.face,
                "photo": self.photo if paths else Path(self.photo).name, "photo_id": self.photo_id}


@dataclass(frozen=True)
class GalleryCheck:
    """The look-alike pairs of a model's gallery, most overlapping first, and the
    groups of its latest cluster run near a person they are not suggested as."""

    model: str
    threshold: float
    people: int
    photos: int
    pairs: list[LookAlikePair]
    groups: list[GroupLookAlike] = field(default_factory=list)

    def as_dict(self, paths: bool = True) -> dict:
        return {"model": self.model, "threshold": self.threshold, "people": self.people,
                "photos": self.photos, "pairs": [p.as_dict(paths) for p in self.pairs],
                "groups": [g.as_dict(paths) for g in self.groups]}

    @property
    def limit(self) -> float:
        return self.threshold * (1 + MARGIN)

    def lines(self) -> list[str]:
        head = (f"model {self.model}: {self.people} {'person' if self.people == 1 else 'people'}, "
                f"{self.photos} photo{'s' * (self.photos != 1)}")
        if not self.pairs:
            out = [head + f"; no look-alikes (no photo comes within {self.limit:.3f} of "
                   "another person's)"]
        else:
            out = [head + f"; {len(self.pairs)} pair{'s' * (len(self.pairs) != 1)} of people to check "
                   f"(a photo of each within {self.limit:.3f}, the threshold {self.threshold:.3f} "
                   f"and {MARGIN:.0%}):"]
            for p in self.pairs:
                out.append(f"  {p.first} ~ {p.second}: closest photos {p.distance:.3f} apart")
                out += [f"    {b.path_a} ~ {b.path_b}: {b.distance:.3f}" for b in p.bridges]
            out.append("the same person under two names? verifier gallery rename NAME OTHER --merge")
        if self.groups:
            out.append(f"{len(self.groups)} unnamed group{'s' * (len(self.groups) != 1)} of cluster run "
                       f"{self.groups[0].run} near a person they are not suggested as:")
            for g in self.groups:
                hint = f"probably {g.suggestion}" if g.suggestion else "not in the gallery"
                out.append(f"  group {g.cluster} ({g.size} faces, {hint}) ~ {g.person}: {g.photo} "
                           f"{g.distance:.3f} from photo {g.photo_id}")
            out.append("look before naming such a group: verifier cluster name RUN GROUP NAME")
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
    return GalleryCheck(verifier.model, float(verifier.threshold), len(names), len(ids), found,
                        _groups_near_people(verifier, float(verifier.threshold) * (1 + MARGIN))
                        if len(ids) else [])


def _groups_near_people(verifier: Verifier, limit: float) -> list[GroupLookAlike]:
    """The unnamed groups of the model's latest cluster run with a face within
    ``limit`` of a gallery person other than the group's suggestion: per group and
    person, the closest face (ranked as `verifier query` ranks, in one search)."""
    with verifier.sessions() as session:
        number = clusters.latest_done(session, verifier.model_id)
        run = None if number is None else clusters.get_run(session, number)
    if run is None:
        return []
    groups = {g.cluster: g for g in run.groups if not g.named}
    faces: list[tuple[int, int, clusters.Member]] = []  # (group, position in it, member)
    seen: dict[int, int] = {}
    for m in run.members:
        if m.cluster in groups:
            faces.append((m.cluster, seen.get(m.cluster, 0), m))
            seen[m.cluster] = seen.get(m.cluster, 0) + 1
    if not faces:
        return []
    ranked, _ = verifier.rank_many(np.stack([m.face.vector for _, _, m in faces]), 5)
    best: dict[tuple[int, str], GroupLookAlike] = {}
    for (cluster, at, m), matches in zip(faces, ranked):
        g = groups[cluster]
        for match in matches:
            key = (cluster, match.identity)
            if match.distance > limit or match.identity == g.suggestion or (
                    key in best and best[key].distance <= match.distance):
                continue
            best[key] = GroupLookAlike(run.number, cluster, g.size, g.suggestion, match.identity,
                                       float(match.distance), at, m.source or m.photo, match.photo_id)
    return sorted(best.values(), key=lambda x: (x.distance, x.cluster, x.person))
