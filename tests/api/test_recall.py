"""``GET /recall`` is the recall training uses, with why each fact was chosen."""

from __future__ import annotations

import pytest

from retrieval.recall import recall


def test_recall_is_the_training_recall(client, api_state, window_with_facts):
    vid, t, answer = window_with_facts
    ctx = api_state.context
    direct = recall(
        ctx.store, ctx.linker, ctx.index, ctx.corpus.videos[vid], t, keywords=ctx.keyword_set(vid)
    )
    expected = direct.as_dict()
    assert answer["facts"] == expected["facts"]
    assert [{**c, "score": round(c["score"], 4)} for c in answer["comments"]] == expected[
        "comments"
    ]
    assert answer["knowledge"] == direct.text and "<SEP>" in answer["knowledge"]
    assert (answer["video"], answer["t"], answer["window"]) == (vid, t, [t - 5, t + 5])


def test_each_fact_says_why(window_with_facts, api_state):
    vid, t, answer = window_with_facts
    video = api_state.context.corpus.videos[vid]
    said = " ".join(c.text for c in video.comments_between(0, t + 6)) + video.title
    for fact in answer["facts"]:
        why = fact["why"]
        assert why["hop"] in (1, 2) and why["score"] > 0
        assert why["keyword"] in said, "the words that named the entity were said (or titled)"
        if why["hop"] == 1:
            assert fact["head"] == why["entity"]


def test_other_video_comments_come_from_other_videos(window_with_facts, api_state):
    vid, _, answer = window_with_facts
    train = {v.id for v in api_state.context.corpus.split("train")}
    assert answer["comments"]
    assert all(c["video"] != vid and c["video"] in train for c in answer["comments"])


def test_recall_at_the_edges(client, api_state):
    video = next(iter(api_state.context.corpus))
    end = int(video.duration_s)
    assert client.get("/recall", params={"video": video.id, "t": 0}).json()["window"] == [0, 5]
    assert client.get("/recall", params={"video": video.id, "t": end}).status_code == 200


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"video": "demo0000", "t": 100_000}, 422, "t"),
        ({"video": "demo0000", "t": -1}, 422, "t"),
        ({"video": "demo0000", "t": 1.5}, 422, "t"),
        ({"video": "demo0000"}, 422, "t"),
        ({"t": 5}, 422, "video"),
        ({"video": "nosuchvideo", "t": 5}, 404, None),
    ],
)
def test_bad_windows(client, params, status, field):
    r = client.get("/recall", params=params)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    if field is None:
        assert "nosuchvideo" in detail
    else:
        assert [e["loc"] for e in detail] == [["query", field]]


def test_query_units_are_embedded_at_start_up(client, api_state):
    """Requests find recall's comment query in the embedder's cache (no encoder call)."""
    embedder = api_state.context.index.embedder
    assert api_state.warm_units > 0
    misses = embedder.misses
    for video in api_state.context.corpus:
        for t in range(0, int(video.duration_s), 97):
            assert client.get("/recall", params={"video": video.id, "t": t}).status_code == 200
    assert embedder.misses == misses
