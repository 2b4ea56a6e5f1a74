"""A load killed with SIGKILL mid-way resumes, on the next run, to exactly the full data."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest

from kg.embedded import EmbeddedStore

ROWS = 60_000


def write_csv(path) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("实体,属性,值\n")
        for i in range(ROWS):
            head = f"实体{i // 7}"
            tail = f"实体{(i * 7919) % (ROWS // 7)}" if i % 3 == 0 else f'"值{i}，含逗号, ""引号"""'
            f.write(f"{head},{['描述', '别名', '标签', '类型'][i % 4]},{tail}\n")


def records_done(db) -> int:
    try:
        with sqlite3.connect(f"file:{db / 'kg.sqlite'}?mode=ro", uri=True, timeout=1) as c:
            row = c.execute("SELECT records_done FROM load_state").fetchone()
            return row[0] if row else 0
    except sqlite3.Error:
        return 0


def load_cmd(src, db, parser_process: str = "no") -> list[str]:
    return [
        sys.executable,
        "-m",
        "kg.load",
        "--kg",
        "ownthink",
        "--path",
        str(src),
        "--db",
        str(db),
        "--batch-size",
        "1000",
        "--no-progress",
        "--json",
        "--parser-process",
        parser_process,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("parser_process", ["no", "yes"])
def test_sigkill_then_resume(tmp_path, parser_process):
    src = tmp_path / "ownthink.csv"
    write_csv(src)
    killed_db, clean_db = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(
        load_cmd(src, killed_db, parser_process),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while records_done(killed_db) < 5_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    children = psutil.Process(proc.pid).children(recursive=True)
    # with a parser process: the parser and multiprocessing's resource tracker
    assert bool(children) == (parser_process == "yes")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "the parser process must not outlive a killed loader"
    done = records_done(killed_db)
    assert 5_000 <= done < ROWS, "the kill must land mid-load"

    resumed = subprocess.run(load_cmd(src, killed_db), capture_output=True, text=True, check=True)
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["resumed_from"] == done
    assert summary["triples_read"] == ROWS - done

    subprocess.run(load_cmd(src, clean_db), capture_output=True, check=True)
    with EmbeddedStore(killed_db) as a, EmbeddedStore(clean_db) as b:
        assert a.stats() == b.stats()
        assert a.stats()["triples"] == ROWS
        assert list(a.iter_facts()) == list(b.iter_facts())
