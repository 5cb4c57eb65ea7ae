"""How every failure becomes an API.md error response.

Every error response is ``{"error": "<code>", "message": "<human text>", ...}``.
Domain code raises the :class:`~cyberian.server.errors.ApiProblem` that says
what happened; the handlers installed by :func:`install_error_handlers` answer
it with its status, headers and body, map FastAPI's request-validation errors
to 400 ``invalid_request`` (422 is reserved for ``verification_failed``),
unknown routes to 404 ``not_found``, and anything unexpected to a 500
``internal_error`` whose body carries an incident id and never a traceback.

Under ``/v1/`` (the OpenAI-compatible routes) the same problems answer in
OpenAI's shape instead, so the OpenAI SDKs raise their own typed errors:
``{"error": {"message", "type", "param", "code", ...}}`` with our error code
as ``code`` and the field at fault as ``param``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ApiProblem, bad_request

__all__ = ["OPENAI_PREFIX", "install_error_handlers", "openai_error_body", "problem_response"]

_log = logging.getLogger("cyberian.server")

_NAMED_ERRORS = 5
_MAX_MESSAGE = 1000

_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_busy",
}


OPENAI_PREFIX = "/v1/"
"""Routes under this prefix answer errors in OpenAI's shape."""

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "unprocessable_entity_error",
    429: "rate_limit_error",
}


def openai_error_body(problem: ApiProblem) -> dict[str, Any]:
    """``problem`` as an OpenAI error body (our extra fields ride along inside ``error``)."""
    kind = _OPENAI_TYPES.get(problem.status,
                             "server_error" if problem.status >= 500 else "invalid_request_error")
    extra = {name: value for name, value in problem.extra.items() if name != "field"}
    return {"error": {"message": problem.message, "type": kind,
                      "param": problem.extra.get("field"), "code": problem.code, **extra}}


def problem_response(problem: ApiProblem, path: str = "") -> JSONResponse:
    """The JSON response for ``problem`` answering a request for ``path``."""
    body = openai_error_body(problem) if path.startswith(OPENAI_PREFIX) else problem.body()
    return JSONResponse(body, status_code=problem.status, headers=problem.headers or None)


def _location(loc: Sequence[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "body"


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(exc, request.url.path)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    # Bounded whatever the request: the first few errors are named, the rest only counted
    # (never echo the offending input; it can be megabytes).
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _location(first.get("loc", ()))
    message = f"{field}: {first.get('msg', 'invalid value')}"
    if first.get("type") == "json_invalid":
        field, message = "body", "the request body is not valid JSON"
    others = [_location(error.get("loc", ())) for error in errors[1:_NAMED_ERRORS]]
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more: {', '.join(others)}"
        message += ", ...)" if len(errors) > _NAMED_ERRORS else ")"
    problem = bad_request(message[:_MAX_MESSAGE], field=field)
    problem.extra["error_count"] = len(errors)
    return problem_response(problem, request.url.path)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404:
        detail = "no such route (see /docs)"
    return problem_response(ApiProblem(exc.status_code, code, detail,
                                       headers=dict(exc.headers or {})), request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = secrets.token_hex(6)
    _log.error("internal error %s: %s", incident, type(exc).__name__, exc_info=exc)
    return problem_response(ApiProblem(
        500, "internal_error", f"internal server error (incident {incident})", incident=incident),
        request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    """Make every failure of ``app`` answer with an API.md error body."""
    app.add_exception_handler(ApiProblem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
