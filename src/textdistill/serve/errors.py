"""Error answers: every 4xx and 5xx is a JSON :class:`ErrorBody` that says what was wrong."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from textdistill.serve.schema import NOT_UNICODE, ErrorBody, ErrorDetail

logger = logging.getLogger(__name__)

DOCS_HINT = "See /docs for the request format."
_MAX_LISTED = 5
_HTTP_CODES = {
    400: "invalid_json",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
}
_PROBLEMS = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "string_unicode": NOT_UNICODE,
    "too_short": "must not be empty",
    "list_type": "must be a JSON array",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
}


class ApiError(Exception):
    """An error answer raised from an endpoint."""

    def __init__(self, status: int, code: str, message: str, details: Sequence[ErrorDetail] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)


def error_response(status: int, code: str, message: str, details: Sequence[ErrorDetail] = (), headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=code, message=message, details=list(details))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def summarise(details: Sequence[ErrorDetail]) -> str:
    """``location: problem`` for the first few details, and how many more there are."""
    listed = "; ".join(f"{d.location}: {d.problem}" for d in details[:_MAX_LISTED])
    more = len(details) - _MAX_LISTED
    return listed + (f" (and {more} more)" if more > 0 else "")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.code, error.message, error.details)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = list(error.errors())
    invalid_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if invalid_json is not None:
        reason = (invalid_json.get("ctx") or {}).get("error", "JSON decode error")
        position = invalid_json["loc"][-1]
        return error_response(400, "invalid_json", f"the request body is not valid JSON: {reason} (at character {position}).")
    if any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in errors):
        return error_response(415, "unsupported_media_type", "send the request body as JSON, with the header Content-Type: application/json.")
    details = [ErrorDetail(location=_location(e.get("loc", ())), problem=_problem(e)) for e in errors]
    return error_response(422, "invalid_request", f"invalid request: {summarise(details)}. {DOCS_HINT}", details)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 400:
        # FastAPI's "There was an error parsing the body", raised from what the JSON parser raised
        return error_response(400, *_unparsable_body(error.__cause__))
    code = _HTTP_CODES.get(error.status_code, "http_error")
    message = {
        404: f"no such endpoint: {request.method} {request.url.path}. The endpoints are POST /predict, GET /health, GET /model and GET /docs.",
        405: f"{request.method} is not allowed on {request.url.path}. {DOCS_HINT}",
    }.get(error.status_code, str(error.detail))
    return error_response(error.status_code, code, message, headers=getattr(error, "headers", None))


def _unparsable_body(cause: BaseException | None) -> tuple[str, str]:
    """The error code and message for a body that Python's JSON parser gave up on, by why."""
    if isinstance(cause, RecursionError):
        return "json_too_deep", (
            f"the request body is JSON nested too deep to parse (the limit is about {sys.getrecursionlimit():,} levels). "
            f"A request is {{\"messages\": [{{\"id\": ..., \"text\": ...}}]}}. {DOCS_HINT}"
        )
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "number_too_long", (
            f"the request body holds a number with more than {sys.get_int_max_str_digits():,} digits, the most that is parsed. "
            "Send long ids as strings."
        )
    if isinstance(cause, UnicodeDecodeError):
        return "invalid_json", f"the request body is not UTF-8 ({cause.reason} at byte {cause.start}): send it as UTF-8 encoded JSON."
    reason = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return "invalid_json", f"the request body could not be parsed as JSON{reason}. {DOCS_HINT}"


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "internal_error", f"the service failed unexpectedly ({type(error).__name__}); the server log has the details.")


def _location(loc: Sequence[Any]) -> str:
    """``("body", "messages", 3, "text")`` -> ``messages[3].text``; query parameters are named as such."""
    parts = list(loc)
    if parts[:1] == ["query"] and len(parts) > 1:
        return f"query parameter {parts[1]}"
    if parts[:1] == ["body"]:
        parts = parts[1:]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _problem(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "value_error":
        return str((error.get("ctx") or {}).get("error", error.get("msg", "")))
    return _PROBLEMS.get(kind, error.get("msg", "invalid value"))
