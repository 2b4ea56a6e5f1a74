"""Tiny datasets in the released layouts (LiveBot, VideoIC, Twitch LiveChat/SFAT, iQIYI), written
into a test's ``tmp_path`` by the reader and CLI tests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch

# Real chat ids of the de-duplicated LiveBot split (train / dev / test).
TRAIN_CID, DEV_CID, TEST_CID = "33124129", "49611295", "45920343"
SPECIALS = {"<PAD>": 0, "<BOS>": 1, "<EOS>": 2, "<UNK>": 3, "<&&&>": 4}


def write_lines(path: Path, records: list[dict]) -> Path:
    lines = [
        json.dumps(r, sort_keys=True, separators=(",", ": "), ensure_ascii=False) for r in records
    ]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def livebot_dir(root: Path, ids: tuple[str, str, str] = (TRAIN_CID, DEV_CID, TEST_CID)) -> Path:
    """A LiveBot release: train-context, dev/test candidates, test-context, vocab, res18.pkl."""
    train, dev, test = (int(i) for i in ids)
    root.mkdir(parents=True, exist_ok=True)
    write_lines(
        root / "train-context.json",
        [
            {"video": train, "time": 3, "comment": "哈哈 哈", "context": "前方 高能 <&&&> 好 看"},
            {"video": train, "time": 3, "comment": "哈哈 哈", "context": "哈哈 哈 <&&&> 好 看"},
            {"video": train, "time": 4, "comment": "前方 高能", "context": "哈哈 哈"},
            {"video": train, "time": 10, "comment": "好 看", "context": "前方 高能"},
            {"video": 999, "time": 1, "comment": "重复 视频", "context": ""},
        ],
    )
    _livebot_eval_files(root, dev, test)
    (root / "dicts-30000.json").write_text(
        json.dumps({"word2id": {**SPECIALS, "哈哈": 5}, "id2word": {}}), encoding="utf-8"
    )
    frames = {train: {0: torch.arange(512.0), 3: torch.ones(512)}, test: {20: torch.zeros(512)}}
    with open(root / "res18.pkl", "wb") as f:  # LiveBot's file predates the zip format
        torch.save(frames, f, _use_new_zipfile_serialization=False)
    return root


def _livebot_eval_files(root: Path, dev: int, test: int) -> None:
    """Two neighbouring sampled test seconds (one repeated in test-context.json), and a dev
    record labelled the way the public add_candidate.py labels (everything 1)."""
    test_20 = {
        "video": test,
        "time": 20,
        "comment": ["太 好笑 了", "太 好笑 了", "笑死"],
        "context": "前面 的 <&&&> 后面 的",
    }
    test_21 = {
        "video": test,
        "time": 21,
        "comment": ["后面 的"],
        "context": "太 好笑 了 <&&&> 太 好笑 了 <&&&> 笑死",
    }
    candidates = {"笑死": 1, "太 好笑 了": 1, "前方 高能": 2, "好 看": 3, "随机": 4}
    write_lines(
        root / "test-candidate.json",
        [{**test_20, "candidate": candidates}, {**test_21, "candidate": {"后面 的": 1, "x": 4}}],
    )
    write_lines(root / "test-context.json", [test_20])
    dev_record = {"video": dev, "time": 7, "comment": ["开始 了"], "context": ""}
    dev_record["candidate"] = {"开始 了": 1, "哈哈 哈": 1, "好 看": 1}
    write_lines(root / "dev-candidate.json", [dev_record])


def save_legacy_numpy1(obj: object, path: Path) -> None:
    """torch.save in the legacy format, with numpy arrays named as numpy 1.x pickles them."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in data
    path.write_bytes(data)


def videoic_dir(root: Path) -> Path:
    (root / "comments").mkdir(parents=True)
    info = {
        "10582565": {
            "cid": 18518844,
            "title": "航班蛇患",
            "duration": 60,
            "total_danmaku": 3,
            "v_class": "电影",
            "v_key": "蛇",
        },
        "777": {"cid": 1, "title": "二", "duration": 30.5, "v_class": "游戏", "v_key": "k"},
    }
    (root / "info.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    (root / "comments" / "10582565.json").write_text(
        json.dumps({"5": ["好多蛇", " 吓人 "], "1": ["开始"]}, ensure_ascii=False), encoding="utf-8"
    )
    (root / "comments" / "777.json").write_text("{}", encoding="utf-8")
    (root / "division").mkdir()
    (root / "division" / "train.json").write_text(json.dumps([{"aid": 10582565, "cid": 1}]))
    (root / "division" / "test.json").write_text('{"aid": "777"}\n')
    vec = np.linspace(0, 1, 2048, dtype=np.float32)
    save_legacy_numpy1({18518844: {1: vec, 5: vec * 2}, "777": {0: vec}}, root / "image.pkl")
    return root


def twitch_record(vod: str, start: int, offset: int, **extra) -> dict:
    return {
        "id_video": vod,
        "start": start,
        "offset_start": offset,
        "category": "509658",
        "chat_context": ["hello", "LUL", "gg", "nice"],
        "response_index": 0,
        "responses": ["what a play", "PogChamp"],
        "transcript_audio": "let's go",
        **extra,
    }


def twitch_dir(root: Path) -> Path:
    (root / "features" / "509658").mkdir(parents=True)
    train = [twitch_record("1817767920", 100, 0), twitch_record("1817767920", 100, 30)]
    candidates = ["what a play"] + [f"p{i}" for i in range(20)] + [f"q{i}" for i in range(20)]
    candidates += [f"r{i}" for i in range(39)]
    test = [twitch_record("42", 0, 60, candidates=candidates), twitch_record("1817767920", 400, 0)]
    (root / "train.json").write_text(json.dumps(train, indent=2))
    (root / "test_with_candidates.json").write_text(json.dumps(test, indent=2))
    feats = np.arange(30 * 2048, dtype=np.float32).reshape(30, 2048)
    np.save(root / "features" / "509658" / "1817767920_100_30.npy", feats)
    return root


def iqiyi_dir(root: Path) -> Path:
    for split in ("train", "test", "features"):
        (root / split).mkdir(parents=True)
    clip = {
        "clip_id": "c1",
        "title": "那男孩那女孩",
        "duration": 12.5,
        "comments": [
            {"time": 3.5, "text": "天生一对", "likes": 97},
            {"time": 1, "text": "哈哈哈", "likes": 0},
        ],
        "subtitles": [{"start": 0, "end": 2.5, "text": "那男孩！那女孩！"}],
        "transcript": [{"start": 0, "end": 2.5, "text": "那男孩那女孩"}],
    }
    (root / "train" / "c1.json").write_text(json.dumps(clip, ensure_ascii=False))
    other = {"clip_id": "c2", "duration": 5, "comments": []}
    (root / "test" / "c2.json").write_text(json.dumps(other))
    np.save(root / "features" / "c1.npy", np.ones((13, 8), dtype=np.float32))
    return root
