"""An exclusive lock on a job's directory, held for the whole job, that names its holder.

The lock is ``flock`` on a small file that holds the holder's record (pid, host, start time,
as JSON). The kernel releases it when the holder's process ends however it ends (Ctrl-C,
SIGKILL, a crash), so a lock left by a dead process is never in the way: the next job takes
it over and gets the record left behind. A job that ends normally empties the file, so a
non-empty file found on taking the lock means its last holder did not finish. The file is
never deleted: deleting a lock file lets two processes lock two different files.
:func:`is_held` asks whether the lock is held without taking it and without writing, so that
it also answers where the file cannot be written. Without ``fcntl`` (not POSIX) there is no
lock.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None


class LockHeld(Exception):
    """The lock is held by another process; ``holder`` is its record (None if unreadable)."""

    def __init__(self, path: Path, holder: dict | None) -> None:
        self.path, self.holder = path, holder
        super().__init__(f"{path}: held by {describe_holder(holder)}")


def describe_holder(holder: dict | None) -> str:
    """``pid 123 on host, started 2024-05-01 12:00:00`` (or that the holder is unknown)."""
    if not holder:
        return "another process (its record is not written yet)"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}"
    )


def _record(f) -> dict | None:
    f.seek(0)
    try:
        obj = json.loads(f.read() or "null")
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


@contextmanager
def hold_lock(path: str | Path, **info: object) -> Iterator[dict | None]:
    """Hold the lock of ``path`` (created if missing) for the block, or raise
    :class:`LockHeld` at once. Yields the record a holder that ended without releasing the
    lock left behind (None when the last holder released it). ``info`` joins this process's
    record."""
    path = Path(path)
    if fcntl is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    f = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LockHeld(path, _record(f)) from None
        left_behind = _record(f)
        started = datetime.now().astimezone().isoformat(timespec="seconds")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": started, **info}
        f.seek(0)
        f.truncate()
        f.write(json.dumps(me))
        f.flush()
        try:
            yield left_behind
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
    finally:
        f.close()  # closing the file releases the lock


def is_held(path: str | Path) -> bool:
    """Whether a process holds the lock of ``path`` now (this one too, through another open
    file). It only reads: a missing file is not held and is not created, and a shared lock,
    which a read-only descriptor may take, is taken and released at once to ask."""
    path = Path(path)
    if fcntl is None or not path.exists():
        return False
    with path.open("rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False
