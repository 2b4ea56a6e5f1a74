"""python -m model.data.ingest: pairing by name, skips with file and reason, the seeded
video-level split, the corpus it writes (read back with the MovieLC reader), --strict, and an
interrupted run that leaves --out as it was."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from model.data import ingest as ingest_mod
from model.data.ingest import assign_splits, main
from model.data.movielc import read_movielc
from model.data.pairing import owner, pair_files
from tests.model.conftest import call
from tests.model.test_comment_files import elem, segment
from tests.model.videos import encode_video

GREY = [(128, 128, 128)]


def bilibili_xml(path: Path, comments: list[tuple[float, str]]) -> Path:
    """A danmaku file as Bilibili's XML endpoint serves it (time in seconds in field 0)."""
    rows = "".join(
        f'<d p="{t},1,25,16777215,1600000000,0,abcd{i},{1000 + i},10">{text}</d>'
        for i, (t, text) in enumerate(comments)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><i><chatserver>chat.bilibili.com</chatserver>'
        f"<chatid>1</chatid><maxlimit>1000</maxlimit>{rows}</i>",
        encoding="utf-8",
    )
    return path


SRT = "1\n00:00:00,500 --> 00:00:01,500\n你好\n\n2\n00:00:02,000 --> 00:00:02,900\n再见\n"


@pytest.fixture(autouse=True)
def data_env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DANMAKU_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def folder(tmp_path) -> Path:
    """Four videos: two with danmaku (one also with subtitles), one without comments, one
    unreadable; an orphan comment file and a stray text file."""
    root = tmp_path / "in"
    root.mkdir()
    for name, seconds in (("film", 3.0), ("film 2", 4.0), ("lonely", 2.0)):
        encode_video(root / f"{name}.mp4", GREY, seconds)
    (root / "broken.mp4").write_bytes(b"not a video")
    bilibili_xml(
        root / "film.xml", [(0.5, "开始了"), (1.2, "哈哈哈"), (2.5, "好看"), (9.0, "晚了")]
    )
    bilibili_xml(root / "film 2_danmaku.xml", [(0.1, "第二部"), (3.5, "结束")])
    bilibili_xml(root / "broken.xml", [(0.1, "看不了")])
    (root / "film 2.srt").write_text(SRT, encoding="utf-8")
    bilibili_xml(root / "orphan.xml", [(1.0, "没有视频")])
    (root / "notes.txt").write_text("my notes", encoding="utf-8")
    return root


def reasons(summary: dict) -> dict[str, str]:
    return {Path(s["file"]).name: s["reason"] for s in summary["skipped"]}


def test_owner_takes_the_longest_stem_then_the_folder(tmp_path) -> None:
    stems = {"film", "film 2", "ep"}
    assert owner(tmp_path / "film 2_danmaku.xml", tmp_path, stems) == "film 2"
    assert owner(tmp_path / "film.live_chat.json", tmp_path, stems) == "film"
    assert owner(tmp_path / "filmography.xml", tmp_path, stems) is None  # no separator
    assert owner(tmp_path / "ep" / "1.so", tmp_path, stems) == "ep"  # protobuf segments
    assert owner(tmp_path / "other" / "1.so", tmp_path, stems) is None


def test_pairing_reports_what_pairs_with_nothing(folder) -> None:
    paired, skipped = pair_files(folder, folder)
    assert [p.name for p in paired["film"].comments] == ["film.xml"]
    assert [p.name for p in paired["film 2"].comments] == ["film 2_danmaku.xml"]
    assert [p.name for p in paired["film 2"].subtitles] == ["film 2.srt"]
    assert paired["lonely"].comments == {}
    why = {Path(s.file).name: s.reason for s in skipped}
    assert "without a video" in why["orphan.xml"]
    assert "notes.txt" in why


def test_split_is_per_video_seeded_and_covers_every_split() -> None:
    ids = [f"v{i}" for i in range(20)]
    split = assign_splits(ids, (0.8, 0.1, 0.1), seed=0)
    assert split == assign_splits(list(reversed(ids)), (0.8, 0.1, 0.1), seed=0)  # order-free
    assert Counter(split.values()) == {"train": 16, "dev": 2, "test": 2}
    assert split != assign_splits(ids, (0.8, 0.1, 0.1), seed=1)
    assert set(assign_splits(ids[:3], (0.8, 0.1, 0.1), seed=0).values()) == {"train", "dev", "test"}
    assert set(assign_splits(ids[:3], (1.0, 0.0, 0.0), seed=0).values()) == {"train"}
    # adding a video moves few of the others
    more = assign_splits([*ids, "v20"], (0.8, 0.1, 0.1), seed=0)
    assert sum(more[v] != split[v] for v in ids) <= 2


