"""Sample building: windows, masking, ground truths, periods; and the vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from model.data.samples import build_samples, period_bucket, video_samples
from model.data.schema import Comment, DataError, Video
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
