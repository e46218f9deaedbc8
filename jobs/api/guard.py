"""What every request passes before a byte of its body is read, decided from the
route and the headers alone: the Host (and, for requests that change something,
the Origin) must be this server's; the body must fit ``--max-upload`` (by
``Content-Length`` at once, and by counting while it streams); a ``/v1`` request
must carry a live API key whose scope covers the route; an inference request must
find room in the queue. A refusal is answered at once, with ``Connection: close``,
so a refused upload costs neither memory nor parsing. Every response carries the
security headers. Keys are never logged."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import anyio
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.keys import allows, authenticate, touch

from .errors import error
from .settings import RETRY_AFTER_S

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
}
DEFAULT_POLICY = b"default-src 'none'; frame-ancestors 'none'"
"""The Content-Security-Policy of every response that sets none (the page and HTML
reports set their own, also with ``frame-ancestors 'none'``)."""
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
WILDCARDS = {"0.0.0.0", "::", ""}
FAILURE_WINDOW_S = 60.0
"""A client address that failed to authenticate ``Settings.auth_failures`` times in
this window is answered 429 without a key lookup."""
TOUCH_EVERY_S = 60.0
"""A key's ``last_used`` is written at most this often (not a database write per request)."""


MEGABYTE = 1024 * 1024


class BodyRefused(HTTPException):
    """The body broke a limit while it streamed; the guard answers ``response``
    instead of whatever the route makes of the interrupted body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.response = error(status, code, message, {"Connection": "close"})


def body_deadline(seconds_per_mb: float, size: int) -> float:
    """Seconds a body of ``size`` bytes may take to arrive (at least a megabyte's worth)."""
    return seconds_per_mb * max(1.0, size / MEGABYTE)


def allowed_hosts(host: str | None, extra: tuple[str, ...]) -> frozenset[str] | None:
    """The Host names a server bound to ``host`` answers (``None``: any). A server on
    a wildcard address without ``--allowed-host`` answers any name (it is reached by
    names this process cannot know)."""
    if host is None or (host in WILDCARDS and not extra):
        return None
    return frozenset(LOOPBACK_NAMES | ({host} - WILDCARDS) | {h.lower() for h in extra})


class MalformedHeader(ValueError):
    """A Host or Origin header that is no host name (``[``, ``[::1``)."""


DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(netloc: str, scheme: str | None = None) -> tuple[str, int | None]:
    """``("example.org", 8080)`` of ``example.org:8080``, ``("::1", None)`` of ``[::1]``;
    a scheme's default port is ``None`` (``http://h`` and ``h:80`` are one origin).
    Raises :class:`MalformedHeader` for what is no host (and for user info, which
    names another host than it seems to: ``evil.example@127.0.0.1``)."""
    if "@" in netloc:
        raise MalformedHeader(f"user info in {netloc!r}")
    try:
        parts = urlsplit("//" + netloc)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError as exc:
        raise MalformedHeader(str(exc)) from None
    if port in DEFAULT_PORTS.values() and (scheme is None or DEFAULT_PORTS.get(scheme) == port):
        port = None
    return host, port


class Guard:
    def __init__(self, app: ASGIApp, *, service: Any) -> None:
        self.app = app
        self.svc = service
        settings = service.settings
        self.max_upload = settings.max_upload
        self.auth = settings.auth
        self.hosts = allowed_hosts(settings.host, settings.allowed_hosts)
        self.failures_allowed = settings.auth_failures
        self.body_timeout = settings.body_timeout
        self._routes: dict[int, tuple[str | None, bool]] = {}
        self._failures: dict[str, deque] = {}  # client address -> times of failed keys
        self._touched: dict[str, float] = {}   # key name -> when last_used was written

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = _with_security_headers(message.get("headers", []))
            await send(message)

        refused: list[BodyRefused] = []
        started = [False]

        async def answering(message: Message) -> None:
            """The route's answer, unless its body was refused part-way: then the
            refusal (whatever the route made of the interrupted body)."""
            if refused:
                if message["type"] == "http.response.start" and not started[0]:
                    started[0] = True
                    await refused[0].response(scope, receive, sending)
                return
            started[0] = started[0] or message["type"] == "http.response.start"
            await sending(message)

        admitted = False
        try:
            refusal, admitted = await self._decide(scope)
            if refusal is not None:
                refusal.headers["Connection"] = "close"
                await refusal(scope, receive, sending)
                return
            try:
                await self.app(scope, self._capped(receive, scope, refused), answering)
            except Exception:
                if not refused or started[0]:
                    raise
                started[0] = True
                await refused[0].response(scope, receive, sending)
        finally:
            if admitted:
                self.svc.admission.leave()
            route = scope.get("route")
            self.svc.metrics.observe(getattr(route, "path", None), scope["method"], status[0],
                                     time.perf_counter() - start)

    async def _decide(self, scope: Scope):
        """``(refusal or None, admitted)``: the answer to give instead of running the
        route, and whether an inference slot was taken (to give back)."""
        headers = dict(scope["headers"])
        refusal = self._origin_refusal(scope, headers)
        if refusal is not None:
            return refusal, False
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_upload):
            return error(413, "too_large", f"the request body is larger than the limit of "
                                           f"{self.max_upload} bytes"), False
        state = scope.setdefault("state", {})
        needed, inference = self._route_needs(scope)
        if scope["path"].startswith("/v1/"):
            refusal = await self._key_refusal(headers, state, needed, _client(scope))
            if refusal is not None:
                return refusal, False
        if inference:
            if self.svc.admission is None or self.svc.verifier is None:
                return error(503, "loading", "the model is still loading; retry in a moment",
                             {"Retry-After": str(RETRY_AFTER_S)}), False
            if not self.svc.admission.enter():
                return error(503, "overloaded", "the server is busy; retry in a moment",
                             {"Retry-After": str(RETRY_AFTER_S)}), False
            return None, True
        return None, False

    def _origin_refusal(self, scope: Scope, headers: dict):
        """400 for a Host this server does not answer (or no host at all), 403 for a
        request that changes something from another origin: another host, another
        port of this host, or user info in front of this host's name."""
        raw = headers.get(b"host", b"").decode("latin-1")
        try:
            host, port = _host_port(raw)
        except MalformedHeader:
            return error(400, "bad_host", f"the Host header {raw[:100]!r} is not a host name")
        if self.hosts is not None and host not in self.hosts:
            return error(400, "bad_host", f"this server does not answer to the host name "
                                          f"{host or '(none)'!r}; see --allowed-host")
        origin = headers.get(b"origin")
        if scope["method"] in UNSAFE_METHODS and origin is not None:
            value = origin.decode("latin-1")
            try:
                parts = urlsplit(value)
                deceptive = "@" in parts.netloc  # user info: another host than it reads as
                name, their_port = _host_port(parts.netloc.rpartition("@")[2], parts.scheme)
            except (ValueError, MalformedHeader):
                return error(400, "bad_request", f"the Origin header {value[:100]!r} is not an origin")
            same_host = name == host or (self.hosts is not None and name in self.hosts)
            if deceptive or not same_host or their_port != port:
                return error(403, "foreign_origin", "a request from another web site may not "
                                                    "change this server's gallery")
        return None

    async def _key_refusal(self, headers: dict, state: dict, needed: str | None, client: str):
        if not self.auth:
            state["key_scope"], state["key_name"] = "admin", None
            return None
        raw = headers.get(b"authorization", b"").decode("latin-1")
        kind, _, secret = raw.partition(" ")
        if kind.lower() != "bearer" or not secret.strip():
            return error(401, "unauthorized", "an API key is required: send the header "
                         "'Authorization: Bearer KEY' (create one with `verifier keys create`)",
                         {"WWW-Authenticate": "Bearer"})
        key = await anyio.to_thread.run_sync(self._lookup, secret.strip())
        if key is None:
            wait = self._failed(client)
            if wait:  # a valid key from the same address (a proxy's) still gets through
                return error(429, "too_many_failures", f"too many failed authentications from "
                             f"this address; retry in {wait} s", {"Retry-After": str(wait)})
            return error(401, "unauthorized", "this API key is not valid (unknown or revoked)",
                         {"WWW-Authenticate": "Bearer"})
        state["key_scope"], state["key_name"] = key
        if needed is not None and not allows(key[0], needed):
            return error(403, "forbidden", f"this API key has scope {key[0]!r}; this needs "
                                           f"{needed!r}")
        return None

    def _failed(self, client: str) -> int:
        """Record a failed key from ``client``; the seconds it must wait when it failed
        more than ``auth_failures`` times in :data:`FAILURE_WINDOW_S` (else 0)."""
        now = time.monotonic()
        failures = self._failures.setdefault(client, deque())
        while failures and now - failures[0] > FAILURE_WINDOW_S:
            failures.popleft()
        failures.append(now)
        if len(self._failures) > 10_000:  # bounded memory under many addresses
            self._failures.pop(next(iter(self._failures)))
        if len(failures) <= self.failures_allowed:
            return 0
        return int(FAILURE_WINDOW_S - (now - failures[0])) + 1

    def _route_needs(self, scope: Scope) -> tuple[str | None, bool]:
        """The scope the matched route requires and whether it runs inference, from
        its declared dependencies (read once per route)."""
        route = _matching_route(getattr(getattr(scope.get("app"), "router", None), "routes", ()), scope)
        if route is None:
            return None, False
        key = id(route)
        if key not in self._routes:
            self._routes[key] = _declared_needs(route)
        return self._routes[key]

    def _lookup(self, secret: str) -> tuple[str, str] | None:
        """The key's ``(scope, name)``: a read, never a write (a database whose write
        lock another process holds still authenticates). ``last_used`` is written
        now and then, best effort, by another thread."""
        with self.svc.sessions() as session:
            row = authenticate(session, secret)
            if row is None:
                return None
            found = row.scope, row.name
        if time.monotonic() - self._touched.get(found[1], -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._touched[found[1]] = time.monotonic()
            threading.Thread(target=self._touch, args=(found[1],), name="verifier-key-used",
                             daemon=True).start()
        return found

    def _touch(self, name: str) -> None:
        try:
            with self.svc.sessions.begin() as session:
                touch(session, name)
        except Exception as exc:  # noqa: BLE001 - a date for `keys list`, not worth failing for
            log.info("could not record that key %r was used: %s", name, exc)

    def _capped(self, receive: Receive, scope: Scope, refused: list) -> Receive:
        """``receive`` that stops a body at ``--max-upload`` bytes (413) and at its
        deadline (408, :func:`body_deadline` of its length, or of what arrived so far
        when chunked), noting the refusal in ``refused`` for :meth:`__call__`."""
        seen = 0
        declared = dict(scope["headers"]).get(b"content-length")
        size = int(declared) if declared is not None else None
        start = time.monotonic()

        done = False  # the whole body arrived: later receives wait for a disconnect, unbounded

        async def capped() -> Message:
            nonlocal seen, done
            if done:
                return await receive()
            allowed = body_deadline(self.body_timeout, size if size is not None else seen + MEGABYTE)
            try:
                with anyio.fail_after(max(0.0, start + allowed - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                refused.append(BodyRefused(408, "body_timeout", f"the request body did not arrive "
                                           f"within {allowed:.0f} s; send it faster"))
                raise refused[-1] from None
            if message["type"] == "http.request":
                done = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.max_upload:
                    refused.append(BodyRefused(413, "too_large", f"the request body is larger than "
                                               f"the limit of {self.max_upload} bytes"))
                    raise refused[-1]
            return message

        return capped


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "?"


def _matching_route(routes, scope: Scope):
    """The endpoint route that will answer ``scope``, looking into included routers
    (FastAPI includes routers lazily, as one route that holds the router's routes)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found = _matching_route(inner.routes, scope)
            if found is not None:
                return found
            continue
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route
    return None


def _declared_needs(route) -> tuple[str | None, bool]:
    from .deps import admission

    needed, inference = None, False
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        dep = stack.pop()
        call = getattr(dep, "call", None)
        needed = getattr(call, "needed_scope", None) or needed
        inference = inference or call is admission
        stack.extend(getattr(dep, "dependencies", []))
    return needed, inference


def _with_security_headers(headers: list) -> list:
    names = {name.lower() for name, _ in headers}
    out = list(headers)
    out += [(name, value) for name, value in SECURITY_HEADERS.items() if name not in names]
    if b"content-security-policy" not in names:
        out.append((b"content-security-policy", DEFAULT_POLICY))
    return out
