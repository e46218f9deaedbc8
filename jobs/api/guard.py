"""What every request passes before a route reads its body: the request is timed
for the metrics, its body is capped at ``--max-upload`` (by ``Content-Length``
at once, and by counting while it streams), and a request to ``/v1`` must carry a
live API key (``Authorization: Bearer KEY``). Keys are never logged."""
from __future__ import annotations

import time

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.keys import authenticate

from .errors import error
from .metrics import Metrics


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


class Guard:
    def __init__(self, app: ASGIApp, *, sessions, max_upload: int, auth: bool,
                 metrics: Metrics) -> None:
        self.app = app
        self.sessions = sessions
        self.max_upload = max_upload
        self.auth = auth
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = await self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, sending)
                return
            await self.app(scope, self._capped(receive), sending)
        finally:
            route = scope.get("route")
            self.metrics.observe(getattr(route, "path", "unmatched"), scope["method"], status[0],
                                 time.perf_counter() - start)

    async def _refusal(self, scope: Scope):
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_upload):
            return error(413, "too_large", f"the request body is larger than the limit of "
                                           f"{self.max_upload} bytes")
        state = scope.setdefault("state", {})
        if not scope["path"].startswith("/v1/"):
            return None
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
            return error(401, "unauthorized", "this API key is not valid (unknown or revoked)",
                         {"WWW-Authenticate": "Bearer"})
        state["key_scope"], state["key_name"] = key
        return None

    def _lookup(self, secret: str) -> tuple[str, str] | None:
        with self.sessions() as session:
            row = authenticate(session, secret)
            return None if row is None else (row.scope, row.name)

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
