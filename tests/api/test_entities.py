"""``/entities`` against the bundled FilmKG sample in the embedded store."""

from __future__ import annotations

from urllib.parse import quote

import pytest

FILM = "阿甘正传（美国1994年汤姆·汉克斯主演电影）"
SLASHED = "傲慢与偏见（法国 / 英国 / 美国2005年凯拉·奈特利主演电影）"


def test_search_by_prefix_is_sorted_and_paged(client, api_state):
    first = client.get("/entities", params={"prefix": "阿", "limit": 3}).json()
    assert first["items"] == api_state.store.search("阿", 3)
    assert first["items"] == sorted(first["items"]) and all(
        n.startswith("阿") for n in first["items"]
    )
    assert (first["limit"], first["offset"], first["next_offset"]) == (3, 0, 3)
    second = client.get("/entities", params={"prefix": "阿", "limit": 3, "offset": 3}).json()
    assert second["items"] == api_state.store.search("阿", 6)[3:]
    assert not set(first["items"]) & set(second["items"])
    last = client.get("/entities", params={"prefix": "阿甘"}).json()
    assert last["items"] == ["阿甘正传", FILM] and last["next_offset"] is None


def test_entity_resolves_an_alias(client):
    r = client.get("/entities/阿甘正传")
    assert r.status_code == 200
    assert r.json() == {
        "name": "阿甘正传",
        "entity": FILM,
        "aliases": ["阿甘正传"],
        "aliases_truncated": False,
    }


def test_facts_pages_cover_all_facts_once(client, api_state):
    everything = [f.as_dict() for f in api_state.store.facts(FILM, limit=1000)]
    seen, offset = [], 0
    while offset is not None:
        page = client.get(f"/entities/{FILM}/facts", params={"limit": 4, "offset": offset}).json()
        assert len(page["items"]) <= 4
        seen += page["items"]
        offset = page["next_offset"]
    assert seen == everything and len(everything) > 4


def test_facts_relation_filter_and_alias(client):
    r = client.get("/entities/阿甘正传/facts", params=[("relation", "主演"), ("relation", "导演")])
    facts = r.json()["items"]
    assert facts and {f["relation"] for f in facts} <= {"主演", "导演"}
    assert {"head": FILM, "relation": "主演", "tail": "汤姆·汉克斯"} in facts
    assert all(f["head"] == FILM for f in facts)


def test_names_with_a_slash(client):
    r = client.get(f"/entities/{quote(SLASHED, safe='')}/facts", params={"limit": 2})
    assert r.status_code == 200 and r.json()["items"][0]["head"] == SLASHED
    assert client.get(f"/entities/{SLASHED}").json()["entity"] == SLASHED


def test_neighbors_one_and_two_hops(client):
    one = client.get("/entities/汤姆·汉克斯/neighbors", params={"hops": 1, "limit": 500}).json()
    assert one["entity"] == "汤姆·汉克斯" and one["hops"] == 1 and not one["truncated"]
    # facts pointing into the entity count too: the film lists him as its star
    assert {"head": FILM, "relation": "主演", "tail": "汤姆·汉克斯"} in one["items"]
    two = client.get("/entities/汤姆·汉克斯/neighbors", params={"hops": 2, "limit": 500}).json()
    assert len(two["items"]) > len(one["items"])
    assert all(f in two["items"] for f in one["items"])
    capped = client.get("/entities/汤姆·汉克斯/neighbors", params={"hops": 2, "limit": 3}).json()
    assert len(capped["items"]) == 3 and capped["truncated"]


@pytest.mark.parametrize(
    "path",
    ["/entities/没有这个实体", "/entities/没有这个实体/facts", "/entities/没有这个实体/neighbors"],
)
def test_unknown_entity_is_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert "没有这个实体" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/entities", {}, "prefix"),
        ("/entities", {"prefix": ""}, "prefix"),
        ("/entities", {"prefix": "阿", "limit": 0}, "limit"),
        ("/entities", {"prefix": "阿", "limit": 501}, "limit"),
        ("/entities", {"prefix": "阿", "offset": 10_001}, "offset"),
        (f"/entities/{FILM}/facts", {"limit": 10_000}, "limit"),
        (f"/entities/{FILM}/facts", {"offset": -1}, "offset"),
        (f"/entities/{FILM}/facts", {"relation": ["r"] * 21}, "relation"),
        (f"/entities/{FILM}/neighbors", {"hops": 3}, "hops"),
        (f"/entities/{FILM}/neighbors", {"hops": "two"}, "hops"),
        (f"/entities/{'名' * 201}", {}, "name"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(client, path, params, field):
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert [e["loc"][-1] for e in r.json()["detail"]] == [field]
