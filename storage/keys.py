"""API keys of the HTTP service. A key is shown once, when created; only the
SHA-256 of its secret is stored (the secret is 32 random bytes, so a fast hash is
enough: there is nothing to brute-force)."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .errors import StorageError
from .schema import ApiKey, utcnow

SCOPES = ("read", "write", "admin")
"""Each scope may do what the ones before it may: read < write < admin."""
PREFIX = "sv_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ApiKeyError(StorageError):
    """A key cannot be created or revoked (bad name or scope, duplicate, unknown)."""


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def allows(scope: str, needed: str) -> bool:
    """Whether a key of ``scope`` may do what needs ``needed``."""
    return SCOPES.index(scope) >= SCOPES.index(needed)


@dataclass(frozen=True)
class KeyInfo:
    name: str
    scope: str
    created: datetime
    last_used: datetime | None
    revoked: datetime | None


def create_key(session: Session, name: str, scope: str) -> str:
    """Store a new key and return its secret (the only time it is seen)."""
    if not _NAME.match(name):
        raise ApiKeyError(f"invalid key name {name!r}: letters, digits, '.', '_', '-' (at most 100)")
    if scope not in SCOPES:
        raise ApiKeyError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise ApiKeyError(f"a key named {name!r} exists; revoke it or choose another name")
    secret = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, scope=scope, secret_sha256=secret_hash(secret)))
    session.flush()
    return secret


def list_keys(session: Session) -> list[KeyInfo]:
    rows = session.scalars(select(ApiKey).order_by(ApiKey.name))
    return [KeyInfo(r.name, r.scope, r.created, r.last_used, r.revoked) for r in rows]


def revoke_key(session: Session, name: str) -> None:
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise ApiKeyError(f"no key named {name!r}")
    if row.revoked is None:
        row.revoked = utcnow()


def authenticate(session: Session, secret: str) -> ApiKey | None:
    """The live (not revoked) key with this secret, or ``None``."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.secret_sha256 == secret_hash(secret)))
    return row if row is not None and row.revoked is None else None


def touch(session: Session, name: str) -> None:
    """Record that key ``name`` was used now (``verifier keys list`` shows it)."""
    session.execute(update(ApiKey).where(ApiKey.name == name).values(last_used=utcnow()))
