"""Readers of the released corpus formats (model.data.{livebot,videoic,twitch,iqiyi,readers}):
each test writes a tiny dataset in the released layout, reads it back into the canonical model,
and checks that bad records are reported by file, line or record, and field."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from model.data.fileio import iter_json_array
from model.data.livebot import new_split, read_livebot
from model.data.movielc import write_movielc
from model.data.readers import FORMATS, read_corpus
from model.data.schema import Comment, Corpus, DataError, Video
from model.data.twitch import read_twitch
from model.data.videoic import read_videoic
from tests.model.format_data import (
    DEV_CID,
    TEST_CID,
    TRAIN_CID,
    iqiyi_dir,
    livebot_dir,
    twitch_dir,
    twitch_record,
    videoic_dir,
    write_lines,
)


def test_livebot_rebuilds_timelines_candidates_splits_and_features(tmp_path):
    corpus = read_livebot(livebot_dir(tmp_path / "lb"))
    assert corpus.format == "livebot"
    assert set(corpus.videos) == {TRAIN_CID, DEV_CID, TEST_CID, "999"}
    train = corpus.videos[TRAIN_CID]
    assert [(c.second, c.text) for c in train.comments] == [
        (3, "哈哈哈"),
        (3, "哈哈哈"),  # two records at the same second: two viewers
        (4, "前方高能"),
        (10, "好看"),
    ]  # contexts of training records are neighbouring records: not added again
    assert train.duration_s == 11 and train.title == ""
    test = corpus.videos[TEST_CID]
    # exact comments once (test-context.json repeats t=20); the context "后面的" is the exact
    # comment at 21; "前面的" has no exact copy nearby and goes to t-1
    assert [(c.second, c.text) for c in test.comments] == [
        (19, "前面的"),
        (20, "太好笑了"),
        (20, "太好笑了"),
        (20, "笑死"),
        (21, "后面的"),
    ]
    assert {v.id: v.split for v in corpus} == {
        TRAIN_CID: "train",
        DEV_CID: "dev",
        TEST_CID: "test",
        "999": None,  # not in the de-duplicated split
    }
    cands = {c.text: c.label for c in corpus.candidates[(TEST_CID, 20)]}
    assert cands == {"笑死": 1, "太好笑了": 1, "前方高能": 2, "好看": 3, "随机": 4}
    gold = {c.text for c in corpus.candidates[(TEST_CID, 20)] if c.label == 1}
    assert gold == {"笑死", "太好笑了"}
    # the public add_candidate.py labels everything 1: truths are then the record's comments
    dev = {c.text: c.label for c in corpus.candidates[(DEV_CID, 7)]}
    assert dev == {"开始了": 1, "哈哈哈": 0, "好看": 0}
    feats = corpus.features
    assert feats.dim == 512
    np.testing.assert_array_equal(feats.get(TRAIN_CID, 0), np.arange(512, dtype=np.float32))
    assert feats.get(TRAIN_CID, 3).dtype == np.float32 and feats.get(TRAIN_CID, 3)[0] == 1
    assert feats.get(TRAIN_CID, 1) is None  # missing second
    assert feats.get("nope", 0) is None and feats.get(TRAIN_CID, -1) is None


def test_livebot_crawl_order_ids_read_with_the_original_split_and_a_warning(tmp_path, caplog):
    root = livebot_dir(tmp_path / "lb", ids=("0", "1", "2"))
    original = {"0": "train", "1": "dev", "2": "test", "999": "train"}
    with caplog.at_level(logging.WARNING, logger="model.data.livebot"):
        corpus = read_livebot(root)  # split="auto"
    assert {v.id: v.split for v in corpus} == original
    leak = [r.getMessage() for r in caplog.records if "crawl-order" in r.getMessage()]
    assert len(leak) == 1
    assert "lancopku/livebot issue #2" in leak[0] and "train and in test" in leak[0]
    assert "re-key 'video' by Bilibili chat id" in leak[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="model.data.livebot"):
        chosen = read_corpus("livebot", root, split="original")
    assert {v.id: v.split for v in chosen} == original
    assert not [r for r in caplog.records if "crawl-order" in r.getMessage()]
    with pytest.raises(DataError, match="split='original'"):  # "new" insists
        read_livebot(root, split="new")
    with pytest.raises(DataError, match="expected one of auto, new, original"):
        read_livebot(root, split="dedup")


def test_livebot_chat_ids_get_the_deduplicated_split_by_default(tmp_path, caplog):
    root = livebot_dir(tmp_path / "lb")
    with caplog.at_level(logging.WARNING, logger="model.data.livebot"):
        corpus = read_livebot(root)
    assert corpus.videos[TRAIN_CID].split == "train" and corpus.videos["999"].split is None
    assert not [r for r in caplog.records if "crawl-order" in r.getMessage()]
    assert {v.id: v.split for v in read_livebot(root, split="new")} == {
        v.id: v.split for v in corpus
    }
    # the files' split differs: the chat id of the training video sits in a test file there
    write_lines(root / "test.json", [{"video": int(TRAIN_CID), "time": 1, "comment": "好"}])
    assert read_livebot(root).videos[TRAIN_CID].split == "train"
    with pytest.raises(DataError, match=f"video {TRAIN_CID} is also in the train split"):
        read_livebot(root, split="original")


def test_livebot_a_video_in_two_files_cannot_take_the_files_split(tmp_path):
    root = livebot_dir(tmp_path / "lb", ids=("0", "1", "2"))
    write_lines(root / "test.json", [{"video": 0, "time": 1, "comment": "好"}])
    with pytest.raises(DataError, match=r"test\.json:1: field 'video': video 0 is also in"):
        read_livebot(root)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            {"video": 1, "time": "abc", "comment": "a"},
            "field 'time': expected a number, got \"abc\"",
        ),
        ({"video": 1, "time": 3}, "field 'comment': missing"),
        ({"video": True, "time": 3, "comment": "a"}, "field 'video': expected an id"),
        ({"video": 1, "time": -2, "comment": "a"}, "field 'time': expected a number >= 0"),
        ({"video": 1, "time": 3, "comment": 5}, "field 'comment': expected a string or a list"),
        ({"video": 1, "time": 3, "comment": ["a"], "candidate": {"a": "1"}}, "field 'candidate["),
        (
            {"video": 1, "time": 3, "comment": ["a"], "candidate": {"b": 2}},
            "field 'candidate': no ground truth",
        ),
    ],
)
def test_livebot_bad_records_name_file_line_and_field(tmp_path, line, expected):
    root = tmp_path / "lb"
    root.mkdir()
    write_lines(root / "test-candidate.json", [{"video": 1, "time": 1, "comment": ["ok"]}, line])
    with pytest.raises(DataError) as e:
        read_livebot(root, split="original")
    assert f"test-candidate.json:2: {expected}" in str(e.value)


def test_livebot_bad_json_vocab_and_missing_paths(tmp_path):
    root = tmp_path / "lb"
    root.mkdir()
    (root / "train-context.json").write_text('{"video": 1, "time": 1, "comment": "a"}\n{oops\n')
    with pytest.raises(DataError, match=r"train-context\.json:2: invalid JSON"):
        read_livebot(root, split="original")
    write_lines(root / "train-context.json", [{"video": 1, "time": 1, "comment": "a"}])
    (root / "dicts-30000.json").write_text(json.dumps({"word2id": {"<PAD>": 1}}))
    with pytest.raises(DataError, match=r"dicts-30000\.json: field 'word2id.<PAD>': expected id 0"):
        read_livebot(root, split="original")
    with pytest.raises(DataError, match="no such directory"):
        read_livebot(tmp_path / "absent")
    with pytest.raises(DataError, match="no LiveBot files"):
        read_livebot(tmp_path)


def test_bundled_livebot_split_equals_the_videoic_files(research_data):
    shared = research_data / "videoic" / "livebot_new_split"
    bundled = Path(__file__).resolve().parents[2] / "model/data/splits/livebot_new_split"
    for name in ("train", "dev", "test"):
        assert (bundled / f"{name}.txt").read_bytes() == (shared / f"{name}.txt").read_bytes()
    table = new_split()
    sizes = {s: sum(1 for v in table.values() if v == s) for s in ("train", "dev", "test")}
    assert sizes == {"train": 1819, "dev": 98, "test": 95}  # disjoint: no id counted twice


def test_videoic_reads_info_comments_division_and_numpy1_features(tmp_path):
    corpus = read_corpus("videoic", videoic_dir(tmp_path / "vic"))
    v = corpus.videos["10582565"]
    assert (v.title, v.duration_s, v.category, v.split) == ("航班蛇患", 60.0, "电影", "train")
    assert [(c.time_s, c.text) for c in v.comments] == [
        (1.0, "开始"),
        (5.0, "好多蛇"),
        (5.0, "吓人"),
    ]
    assert corpus.videos["777"].split == "test" and corpus.videos["777"].comments == []
    feats = corpus.features
    assert feats.dim == 2048
    np.testing.assert_allclose(feats.get("10582565", 5)[-1], 2.0)  # keyed by cid: aid -> cid
    assert feats.get("777", 0).shape == (2048,) and feats.get("777", 1) is None
    assert feats.get("10582565", 2) is None


def test_videoic_bad_input(tmp_path):
    root = videoic_dir(tmp_path / "vic")
    (root / "comments" / "777.json").write_text('{"x": ["a"]}')
    with pytest.raises(DataError, match=r"777\.json: key \"x\": expected a second"):
        read_videoic(root)
    (root / "comments" / "777.json").write_text('{"3": "a"}')
    with pytest.raises(DataError, match=r"777\.json: field '3': expected a list of comment"):
        read_videoic(root)
    (root / "comments" / "777.json").unlink()
    with pytest.raises(DataError, match=r"comments/777\.json: missing"):
        read_videoic(root)
    (root / "comments" / "777.json").write_text("{}")
    info = json.loads((root / "info.json").read_text())
    info["777"]["duration"] = "long"
    (root / "info.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match="video 777: field 'duration': expected a number"):
        read_videoic(root)
    with pytest.raises(DataError, match=r"info\.json: missing"):
        read_videoic(tmp_path)


def test_twitch_clips_become_timelines_with_candidates_and_features(tmp_path):
    corpus = read_twitch(twitch_dir(tmp_path / "tw"))
    assert set(corpus.videos) == {"1817767920", "42"}
    vod = corpus.videos["1817767920"]
    assert (vod.split, vod.category, vod.duration_s) == (None, "509658", 430.0)
    first_clip = [(c.time_s, c.text) for c in vod.comments if c.time_s < 130]
    assert first_clip == [
        (100.0, "hello"),
        (105.0, "LUL"),
        (110.0, "gg"),
        (115.0, "nice"),
        (120.0, "what a play"),
        (120.0, "PogChamp"),
    ]
    assert [(s.start_s, s.end_s, s.text) for s in vod.transcript][:1] == [
        (100.0, 130.0, "let's go")
    ]
    # the same VOD in the test file is the same video, split by time: each clip its file's
    assert [(r.start_s, r.end_s, r.split) for r in vod.split_ranges] == [
        (100.0, 160.0, "train"),  # two touching training clips
        (400.0, 430.0, "test"),
    ]
    assert vod.splits == ("train", "test") and corpus.videos["42"].split == "test"
    cands = corpus.candidates[("42", 80)]
    assert len(cands) == 80 and cands[0].text == "what a play" and cands[0].label == 1
    assert [c.label for c in cands[1:21]] == [3] * 20 and {c.label for c in cands[21:41]} == {2}
    assert {c.label for c in cands[41:]} == {4}
    feats = corpus.features
    assert feats.dim == 2048
    np.testing.assert_array_equal(feats.get("1817767920", 131), np.arange(2048, 4096))
    assert feats.get("1817767920", 105) is None  # its clip's .npy is missing
    assert feats.get("1817767920", 99) is None and feats.get("1817767920", 160) is None
    assert feats.get("nobody", 0) is None


def test_twitch_bad_records_name_record_line_and_field(tmp_path):
    root = twitch_dir(tmp_path / "tw")
    bad = [twitch_record("1", 0, 0), twitch_record("2", "abc", 0)]
    (root / "train.json").write_text(json.dumps(bad, indent=1))
    line = [i for i, text in enumerate(json.dumps(bad, indent=1).splitlines(), 1) if text == " {"]
    with pytest.raises(DataError) as e:
        read_twitch(root)
    expected = f"train.json: record 1 (line {line[1]}): field 'start': expected a number"
    assert expected in str(e.value)
    (root / "train.json").write_text(json.dumps([twitch_record("1", 0, 0, responses="gg")]))
    with pytest.raises(DataError, match="record 0 .*field 'responses': expected a list"):
        read_twitch(root)
    (root / "train.json").write_text('{"id_video": "1"}')
    with pytest.raises(DataError, match=r"train\.json:1: expected a JSON array"):
        read_twitch(root)
    with pytest.raises(DataError, match="no such file or directory"):
        read_twitch(tmp_path / "absent")


def test_json_array_streaming_matches_json_load(tmp_path):
    records = [{"i": i, "text": "x" * (i % 7), "nested": [1, {"a": "]"}]} for i in range(50)]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(records, indent=2))
    got = list(iter_json_array(path, chunk_chars=5))
    assert [v for _, _, v in got] == records
    assert got[0][:2] == (0, 2) and got[1][:2] == (1, 12)  # each record spans 10 lines
    path.write_text("[1, 2,\n 3 4]")
    with pytest.raises(DataError, match=r"a\.json:2: expected ',' or ']'"):
        list(iter_json_array(path, chunk_chars=3))
    path.write_text("[1, 2")
    with pytest.raises(DataError, match="ends early"):
        list(iter_json_array(path, chunk_chars=3))
    path.write_text("[]")
    assert list(iter_json_array(path)) == []


def test_iqiyi_clips_likes_subtitles_and_features(tmp_path):
    corpus = read_corpus("iqiyi", iqiyi_dir(tmp_path / "iq"))
    c1 = corpus.videos["c1"]
    assert (c1.split, c1.title, c1.duration_s) == ("train", "那男孩那女孩", 12.5)
    assert [(c.time_s, c.text, c.likes) for c in c1.comments] == [
        (1.0, "哈哈哈", 0),
        (3.5, "天生一对", 97),
    ]
    assert c1.subtitles[0].text == "那男孩！那女孩！" and c1.transcript[0].end_s == 2.5
    assert corpus.videos["c2"].split == "test"
    assert corpus.features.dim == 8 and corpus.features.get("c1", 12).shape == (8,)
    assert corpus.features.get("c1", 13) is None and corpus.features.get("c2", 0) is None


def test_iqiyi_bad_input(tmp_path):
    root = iqiyi_dir(tmp_path / "iq")
    clip = json.loads((root / "train" / "c1.json").read_text())
    clip["comments"][1]["likes"] = -1
    (root / "train" / "c1.json").write_text(json.dumps(clip))
    with pytest.raises(DataError, match=r"c1\.json: comments\[1\]: field 'likes': expected a non"):
        read_corpus("iqiyi", root)
    clip["comments"][1] = {"time": 99, "text": "x", "likes": 1}
    (root / "train" / "c1.json").write_text(json.dumps(clip))
    with pytest.raises(DataError, match=r"comments\[1\]: field 'time': expected a time within"):
        read_corpus("iqiyi", root)
    (root / "test" / "c2.json").write_text(
        json.dumps({"clip_id": "c1", "duration": 1, "comments": []})
    )
    clip["comments"] = []
    (root / "train" / "c1.json").write_text(json.dumps(clip))
    with pytest.raises(DataError, match="'c1' is also in another file"):
        read_corpus("iqiyi", root)
    with pytest.raises(DataError, match="no clip files"):
        read_corpus("iqiyi", tmp_path / "iq" / "features")
    with pytest.raises(DataError, match="no such directory"):
        read_corpus("iqiyi", tmp_path / "absent")


def test_read_corpus_dispatch(tmp_path):
    assert FORMATS == ("demo", "livebot", "videoic", "movielc", "twitch", "iqiyi")
    with pytest.raises(DataError, match="unknown corpus format 'bilibili'"):
        read_corpus("bilibili", tmp_path)
    video = Video("m1", "电影", 10.0, [Comment(2.0, "好看")], split="train")
    write_movielc(Corpus("movielc", "", {"m1": video}), tmp_path / "mlc")
    for fmt in ("movielc", "demo"):  # the demo corpus is written in the MovieLC layout
        corpus = read_corpus(fmt, tmp_path / "mlc")
        assert [(c.time_s, c.text) for c in corpus.videos["m1"].comments] == [(2.0, "好看")]
    assert read_corpus("livebot", livebot_dir(tmp_path / "lb")).n_comments == 11
