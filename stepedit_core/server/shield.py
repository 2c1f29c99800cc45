"""The door of the HTTP API, before any route: the bearer key, then a cap on the request body while it streams in.

:class:`RequestShield` is a pure ASGI middleware (``api.add_middleware``), so it runs before FastAPI reads a
single body byte, on every route of the app it wraps (``/docs``, ``/redoc``, ``/docs/oauth2-redirect`` and
``/openapi.json`` included):

- with a key, a request without ``Authorization: Bearer <key>`` gets 401 at once; its body is never read;
- a ``Content-Length`` above the route's limit gets 413 at once; a body without one (chunked) is counted as it
  arrives, and the moment it passes the limit the route stops receiving (it sees a client that left) and the
  client gets 413 instead of whatever the route would have said.

Limits: MAX_BODY_BYTES for every route, MAX_ARCHIVE_BODY_BYTES for the voice import (a zip of up to
voice_archive.MAX_ARCHIVE_FILE_BYTES plus the multipart wrapping).
"""
from __future__ import annotations

import json
import secrets

from ..voice_archive import MAX_ARCHIVE_FILE_BYTES
from .errors import error_body

MULTIPART_SLACK_BYTES = 1024 * 1024            # boundaries, part headers and small form fields
MAX_UPLOAD_BYTES = 25 * 1024 * 1024            # one audio upload (OpenAI's limit)
MAX_BODY_BYTES = 2 * MAX_UPLOAD_BYTES + MULTIPART_SLACK_BYTES     # /audio/checks takes two files
MAX_ARCHIVE_BODY_BYTES = MAX_ARCHIVE_FILE_BYTES + MULTIPART_SLACK_BYTES
ARCHIVE_ROUTE_SUFFIX = "/voices/import"
UNAUTHORIZED = "Missing or wrong API key: send 'Authorization: Bearer <key>'."


def body_limit(path: str) -> int:
    """The largest request body the route at ``path`` accepts, in bytes."""
    return MAX_ARCHIVE_BODY_BYTES if path.rstrip("/").endswith(ARCHIVE_ROUTE_SUFFIX) else MAX_BODY_BYTES


def authorized(headers: dict[bytes, bytes], api_key: str | None) -> bool:
    if not api_key:
        return True
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode("latin-1"),
                                                                  api_key.encode())


class RequestShield:
    """ASGI middleware: the key before anything, then the body cap (see the module docstring)."""

    def __init__(self, app, api_key: str | None = None):
        self.app, self.api_key = app, api_key

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if not authorized(headers, self.api_key):
            await _reply(send, 401, UNAUTHORIZED, "invalid_api_key", {"www-authenticate": "Bearer"})
            return
        limit = body_limit(scope.get("path", ""))
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            await _reply(send, 400, "The Content-Length header is not a number.", "invalid_value")
            return
        if declared > limit:
            await _reply(send, 413, _too_large(limit), "request_too_large")
            return
        await _Capped(self.app, limit)(scope, receive, send)


class _Capped:
    """One request whose body is counted while it streams in."""

    def __init__(self, app, limit: int):
        self.app, self.limit, self.received, self.over, self.started = app, limit, 0, False, False

    async def receive_counted(self, receive):
        if self.over:
            return {"type": "http.disconnect"}
        message = await receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.over = True
                return {"type": "http.disconnect"}        # the route stops reading: a client that left
        return message

    async def __call__(self, scope, receive, send) -> None:
        async def counted():
            return await self.receive_counted(receive)

        async def guarded_send(message):
            if self.over and not self.started:
                return                                     # the 413 below answers instead
            self.started = self.started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not self.over or self.started:
                raise
        if self.over and not self.started:
            self.started = True
            await _reply(send, 413, _too_large(self.limit), "request_too_large")


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit >> 20} MB."


async def _reply(send, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
    kind = "invalid_request_error"
    body = json.dumps(error_body(message, kind, None, code)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"connection", b"close")] + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


__all__ = ["RequestShield", "body_limit", "authorized", "MAX_BODY_BYTES", "MAX_ARCHIVE_BODY_BYTES",
           "MAX_UPLOAD_BYTES", "UNAUTHORIZED"]
