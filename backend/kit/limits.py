"""Request-body size limit as a pure ASGI middleware, ahead of anything that reads or spools a body.

A declared Content-Length over the limit is refused before a byte is read. A chunked
body is counted as it streams in; once over the limit the app gets no more of it and
the client gets 413 (whatever the app would have said about the cut-off body).
Some paths take small JSON bodies only (a batch of metric points): `path_limits` gives them a
lower limit of their own, named by its setting in the 413.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    # Connection: close, so the client stops sending a body nobody will read.
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class PathLimit:
    """A lower body limit for the paths `pattern` fully matches; `setting` names it in the 413."""

    pattern: re.Pattern[str]
    max_bytes: int
    setting: str


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: Sequence[PathLimit] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = tuple(path_limits)

    def _limit(self, path: str) -> tuple[int, str]:
        for limit in self.path_limits:
            if limit.pattern.fullmatch(path):
                return limit.max_bytes, limit.setting
        return self.max_bytes, "PRUNELAB_MAX_UPLOAD_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, setting = self._limit(scope.get("path", ""))
        too_large = f"request body is larger than the limit of {max_bytes} bytes ({setting})"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "invalid Content-Length header")
                return
            if int(declared) > max_bytes:
                await _answer(send, 413, too_large)
                return

        received = 0
        exceeded = False
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # the app's answer to a body cut short is replaced by the 413 below
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, counted_receive, guarded_send)
        if exceeded and not response_started:
            await _answer(send, 413, too_large)
