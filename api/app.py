"""``create_app(settings)``: the read-only knowledge-inspection API and its web inspector.

The store, the retrieval context and the generator are built once, at start-up (or handed
in, already built, by a caller that serves several apps from one state); requests only read
them. Request bodies are capped (``API_MAX_BODY_BYTES``, 413), requests are time-limited
(``API_TIMEOUT_S``, 504), CORS is off unless ``API_CORS_ORIGINS`` names origins. The page at
``/`` (the inspector) and the live player at ``/player`` are plain HTML and JavaScript from
``api/static/``; OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.deps import API_KEY_HEADER
from api.errors import install_error_handlers
from api.generation import MODEL_THREAD
from api.live import LiveSessions
from api.routes import entities, generate, health, live, recall, videos
from api.settings import Settings, load_settings
from api.state import ApiState, build_state

STATIC = Path(__file__).parent / "static"
DESCRIPTION = """Read-only inspection of what the comment generator knows: knowledge-graph
entities and facts, the corpus's videos and comments, the knowledge recalled for a window
(the same recall training uses), and generation with the facts the model attended to.
The web inspector is at [/](/), the live danmaku player at [/player](/player)."""


def create_app(settings: Settings | None = None, *, state: ApiState | None = None) -> FastAPI:
    """The API app. Without ``state`` it builds one from ``settings`` at start-up and closes
    it at shutdown; a given ``state`` is used as it is and left open."""
    if settings is None:
        settings = state.settings if state is not None else load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with app.state.live.running():
            if state is not None:
                yield
                return
            # on the model's thread: the thread that loads the model is the one that runs it
            app.state.api = await asyncio.wrap_future(MODEL_THREAD.submit(build_state, settings))
            try:
                yield
            finally:
                app.state.api.close()

    app = FastAPI(
        title="danmaku-kg inspection API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.live = LiveSessions(settings)
    if state is not None:
        app.state.api = state
    origins = settings.cors_origin_list
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", API_KEY_HEADER],
        )
    install_error_handlers(app, settings)
    for module in (health, entities, videos, recall, generate, live):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def inspector() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/player", include_in_schema=False)
    async def player() -> FileResponse:
        return FileResponse(STATIC / "player.html")

    return app
