"""``/live``: live comment sessions, over a WebSocket or, as a fallback, HTTP POSTs in and a
Server-Sent-Events stream out (protocol: docs/data-contracts.md, section "Live sessions";
the engine: :mod:`model.live_session`; queues and tasks: :mod:`api.live`). Behind the API
key when ``API_KEY`` is set (the ``X-API-Key`` header or ``?key=``, which an ``EventSource``
or a browser WebSocket can send)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from api.deps import API_KEY_HEADER, SettingsDep, StateDep
from api.live import MAX_MESSAGE_BYTES, LiveRunner, LiveSessions, decode
from api.live_transport import key_ok, serve_websocket, sse_stream
from api.schemas import Error
from model.live_messages import LiveError

router = APIRouter(tags=["live"])

#: HTTP status of the errors that refuse a session or a message.
STATUS = {
    "too_big": 413,
    "unknown_video": 404,
    "no_session": 404,
    "reading": 409,
    "no_model": 503,
    "busy": 503,
}
#: Any string: one that names no open session is 404, so every error of these routes is one
#: shape (:class:`Refused`), never FastAPI's validation 422.
SessionId = Annotated[str, Path(description="the session's id")]


class Refused(BaseModel):
    detail: str = Field(description="what was wrong, in one line")
    code: str = Field(description="the error code, as in the WebSocket's error messages")
    accepted: int | None = Field(None, description="messages of the body taken before it")


ERRORS = {
    401: {"model": Error, "description": "API_KEY is set and neither X-API-Key nor ?key= is it"},
    404: {"model": Refused, "description": "no such session (ended), or an unknown video"},
    413: {
        "description": f"the body is larger than {MAX_MESSAGE_BYTES} bytes",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    422: {"model": Refused, "description": "a bad message (the ones before it were taken)"},
    503: {"model": Refused, "description": "no model, or too many live sessions"},
}
#: The body of the POSTs (read as sent, so that it is checked as a WebSocket message is).
MESSAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "description": "a client message (docs/data-contracts.md, Live sessions)",
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"type": "string"}},
                }
            }
        },
    }
}
MESSAGES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        MESSAGE_BODY["requestBody"]["content"]["application/json"]["schema"],
                        {"type": "array", "items": {"type": "object"}},
                    ]
                }
            }
        },
    }
}


def get_live(request: Request) -> LiveSessions:
    return request.app.state.live


def require_live_key(
    request: Request, settings: SettingsDep, key: Annotated[str | None, Query()] = None
) -> None:
    if not key_ok(settings, request.headers.get(API_KEY_HEADER), key):
        raise HTTPException(
            401,
            f"live sessions need the API key in the {API_KEY_HEADER} header or ?key=",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )


LiveDep = Annotated[LiveSessions, Depends(get_live)]
KEY = [Depends(require_live_key)]


def refused(e: LiveError, accepted: int | None = None) -> JSONResponse:
    body = Refused(detail=e.detail, code=e.code, accepted=accepted)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=STATUS.get(e.code, 422))


def sse_session(live: LiveSessions, session_id: str) -> LiveRunner:
    """The open SSE session ``session_id`` (:class:`LiveError` ``no_session``)."""
    runner = live.runners.get(session_id)
    if runner is None or not runner.background:
        raise LiveError("no_session", f"no live session {session_id!r} (ended, or never opened)")
    return runner


@router.websocket("/live")
async def live_socket(ws: WebSocket) -> None:
    app = ws.app
    await serve_websocket(ws, app.state.live, app.state.api, app.state.settings)


@router.post(
    "/live/sessions",
    dependencies=KEY,
    responses=ERRORS,
    max_body_size=MAX_MESSAGE_BYTES,
    openapi_extra=MESSAGE_BODY,
)
async def open_session(request: Request, live: LiveDep, state: StateDep) -> JSONResponse:
    """Open a session: the body is the `start` message; the answer the `session` message."""
    arrival = time.monotonic()
    try:
        runner = live.open(state, decode(await request.body()), arrival)
        live.start_background(runner)
    except LiveError as e:
        return refused(e)
    return JSONResponse(runner.session.hello())


@router.post(
    "/live/sessions/{session_id}/messages",
    dependencies=KEY,
    responses=ERRORS,
    max_body_size=MAX_MESSAGE_BYTES,
    openapi_extra=MESSAGES_BODY,
)
async def post_messages(session_id: SessionId, request: Request, live: LiveDep) -> JSONResponse:
    """One client message, or a JSON array of them, taken in order; the first bad one stops
    the rest (422, with how many were `accepted` before it)."""
    arrival = time.monotonic()
    try:
        runner = sse_session(live, session_id)
        value = decode(await request.body())
    except LiveError as e:
        if e.code != "no_session":
            runner.count_error()
        return refused(e, accepted=0)
    messages = value if isinstance(value, list) else [value]
    for i, message in enumerate(messages):
        try:
            if runner.closing is not None:
                raise LiveError("no_session", "the session has ended")
            runner.accept(message, arrival)
        except LiveError as e:
            where = f"message {i}: " if isinstance(value, list) else ""
            return refused(LiveError(e.code, where + e.detail), accepted=i)
    return JSONResponse({"accepted": len(messages)})


@router.get(
    "/live/sessions/{session_id}/events",
    dependencies=KEY,
    responses={
        **ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "the events"},
        409: {"model": Refused, "description": "the session has an event reader"},
    },
)
async def events(session_id: SessionId, live: LiveDep) -> Response:
    """The session's messages as Server-Sent Events (one reader at a time)."""
    try:
        runner = sse_session(live, session_id)
        if runner.reading:
            raise LiveError("reading", "the session already has an event reader")
    except LiveError as e:
        return refused(e)
    return StreamingResponse(
        sse_stream(runner, live.keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.delete("/live/sessions/{session_id}", dependencies=KEY, responses=ERRORS)
async def stop_session(session_id: SessionId, live: LiveDep) -> JSONResponse:
    """End the session (as a `stop` message): answers its final stats."""
    try:
        return JSONResponse(sse_session(live, session_id).stop())
    except LiveError as e:
        return refused(e)
