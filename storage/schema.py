"""The gallery database schema (SQLAlchemy 2 typed models).

Portable across SQLite (the default, a file in the workspace) and PostgreSQL.
An embedding's row id is its id in the model's FAISS index.
"""
from __future__ import annotations

import enum
from datetime import datetime, timezone

from sqlalchemy import (JSON, DateTime, Enum, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 9
"""1: the first release; 2: API keys, the source name of enrolled photos; 3: ids
never reused (AUTOINCREMENT on SQLite) and the gallery change log; 4: the face an
enrolled photo stands for; 5: face vectors of unlabeled photos and cluster runs;
6: the quality of a gallery photo's face; 7: run numbers per kind; 8: a gallery
row is one face of a photo, so a group photo holds several people; 9: the group of
every face of a cluster run, in arrival order (``storage/migrations`` upgrades a database in place)."""

NEVER_REUSE_IDS = {"sqlite_autoincrement": True}
"""SQLite hands a deleted largest rowid to the next row unless AUTOINCREMENT is
asked for; PostgreSQL's sequences never go back."""


class ImageStatus(str, enum.Enum):
    """Where a gallery photo stands."""

    OK = "ok"                # in the gallery
    SKIPPED = "skipped"      # unusable (``reason`` says why), retried when its bytes change
    MISSING = "missing"      # gone from its folder, kept until ``--prune``
    REMOVED = "removed"      # taken out of the gallery on request; stays out


class FaceFlag(str, enum.Enum):
    """What the face detector found in a photo that joined the gallery; ``None`` in
    the database means one face (or no detector)."""

    NO_FACE = "no_face"              # the whole photo was used
    SEVERAL_FACES = "several_faces"  # the most prominent face was used

    @classmethod
    def of(cls, face: str | None) -> "FaceFlag | None":
        """The one rule for every path: a photo is flagged with what the detector
        found when that was not exactly one face (``face`` and ``whole`` are not
        flags)."""
        return cls(face) if face in (cls.NO_FACE.value, cls.SEVERAL_FACES.value) else None


class ChangeKind(str, enum.Enum):
    """A row of the gallery change log."""

    ADD = "add"        # an embedding joined the gallery
    REMOVE = "remove"  # an embedding left it
    UPDATE = "update"  # a photo's metadata changed (identity, path)


class Word(str, enum.Enum):
    """A closed vocabulary stored as its words; printed as the word."""

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


class RunKind(Word):
    """What a job run did."""

    EMBED = "embed"        # a gallery folder embedded
    EVALUATE = "evaluate"  # pairs scored (the model's splits or an external list)
    CLUSTER = "cluster"    # photos grouped by face


class RunStatus(Word):
    """Where a job run stands (schema 7 maps the ``ok`` of older embed and evaluate
    runs to ``done``)."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _values(kind: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(kind, native_enum=False, create_constraint=False, length=length,
                values_callable=lambda members: [m.value for m in members])


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON}


class Meta(Base):
    """Key/value facts about the database itself (``schema_version``)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    images: Mapped[list["Image"]] = relationship(back_populates="identity")


class Image(Base):
    """One face of a gallery photo, and the person it shows: a face of a file of a
    gallery folder (its largest), or a face of a photo enrolled through the CLI, the
    library or the service (stored once under ``HOME/enrolled``, however many of its
    faces are enrolled). A group photo holds one row per face enrolled, each with its
    own person, box, quality and vectors; its rows share ``path``. ``status`` is an
    :class:`ImageStatus`, ``flags`` a :class:`FaceFlag`."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("path", "face", name="uq_image_face"), NEVER_REUSE_IDS)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), index=True)
    face: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The face's position among the photo's faces, largest first (0: the largest,
    the whole photo, or a row from before schema 8)."""
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[ImageStatus] = mapped_column(_values(ImageStatus), default=ImageStatus.OK)
    reason: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[FaceFlag | None] = mapped_column(_values(FaceFlag))
    source: Mapped[str | None] = mapped_column(String(255))
    """The file name an enrolled photo was uploaded as (informative only)."""
    face_box: Mapped[list[int] | None] = mapped_column(JSON)
    """``[left, top, width, height]`` of the face (``None``: the whole photo, or a
    folder photo embedded before schema 8, whose face is its largest)."""
    landmarks: Mapped[list[list[float]] | None] = mapped_column(JSON)
    """The face's five points ``[x, y]`` (eyes, nose, mouth corners; ``None``: the
    whole photo, or embedded before schema 8)."""
    quality: Mapped[float | None] = mapped_column(Float)
    """How far the face used can be trusted, 0-1 (:mod:`verifier.quality`; ``None``:
    the whole photo was used, or it was embedded before schema 6)."""
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    identity: Mapped[Identity] = relationship(back_populates="images")


class Model(Base):
    """One trained model version."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    backbone: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict] = mapped_column(JSON)
    artifact: Mapped[str] = mapped_column(String(1024))
    threshold: Mapped[float | None] = mapped_column(Float)
    threshold_rule: Mapped[str | None] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Embedding(Base):
    """The vector of one image under one model; ``id`` is the FAISS id."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("image_id", "model_id", name="uq_embedding_image_model"),
                      NEVER_REUSE_IDS)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Change(Base):
    """One gallery change, appended in the transaction that made it. ``seq`` grows
    with commit order (see :class:`ChangeHead`), so a follower that applied every
    change up to ``seq`` misses nothing by reading the ones after it."""

    __tablename__ = "gallery_changes"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[ChangeKind] = mapped_column(_values(ChangeKind))
    model_id: Mapped[int | None] = mapped_column(Integer)
    embedding_id: Mapped[int | None] = mapped_column(Integer)
    image_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChangeHead(Base):
    """The last change sequence number handed out (one row). Writers take it with a
    row lock at commit time, so sequence order is commit order and a reader never
    sees change ``n + 1`` without change ``n``."""

    __tablename__ = "gallery_change_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class JobRun(Base):
    """One run of a job (embed, evaluate, cluster), with its outcome. ``number`` counts
    the runs of its kind (1, 2, ...): users name a run by its kind and number, while
    ``id`` ties its rows together."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_kind_number", "kind", "number", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[RunKind] = mapped_column(_values(RunKind, 32), index=True)
    number: Mapped[int | None] = mapped_column(Integer)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[RunStatus] = mapped_column(_values(RunStatus), default=RunStatus.RUNNING)
    started: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class PairScore(Base):
    """The distance of one scored pair in an evaluation run."""

    __tablename__ = "pair_scores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"), index=True)
    first_image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    second_image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    label: Mapped[int] = mapped_column(Integer)
    distance: Mapped[float] = mapped_column(Float)


class ApiKey(Base):
    """A key of the HTTP service: only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FaceVector(Base):
    """One face of a photo that need not be in the gallery (an unlabeled photo to
    cluster) and its vector under one model, keyed by the photo's content: a face is
    embedded once per content and model, however many runs or paths show it."""

    __tablename__ = "face_vectors"
    __table_args__ = (UniqueConstraint("sha256", "model_id", "face", name="uq_face_vector"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    face: Mapped[int] = mapped_column(Integer)
    """Its position among the photo's faces, largest first."""
    faces: Mapped[int] = mapped_column(Integer)
    """Faces the detector found in the photo."""
    box: Mapped[list[int] | None] = mapped_column(JSON)
    """``[left, top, width, height]`` (``None``: the whole photo, no detector)."""
    score: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[float | None] = mapped_column(Float)
    """The face's quality, 0-1 (``None``: the whole photo)."""
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Cluster(Base):
    """One group of faces of a cluster run (a :class:`JobRun` of kind ``cluster``).
    ``cluster`` is the group's id, kept by a later run when its members are the same."""

    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("run_id", "cluster", name="uq_cluster_run"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"), index=True)
    cluster: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    suggestion: Mapped[str | None] = mapped_column(String(255))
    """The nearest gallery identity, when it is within the threshold."""
    distance: Mapped[float | None] = mapped_column(Float)
    named: Mapped[str | None] = mapped_column(String(255))
    """The identity the group was enrolled as."""


class ClusterMember(Base):
    """A face of a cluster run: in group ``cluster``, or unclustered (``None``). Rows
    are stored in the order the faces arrived (by ``id``)."""

    __tablename__ = "cluster_members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id", ondelete="CASCADE"), index=True)
    cluster: Mapped[int | None] = mapped_column(Integer)
    face_id: Mapped[int] = mapped_column(ForeignKey("face_vectors.id", ondelete="CASCADE"))
    photo: Mapped[str] = mapped_column(String(1024))
    """Where the photo was read (a path on the machine that ran the job)."""
    source: Mapped[str | None] = mapped_column(String(255))
    """The name the photo is shown by (an upload's file name, a path under the folder)."""
    label: Mapped[int | None] = mapped_column(Integer)
    """The group the face is in, also where that group is too small to be shown
    (``None``: a run made before schema 9, or by Chinese whispers)."""
