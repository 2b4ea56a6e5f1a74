"""Dependencies the routers declare once: the state built at start-up, the settings, the API
key, the video a path names, and a time-limited way to run blocking work."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import partial
from typing import Annotated, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Path, Request, Security
from fastapi.security import APIKeyHeader

from api.errors import invalid
from api.schemas import MAX_NAME_CHARS
from api.settings import Settings
from api.state import ApiState
from model.data.schema import Video

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


def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(_api_key)] = None
) -> None:
    """401 unless the request carries the configured API key (no key configured: open)."""
    if settings.api_key is None:
        return
    if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
        raise HTTPException(
            401,
            f"this endpoint needs the API key in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )


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
    if t > video.duration_s:
        msg = f"t={t} is outside video {video.id!r} (0..{video.duration_s:g} s)"
        raise invalid(loc, msg, t)


async def run_blocking(settings: Settings, fn: Callable[..., R], *args) -> R:
    """``fn(*args)`` in a worker thread, given up after ``settings.timeout_s`` (TimeoutError,
    answered 504); the abandoned thread finishes on its own."""
    with anyio.fail_after(settings.timeout_s):
        return await anyio.to_thread.run_sync(partial(fn, *args), abandon_on_cancel=True)
