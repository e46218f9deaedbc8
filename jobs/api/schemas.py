"""Request and response shapes, so that the OpenAPI schema documents itself."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from storage.gallery.writes import IDENTITY_MAX_LENGTH


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable reason, e.g. no_face, too_large")
    message: str = Field(description="What went wrong, for a person")


class MatchOut(BaseModel):
    rank: int
    identity: str
    distance: float
    passes: bool | None = Field(description="Within the calibrated threshold (null: not calibrated)")
    photo_id: int = Field(description="The closest gallery photo of this identity")


class QualityOut(BaseModel):
    score: float = Field(description="How far the face can be trusted, 0-1: the weakest of the parts below")
    confidence: float = Field(description="From the detector's confidence")
    size: float = Field(description="From the face's width (30 px: 0, 80 px: 1)")
    sharpness: float = Field(description="From its sharpness (blur scores low)")
    pose: float = Field(description="From how far it is turned away (frontal: 1)")
    width: int = Field(description="The face's width in pixels")
    reasons: list[str] = Field(description="What makes it poor, in words, e.g. 'face 38 px wide', 'blurred'")


class FaceOut(BaseModel):
    box: list[int] = Field(description="[left, top, width, height] in pixels of the photo as "
                                        "displayed (EXIF rotation applied)")
    score: float | None = Field(description="The detector's confidence (null: a model without a "
                                            "detector, the whole photo)")
    landmarks: dict[str, list[float]] | None = Field(
        description="left_eye, right_eye, nose, mouth_left, mouth_right as [x, y]")
    chip: str | None = Field(None, description="The aligned face as a data: URL (with chips=true)")
    quality: QualityOut | None = Field(None, description="How far the face can be trusted (null: the whole photo)")


class SearchFaceOut(FaceOut):
    unknown: bool = Field(description="No identity passes the threshold for this face (or it is "
                                      "too poor to judge)")
    reason: str | None = Field(None, description="poor_quality: the face is under the server's "
                                                 "quality floor and gets no name")
    matches: list[MatchOut]


class SearchOut(BaseModel):
    model: str
    face: str = Field(description="face, several_faces, no_face or whole (of the photo)")
    threshold: float | None
    unknown: bool = Field(description="No identity passes the threshold (for the largest face)")
    reason: str | None = Field(None, description="poor_quality: the largest face is under the "
                                                 "quality floor and gets no name")
    matches: list[MatchOut] = Field(description="The largest face's matches (as in faces[0])")
    probe_chip: str | None = Field(None, description="With chips=true: the largest aligned face "
                                                     "searched with, as a data: URL (JPEG)")
    width: int = Field(description="The photo's width as displayed")
    height: int = Field(description="The photo's height as displayed")
    faces: list[SearchFaceOut] = Field(description="Every face, largest first, with its matches")


class VerifyOut(BaseModel):
    model: str
    distance: float
    threshold: float
    same: bool
    photo_a: str
    photo_b: str
    chip_a: str | None = Field(None, description="With chips=true: the aligned faces compared, "
                                                 "as data: URLs (JPEG)")
    chip_b: str | None = None
    faces_a: int | None = Field(None, description="Faces found in photo_a (null: a gallery photo)")
    faces_b: int | None = None
    face_a: int = Field(0, description="The face of photo_a compared (0 is the largest)")
    face_b: int = 0
    box_a: list[int] | None = Field(None, description="Where that face is, [left, top, width, "
                                                      "height] (null: a gallery photo)")
    box_b: list[int] | None = None
    reason: str | None = Field(None, description="poor_quality: a compared face is under the "
                                                 "server's quality floor, so same is false "
                                                 "whatever the distance")
    quality_a: float | None = Field(None, description="Quality of the face of photo_a compared "
                                                      "(null: a gallery photo or no detector)")
    quality_b: float | None = None


class IdentitySummary(BaseModel):
    name: str
    photos: int


class IdentitiesPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[IdentitySummary]


class FaceOfPhoto(BaseModel):
    id: int = Field(description="The gallery entry of the face")
    face_index: int
    identity: str
    box: list[int] | None = None


class PhotoDetail(BaseModel):
    id: int = Field(description="The gallery entry asked for")
    identity: str
    face_index: int
    width: int | None
    height: int | None
    source: str | None
    faces: list[FaceOfPhoto] = Field(description="Every gallery face of the photo, largest first "
                                                  "(the entry asked for included)")


class PhotoOut(BaseModel):
    id: int = Field(description="The gallery entry: one face of a photo")
    face: str
    width: int | None
    height: int | None
    source: str | None = Field(description="The upload's file name, for enrolled photos")
    face_index: int = Field(0, description="The face's position in its photo, largest first")
    box: list[int] | None = Field(None, description="The face, [left, top, width, height] "
                                                    "(null: the photo's largest face, or no detector)")
    others: list[FaceOfPhoto] = Field(default_factory=list, description=(
        "The other faces of the same photo in the gallery, with their people (a group photo)"))


class IdentityOut(BaseModel):
    name: str
    photos: list[PhotoOut]


class EnrolledOut(BaseModel):
    photo_id: int = Field(description="The gallery entry made: one face of the photo")
    face_index: int = Field(0, description="Which face of the photo, largest first")
    face: str
    created: bool = Field(description="False when the same bytes were already enrolled")
    box: list[int] | None = Field(None, description="The face enrolled, [left, top, width, height]")


class EnrollOut(BaseModel):
    identity: str
    photos: list[EnrolledOut]


class DetectOut(BaseModel):
    photo: str
    width: int
    height: int
    faces: list[FaceOut] = Field(description="Largest first")


class RemovedOut(BaseModel):
    removed_photos: int



def person_name(description: str) -> Any:
    """A person's name as the gallery takes it (checked again by ``identity_name``)."""
    return Field(description=f"{description} (NFC-normalised; no control or invisible characters)",
                 min_length=1, max_length=IDENTITY_MAX_LENGTH)


