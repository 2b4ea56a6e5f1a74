"""The run-directory lock (:mod:`common.lock`) across real processes: a second holder is
refused with the first one's pid, host and start time; a lock whose holder was killed is
taken over, and the record it left behind is reported."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from common.lock import LockHeld, hold_lock, is_held

HOLDER = textwrap.dedent(
    """
    import sys, time
    from common.lock import hold_lock

    with hold_lock(sys.argv[1], command="test"):
        print("held", flush=True)
        time.sleep(120)
    """
)


def start_holder(tmp_path, lock):
    script = tmp_path / "holder.py"
    script.write_text(HOLDER, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_naming_the_first_and_a_killed_one_is_taken_over(tmp_path):
    lock = tmp_path / "run" / "run.lock"
    proc = start_holder(tmp_path, lock)
    try:
        with pytest.raises(LockHeld) as refused, hold_lock(lock):
            pass
        holder = refused.value.holder
        assert holder["pid"] == proc.pid and holder["host"] == socket.gethostname()
        assert holder["command"] == "test" and holder["started"][:4].isdigit()
        assert f"pid {proc.pid} on {socket.gethostname()}, started " in str(refused.value)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    with hold_lock(lock) as left_behind:  # the dead holder's lock: taken over
        assert left_behind["pid"] == proc.pid
        assert json.loads(lock.read_text(encoding="utf-8"))["pid"] == os.getpid()
    assert lock.read_text(encoding="utf-8") == ""  # released: nothing left behind
    with hold_lock(lock) as left_behind:
        assert left_behind is None


def test_the_lock_is_held_until_the_block_ends(tmp_path):
    lock = tmp_path / "run.lock"
    with hold_lock(lock):
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"), hold_lock(lock):
            pass
        time.sleep(0)
    with hold_lock(lock):
        pass


def test_is_held_asks_without_taking_or_creating(tmp_path):
    lock = tmp_path / "sub" / "load.lock"
    assert not is_held(lock) and not lock.exists()  # a missing file: not held, not made
    proc = start_holder(tmp_path, lock)
    try:
        assert is_held(lock)
        assert json.loads(lock.read_text(encoding="utf-8"))["pid"] == proc.pid  # unchanged
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not is_held(lock)  # the holder died: released
    with hold_lock(lock):
        assert is_held(lock)  # this process, through another open file
    assert not is_held(lock)
