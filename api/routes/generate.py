"""``POST /generate``: comments for second t of a video, from the configured checkpoint, with
the words each copied and the fact they came from (:mod:`model.generate`). 503 until a model
is loaded; behind the API key when ``API_KEY`` is set, checked before the body is read."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from api.deps import (
    KeyFirstRoute,
    SettingsDep,
    StateDep,
    check_second,
    require_api_key,
    run_on_model,
    video_or_404,
)
from api.errors import BAD_BODY, NO_KEY, NO_MODEL, NOT_FOUND
from api.schemas import Generated, GenerateRequest

router = APIRouter(tags=["generate"], route_class=KeyFirstRoute)


@router.post(
    "/generate",
    response_model=Generated,
    dependencies=[Depends(require_api_key)],
    responses={**BAD_BODY, **NOT_FOUND, **NO_KEY, **NO_MODEL},
)
async def generate(request: GenerateRequest, state: StateDep, settings: SettingsDep) -> Generated:
    """Beam-search comments at `t` (the model reads the same recall as `GET /recall`)."""
    generator = state.generator
    if generator is None:
        raise HTTPException(503, f"no model to generate with: {state.model.detail}")
    video = video_or_404(state, request.video)
    check_second(video, request.t, ("body", "t"))

    def run() -> dict:
        return generator.generate(video.id, request.t, beam=request.beam).as_dict()

    generated = await run_on_model(settings, run, lock=state.knowledge_lock)
    return Generated.model_validate(generated)
