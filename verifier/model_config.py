"""A model version's config (its ``config.json``), parsed once into typed fields.

Training writes the whole document; everything that runs the model reads these
fields. Configs of earlier releases lack some fields: each takes the value that
release behaved as (no detector, no flip averaging, the dense head)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .defaults import DEFAULT_PADDING
from .errors import VerifierError


class ConfigError(VerifierError):
    """A model's config cannot be read (not JSON, or a field missing or mistyped)."""


@dataclass(frozen=True)
class ModelConfig:
    """What a model version was trained as and how photos are prepared for it."""

    name: str
    image_size: int
    backbone: str = "?"
    weights: str | None = None
    head: str = "dense"
    embedding_dim: int | None = None
    """The branch's output width (``None``: not recorded; the branch itself says)."""
    fine_tune: float = 0.0
    detector: str = "none"
    face_padding: float = DEFAULT_PADDING
    require_face: bool = False
    tta: str = "none"
    protocol: str | None = None
    seed: int | None = None
    data_root: str | None = None
    threshold: float | None = None
    threshold_rule: str | None = None
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The whole document as saved (the database keeps it)."""

    @classmethod
    def parse(cls, document: Mapping[str, Any], name: str | None = None) -> "ModelConfig":
        """The typed config of a saved document (``name`` when it records none)."""
        known = {f.name for f in fields(cls)} - {"document"}
        values = {k: document[k] for k in known if document.get(k) is not None}
        values.setdefault("name", name)
        try:
            config = cls(**values, document=dict(document))
            return replace(config, image_size=int(config.image_size), face_padding=float(config.face_padding),
                           fine_tune=float(config.fine_tune), require_face=bool(config.require_face),
                           embedding_dim=None if config.embedding_dim is None else int(config.embedding_dim))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the config of model {name or document.get('name')!r} is not usable: {exc}") from None

    @classmethod
    def read(cls, path: Path, name: str | None = None) -> "ModelConfig":
        """The config saved at ``path`` (a model version's ``config.json``)."""
        try:
            return cls.parse(json.loads(Path(path).read_text("utf-8")), name)
        except ValueError as exc:
            raise ConfigError(f"{path} is not a model config: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        """The document as saved."""
        return dict(self.document)

    def with_tta(self, tta: str) -> "ModelConfig":
        """This config with another test-time augmentation (benchmarks compare them)."""
        return replace(self, tta=tta, document={**self.document, "tta": tta})
