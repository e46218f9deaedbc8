"""What every request passes before a byte of its body is read, decided from the
route and the headers alone: the Host (and, for requests that change something,
the Origin) must be this server's; the body must fit ``--max-upload`` (by
``Content-Length`` at once, and by counting while it streams); a ``/v1`` request
must carry a live API key whose scope covers the route; an inference request must
find room in the queue. A refusal is answered at once, with ``Connection: close``,
so a refused upload costs neither memory nor parsing. Every response carries the
security headers. Keys are never logged."""
from __future__ import annotations

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


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


def allowed_hosts(host: str | None, extra: tuple[str, ...]) -> frozenset[str] | None:
    """The Host names a server bound to ``host`` answers (``None``: any). A server on
    a wildcard address without ``--allowed-host`` answers any name (it is reached by
    names this process cannot know)."""
    if host is None or (host in WILDCARDS and not extra):
        return None
    return frozenset(LOOPBACK_NAMES | ({host} - WILDCARDS) | {h.lower() for h in extra})


def _hostname(value: str) -> str:
    """``example.org`` of ``example.org:8080``, ``::1`` of ``[::1]:8080``."""
    return (urlsplit("//" + value).hostname or "").lower()


class Guard:
    def __init__(self, app: ASGIApp, *, service: Any) -> None:
        self.app = app
        self.svc = service
        settings = service.settings
        self.max_upload = settings.max_upload
        self.auth = settings.auth
        self.hosts = allowed_hosts(settings.host, settings.allowed_hosts)
        self.failures_allowed = settings.auth_failures
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

        admitted = False
        try:
            refusal, admitted = await self._decide(scope)
            if refusal is not None:
                refusal.headers["Connection"] = "close"
                await refusal(scope, receive, sending)
                return
            await self.app(scope, self._capped(receive), sending)
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
        host = _hostname(headers.get(b"host", b"").decode("latin-1"))
        if self.hosts is not None and host not in self.hosts:
            return error(400, "bad_host", f"this server does not answer to the host name "
                                          f"{host or '(none)'!r}; see --allowed-host")
        origin = headers.get(b"origin")
        if scope["method"] in UNSAFE_METHODS and origin is not None:
            name = _hostname(urlsplit(origin.decode("latin-1")).netloc)
            if name != host and (self.hosts is None or name not in self.hosts):
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
        with self.svc.sessions.begin() as session:
            row = authenticate(session, secret)
            if row is None:
                return None
            if time.monotonic() - self._touched.get(row.name, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
                self._touched[row.name] = time.monotonic()
                touch(session, row.name)
            return row.scope, row.name

    def _capped(self, receive: Receive) -> Receive:
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_upload:
                    raise BodyTooLarge(self.max_upload)
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
