"""The HTTP server: an OpenAI-compatible speech API, edits, transcription and the voice library over FastAPI.

    python -m stepedit_core serve --port 8000          # http://127.0.0.1:8000/v1/audio/speech, docs at /v1/docs
    python app.py --api                                 # the same API at /v1 beside the Gradio app

:func:`create_api` is the ``/v1`` app (mount it anywhere); :func:`create_server` wraps it for running alone.
"""
from __future__ import annotations

import ipaddress
import logging
import os

from fastapi import FastAPI
from starlette.routing import Mount

from ..errors import InvalidInputError
from ..interface import Engine
from ..voices import VoiceLibrary
from .app import API_KEY_ENV, MODEL_ID, TAKE_HEADER, create_api
from .errors import install
from .gate import EngineGate, ServerBusyError

log = logging.getLogger("stepedit.server")
API_PREFIX = "/v1"


def create_server(engine: Engine, library: VoiceLibrary | None = None, *, api_key: str | None = None,
                  gate: EngineGate | None = None) -> FastAPI:
    """A root app with the API under ``/v1`` and a small index at ``/``."""
    root = FastAPI(title="Step-Audio-EditX server", docs_url=None, redoc_url=None, openapi_url=None)
    install(root)
    api = create_api(engine, library, api_key=api_key, gate=gate)
    root.mount(API_PREFIX, api)

    @root.get("/")
    async def index() -> dict:
        return {"service": "Step-Audio-EditX", "api": API_PREFIX, "docs": f"{API_PREFIX}/docs",
                "speech": f"{API_PREFIX}/audio/speech"}

    root.state.api = api
    return root


def mount_api(app, engine: Engine, library: VoiceLibrary | None = None, *, api_key: str | None = None) -> FastAPI:
    """Put the API at ``/v1`` of an existing Starlette/FastAPI app (e.g. a launched Gradio app), ahead of its
    own routes."""
    api = create_api(engine, library, api_key=api_key)
    app.router.routes.insert(0, Mount(API_PREFIX, app=api))
    return api


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None, *, allow_open: bool = False) -> None:
    """Refuse to serve beyond this machine without a key (unless the caller insists)."""
    if not is_loopback(host) and not api_key:
        message = (f"binding {host} exposes the engine to the network without a key; set {API_KEY_ENV} "
                   f"(clients send 'Authorization: Bearer <key>')")
        if not allow_open:          # bad usage: the CLI's exit code 2 (README's table)
            raise InvalidInputError(f"{message}, or pass --no-auth to allow it")
        log.warning("%s", message)


def serve(engine: Engine, *, host: str = "127.0.0.1", port: int = 8000, library: VoiceLibrary | None = None,
          api_key: str | None = None, allow_open: bool = False, log_level: str = "info") -> None:
    """Run the server with uvicorn until interrupted."""
    import uvicorn  # noqa: PLC0415
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    check_exposure(host, api_key, allow_open=allow_open)
    app = create_server(engine, library, api_key=api_key)
    log.info("serving %s at http://%s:%d%s (docs: %s/docs)", MODEL_ID, host, port, API_PREFIX, API_PREFIX)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__ = ["create_api", "create_server", "mount_api", "serve", "check_exposure", "EngineGate", "ServerBusyError",
           "API_KEY_ENV", "API_PREFIX", "MODEL_ID", "TAKE_HEADER"]
