"""The engagement metrics (model/engagement.py) on hand-made comments, each expected value
derived here; and the report's engagement block and line (model/evaluation_report.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from model.engagement import (
    METRICS,
    LikedComment,
    engagement_metrics,
    mean_cosine,
    reference_sets,
    relative_wins,
    segment_comments,
    unigram_recall,
)
from model.evaluation_report import EngagementReport, format_engagement, format_table
from model.metrics import bleu
from tests.model.test_evaluation_report import report


def test_the_segment_leaves_out_the_window_the_far_and_the_empty():
    comments = [
        (95.0, ["far"], 9, "far"),  # 25 s before t = 120: kept
        (89.5, ["too", "far"], 9, "too far"),  # second 89: 31 s away
        (114.9, ["edge"], 1, "edge"),  # second 114: 6 s away, just outside the window
        (115.0, ["window"], 50, "window"),  # second 115: inside [115, 125]
        (120.0, ["truth"], 50, "truth"),  # second t: a ground truth
        (126.0, [], 3, ""),  # no words
        (150.0, ["last"], 2, "last"),  # 30 s after: kept
        (151.0, ["after"], 2, "after"),  # 31 s: not
    ]
    got = segment_comments(comments, t=120, radius=5, segment=30)
    assert [c.words for c in got] == [("far",), ("edge",), ("last",)]
    assert got[1].distance == pytest.approx(5.1) and got[0].likes == 9


def test_reference_sets_split_by_likes_without_overlap():
    comments = [LikedComment((f"w{i}",), likes, distance=i) for i, likes in enumerate(
        [0, 5, 0, 30, 1, 5, 0]
    )]  # fmt: skip
    high, low = reference_sets(comments, size=10)
    # 7 comments: ceil(7/2) = 4 high (30, 5 nearer, 5, 1), the other 3 low
    assert [c.words[0] for c in high] == ["w3", "w1", "w5", "w4"]
    assert [c.words[0] for c in low] == ["w0", "w2", "w6"]
    high, low = reference_sets(comments, size=2)
    assert [c.words[0] for c in high] == ["w3", "w1"] and [c.words[0] for c in low] == ["w2", "w6"]
    same = [LikedComment(("a",), 3), LikedComment(("b",), 3)]
    assert reference_sets(same) == ([], []) and reference_sets(comments[:1]) == ([], [])


def test_unigram_recall_takes_the_best_reference_with_clipped_counts():
    hyp = ["a", "b", "b", "c"]
    # reference 1: a a x -> min(2,1) for a = 1 of 3; reference 2: b b b c -> 2 + 1 of 4
    assert unigram_recall(hyp, [["a", "a", "x"], ["b", "b", "b", "c"]]) == pytest.approx(0.75)
    assert unigram_recall(hyp, []) == 0.0 and unigram_recall([], [["a"]]) == 0.0


def test_mean_cosine():
    v = np.array([1.0, 0.0])
    refs = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [1.0, 1.0]])
    # cosines 1, 0, -1, 1/sqrt(2)
    assert mean_cosine(v, refs) == pytest.approx((1 + 0 - 1 + 1 / math.sqrt(2)) / 4)
    assert mean_cosine(v, np.zeros((1, 2))) == 0.0


def test_the_metrics_of_a_comment_that_copies_a_high_reference():
    hyp = ["the", "fish", "is", "coming", "now"]
    high = [hyp, ["what", "a", "scene"]]
    low = [["haha"], ["so", "boring", "is", "it"]]
    m = engagement_metrics([hyp], [high], [low], [0.8])
    assert m["samples"] == 1 and list(m)[1:] == list(METRICS)
    assert m["bleu_high"] == 1.0  # an exact reference: every n-gram matches, no brevity penalty
    assert m["recall_high"] == 1.0 and m["semantic_high"] == 0.8
    # against the low set: 1 unigram match ("is") of 5; n = 2..4 add-one smoothed: 1/5, 1/4,
    # 1/3; the closest reference length is 4 < 5, so no brevity penalty
    expected_low = math.exp(
        (math.log(1 / 5) + math.log(1 / 5) + math.log(1 / 4) + math.log(1 / 3)) / 4
    )
    assert m["bleu_low"] == pytest.approx(round(expected_low, 4))
    assert m["relative"] == pytest.approx(round(1.0 / expected_low, 4), rel=1e-3)
    assert m["relative_wins"] == 1.0
    assert m["references_high"] == 2.0 and m["references_low"] == 2.0


def test_relative_engagement_without_a_low_match_and_ties():
    m = engagement_metrics([["x"]], [[["x", "y"]]], [[["z"]]], [0.1])
    assert m["bleu_low"] == 0.0 and m["relative"] is None
    # the first wins, the second ties (0 both), the third loses
    hyps = [["a"], ["q"], ["b"]]
    highs = [[["a"]], [["x"]], [["x"]]]
    lows = [[["x"]], [["y"]], [["b"]]]
    assert bleu(["a"], [["a"]]) > 0
    assert relative_wins(hyps, highs, lows) == pytest.approx((1 + 0.5 + 0) / 3)
    assert engagement_metrics([], [], [], []) == {"samples": 0, **dict.fromkeys(METRICS)}


def test_the_report_carries_the_engagement_block_and_line():
    metrics = engagement_metrics([["a"]], [[["a"]]], [[["b"]]], [0.5])
    block = EngagementReport(liked_samples=7, **metrics, embedder="hashing:256")
    base = report()
    with_block = type(base)(**{**base.__dict__, "engagement": block})
    d = with_block.as_dict()
    assert list(d)[-2:] == ["generation", "engagement"]
    assert d["engagement"]["liked_samples"] == 7 and d["engagement"]["samples"] == 1
    assert list(d["engagement"]) == ["liked_samples", "samples", *METRICS, "embedder"]
    json.dumps(d)
    line = format_table(with_block).splitlines()[-1]
    assert line.startswith("engagement (1 samples with likes): B_r ")
    assert "relative n/a" in line  # no low match
    assert "engagement" not in report().as_dict()
    empty = EngagementReport(liked_samples=3, **engagement_metrics([], [], [], []), embedder="e")
    assert "no sample with both reference sets" in format_engagement(empty)


def test_the_evaluation_measures_the_liked_samples_with_the_generated_comments():
    """:meth:`model.evaluation.SplitEvaluation.engagement` on a two-sample split: the comments
    already generated are reused (no model is called), the sample without likes is skipped."""
    from types import SimpleNamespace

    from model.data.schema import Comment, Corpus, Video
    from model.evaluation import SplitEvaluation

    comments = [
        Comment(100.0, "great scene", likes=40),  # 20 s before t = 120: a high reference
        Comment(118.0, "inside window", likes=99),  # the window: never a reference
        Comment(140.0, "boring", likes=0),  # a low reference
    ]
    video = Video("v", "v", 300.0, comments=comments, split="test")
    encoded = SimpleNamespace(
        has_likes=np.array([True, False]), video=["v", "v"], t=np.array([120, 200])
    )
    data = SimpleNamespace(
        ctx=SimpleNamespace(corpus=Corpus("demo", "", {"v": video}), index=None),
        text_encoder=SimpleNamespace(tokenizer=str.split),
        encoding_key={"embedder": "hashing:64"},
    )
    model = SimpleNamespace(cfg=SimpleNamespace(radius=5))
    run = SplitEvaluation(model, data, encoded, "test", None, True, False)
    got = run.engagement({0: ["great", "scene"], 1: ["unused"]})
    assert got.liked_samples == 1 and got.samples == 1 and got.embedder == "hashing:64"
    assert got.bleu_high == 1.0 and got.recall_high == 1.0 and got.bleu_low == 0.0
    assert got.semantic_high == pytest.approx(1.0)  # the same text embeds the same
    assert got.relative is None and got.relative_wins == 1.0
    assert got.references_high == 1.0 and got.references_low == 1.0
    no_likes = SimpleNamespace(has_likes=np.array([False, False]), video=["v", "v"], t=encoded.t)
    assert SplitEvaluation(model, data, no_likes, "test", None, True, False).engagement({}) is None
