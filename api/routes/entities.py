"""``/entities``: prefix search, one entity and its aliases, its facts, its neighbourhood.

Names are entity names or aliases (``阿甘正传`` finds the film's bracketed head); a name may
contain ``/`` (FilmKG has such heads), so the facts and neighbours routes are matched first.
Every store call is a parameterised query of the store (:mod:`kg.store`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import SettingsDep, StateDep, run_blocking
from api.errors import NOT_FOUND
from api.schemas import (
    MAX_ALIASES,
    MAX_NAME_CHARS,
    MAX_NEIGHBORS,
    MAX_OFFSET,
    MAX_PAGE,
    MAX_RELATIONS,
    Entity,
    Fact,
    Neighbors,
    Page,
    page,
)
from api.state import ApiState

router = APIRouter(prefix="/entities", tags=["entities"])

#: Search pages are read from the top: a deep offset costs a long scan.
MAX_SEARCH_OFFSET = 10_000

Name = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        description="entity name or alias",
        openapi_examples={"film": {"value": "阿甘正传"}, "person": {"value": "汤姆·汉克斯"}},
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size (at most {MAX_PAGE})")]


def resolved(state: ApiState, name: str) -> str:
    entity = state.store.resolve(name)
    if entity is None:
        raise HTTPException(404, f"no entity or alias {name!r} in the knowledge graph")
    return entity


@router.get("", response_model=Page[str])
async def search(
    state: StateDep,
    settings: SettingsDep,
    prefix: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_NAME_CHARS,
            description="names (entities and aliases) starting with this",
            openapi_examples={"prefix": {"value": "阿甘"}},
        ),
    ],
    limit: Limit = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_SEARCH_OFFSET)] = 0,
) -> Page:
    """Entity and alias names starting with `prefix`, sorted."""
    names = await run_blocking(settings, state.store.search, prefix, offset + limit + 1)
    return page(names[offset:], limit, offset)


@router.get("/{name:path}/facts", response_model=Page[Fact], responses=NOT_FOUND)
async def facts(
    state: StateDep,
    settings: SettingsDep,
    name: Name,
    relation: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_RELATIONS,
            description=f"only these relations (repeatable, at most {MAX_RELATIONS})",
        ),
    ] = None,
    limit: Limit = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    """Facts whose head is the entity `name` resolves to, in a stable order."""

    def query() -> list:
        entity = resolved(state, name)
        return state.store.facts(entity, relation or None, limit + 1, offset)

    rows = await run_blocking(settings, query)
    return page([Fact(head=f.head, relation=f.relation, tail=f.tail) for f in rows], limit, offset)


@router.get("/{name:path}/neighbors", response_model=Neighbors, responses=NOT_FOUND)
async def neighbors(
    state: StateDep,
    settings: SettingsDep,
    name: Name,
    hops: Annotated[int, Query(ge=1, le=2, description="1 or 2")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_NEIGHBORS)] = 100,
) -> Neighbors:
    """Facts within `hops` of the entity, pointing out of it or into it (by name or alias)."""

    def query() -> tuple[str, list]:
        entity = resolved(state, name)
        return entity, state.store.neighbors(entity, hops, limit + 1)

    entity, rows = await run_blocking(settings, query)
    return Neighbors(
        entity=entity,
        hops=hops,
        items=[Fact(head=f.head, relation=f.relation, tail=f.tail) for f in rows[:limit]],
        limit=limit,
        truncated=len(rows) > limit,
    )


@router.get("/{name:path}", response_model=Entity, responses=NOT_FOUND)
async def entity(state: StateDep, settings: SettingsDep, name: Name) -> Entity:
    """The entity a name or alias resolves to, and the entity's aliases."""

    def query() -> tuple[str, list[str]]:
        entity = resolved(state, name)
        return entity, state.store.aliases(entity)

    head, aliases = await run_blocking(settings, query)
    return Entity(
        name=name,
        entity=head,
        aliases=aliases[:MAX_ALIASES],
        aliases_truncated=len(aliases) > MAX_ALIASES,
    )
