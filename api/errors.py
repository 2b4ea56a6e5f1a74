"""How errors become HTTP answers, never a traceback.

Every 422 has FastAPI's validation shape (``{"detail": [{"loc", "msg", "type"}]}``), whether
the schema caught the parameter or a check against the data did (:func:`invalid`: a second
outside the video); a :class:`common.errors.UserError` from deeper code (bad input the corpus
or the model refused) is a 422 of the same shape. Other errors are ``{"detail": "..."}``:
400 an unreadable body, 404 unknown entity or video, 401 missing API key, 503 no model, 504 a
request that ran past ``API_TIMEOUT_S`` (:func:`api.deps.run_blocking`); a body over
``API_MAX_BODY_BYTES`` is answered 413 in plain text (by FastAPI).

A 422 echoes the refused input, which may be a number JSON cannot write (``NaN``,
``Infinity``, ``1e400`` parsed as infinity): such numbers are echoed as the strings
``"NaN"``, ``"Infinity"``, ``"-Infinity"``, so the answer is valid JSON and never a 500.
"""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.schemas import Error
from api.settings import Settings
from common.errors import UserError

#: OpenAPI ``responses=`` entries for the error answers routes document.
NOT_FOUND = {404: {"model": Error, "description": "unknown entity or video"}}
NO_MODEL = {503: {"model": Error, "description": "no model: no checkpoint configured or loaded"}}
NO_KEY = {401: {"model": Error, "description": "API_KEY is set and X-API-Key is not it"}}
BAD_BODY = {
    400: {"model": Error, "description": "the body could not be read (not UTF-8)"},
    413: {
        "description": "the body is larger than API_MAX_BODY_BYTES",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
}


def invalid(loc: tuple[str, ...], msg: str, value: object) -> RequestValidationError:
    """A 422 for a parameter the schema allows but the data does not."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": value}])


def json_safe(value: object) -> object:
    """``value`` (JSON-encodable data) with every non-finite float spelled as a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = json_safe(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": errors}, status_code=422)

    async def user_error(_: Request, exc: Exception) -> JSONResponse:
        error = {"type": "value_error", "loc": [], "msg": str(exc)}
        return JSONResponse({"detail": [error]}, status_code=422)

    async def timed_out(_: Request, __: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the request took longer than {settings.timeout_s:g} s (API_TIMEOUT_S)"},
            status_code=504,
        )

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(UserError, user_error)
    app.add_exception_handler(TimeoutError, timed_out)
