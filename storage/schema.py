"""The gallery database schema (SQLAlchemy 2 typed models).

Portable across SQLite (the default, a file in the workspace) and PostgreSQL.
An embedding's row id is its id in the model's FAISS index.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 2
"""1: the first release; 2: API keys, the source name of enrolled photos
(``storage/migrations`` upgrades a database in place)."""


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
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    images: Mapped[list["Image"]] = relationship(back_populates="identity")


class Image(Base):
    """A photo of the gallery: a file of a gallery folder, or a photo enrolled
    through the library or the service (stored under ``HOME/enrolled``). ``status``
    is ``ok``, ``skipped`` (with a reason), ``missing`` (gone from the folder, kept
    until ``--prune``) or ``removed`` (taken out of the gallery on request)."""

    __tablename__ = "images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), unique=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"), index=True)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    reason: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(String(255))
    """The file name an enrolled photo was uploaded as (informative only)."""
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
    __table_args__ = (UniqueConstraint("image_id", "model_id", name="uq_embedding_image_model"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobRun(Base):
    """One run of a job (embed, evaluate, ...), with its outcome."""

    __tablename__ = "job_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
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
