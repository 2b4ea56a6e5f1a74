"""Videos split by time (``Video.split_ranges``): a Twitch VOD with clips in the train and test
files is one video, and whatever works on a split reads only that split's clips: samples with
their windows and frames, the vocabulary and candidate pool, the comment index, value-swap
texts (relation cues: tests/retrieval/test_relation_cues.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from model.data.candidates import CandidateSpec
from model.data.movielc import write_movielc
from model.data.prepare import corpus_fingerprint, prepare
from model.data.samples import build_samples
from model.data.schema import Comment, Corpus, DataError, SplitRange, Video, merge_ranges
from model.data.twitch import read_twitch
from retrieval.comment_index import entries_from_corpus
from tests.model.format_data import twitch_record

TRAIN_TEXTS = {"a1", "a2", "ar", "b1", "b2", "br"}
TEST_TEXTS = {"t1", "t2", "tr"}


def clip(start: int, offset: int, name: str, **extra) -> dict:
    chat = [f"{name}1", f"{name}2"]
    return twitch_record("7", start, offset, chat_context=chat, responses=[f"{name}r"], **extra)


def vod_dir(root: Path, test_start: int = 160) -> Path:
    """VOD 7: training clips at 100 and 130, a test clip at ``test_start``, a dev clip at 400;
    each clip's features hold its start second, so a frame tells which clip it came from."""
    (root / "features" / "509658").mkdir(parents=True)
    files = {
        "train.json": [clip(100, 0, "a"), clip(100, 30, "b")],
        "test.json": [clip(test_start, 0, "t", candidates=["tr", "x", "y"])],
        "val.json": [clip(400, 0, "d")],
    }
    for name, records in files.items():
        (root / name).write_text(json.dumps(records))
        for r in records:
            path = root / "features" / "509658" / f"7_{r['start']}_{r['offset_start']}.npy"
            np.save(path, np.full((30, 4), r["start"] + r["offset_start"], dtype=np.float32))
    return root


def texts(videos: list[Video]) -> set[str]:
    return {c.text for v in videos for c in v.comments}


def test_a_vod_with_clips_in_two_split_files_is_one_video(tmp_path):
    corpus = read_twitch(vod_dir(tmp_path / "tw"))
    assert list(corpus.videos) == ["7"]
    vod = corpus.videos["7"]
    assert vod.split is None and vod.splits == ("train", "dev", "test")
    assert vod.split_ranges == [
        SplitRange(100.0, 160.0, "train"),
        SplitRange(160.0, 190.0, "test"),
        SplitRange(400.0, 430.0, "dev"),
    ]
    assert [vod.split_at(t) for t in (99.5, 100, 159.9, 160, 189.9, 190, 401)] == [
        None,
        "train",
        "train",
        "test",
        "test",
        None,
        "dev",
    ]
    assert texts([vod]) == TRAIN_TEXTS | TEST_TEXTS | {"d1", "d2", "dr"}
    assert [c.text for c in corpus.candidates[("7", 180)]] == ["tr", "x", "y"]


def test_each_split_reads_its_part_of_the_video(tmp_path):
    corpus = read_twitch(vod_dir(tmp_path / "tw"))
    train, test = corpus.split("train"), corpus.split("test")
    assert [v.id for v in train] == [v.id for v in test] == ["7"]
    assert texts(train) == TRAIN_TEXTS and texts(test) == TEST_TEXTS
    part = test[0]
    assert (part.split, part.duration_s, part.split_ranges) == (
        "test",
        430.0,
        [SplitRange(160.0, 190.0, "test")],
    )
    assert [(s.start_s, s.text) for s in part.transcript] == [(160.0, "let's go")]
    assert corpus.split("holdout") == []


