"""``python -m model.data.stats`` through a real subprocess: the summary, the last-line JSON,
and one-line errors with exit status 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from model.data.readers import read_corpus
from model.data.stats import corpus_stats
from tests.conftest import cli_env
from tests.model.format_data import (
    iqiyi_dir,
    livebot_dir,
    twitch_dir,
    videoic_dir,
    write_lines,
)


def error_line(res: subprocess.CompletedProcess) -> str:
    """The one error line; anything before it on stderr is logging."""
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and lines, res.stderr
    assert [x for x in lines if x.startswith("error: ")] == lines[-1:], lines
    assert all(x.split(" ", 1)[0] in ("INFO", "WARNING") for x in lines[:-1]), lines
    return lines[-1]


def stats(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "model.data.stats", *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )


def test_livebot_summary_and_json(tmp_path):
    root = livebot_dir(tmp_path / "lb")
    res = stats("--format", "livebot", root, "--json")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("livebot corpus at") and len(lines) > 2
    summary = json.loads(lines[-1])
    assert (summary["videos"], summary["comments"], summary["seconds"]) == (4, 11, 11 + 8 + 22 + 2)
    assert {k: v["videos"] for k, v in summary["splits"].items()} == {
        "train": 1,
        "dev": 1,
        "test": 1,
    }
    assert summary["unsplit_videos"] == 1 and summary["candidate_sets"] == 3
    assert summary["features"] is True


def test_livebot_crawl_indices_read_with_the_leak_warning_and_new_insists(tmp_path):
    root = livebot_dir(tmp_path / "lb", ids=("0", "1", "2"))
    res = stats("--format", "livebot", root, "--json")
    assert res.returncode == 0, res.stderr
    assert "WARNING" in res.stderr and "lancopku/livebot issue #2" in res.stderr
    splits = json.loads(res.stdout.strip().splitlines()[-1])["splits"]
    assert {k: v["videos"] for k, v in splits.items()} == {"train": 2, "dev": 1, "test": 1}
    res = stats("--format", "livebot", root, "--livebot-split", "original", "--json")
    assert res.returncode == 0, res.stderr
    assert "issue #2" not in res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["splits"] == splits
    res = stats("--format", "livebot", root, "--livebot-split", "new")
    assert res.returncode == 2
    assert "--livebot-split original" in error_line(res)


def test_twitch_counts_streams_once_and_videos_per_split(tmp_path):
    res = stats("--format", "twitch", twitch_dir(tmp_path / "tw"), "--json")
    assert res.returncode == 0, res.stderr
    assert "streams 2, 1 split by time" in res.stdout
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (summary["videos"], summary["streams"], summary["split_by_time"]) == (2, 2, 1)
    assert summary["splits"] == {
        "train": {"videos": 1, "comments": 12, "seconds": 60.0},  # two clips of one VOD
        "test": {"videos": 2, "comments": 12, "seconds": 30.0 + 90.0},  # a clip; VOD 42 whole
    }


@pytest.mark.parametrize(
    ("fmt", "build"),
    [("videoic", videoic_dir), ("twitch", twitch_dir), ("iqiyi", iqiyi_dir)],
)
def test_json_matches_the_reader(tmp_path, fmt, build):
    root = build(tmp_path / fmt)
    res = stats("--format", fmt, root, "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary == json.loads(json.dumps(corpus_stats(read_corpus(fmt, root)).as_dict()))
    assert summary["videos"] > 0 and summary["comments"] > 0 and summary["seconds"] > 0


def test_bad_input_is_one_line_and_status_2(tmp_path):
    root = tmp_path / "lb"
    root.mkdir()
    write_lines(root / "train-context.json", [{"video": 1, "time": "abc", "comment": "a b"}])
    cases = [
        ("--format", "livebot", root),
        ("--format", "videoic", tmp_path / "absent"),
        ("--format", "twitch", root, "--livebot-split", "new"),
    ]
    expected = [
        "train-context.json:1: field 'time': expected a number, got \"abc\"",
        "absent: no such directory",
        "--livebot-split applies to --format livebot only",
    ]
    for args, message in zip(cases, expected, strict=True):
        res = stats(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert message in error_line(res)