def test_ingest_writes_a_corpus_every_reader_reads(folder, tmp_path, capsys) -> None:
    out = tmp_path / "corpus"
    argv = ["--videos", str(folder), "--out", str(out), "--split", "0.5,0.5,0", "--json"]
    code, stdout, _ = call(main, [*argv, "--no-progress"], capsys)
    assert code == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["videos"] == 2 and summary["comments"] == 5
    assert summary["seconds"] == pytest.approx(7.0, abs=0.2)
    why = reasons(summary)
    assert "no comment file" in why["lonely.mp4"]
    assert "undecodable" in why["broken.mp4"]
    assert "without a video" in why["orphan.xml"]
    late = [s for s in summary["skipped"] if s["file"].endswith("film.xml")]
    assert late and "past the video's end" in late[0]["reason"] and late[0]["count"] == 1

    corpus = read_movielc(out)
    assert set(corpus.videos) == {"film", "film 2"}
    assert [c.text for c in corpus.videos["film"].comments] == ["开始了", "哈哈哈", "好看"]
    assert {v.split for v in corpus} == {"train", "dev"}
    assert [s.text for s in corpus.videos["film 2"].subtitles] == ["你好", "再见"]
    assert corpus.features.dim == 1280 and corpus.features.get("film", 2) is not None
    info = json.loads((out / "extras" / "features.json").read_text(encoding="utf-8"))
    assert info == {"backbone": "efficientnet-lite0", "dim": 1280, "weights": None}
    manifest = json.loads((out / "ingest.json").read_text(encoding="utf-8"))
    assert len(manifest["skipped"]) == len(summary["skipped"])

    # a second run replaces the corpus it wrote, with the same result, from the feature cache
    code, stdout, _ = call(main, [*argv, "--no-progress"], capsys)
    again = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0 and again["features"]["cached"] == 2
    assert read_movielc(out).videos["film"].comments == corpus.videos["film"].comments


def test_strict_fails_on_the_first_skip_and_writes_nothing(folder, tmp_path, capsys) -> None:
    out = tmp_path / "corpus"
    code, _, err = call(main, ["--videos", str(folder), "--out", str(out), "--strict"], capsys)
    assert code == 2 and "--strict" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_an_interrupted_write_leaves_out_as_it_was(folder, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "corpus"
    assert call(main, ["--videos", str(folder), "--out", str(out)], capsys)[0] == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    real = ingest_mod.write_movielc

    def interrupted(corpus, root, features=None):
        real(corpus, root, None)  # half of it
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_mod, "write_movielc", interrupted)
    code, _, err = call(main, ["--videos", str(folder), "--out", str(out)], capsys)
    assert code == 130
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_arguments_are_one_line_errors(folder, tmp_path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("x", encoding="utf-8")
    for argv, what in (
        (["--videos", str(folder), "--out", str(taken)], "not written by model.data.ingest"),
        (["--videos", str(tmp_path / "nope"), "--out", str(tmp_path / "o")], "no such directory"),
        (["--videos", str(folder), "--out", str(tmp_path / "o"), "--split", "0.8,0.3,0"], "sum"),
    ):
        code, _, err = call(main, argv, capsys)
        assert code == 2 and what in err, err
    assert (taken / "mine.txt").exists()


def test_protobuf_segments_in_a_folder_are_one_video(tmp_path, capsys) -> None:
    videos, comments = tmp_path / "videos", tmp_path / "danmaku"
    videos.mkdir()
    (comments / "ep").mkdir(parents=True)
    encode_video(videos / "ep.mp4", GREY, 3.0)
    (comments / "ep" / "1.so").write_bytes(segment(elem(7, 500, "第一条"), elem(8, 1500, "第二条")))
    (comments / "ep" / "2.so").write_bytes(segment(elem(8, 1500, "第二条"), elem(9, 2500, "三")))
    out = tmp_path / "corpus"
    argv = ["--videos", str(videos), "--comments", str(comments), "--out", str(out), "--json"]
    code, stdout, _ = call(main, [*argv, "--split", "1,0,0"], capsys)
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0 and summary["formats"] == {"bilibili-protobuf": 1}
    assert [c.text for c in read_movielc(out).videos["ep"].comments] == ["第一条", "第二条", "三"]
    assert any("duplicate" in s["reason"] for s in summary["skipped"])
