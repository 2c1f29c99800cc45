"""Clear 4xx answers for two raw requests Gradio itself answers with a 500 (an uncaught KeyError inside it):

- ``POST /gradio_api/call/<name>`` (and ``GET .../call/<name>/<event id>``) for a name that is no API endpoint
  of the app: 404 naming the endpoints there are;
- ``POST /gradio_api/queue/join`` whose ``session_hash`` is empty or missing: 400 (Gradio's queue keys its
  messages by that hash; an empty one makes the join, and the queue's later broadcast to it, fail).

:class:`RouteGuard` is a pure ASGI middleware given to the Gradio app at launch
(``demo.launch(app_kwargs={"middleware": [Middleware(RouteGuard)]})``, see ``app.launch_options``); every other
request passes through untouched. It reads the app's endpoints from the Gradio app in the request's scope.
"""
from __future__ import annotations

import json
import re

from stepedit_core.validation import shown

CALL_PATH = re.compile(r"/gradio_api/call/([^/]+)(?:/[^/]*)?/?$")
JOIN_PATH = re.compile(r"/gradio_api/queue/join/?$")
MAX_JOIN_BODY_BYTES = 8 * 1024 * 1024       # a join body beyond this is passed on as it is, unparsed here
SHOWN_ENDPOINTS = 12


class RouteGuard:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        call = CALL_PATH.search(path)
        if call and scope.get("method") in ("GET", "POST"):
            names = _api_names(scope)
            if names is not None and call.group(1).lstrip("/") not in names:
                listed = ", ".join(sorted(n for n, public in names.items() if public)[:SHOWN_ENDPOINTS])
                await _detail(send, 404, f"No API endpoint named {shown(call.group(1))}; this app has: {listed} "
                                         "(see /gradio_api/info).")
                return
        if JOIN_PATH.search(path) and scope.get("method") == "POST":
            body, receive = await _buffered(receive)
            if body is not None and not _has_session(body):
                await _detail(send, 400, "session_hash must be a non-empty string (any random id the client "
                                         "keeps for its session).")
                return
        await self.app(scope, receive, send)


def _api_names(scope) -> dict[str, bool] | None:
    """The app's API endpoint names (-> listed publicly), or None when the scope holds no Gradio app (then
    nothing is judged here)."""
    app = scope.get("app")
    try:
        blocks = app.get_blocks()
    except Exception:  # noqa: BLE001  not a Gradio app, or one without blocks yet
        return None
    return {str(fn.api_name).lstrip("/"): getattr(fn, "api_visibility", "public") == "public"
            for fn in blocks.fns.values() if getattr(fn, "api_name", None)}


async def _buffered(receive):
    """(the whole body, or None past MAX_JOIN_BODY_BYTES; a receive that replays what was read)."""
    messages, size, more = [], 0, True
    while more and size <= MAX_JOIN_BODY_BYTES:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    pending = list(messages)

    async def replay():
        return pending.pop(0) if pending else await receive()

    complete = not more and all(m["type"] == "http.request" for m in messages)
    return (b"".join(m.get("body", b"") for m in messages) if complete else None), replay


def _has_session(body: bytes) -> bool:
    """False only for a JSON object whose session_hash is missing, empty or not text (Gradio judges the rest)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return True
    if not isinstance(data, dict):
        return True
    value = data.get("session_hash")
    return isinstance(value, str) and bool(value.strip())


async def _detail(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["RouteGuard"]
