"""The service's settings and their defaults (written once; `verifier serve` reads them)."""
from __future__ import annotations

from dataclasses import dataclass

from verifier.defaults import DEFAULT_MIN_QUALITY

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
"""Bytes of one request body (all its photos together)."""
DEFAULT_WORKERS = 2
"""Inference requests running at once (threads; the model's own ops use every core)."""
DEFAULT_QUEUE = 16
"""Inference requests allowed to wait for a worker; more are answered 503."""
DEFAULT_SERVICE_MAX_PIXELS = 25_000_000
"""Largest photo the service decodes (batch jobs allow 50 megapixels): a photo of a
few hundred kB can hold this many pixels, so it bounds a request's memory."""
DEFAULT_LIMIT_CONCURRENCY = 1000
"""Connections and requests at once past which uvicorn answers 503 (idle
connections count: keep it well above the clients you expect)."""
DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a client has to send a request's headers (slow or idle clients are cut)."""
DEFAULT_BODY_TIMEOUT = 5.0
"""Seconds per megabyte (at least one megabyte's worth) a client has to send a
request's body; a slower one is answered 408 and its place freed."""
DEFAULT_AUTH_FAILURES = 20
"""Failed authentications one client address may make a minute; then 429."""
DEFAULT_SNAPSHOT_INTERVAL = 60.0
DEFAULT_REFRESH_INTERVAL = 2.0
MAX_ID = 2 ** 62
"""Ids a client may name (photo ids, run numbers); larger ones cannot exist."""
MAX_OFFSET = 10 ** 9
MAX_K = 100
MAX_FACES = 100
MAX_PAGE = 500
MAX_PHOTOS_PER_ENROLL = 20
STRIP_FACES = 6
"""Faces in a person's thumbnail strip (``GET /v1/identities/{name}/faces``) by default."""
MAX_STRIP_FACES = 24
STRIP_SIZE = 56
"""Pixels of each square face of a strip by default (the page's gallery cards)."""
MAX_STRIP_SIZE = 160
MAX_PHOTOS_PER_CLUSTER = 500
"""Photos one ``POST /v1/clusters`` may upload (the body limit applies too); a larger
set is clustered from a folder the operator allowed (``--cluster-folder``)."""
MAX_CLUSTER_RUNS_WAITING = 2
"""Cluster runs a server holds besides the one running; more are answered 503."""
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class Settings:
    model: str | None = None
    auth: bool = True
    max_upload: int = DEFAULT_MAX_UPLOAD
    workers: int = DEFAULT_WORKERS
    queue: int = DEFAULT_QUEUE
    snapshot_interval: float = DEFAULT_SNAPSHOT_INTERVAL
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    max_pixels: int = DEFAULT_SERVICE_MAX_PIXELS
    auth_failures: int = DEFAULT_AUTH_FAILURES
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    """Seconds per megabyte of body (``--body-timeout``); slower bodies: 408."""
    host: str | None = None
    """The address served; Host headers are checked against it (``None``: not checked,
    as for an app served by another program)."""
    allowed_hosts: tuple[str, ...] = ()
    """More Host names to answer (``--allowed-host``), e.g. behind a reverse proxy."""
    min_quality: float = DEFAULT_MIN_QUALITY
    """The face quality an enrollment needs (``--min-quality``); below: 422 ``poor_quality``."""
    cluster_folders: tuple[str, ...] = ()
    """Server folders a client with a write key may have clustered by path
    (``--cluster-folder``); none by default."""