class RenameIn(BaseModel):
    name: str = person_name("The new name")
    merge: bool = Field(False, description="When the new name is already a person, move this "
                                           "person's photos to them (otherwise 409)")


class MoveIn(BaseModel):
    identity: str = person_name("The person the face is given to (created when new)")


class MovedOut(BaseModel):
    id: int
    identity: str


class RenamedOut(BaseModel):
    name: str
    photos: int = Field(description="Photos that now carry the new name")


class BridgeOut(BaseModel):
    photo_a: int = Field(description="A gallery photo of the first person (`/v1/photos/{id}/face`)")
    photo_b: int = Field(description="A gallery photo of the second person")
    distance: float


class LookAlikeOut(BaseModel):
    first: str
    second: str
    distance: float = Field(description="Between the two people's closest photos")
    limit: float = Field(description="The threshold plus the margin: listed because distance is under it")
    bridges: list[BridgeOut] = Field(description="Their closest photos, one of each, closest first")


class GroupLookAlikeOut(BaseModel):
    run: int
    cluster: int = Field(description="The unnamed group of that cluster run")
    size: int
    suggestion: str | None = Field(description="The person the group is suggested as, if any")
    person: str = Field(description="Another person one of its faces comes as near")
    distance: float
    face: int = Field(description="That face (`/v1/clusters/{run}/{cluster}/faces/{face}`)")
    photo: str = Field(description="Its photo's file name")
    photo_id: int = Field(description="The person's nearest gallery photo (`/v1/photos/{id}/face`)")


class LookAlikesOut(BaseModel):
    model: str
    threshold: float
    people: int
    photos: int
    pairs: list[LookAlikeOut] = Field(description="Closest first; nothing is merged")
    groups: list[GroupLookAlikeOut] = Field(default_factory=list, description=(
        "Unnamed groups of the latest cluster run as near a person they are not suggested as: "
        "look before naming them"))


class ModelOut(BaseModel):
    name: str
    backbone: str
    embeddings: int
    threshold: float | None
    serving: bool


class EvaluationOut(BaseModel):
    run: int
    model: str | None
    split: str | None
    started: datetime
    threshold: float | None
    accuracy: float | None
    roc_auc: float | None
    eer: float | None
    pairs: int | None


class Health(BaseModel):
    status: str
    detail: str = ""


class ClusterFaceOut(BaseModel):
    photo: str = Field(description="The photo's upload name (or its path under the allowed folder)")
    box: list[int] | None = Field(description="[left, top, width, height] (null: the whole photo)")


class SuggestionOut(BaseModel):
    identity: str = Field(description="The gallery person most of the group's faces are nearest")
    distance: float = Field(description="The median distance of those faces to that person")


class ClusterOut(BaseModel):
    cluster: int = Field(description="The group's number (kept by the later runs that continue this one)")
    size: int
    photos: list[str]
    faces: list[ClusterFaceOut]
    suggestion: SuggestionOut | None
    named: str | None = Field(description="The person the group was enrolled as")
    new_faces: int = Field(0, description="Faces that joined the group in this run")


class ProgressOut(BaseModel):
    done: int
    total: int


class ClusterRunOut(BaseModel):
    run: int
    model: str
    status: str = Field(description="running, done or failed")
    threshold: float | None
    min_size: int
    progress: ProgressOut
    clusters: list[ClusterOut] = Field(description="Largest first (empty until done)")
    unclustered: list[str]
    unclustered_faces: list[ClusterFaceOut]
    skipped: dict[str, str] = Field(description="Photos that could not be used, and why")
    counts: dict
    error: str | None


class ClusterStartedOut(BaseModel):
    run: int
    status: str
    progress: ProgressOut
    url: str = Field(description="Where to follow the run")


class ClusterRunSummary(BaseModel):
    run: int
    status: str
    started: datetime
    progress: ProgressOut
    groups: int | None


class ClusterRunsOut(BaseModel):
    runs: list[ClusterRunSummary] = Field(description="The most recent first")


class NameIn(BaseModel):
    name: str = person_name("The person's name")
    merge: bool = Field(False, description="Add the faces to this existing person (otherwise a new "
                                           "person, and 409 when the name is taken)")


class NamedOut(BaseModel):
    run: int
    cluster: int
    identity: str
    enrolled: int = Field(description="Photos added to the gallery")
    already: int = Field(description="Photos that were there already")
    skipped: dict[str, str] = Field(description="Photos not enrolled, and why")
