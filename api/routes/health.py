"""``GET /health``: whether the store, the comment index and the model work, and why not."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import SettingsDep, StateDep, run_blocking
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "the store does not answer"}},
)
async def health(state: StateDep, settings: SettingsDep, response: Response) -> Health:
    """`ok`: everything works; `degraded`: the store works, the index or the model does not
    (recall without other-video comments, no generation); `down` (503): the store does not
    answer."""
    store = await run_blocking(settings, state.store_status)
    index, model = state.index_status(), state.model
    if not store.ok:
        status, response.status_code = "down", 503
    else:
        status = "ok" if index.ok and model.ok else "degraded"
    return Health(status=status, store=store, index=index, model=model)