def test_samples_of_a_split_see_only_its_clips_comments_and_frames(tmp_path):
    corpus = read_twitch(vod_dir(tmp_path / "tw"))
    train = {s.t: s for s in build_samples(corpus, "train")}
    test = {s.t: s for s in build_samples(corpus, "test")}
    assert sorted(train) == [100, 110, 120, 130, 140, 150]
    assert sorted(test) == [160, 170, 180]
    for samples, own in ((train, TRAIN_TEXTS), (test, TEST_TEXTS)):
        seen = {x for s in samples.values() for x in [*s.targets, *sum(s.context.values(), [])]}
        assert seen <= own
    # clips are 30 s apart and a window reaches 5 s: their comments never meet, but frames
    # of the neighbouring clip would; a split's window masks those of another split
    last_train, first_test = train[150], test[160]  # windows 145..155 and 155..165
    assert first_test.frame_mask.tolist() == [False] * 5 + [True] * 6
    assert set(first_test.frames[5:, 0].tolist()) == {160.0}
    assert last_train.frame_mask.all()  # 145..155: all of the training clip at 130
    everything = {s.t: s for s in build_samples(corpus)}  # no split: the whole video
    assert everything[160].frame_mask.all() and everything[160].frames[0, 0] == 130.0


def test_vocabulary_candidates_and_comment_index_draw_on_training_clips_only(tmp_path):
    corpus = read_twitch(vod_dir(tmp_path / "tw"))
    spec = CandidateSpec(size=4, max_truths=1, n_popular=1, n_plausible=1)
    prepared = prepare(
        corpus,
        tmp_path / "prepared",
        spec=spec,
        splits=("test",),
        tokenizer=str.split,
        tokenizer_key="whitespace",
        progress=False,
    )
    assert set(prepared.vocab.words[5:]) == TRAIN_TEXTS
    sets = prepared.candidates["test"]
    assert [(s.video, s.t) for s in sets] == [("7", 160), ("7", 170), ("7", 180)]
    for s in sets:
        truths = {c.text for c in s.candidates if c.label == 1}
        assert truths <= TEST_TEXTS and {c.text for c in s.candidates} - truths <= TRAIN_TEXTS
    assert {text for text, _, _ in entries_from_corpus(corpus, "train")} == TRAIN_TEXTS
    assert {text for text, _, _ in entries_from_corpus(corpus, "test")} == TEST_TEXTS


def test_the_fingerprint_follows_the_ranges(tmp_path):
    corpus = read_twitch(vod_dir(tmp_path / "tw"))
    before = corpus_fingerprint(corpus)
    vod = corpus.videos["7"]
    vod.split_ranges = [*vod.split_ranges[:2], SplitRange(400.0, 430.0, "test")]
    assert corpus_fingerprint(corpus) != before


def test_overlapping_clips_of_two_splits_are_kept_apart(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="model.data.twitch"):
        corpus = read_twitch(vod_dir(tmp_path / "tw", test_start=145))
    assert sorted(corpus.videos) == ["7", "7@dev", "7@test"]
    assert [v.split for v in corpus] == ["train", "dev", "test"]  # in the order files are read
    assert all(not v.split_ranges for v in corpus)
    assert texts([corpus.videos["7@test"]]) == TEST_TEXTS
    assert ("7@test", 165) in corpus.candidates
    assert "VOD 7 has clips of the splits train, dev, test that overlap in time" in caplog.text


def test_merge_ranges_and_parts_of_videos_split_as_a_whole():
    merged = merge_ranges(
        [SplitRange(30, 60, "train"), SplitRange(0, 30, "train"), SplitRange(60, 90, "test")]
    )
    assert merged == [SplitRange(0, 60, "train"), SplitRange(60, 90, "test")]
    with pytest.raises(ValueError, match="overlaps"):
        merge_ranges([SplitRange(0, 30, "train"), SplitRange(20, 50, "test")])
    whole = Video("m", "", 10.0, [Comment(1.0, "x")], split="train")
    assert whole.part("train") is whole and whole.part("test") is None
    assert whole.splits == ("train",) and whole.split_at(5) == "train"
    assert Video("n", "", 1.0).splits == () and Video("n", "", 1.0).part("train") is None


def test_the_movielc_layout_refuses_a_video_split_by_time(tmp_path):
    corpus = read_twitch(vod_dir(tmp_path / "tw"))
    with pytest.raises(DataError, match="'7' is split by time"):
        write_movielc(Corpus("movielc", "", corpus.videos), tmp_path / "mlc")
