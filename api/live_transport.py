"""The two ways a live session's messages travel (protocol: docs/data-contracts.md, section
"Live sessions"): a WebSocket carrying both directions, or, where WebSockets are blocked,
HTTP POSTs in and a Server-Sent-Events stream out. Both drive the same
:class:`api.live.LiveRunner`.

WebSocket: the key is checked right after the handshake (close 4401), then a missing model
ends it (an error, close 4503); the first message must be ``start`` (bad ones are errors,
counted as any others), within :data:`START_WAIT_S` (else close 1008); an unknown video is an
error and close 4404. Then three tasks run
until the session closes: one reads, one sends, one generates (and one watches the queue).

Server-Sent Events: every queued message is one ``data: <json>`` event; a comment line
(``: keepalive``) goes out when nothing else has for a while, so proxies keep the stream
open; when the session ends a last event ``{"type": "closed", "code", "reason"}`` says how,
since an event stream has no close code.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import suppress

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.deps import API_KEY_HEADER
from api.live import (
    CLOSE_CODES,
    DRAIN_S,
    INTERNAL,
    MAX_ERRORS,
    POLICY_VIOLATION,
    LiveRunner,
    LiveSessions,
    decode,
)
from api.settings import Settings
from api.state import ApiState
from model.live_messages import LiveError

log = logging.getLogger(__name__)

BAD_KEY = 4401
CLOSE_WAIT_S = 1.0
START_WAIT_S = 30.0  # a connection that sends no good start message by then is closed (1008)


def key_ok(settings: Settings, header: str | None, query: str | None) -> bool:
    """Whether the API key came (header or ``?key=``), or none is configured."""
    if settings.api_key is None:
        return True
    given = header if header is not None else query
    return given is not None and hmac.compare_digest(given.encode(), settings.api_key.encode())


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    """Close ``ws`` if it is still open, giving up after :data:`CLOSE_WAIT_S`."""
    # RuntimeError and the others: the client is gone already
    with anyio.move_on_after(CLOSE_WAIT_S), suppress(RuntimeError, OSError, WebSocketDisconnect):
        await ws.close(code, reason[:120])


async def _send(ws: WebSocket, message: dict) -> None:
    await ws.send_text(json.dumps(message, ensure_ascii=False))


async def serve_websocket(
    ws: WebSocket, live: LiveSessions, state: ApiState, settings: Settings
) -> None:
    await ws.accept()
    if not key_ok(settings, ws.headers.get(API_KEY_HEADER), ws.query_params.get("key")):
        await _close(ws, BAD_KEY, f"API key missing or wrong (?key= or {API_KEY_HEADER})")
        return
    runner = None
    with anyio.move_on_after(START_WAIT_S) as waited:
        try:
            runner = await _opened(ws, live, state)
        except (WebSocketDisconnect, OSError):
            return
    if waited.cancelled_caught:
        await _send(ws, LiveError("bad_message", "no start message came").as_message())
        await _close(ws, POLICY_VIOLATION, f"no start message within {START_WAIT_S:g} s")
    if runner is None:
        return
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_read, ws, runner)
            group.start_soon(_write, ws, runner)
            group.start_soon(runner.worker)
            group.start_soon(runner.watch)
            await runner.closed.wait()
            if runner.closing.drain:
                with anyio.move_on_after(DRAIN_S):
                    await runner.drained.wait()
            group.cancel_scope.cancel()
    finally:
        runner.close(None, "ended")  # no-op unless the handler itself was cancelled
    if runner.closing.code is not None:
        await _close(ws, runner.closing.code, runner.closing.reason)


async def _opened(ws: WebSocket, live: LiveSessions, state: ApiState) -> LiveRunner | None:
    """The session the client's ``start`` opens (None: the connection was closed)."""
    if state.generator is None:
        await _send(ws, LiveError("no_model", f"no model: {state.model.detail}").as_message())
        await _close(ws, CLOSE_CODES["no_model"], "no model")
        return None
    errors = 0
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return None
        data = message.get("text") if message.get("text") is not None else message.get("bytes")
        try:
            runner = live.open(state, decode(data or ""), time.monotonic())
        except LiveError as e:
            await _send(ws, e.as_message())
            errors += 1
            if e.code in CLOSE_CODES or errors >= MAX_ERRORS:
                code = CLOSE_CODES.get(e.code, POLICY_VIOLATION)
                await _close(ws, code, e.code)
                return None
            continue
        await _send(ws, runner.session.hello())
        return runner


async def _read(ws: WebSocket, runner: LiveRunner) -> None:
    try:
        while runner.closing is None:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("text")
            data = message.get("bytes") if data is None else data
            try:
                runner.accept_data(data or "", time.monotonic())
            except LiveError as e:
                runner.put(e.as_message())
    except (WebSocketDisconnect, OSError):
        pass
    except Exception:
        log.exception("live session %s: reading failed", runner.id)
        runner.put(LiveError("internal", "the message could not be handled").as_message())
        runner.close(INTERNAL, "internal error", drain=True)
        return
    runner.close(None, "the client left")


async def _write(ws: WebSocket, runner: LiveRunner) -> None:
    try:
        while (item := await runner.next_out()) is not None:
            await ws.send_text(runner.render(item))
    except (WebSocketDisconnect, OSError, RuntimeError):
        runner.close(None, "the client left")


# -- Server-Sent Events ---------------------------------------------------------------------
async def sse_stream(runner: LiveRunner, keepalive_s: float) -> AsyncIterator[str]:
    """The session's messages as an event stream, until it closes."""
    runner.reading = True
    try:
        yield ": live session events\n\n"
        while True:
            item = None
            with anyio.move_on_after(keepalive_s) as waited:
                item = await runner.next_out()
            if waited.cancelled_caught:
                yield ": keepalive\n\n"
                continue
            if item is None:
                close = runner.closing
                end = {"type": "closed", "code": close.code, "reason": close.reason}
                yield f"data: {json.dumps(end, ensure_ascii=False)}\n\n"
                return
            yield f"data: {runner.render(item)}\n\n"
    finally:
        runner.reading = False
        runner.last_activity = time.monotonic()
