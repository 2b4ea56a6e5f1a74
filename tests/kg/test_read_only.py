"""A store on read-only media is read (``kg.query``, any reader), and writing where it is not
possible says "read-only" in one line.

Read-only is made real: directories without write permission, and, when the tests run as
root (whom permissions do not stop), the same directories bind-mounted read-only in a mount
namespace of the command's own (``unshare --mount``), where writes fail with EROFS, as on
read-only media.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kg.embedded import EmbeddedStore
from kg.loader import load
from kg.triples import KGError
from tests.conftest import cli_env

READ_ONLY = stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
# Bind-mounts each argument read-only over itself, then runs the command after "--".
MOUNT_READ_ONLY = """
while [ "$1" != -- ]; do
    mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 97
    shift
done
shift
exec "$@"
"""


def run_read_only(*args: str, read_only: list[Path], data: Path) -> subprocess.CompletedProcess:
    """``python ARGS`` in a world where the ``read_only`` directories cannot be written."""
    for d in read_only:
        d.chmod(READ_ONLY)
    cmd = [sys.executable, *args]
    if os.geteuid() == 0:
        dirs = [str(d) for d in read_only]
        cmd = ["unshare", "--mount", "sh", "-c", MOUNT_READ_ONLY, "sh", *dirs, "--", *cmd]
    res = subprocess.run(
        cmd, capture_output=True, text=True, env=cli_env(DANMAKU_DATA=str(data)), timeout=300
    )
    if res.returncode == 97 or "unshare:" in res.stderr:
        pytest.fail(
            "as root these tests need `unshare --mount` (CAP_SYS_ADMIN) to make a directory "
            f"read-only for root; run them as another user. {res.stderr.strip()}"
        )
    return res


@pytest.fixture
def read_only_store(tmp_path, filmkg_sample) -> Path:
    db = tmp_path / "store"
    with EmbeddedStore(db) as store:
        load(store, "filmkg", filmkg_sample, progress=False)
    for path in db.iterdir():
        path.chmod(0o444)
    assert sorted(p.name for p in db.iterdir()) == ["kg.sqlite", "load.lock"]
    yield db
    db.chmod(0o755)


def test_kg_query_reads_a_store_on_read_only_media(read_only_store, tmp_path):
    db, data = str(read_only_store), tmp_path / "data"
    res = run_read_only(
        "-m", "kg.query", "stats", "--db", db, "--json", read_only=[read_only_store], data=data
    )
    assert res.returncode == 0, res.stderr
    stats = json.loads(res.stdout)
    assert stats["triples"] == 3891 and stats["indexed"]
    res = run_read_only(
        "-m", "kg.query", "facts", "阿甘正传", "--db", db, "--json",
        read_only=[read_only_store], data=data,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[0])["head"].startswith("阿甘正传（")
    assert sorted(p.name for p in read_only_store.iterdir()) == ["kg.sqlite", "load.lock"]


def test_any_reader_opens_a_read_only_store_read_only(read_only_store, tmp_path):
    """What the API and retrieval do: open the store in the default mode."""
    code = (
        "import sys; from kg.embedded import EmbeddedStore\n"
        "s = EmbeddedStore(sys.argv[1], create=False)\n"
        "print(s.read_only, s.stats()['triples'], s.resolve('恋恋笔记本') is not None)"
    )
    res = run_read_only(
        "-c", code, str(read_only_store), read_only=[read_only_store], data=tmp_path / "data"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "3891", "True"]


def test_a_load_into_a_read_only_store_says_read_only(read_only_store, tmp_path):
    res = run_read_only(
        "-m", "kg.load", "--db", str(read_only_store), "--no-progress",
        read_only=[read_only_store], data=tmp_path / "data",
    )  # fmt: skip
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {read_only_store}: the store is read-only here; it cannot be written"
    ]


def test_a_new_store_under_a_read_only_parent_says_read_only(tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    db = parent / "new" / "db"
    res = run_read_only(
        "-m", "kg.load", "--db", str(db), "--no-progress", read_only=[parent], data=tmp_path
    )
    parent.chmod(0o755)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"error: {db}: cannot create the store: {parent} is read-only (")
    assert not (parent / "new").exists()


def test_a_store_opened_for_reading_never_writes(tmp_path, filmkg_sample):
    with EmbeddedStore(tmp_path / "db") as store:
        load(store, "filmkg", filmkg_sample, progress=False)
    before = (tmp_path / "db" / "kg.sqlite").read_bytes()
    with EmbeddedStore(tmp_path / "db", create=False, mode="read") as store:
        assert store.read_only and store.stats()["triples"] == 3891
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("DELETE FROM triple")
        with pytest.raises(KGError, match="opened read-only"):
            store.batch_preparer("x")
    assert (tmp_path / "db" / "kg.sqlite").read_bytes() == before


def test_a_reader_upgrades_an_older_store_where_it_can_write(tmp_path, filmkg_sample):
    """Opening for reading still upgrades an older schema in place (a writable open, once)."""
    from tests.kg.test_embedded_load import downgrade_to_version_4

    with EmbeddedStore(tmp_path / "db") as store:
        load(store, "filmkg", filmkg_sample, progress=False)
    downgrade_to_version_4(tmp_path / "db" / "kg.sqlite")
    with EmbeddedStore(tmp_path / "db", create=False, mode="read") as store:
        version = store.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        assert store.read_only and version == ("5",)
        assert store.resolve("恋恋笔记本") is not None and store.index_state()["indexed"]
