"""HTTP errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Typed core errors keep their message (they are written for users and name what was sent); anything else is
logged here with its traceback and answered with a generic message, so no server path or stack trace leaves.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import (AudioDecodeError, CheckpointError, InvalidInputError, ModelUnavailableError,
                      StepEditError, UnsupportedEditError)
from ..service.core import user_message
from ..voices import VoiceNotFoundError
from .gate import ServerBusyError

log = logging.getLogger("stepedit.server")


class APIError(Exception):
    """An error raised by a route with its HTTP status and OpenAI fields."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _sentence(text: str) -> str:
    """Every door's sentence form of a message (stepedit_core.service.user_message)."""
    return user_message(text.strip() or "the request failed")


def from_core(exc: StepEditError, param: str | None = None) -> APIError:
    """The HTTP form of a typed core error."""
    message = _sentence(str(exc))
    if isinstance(exc, VoiceNotFoundError):
        return APIError(404 if param is None else 400, message, param=param or "voice", code="voice_not_found")
    if isinstance(exc, UnsupportedEditError):
        return APIError(400, message, param=param, code="unsupported")
    if isinstance(exc, AudioDecodeError):
        return APIError(400, message, param=param or "file", code="invalid_audio")
    if isinstance(exc, InvalidInputError):
        return APIError(400, message, param=param, code="invalid_value")
    if isinstance(exc, ServerBusyError):
        return APIError(503, message, type="server_error", code="server_busy")
    if isinstance(exc, (ModelUnavailableError, CheckpointError)):
        return APIError(503, message, type="server_error", code="model_unavailable")
    return APIError(500, message, type="server_error", code="engine_error")


def api_error_response(exc: APIError) -> JSONResponse:
    headers = {"Retry-After": "5"} if exc.status == 503 else None
    return JSONResponse(error_body(exc.message, exc.type, exc.param, exc.code), status_code=exc.status,
                        headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "The request is invalid.", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form")]
    param = ".".join(loc) or None
    msg = first.get("msg", "invalid value")
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    return _sentence(f"{param}: {msg}" if param else msg), param


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the OpenAI shape."""

    @app.exception_handler(APIError)
    async def _api(request: Request, exc: APIError):
        return api_error_response(exc)

    @app.exception_handler(StepEditError)
    async def _core(request: Request, exc: StepEditError):
        return api_error_response(from_core(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return api_error_response(APIError(400, message, param=param, code="invalid_value"))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        codes = {404: "not_found", 405: "method_not_allowed", 401: "invalid_api_key"}
        return api_error_response(APIError(exc.status_code, _sentence(str(exc.detail)), type=kind,
                                           code=codes.get(exc.status_code)))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return api_error_response(APIError(500, f"Internal error ({type(exc).__name__}); see the server log.",
                                           type="server_error", code="internal_error"))


__all__ = ["APIError", "error_body", "from_core", "install", "api_error_response"]
