"""A failed or interrupted load followed by a load of the changed file ends as a clean load of
that file would, its four indexes included, and ``kg.query stats`` says when a store is
unindexed and why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from itertools import islice

import pytest

from kg.embedded import EmbeddedStore
from kg.loader import load
from kg.sources import read_ownthink
from tests.kg.test_cli import run
from tests.kg.test_resume_after_kill import ROWS, load_cmd, records_done, write_csv

BATCH = "500"


def write_rows(path, bad_at: int | None, rows: int = 3000) -> None:
    """``rows`` Ownthink rows; the row ``bad_at`` (1-based) has two columns."""
    lines = ["实体,属性,值"]
    for i in range(1, rows + 1):
        head, tail = f"实体{i // 5}", f"实体{(i * 31) % (rows // 5)}" if i % 2 else f"值{i}"
        lines.append(f"{head},标签" if i == bad_at else f"{head},{['别名', '类型'][i % 2]},{tail}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def touch_later(path) -> None:
    """A new modification time, whatever the file system's time resolution."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def load_cli(src, db, *extra: str):
    return run(
        "kg.load", "--kg", "ownthink", "--path", str(src), "--db", str(db), "--json",
        "--no-progress", "--batch-size", BATCH, *extra,
    )  # fmt: skip


def stats(db) -> dict:
    res = run("kg.query", "stats", "--db", str(db), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


INDEXES = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
LOAD_STATE = "SELECT source, records_done, complete FROM load_state"
LOOKUP_PLAN = "EXPLAIN QUERY PLAN SELECT id FROM entity WHERE crc = 1 AND name = 'x'"


def everything(db) -> tuple:
    """What a clean load decides: facts, names, counts, indexes, load records."""
    with EmbeddedStore(db, create=False, mode="read") as store:
        c = store.conn
        return (
            store.stats(),
            list(store.iter_facts()),
            list(store.iter_names()),
            store.search("", limit=10_000),
            sorted(c.execute(INDEXES).fetchall()),
            c.execute(LOAD_STATE).fetchall(),
            c.execute(LOOKUP_PLAN).fetchall(),
        )


def test_strict_stop_then_fixed_file_ends_as_a_clean_load(tmp_path):
    src, db, clean = tmp_path / "o.csv", tmp_path / "db", tmp_path / "clean"
    write_rows(src, bad_at=2600)
    res = load_cli(src, db, "--strict")
    assert res.returncode == 2 and "o.csv:2601: expected 3 columns" in res.stderr
    before = stats(db)
    assert before["triples"] > 0 and not before["indexed"]
    assert "stopped after" in before["unindexed_reason"]
    assert before["unfinished_loads"][0]["source"] == str(src.resolve())
    text = run("kg.query", "stats", "--db", str(db)).stdout
    assert "indexed\tno: the load of" in text

    write_rows(src, bad_at=None)  # the user fixes the row
    touch_later(src)
    res = load_cli(src, db, "--strict")
    assert res.returncode == 0, res.stderr
    assert "unfinished load of an earlier version" in res.stderr
    assert load_cli(src, clean).returncode == 0
    got, expected = everything(db), everything(clean)
    assert got == expected
    assert len(got[4]) == 4 and "entity_by_crc" in str(got[6])
    after = stats(db)
    assert after["indexed"] and after["unindexed_reason"] is None
    assert after["unfinished_loads"] == [] and after["missing_indexes"] == []


@pytest.mark.slow
def test_sigkill_then_changed_file_ends_as_a_clean_load(tmp_path):
    src, db, clean = tmp_path / "ownthink.csv", tmp_path / "killed", tmp_path / "clean"
    write_csv(src)
    proc = subprocess.Popen(load_cmd(src, db), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while records_done(db) < 5_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 5_000 <= records_done(db) < ROWS, "the kill must land mid-load"
    assert not stats(db)["indexed"]

    with src.open("a", encoding="utf-8") as f:  # the file changes after the kill point
        f.write("新实体,类型,新值\n")
    touch_later(src)
    assert subprocess.run(load_cmd(src, db), capture_output=True).returncode == 0
    assert subprocess.run(load_cmd(src, clean), capture_output=True).returncode == 0
    assert everything(db) == everything(clean)
    assert stats(db)["indexed"]


class Interrupted(Exception):
    pass


def interrupt_after(records, n):
    yield from islice(records, n)
    raise Interrupted


def test_a_completed_load_indexes_the_store_beside_another_files_unfinished_one(tmp_path):
    """The unfinished load of one file no longer keeps the indexes away after another file's
    load completes; stats names the unfinished one, which resumes as before."""
    x, y = tmp_path / "x.csv", tmp_path / "y.csv"
    write_rows(x, bad_at=None)
    y.write_text("甲,类型,乙\n丙,别名,丁\n", encoding="utf-8")
    store = EmbeddedStore(tmp_path / "db")
    with pytest.raises(Interrupted):
        load(store, "ownthink", x, progress=False, batch_size=500,
             records=interrupt_after(read_ownthink(x), 1700))  # fmt: skip
    state = store.index_state()
    assert not state["indexed"] and state["unfinished_loads"] == [
        {"source": str(x.resolve()), "records_done": 1500}
    ]
    load(store, "ownthink", y, progress=False)
    state = store.index_state()
    assert state["indexed"] and state["unindexed_reason"] is None
    assert [u["records_done"] for u in state["unfinished_loads"]] == [1500]
    report = load(store, "ownthink", x, progress=False, batch_size=500)
    assert report.resumed_from == 1500
    assert store.index_state()["unfinished_loads"] == []
    store.close()
