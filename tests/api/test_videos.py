"""``/videos``: the demo corpus's videos, keyword sets and comments."""

from __future__ import annotations

import pytest


def test_videos_are_listed_in_pages(client, api_state):
    corpus = api_state.context.corpus
    everything = client.get("/videos").json()
    assert [v["id"] for v in everything["items"]] == sorted(corpus.videos)
    first = everything["items"][0]
    video = corpus.videos[first["id"]]
    assert first == {
        "id": video.id,
        "title": video.title,
        "duration_s": video.duration_s,
        "split": video.split,
        "splits": [video.split],
        "comments": len(video.comments),
    }
    page = client.get("/videos", params={"limit": 2, "offset": 1}).json()
    assert page["items"] == everything["items"][1:3] and page["next_offset"] == 3
    last = client.get("/videos", params={"limit": 2, "offset": 2}).json()
    assert len(last["items"]) == 2 and last["next_offset"] is None
    test = client.get("/videos", params={"split": "test"}).json()["items"]
    assert test and {v["split"] for v in test} == {"test"}
    assert client.get("/videos", params={"split": "holdout"}).status_code == 422


def test_keywords_are_the_recall_keywords(client, api_state):
    vid = sorted(api_state.context.corpus.videos)[0]
    words = client.get(f"/videos/{vid}/keywords").json()
    expected = api_state.context.keywords[vid]
    assert [k["word"] for k in words] == [k.word for k in expected[:20]]
    assert any(k["entity"] for k in words), "the demo films' people are keywords"
    assert len(client.get(f"/videos/{vid}/keywords", params={"limit": 2}).json()) == 2


def test_comments_in_a_time_range(client, api_state):
    video = next(iter(api_state.context.corpus))
    r = client.get(f"/videos/{video.id}/comments", params={"start": 60, "end": 70, "limit": 1000})
    items = r.json()["items"]
    assert [c["text"] for c in items] == [c.text for c in video.comments_between(60, 70)]
    assert all(60 <= c["time_s"] < 70 for c in items) and r.json()["next_offset"] is None
    # paging through the whole video gives every comment once, in time order
    seen, offset = [], 0
    while offset is not None:
        page = client.get(
            f"/videos/{video.id}/comments", params={"limit": 1000, "offset": offset}
        ).json()
        seen += page["items"]
        offset = page["next_offset"]
    assert len(seen) == len(video.comments)
    assert [c["time_s"] for c in seen] == sorted(c["time_s"] for c in seen)
    assert any(c["knowledge"] for c in seen), "the demo corpus flags knowledge comments"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": 70, "end": 60}, "end"),
        ({"start": 5, "end": 5}, "end"),
        ({"start": -1}, "start"),
        ({"limit": 1001}, "limit"),
        ({"start": "soon"}, "start"),
    ],
)
def test_bad_comment_ranges_are_422(client, api_state, params, field):
    vid = next(iter(api_state.context.corpus.videos))
    r = client.get(f"/videos/{vid}/comments", params=params)
    assert r.status_code == 422
    assert [e["loc"][-1] for e in r.json()["detail"]] == [field]


@pytest.mark.parametrize("suffix", ["keywords", "comments"])
def test_unknown_video_is_404(client, suffix):
    r = client.get(f"/videos/nosuchvideo/{suffix}")
    assert r.status_code == 404 and "nosuchvideo" in r.json()["detail"]
