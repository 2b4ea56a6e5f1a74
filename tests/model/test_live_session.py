"""The live session engine (``model.live_session``) and its incremental recall
(``retrieval.live_recall``), without the API: recall equals ``recall()`` on the same comments,
the policy knobs, positions and seeks, floods, bounded memory, bad messages.

The model is a tiny untrained KLVCG over a 4-film demo corpus (generation is plumbing here);
the policy tests hand the session generations of their own making, so they run no model.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from common.settings import RunSettings
from model.data.demo import DemoConfig, ensure_demo
from model.data.readers import read_corpus
from model.data.schema import Comment
from model.data.vocab import Vocab
from model.generator import GeneratedComment, Generation, Generator
from model.live_messages import (
    POLICY_KNOBS,
    LiveError,
    Position,
    Start,
    ViewerComment,
    parse_message,
)
from model.live_policy import Policy, normalised
from model.live_session import COMMENT_BURST, MAX_COMMENTS, LiveSession
from retrieval.bootstrap import open_bootstrapped_store
from retrieval.context import build_context
from retrieval.recall import recall
from tests.model.test_generate_video_file import tiny_checkpoint


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    mp = pytest.MonkeyPatch()
    mp.setenv("DANMAKU_DATA", str(root / "data"))
    corpus = ensure_demo(root / "corpus", DemoConfig(films=4))
    run = RunSettings(corpus=str(corpus), embedder="hashing:32", device="cpu", progress=False)
    store = open_bootstrapped_store(run)
    ctx = build_context(run, store)
    vocab = Vocab.build(list(c.text) for v in read_corpus("demo", corpus) for c in v.comments)
    yield Generator.load(tiny_checkpoint(root / "ckpt", corpus, vocab, 128), ctx, device="cpu")
    store.close()
    mp.undo()


def session(generator, video: str | None = "demo0000", **policy) -> LiveSession:
    title = None if video else "阿甘正传"
    return LiveSession.start("s", generator, Start(video, title, None, policy))


def say(s: LiveSession, t: float, text: str, arrival: float | None = None) -> list[dict]:
    """A viewer's comment at ``t``, the position moved there first unless that is back in
    time (a late comment); it arrives at ``arrival`` (default: ``t`` seconds)."""
    arrival = t if arrival is None else arrival
    if t > s.position or not s.positioned:
        s.receive(Position(t), arrival)
    return s.receive(ViewerComment(text, t), arrival)


def answer(s: LiveSession, *texts: str, score: float = -1.0) -> dict | None:
    """Run the waiting job with a generation of ``texts`` (best first) instead of the model."""
    job = s.next_job()
    if job is None:
        return None
    made = Generation(s.video.id, job.t, [GeneratedComment(x, score) for x in texts])
    emission = s.finish(job, made)
    return emission.message if emission is not None else None


def test_incremental_recall_equals_recall(generator):
    """What the session recalls at any second equals recall() over a video holding every
    comment it received, in arrival order (a few late ones among them), although it keeps
    only the named comments of the history."""
    ctx = generator.ctx
    video = ctx.corpus.videos["demo0001"]
    s = session(generator, "demo0001")
    sent: list[Comment] = []
    arrivals = list(video.comments[:400])
    arrivals[10], arrivals[30] = arrivals[30], arrivals[10]  # out of order
    checked = 0
    for i, c in enumerate(arrivals):
        say(s, c.time_s, c.text, arrival=i * 0.05)
        sent.append(Comment(c.time_s, c.text))
        if i % 37 == 0 or i == len(arrivals) - 1:
            t = int(s.position) + 1
            full = dataclasses.replace(video, comments=sorted(sent, key=lambda c: c.time_s))
            want = recall(
                ctx.store, ctx.linker, ctx.index, full, t, keywords=ctx.keyword_set("demo0001")
            )
            got = s.recall.recall(s.comments.snapshot(), t)
            assert got.as_dict() == want.as_dict()
            assert [f.text for f in got.facts] == [f.text for f in want.facts]
            checked += bool(want.facts)
    assert checked >= 3
    assert len(s.comments) < len(sent)  # the unnamed history was let go


def test_a_job_runs_the_model_and_emits_with_facts(generator):
    s = session(generator, no_repeat=False, min_gap_s=0)
    video = generator.ctx.corpus.videos["demo0000"]
    for c in video.comments[:30]:
        say(s, c.time_s, c.text)
    sent = np.full(128, 0.5, dtype=np.float32)
    s.receive(parse_message({"type": "frames", "t": 3, "features": sent.tolist()}), 0.0)
    job = s.next_job()
    assert job is not None and job.t == int(s.position) + 1
    # the frames sent win over the corpus's, which fill the other seconds
    assert np.array_equal(job.frames.get("demo0000", 3), sent)
    features = generator.ctx.corpus.features
    assert np.array_equal(job.frames.get("demo0000", 4), features.get("demo0000", 4))
    generation = s.run(job)
    message = s.finish(job, generation).message
    assert message["type"] == "comment" and message["seq"] == 1 and message["t"] == job.t
    assert message["trigger"] == "comment" and isinstance(message["score"], float)
    assert message["text"] == generation.comments[0].text
    for fact in message["facts"]:
        assert set(fact) == {"head", "relation", "tail", "mass"}
    assert s.stats()["generated"] == 1 and s.stats()["emitted"] == 1


def test_an_ad_hoc_video_by_title_with_its_own_frames(generator):
    s = session(generator, None, no_repeat=False)
    hello = s.hello()
    assert hello["video"] == hello["title"] == "阿甘正传" and hello["duration_s"] is None
    assert hello["frame_dim"] == 128
    frame = np.arange(128, dtype=np.float32) / 128
    s.receive(parse_message({"type": "frames", "t": 9, "features": frame.tolist()}), 0.0)
    say(s, 9.2, "阿甘跑起来了")
    job = s.next_job()
    assert np.array_equal(job.frames.get("阿甘正传", 9), frame)
    assert job.frames.get("阿甘正传", 8) is None  # not sent: masked as missing
    assert s.run(job).comments
    # no end given: a position far on is fine, and the duration grows with it
    s.receive(Position(9000), 1.0)
    assert s.next_job() is None and s._duration() >= 9001


def test_gap_and_rate_are_in_video_seconds(generator):
    s = session(generator, min_gap_s=4, max_per_minute=2, no_repeat=False)
    emitted = []
    for second in range(0, 150):
        say(s, second, f"第{second}秒")
        message = answer(s, f"bot {second}")
        if message is not None:
            emitted.append(message["t"])
    assert all(b - a >= 4 for a, b in zip(emitted, emitted[1:], strict=False))
    assert all(sum(1 for x in emitted if t - 60 < x <= t) <= 2 for t in emitted)
    assert len(emitted) >= 5
    dropped = s.stats()["dropped"]
    assert dropped["gap"] > 0 and dropped["rate"] > 0


def test_a_held_back_trigger_fires_at_a_later_position(generator):
    s = session(generator, min_gap_s=10, no_repeat=False)
    say(s, 1, "开始")
    assert answer(s, "first")["t"] == 2
    say(s, 3, "又来")  # within the gap: held back, pending
    assert s.next_job() is None and s.stats()["dropped"] == {"gap": 1}
    s.receive(Position(8), 5.0)  # t 9: still too close
    assert s.next_job() is None
    s.receive(Position(11.5), 6.0)  # t 12: 10 s after 2
    message = answer(s, "second")
    assert message["t"] == 12 and message["trigger"] == "position"
    s.receive(Position(20), 7.0)  # nothing pending now
    assert s.next_job() is None


def test_min_score_and_no_repeat(generator):
    s = session(generator, min_gap_s=0, min_score=-2.0)
    say(s, 5, "哈哈哈哈")
    assert answer(s, "低分", score=-3.0) is None
    say(s, 6, "再来")
    # the best is a viewer's comment (punctuation and case aside): the next one goes out
    assert answer(s, "哈哈哈哈！！", "新的") == {**answer_shape(), "text": "新的", "t": 7}
    say(s, 7, "还有")
    assert answer(s, "新的", "哈哈 哈哈") is None  # its own, and a viewer's
    dropped = s.stats()["dropped"]
    assert dropped["score"] == 1 and dropped["repeat"] == 1
    s.receive(parse_message({"type": "policy", "no_repeat": False, "min_score": None}), 1.0)
    say(s, 8, "又一条")
    assert answer(s, "新的", score=-9.0)["text"] == "新的"
    assert normalised("Ha Ha！") == normalised("haha") == "haha"


def answer_shape() -> dict:
    return {
        "type": "comment",
        "seq": 1,
        "score": -1.0,
        "copied": None,
        "facts": [],
        "trigger": "comment",
    }


def test_positions_jitter_seeks_and_the_quiet_period(generator):
    s = session(generator, min_gap_s=0, quiet_after_seek_s=3, no_repeat=False)
    for second in range(0, 60):
        say(s, second + 0.5, f"c{second}")
    assert answer(s, "before")["t"] == 60
    s.receive(Position(59.2), 1.0)  # a little back: jitter
    assert s.position == 59.5 and s.seeks == 0
    say(s, 59.6, "x")
    job_before_seek = s.next_job()
    assert job_before_seek is not None
    s.receive(Position(20), 2.0)  # back: a seek
    assert s.seeks == 1 and s.position == 20
    assert max(c.time_s for c in s.comments.between(0, 1e9)) < 20
    assert s.stats()["dropped"]["seek"] == 41  # 20.5 .. 59.5, and 59.6
    assert s.finish(job_before_seek, Generation("demo0000", 60, [])) is None
    assert s.stats()["dropped"]["stale"] == 1
    say(s, 21, "after")  # quiet until 23
    assert s.next_job() is None and s.stats()["dropped"]["quiet"] == 1
    s.receive(Position(23.5), 3.0)
    assert answer(s, "back")["trigger"] == "position"
    held = len(s.comments)
    s.receive(Position(40), 4.0)  # a jump forward: a seek, the comments stay
    assert s.seeks == 2 and len(s.comments) == held


def test_floods_are_counted_and_noticed_once_a_second(generator):
    s = session(generator)
    replies = [s.receive(ViewerComment(f"刷屏{i}", None), 10.0) for i in range(COMMENT_BURST + 50)]
    notices = [r for rs in replies for r in rs]
    assert [n["code"] for n in notices] == ["flood"]
    stats = s.stats()
    assert stats["received"] == COMMENT_BURST + 50 and stats["dropped"]["flood"] == 50
    assert stats["window_comments"] == COMMENT_BURST
    # a second later the bucket has refilled
    assert s.receive(ViewerComment("又来了", None), 11.0) == []
    assert s.stats()["window_comments"] == COMMENT_BURST + 1


def test_memory_is_bounded(generator):
    s = session(generator)
    for i in range(MAX_COMMENTS + 300):
        s.receive(ViewerComment(f"没有名字的弹幕{i}", 100.0), i * 1.0)  # refilled each time
    assert len(s.comments) == MAX_COMMENTS
    assert s.stats()["dropped"]["window"] == 300
    # unnamed comments more than a minute (and the window) behind the position are let go
    for t in range(105, 175, 10):
        s.receive(Position(t), 1e5)
    assert len(s.comments) == MAX_COMMENTS
    s.receive(Position(175), 1e5)
    assert len(s.comments) == 0


@pytest.mark.parametrize(
    ("message", "code", "words"),
    [
        ([], "bad_message", "JSON object"),
        ({"type": "jump"}, "bad_message", "unknown message type"),
        ({"type": "position"}, "bad_message", "needs 't'"),
        ({"type": "position", "t": True}, "bad_message", "number"),
        ({"type": "position", "t": "3"}, "bad_message", "number"),
        ({"type": "position", "t": -1}, "bad_message", "0.."),
        ({"type": "position", "t": 3, "postion": 4}, "bad_message", "unknown field 'postion'"),
        ({"type": "comment", "text": "  "}, "bad_message", "non-empty"),
        ({"type": "comment", "text": "x" * 501}, "bad_message", "500"),
        ({"type": "start"}, "bad_message", "'video' (id) or a 'title'"),
        ({"type": "start", "video": "a", "title": "b"}, "bad_message", "or a 'title'"),
        ({"type": "start", "video": "a", "duration_s": 3}, "bad_message", "ad-hoc"),
        ({"type": "start", "title": "b", "policy": {"beam": 11}}, "bad_policy", "1..10"),
        ({"type": "policy", "beam": 2.5}, "bad_policy", "whole number"),
        ({"type": "policy", "gap": 2}, "bad_policy", "unknown field 'gap'"),
        ({"type": "policy", "no_repeat": 1}, "bad_policy", "true or false"),
        ({"type": "policy", "min_gap_s": -1}, "bad_policy", "0..3600"),
        ({"type": "frames", "t": 1, "features": [1, "a"]}, "bad_frames", "features[1]"),
    ],
)
def test_bad_messages_say_what_is_wrong(message, code, words):
    with pytest.raises(LiveError) as e:
        parsed = parse_message(message)
        Policy().updated(parsed.policy if isinstance(parsed, Start) else parsed.knobs)
    assert e.value.code == code and words in e.value.detail


def test_a_policy_message_takes_every_knob():
    assert tuple(Policy().as_dict()) == POLICY_KNOBS


def test_bad_session_input_changes_nothing(generator):
    with pytest.raises(LiveError) as e:
        LiveSession.start("s", generator, Start("nope", None, None, {}))
    assert e.value.code == "unknown_video" and "'nope'" in e.value.detail
    s = session(generator)
    end = s.video.duration_s
    with pytest.raises(LiveError, match="past the video's end"):
        s.receive(Position(end + 1), 0.0)
    with pytest.raises(LiveError) as e:
        s.receive(parse_message({"type": "frames", "t": 3, "features": [0.5] * 5}), 0.0)
    assert e.value.code == "bad_frames" and "128" in e.value.detail
    with pytest.raises(LiveError):
        s.receive(parse_message({"type": "policy", "beam": 3, "min_gap_s": "x"}), 0.0)
    assert s.policy == Policy() and s.position == 0 and not s.sent_frames
