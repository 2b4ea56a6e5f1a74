"""The bad-rows report of a load belongs to its store and source file, holds each bad row
once, and after a resume lists (and the summary counts) the bad rows of the whole file."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env
from tests.kg.test_cli import run
from tests.kg.test_resume_after_kill import ROWS, load_cmd, records_done

BAD_EVERY = 29


def write_csv_with_bad_rows(path: Path) -> int:
    """``ROWS`` rows, every ``BAD_EVERY``-th of them with two columns; returns how many."""
    bad = 0
    with path.open("w", encoding="utf-8") as f:
        for i in range(ROWS):
            if i % BAD_EVERY == 7:
                f.write(f"实体{i},只有两列\n")
                bad += 1
            else:
                f.write(f"实体{i // 5},{['类型', '别名'][i % 2]},值{i}\n")
    return bad


def load_json(src: Path, db: Path, data: Path) -> dict:
    res = run(
        "kg.load", "--kg", "ownthink", "--path", str(src), "--db", str(db), "--json",
        "--no-progress", env=cli_env(DANMAKU_DATA=str(data)),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_files_of_one_name_keep_reports_of_their_own(tmp_path):
    data = tmp_path / "data"
    a, b = tmp_path / "a" / "kb.csv", tmp_path / "b" / "kb.csv"
    for path, bad in ((a, "甲坏行"), (b, "乙坏行")):
        path.parent.mkdir()
        path.write_text(f"实体,属性,值\n好,标签,值\n{bad}\n", encoding="utf-8")
    reports = {}
    for src, db in ((a, "one"), (b, "one"), (a, "two")):
        summary = load_json(src, tmp_path / db, data)
        assert summary["bad_rows"] == 1
        reports[src, db] = Path(summary["bad_rows_file"])
    assert len(set(reports.values())) == 3, "one report per store and source file"
    for (src, _), report in reports.items():
        assert report.read_text(encoding="utf-8") == (
            f"{src}\t3\texpected 3 columns (实体,属性,值), got 1\n"
        )
    assert reports[a, "one"].parent == tmp_path / "one" / "bad_rows"


@pytest.mark.slow
def test_a_resumed_load_reports_the_whole_file_once(tmp_path):
    """Killed mid-load with a parser process (which reads batches ahead of the writer), then
    resumed: report and count equal a clean load's."""
    src, killed, clean = tmp_path / "o.csv", tmp_path / "killed", tmp_path / "clean"
    data = tmp_path / "data"
    bad = write_csv_with_bad_rows(src)
    proc = subprocess.Popen(
        load_cmd(src, killed, "yes"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(DANMAKU_DATA=str(data)),
    )
    deadline = time.monotonic() + 120
    while records_done(killed) < 5_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = records_done(killed)
    assert 5_000 <= done < ROWS, "the kill must land mid-load"

    resumed = load_json(src, killed, data)
    assert resumed["resumed_from"] == done
    fresh = load_json(src, clean, data)
    assert resumed["bad_rows"] == fresh["bad_rows"] == bad
    assert resumed["bad_row_examples"] == fresh["bad_row_examples"]
    lines = Path(resumed["bad_rows_file"]).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)) == bad
    assert lines == Path(fresh["bad_rows_file"]).read_text(encoding="utf-8").splitlines()
