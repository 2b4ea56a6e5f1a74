"""Sample building: windows, masking, ground truths, periods; and the vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from model.data.samples import build_samples, period_bucket, sample_at, video_samples
from model.data.schema import Comment, DataError, Segment, Video
from model.data.vocab import SPECIALS, UNK, Tokenizer, Vocab


class Sparse:
    """Features for even seconds only."""

    dim = 4

    def get(self, video_id, second):
        return np.full(4, second, dtype=np.float32) if second % 2 == 0 else None


def test_window_context_truths_and_masking():
    comments = [
        Comment(float(s), f"c{s}-{i}") for s in (0, 3, 6, 7) for i in range(7 if s == 6 else 1)
    ]
    video = Video("v", "t", 12.0, comments)
    samples = {s.t: s for s in video_samples(video, Sparse())}
    assert sorted(samples) == [0, 3, 6, 7]
    s = samples[6]
    assert s.targets == [f"c6-{i}" for i in range(5)], "the first five comments of t"
    assert set(s.context) == {1, 2, 3, 4, 5, 7, 8, 9, 10, 11}
    assert s.context[3] == ["c3-0"] and s.context[7] == ["c7-0"] and s.context[1] == []
    assert s.frames.shape == (11, 4) and s.frame_mask.tolist() == [
        s_ % 2 == 0 for s_ in range(1, 12)
    ]
    assert np.all(s.frames[~s.frame_mask] == 0) and s.frames[1, 0] == 2
    first = samples[0]
    assert first.frame_mask[:5].sum() == 0, "seconds before the start are padded and masked"
    assert min(first.context) == 1
    assert max(samples[7].context) == 11, "no seconds past the end of the video"


def window_video(likes: bool = True) -> Video:
    """Comments with likes (some without a count) around t = 10, and segments at the window's
    edges: the window of t = 10 is the seconds 5..15, the span [5, 16)."""

    def c(t, text, n):
        return Comment(t, text, n if likes else None)

    comments = [c(4.0, "before", 9), c(7.0, "a", 3), c(7.5, "b", None), c(12.9, "c", 0)]
    comments += [c(10.0, f"t{i}", 10 + i) for i in range(6)] + [c(15.2, "last", 8)]
    comments.insert(5, c(10.0, "t-none", None))  # the second ground truth: no count
    subtitles = [
        Segment(10.0, 12.0, "s-b"),  # given before s-a: time order puts s-a (ends first) first
        Segment(1.0, 5.0, "ends-at-5"),  # touches the window's start only: out
        Segment(2.0, 5.5, "overlaps-5"),
        Segment(16.0, 17.0, "starts-at-16"),  # out: second 16 is past the window
        Segment(15.9, 18.0, "starts-in-15"),
        Segment(10.0, 11.0, "s-a"),
        Segment(8.0, 8.0, "zero-length"),
        Segment(0.0, 100.0, "whole-film"),  # long: found however far back it starts
        Segment(30.0, 31.0, "far"),
    ]
    transcript = [Segment(0.0, 6.0, "tr0"), Segment(6.0, 12.0, "tr1"), Segment(16.0, 30.0, "x")]
    return Video("v", "t", 40.0, comments, subtitles, transcript)


def test_window_subtitles_transcript_and_likes():
    video = window_video()
    s = sample_at(video, None, 10)
    assert s.subtitles == [
        "whole-film",
        "overlaps-5",
        "zero-length",
        "s-a",
        "s-b",
        "starts-in-15",
    ]
    assert s.transcript == ["tr0", "tr1"]
    assert s.targets == ["t0", "t-none", "t1", "t2", "t3"]
    assert s.target_likes == [10, 0, 11, 12, 13], "aligned with the targets; no count reads 0"
    assert s.context[7] == ["a", "b"] and s.context_likes[7] == [3, 0]
    assert s.context[12] == ["c"] and s.context_likes[12] == [0]
    assert s.context_likes[15] == [8] and 4 not in s.context_likes
    assert all(len(s.context_likes[k]) == len(v) for k, v in s.context.items())
    assert s.has_likes
    same = next(x for x in video_samples(video, None) if x.t == 10)
    assert (same.subtitles, same.transcript, same.context_likes, same.target_likes) == (
        s.subtitles,
        s.transcript,
        s.context_likes,
        s.target_likes,
    )
    edge = sample_at(video, None, 10, radius=0)  # the span [10, 11)
    assert edge.subtitles == ["whole-film", "s-a", "s-b"] and edge.transcript == ["tr1"]


def test_a_corpus_without_likes_is_told_apart_from_comments_nobody_liked():
    without = sample_at(window_video(likes=False), None, 10)
    assert not without.has_likes
    assert without.target_likes == [0] * 5 and without.context_likes[7] == [0, 0]
    unliked = Video("u", "t", 20.0, [Comment(3.0, "x", 0), Comment(5.0, "y", 0)])
    assert sample_at(unliked, None, 5).has_likes, "counts of 0 are counts"
    assert sample_at(unliked, None, 5).target_likes == [0]


def test_period_buckets_follow_klvcg():
    assert [period_bucket(t, 100) for t in (0, 20, 21, 40, 60, 80, 81, 100)] == [
        0,
        0,
        1,
        1,
        2,
        3,
        4,
        4,
    ]


def test_demo_samples(demo):
    test = list(build_samples(demo, "test"))
    assert test and all(s.video_id in {v.id for v in demo.split("test")} for s in test)
    assert any(s.knowledge_target for s in test)
    assert all(1 <= len(s.targets) <= 5 and 0 <= s.period < 5 for s in test)
    assert all(s.frame_mask.sum() >= 6 for s in test)
    # the demo has subtitles, transcripts and heavy-tailed likes
    assert all(s.has_likes and len(s.target_likes) == len(s.targets) for s in test)
    assert sum(map(sum, (s.target_likes for s in test))) > 0
    assert sum(bool(s.subtitles) for s in test) > 0.9 * len(test)
    assert all(s.transcript for s in test)


def test_vocab_livebot_format_round_trip(tmp_path):
    tok = Tokenizer(["恋恋笔记本"])
    assert "恋恋笔记本" in tok("我爱恋恋笔记本这部电影")
    vocab = Vocab.build([tok("今天 好看"), tok("好看 好看 电影")], size=2)
    assert vocab.words[:5] == list(SPECIALS) and vocab.words[5] == "好看" and len(vocab) == 7
    assert vocab.encode(["好看", "没见过"]) == [5, UNK]
    assert vocab.decode([1, 5, 2, 6]) == ["好看"]
    path = tmp_path / "dicts-30000.json"
    vocab.save(path)
    again = Vocab.load(path)
    assert again.words == vocab.words and again.fingerprint == vocab.fingerprint
    path.write_text('{"word2id": {"<PAD>": 0, "x": 0}}', encoding="utf-8")
    with pytest.raises(DataError, match="repeated id"):
        Vocab.load(path)
    with pytest.raises(DataError, match="no such vocabulary"):
        Vocab.load(tmp_path / "missing.json")
