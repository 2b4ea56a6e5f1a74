"""Dependencies the routers declare once: the state built at start-up, the settings, the API
key (and a route class that checks it before the body is read), the video a path names, and
a time-limited way to run blocking work."""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from functools import partial
from typing import Annotated, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Path, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from api.deadline import run_until
from api.errors import invalid
from api.generation import MODEL_THREAD, in_model_threads
from api.schemas import MAX_NAME_CHARS
from api.settings import Settings
from api.state import ApiState
from model.data.schema import DataError, Video

R = TypeVar("R")
API_KEY_HEADER = "X-API-Key"

_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="needed by POST /generate when the server's API_KEY is set",
)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_state(request: Request) -> ApiState:
    return request.app.state.api


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[ApiState, Depends(get_state)]


def check_api_key(settings: Settings, key: str | None) -> None:
    """401 unless ``key`` is the configured API key (no key configured: open)."""
    if settings.api_key is None:
        return
    if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
        raise HTTPException(
            401,
            f"this endpoint needs the API key in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(_api_key)] = None
) -> None:
    """The key check as a dependency, which is how OpenAPI documents it; FastAPI reads and
    parses the body before it runs dependencies, so routes behind the key also use
    :class:`KeyFirstRoute`."""
    check_api_key(settings, key)


class KeyFirstRoute(APIRoute):
    """A route that checks the API key before anything else, the body included: a caller
    without the key gets 401 whatever it sends, never a 422 that describes the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[None, None, Response]]:
        handler = super().get_route_handler()

        async def key_first(request: Request) -> Response:
            check_api_key(get_settings(request), request.headers.get(API_KEY_HEADER))
            return await handler(request)

        return key_first


#: How a video id parameter is declared, in a path or a query.
VIDEO_ID = {
    "min_length": 1,
    "max_length": MAX_NAME_CHARS,
    "description": "video id",
    "openapi_examples": {"demo": {"value": "demo0000"}},
}


def get_video(state: StateDep, video_id: Annotated[str, Path(**VIDEO_ID)]) -> Video:
    return video_or_404(state, video_id)


VideoDep = Annotated[Video, Depends(get_video)]


def video_or_404(state: ApiState, video_id: str) -> Video:
    video = state.video(video_id)
    if video is None:
        raise HTTPException(404, f"no video {video_id!r} in {state.context.corpus.path}")
    return video


def check_second(video: Video, t: int, loc: tuple[str, ...]) -> None:
    """422 unless second ``t`` lies within the video."""
    try:
        video.check_time(t)
    except DataError as e:
        raise invalid(loc, str(e), t) from None


async def run_blocking(
    settings: Settings,
    fn: Callable[..., R],
    *args,
    lock: threading.Lock | None = None,
    timeout_s: float | None = None,
    executor: Executor | None = None,
) -> R:
    """``fn(*args)`` in a worker thread (of ``executor`` when given, e.g. the model's own:
    :data:`api.generation.MODEL_THREAD`; else anyio's), under ``lock`` when given, given up
    after ``timeout_s`` (default ``settings.timeout_s``; TimeoutError, answered 504). The
    worker gives up too (:func:`api.deadline.run_until`): it waits for ``lock`` and for its
    turn only until the deadline, so work nobody waits for any more does not hold the lock or
    a thread."""
    timeout_s = settings.timeout_s if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    call = partial(run_until, deadline, partial(fn, *args), lock)
    with anyio.fail_after(timeout_s):
        if executor is None:
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        return await asyncio.wrap_future(executor.submit(call))


async def run_on_model(
    settings: Settings,
    fn: Callable[..., R],
    *args,
    lock: threading.Lock | None = None,
    timeout_s: float | None = None,
) -> R:
    """:func:`run_blocking` on the model's thread (:data:`api.generation.MODEL_THREAD`) with
    ``API_MODEL_THREADS`` intra-op threads: how every generation runs."""
    run = in_model_threads(settings, fn)
    return await run_blocking(
        settings, run, *args, lock=lock, timeout_s=timeout_s, executor=MODEL_THREAD
    )
