"""uvicorn's HTTP/1.1 protocol with a deadline for a request's headers, and no
request whose framing two parsers could read differently.

uvicorn times out an idle keep-alive connection only after a first response, so a
client that connects and sends nothing, or dribbles its headers a byte at a time
(slowloris), holds a connection for ever. Here every request's head must arrive
within ``header_timeout`` seconds of the connection (or of the previous response);
a client that is slower is disconnected.

A request with both ``Content-Length`` and ``Transfer-Encoding`` (h11 frames it by
the chunks, a proxy in front may frame it by the length: request smuggling), and a
head whose lines end in a bare LF (h11 accepts them, others do not), are answered
400 ``bad_request`` and the connection is closed: nothing after them on the
connection is read as another request."""
from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import DEFAULT_HEADER_TIMEOUT

BARE_LF = re.compile(rb"(?<!\r)\n")
HEAD_END = b"\r\n\r\n"
BOTH_FRAMINGS = "a request may not carry both Content-Length and Transfer-Encoding"


class StrictConnection(h11.Connection):
    """h11's server side, refusing a request framed two ways."""

    refused: str | None = None
    """Why the last request was refused (``None``: h11 refused it)."""

    def next_event(self):  # type: ignore[override]
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name.lower() for name, _ in event.headers}
            if b"transfer-encoding" in names and b"content-length" in names:
                self.refused = BOTH_FRAMINGS
                raise h11.RemoteProtocolError(BOTH_FRAMINGS)
        return event


def refusal_bytes(message: str) -> bytes:
    """A whole 400 response with the service's error body, closing the connection."""
    body = json.dumps({"code": "bad_request", "message": message}).encode()
    return (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"x-content-type-options: nosniff\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n" % len(body)) + body


class HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request's head (the
    connection is closed when a head takes longer than :attr:`header_timeout`) and
    the refusals of :class:`StrictConnection` answered as plain 400s."""

    header_timeout = DEFAULT_HEADER_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None
    _last = b""  # the last byte of a head received so far
    _why = "the request is not valid HTTP/1.1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = StrictConnection(h11.SERVER, self.conn._max_incomplete_event_size)

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # (part of) a request's head
            head = data.split(HEAD_END, 1)[0]
            if BARE_LF.search(self._last + head):
                self._refuse("the request's lines must end in CR LF, not a bare LF")
                return
            self._last = head[-1:] if HEAD_END not in data else b""
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self._refuse(getattr(self.conn, "refused", None) or self._why)

    def _refuse(self, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(refusal_bytes(message))
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:
            if not self.transport.is_closing():
                self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # a whole head arrived: the request runs

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head, on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def with_header_deadline(header_timeout: float) -> type[H11Protocol]:
    """The protocol class to pass to ``uvicorn.run(http=...)``."""
    return type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": header_timeout})
