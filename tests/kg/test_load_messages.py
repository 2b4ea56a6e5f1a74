"""One clear line for a Turtle syntax error, and for a load started while another one writes
the store: the load-lock message, never "database is locked"."""

from __future__ import annotations

import subprocess
import sys
import time

from kg.embedded import EmbeddedStore
from tests.kg.test_cli import run

LOAD_LOCK = "another load into this store is running"

# A load at the point where it has marked itself complete and builds its indexes: it holds
# the load lock and a write transaction (minutes, at Ownthink scale).
WRITING_LOAD = """
import sys, time
from kg.embedded import EmbeddedStore
from kg.triples import Triple
store = EmbeddedStore(sys.argv[1])
prepare = store.batch_preparer("x")
store.write_prepared(prepare([Triple("甲", "类型", "乙")], []), "x", 1)
store.conn.execute("UPDATE load_state SET complete = 1")
store.conn.execute("BEGIN IMMEDIATE")
print("writing", flush=True)
time.sleep(60)
"""


def test_a_turtle_syntax_error_is_one_line(tmp_path):
    ttl = tmp_path / "g.ttl"
    ttl.write_text("@prefix x: <http://x/> .\nx:a x:p x:b .\nx:a x:p \n", encoding="utf-8")
    db = str(tmp_path / "db")
    res = run("kg.load", "--kg", "rdf", "--path", str(ttl), "--db", db, "--no-progress")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {ttl}:3: cannot parse as turtle: objectList expected"
    ]


def test_a_load_beside_a_writing_load_meets_the_load_lock(tmp_path):
    db = tmp_path / "db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITING_LOAD, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        started = time.monotonic()
        res = run("kg.load", "--db", str(db), "--no-progress")
        assert res.returncode == 2
        assert res.stderr.strip().splitlines() == [
            f"error: {db}: {LOAD_LOCK} (it holds load.lock); wait for it to finish"
        ]
        assert time.monotonic() - started < 4, "refused at once, not after a busy wait"
        started = time.monotonic()
        with EmbeddedStore(db) as reader:  # a reader opening meanwhile does not wait either
            assert not reader.index_state()["indexed"]
            assert reader.index_state()["unindexed_reason"].startswith("a load is running")
        assert time.monotonic() - started < 2
    finally:
        writer.kill()
        writer.wait()


def test_simultaneous_loads_one_loads_the_others_meet_the_lock(tmp_path):
    for attempt in range(3):
        db = tmp_path / f"db{attempt}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "kg.load", "--db", str(db), "--no-progress"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        assert 0 in [code for code, _ in results]
        for code, err in results:
            assert code == 0 or (code == 2 and LOAD_LOCK in err and "locked" not in err), err
