"""The time limit of a request, carried into the worker thread that does its blocking work.

``anyio.fail_after`` answers a slow request 504 but cannot stop its thread: the work would
go on, and hold the lock recall and generation share, after nobody waits for it, so a burst
of timed-out generations would delay every later request. So the worker gives up itself:
it waits for the lock only until the deadline, does not start once the deadline has
passed, and code that runs long checks :func:`check_deadline` as it goes (the generator's
model does at each of its modules' calls, :func:`api.generation.stop_at_deadline`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

R = TypeVar("R")

#: ``time.monotonic()`` past which the request running in this context is not waited for.
_deadline: ContextVar[float | None] = ContextVar("api_request_deadline", default=None)


class DeadlinePassed(TimeoutError):
    """The request's time limit passed: its work is dropped (answered 504, as a timeout)."""


def check_deadline() -> None:
    """Raise :class:`DeadlinePassed` once the running request's time limit has passed; does
    nothing outside a request."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlinePassed("the request's time limit passed")


def run_until(deadline: float, fn: Callable[[], R], lock: threading.Lock | None = None) -> R:
    """``fn()`` in the calling (worker) thread, under ``lock`` when one is given, unless
    ``deadline`` passes first; :func:`check_deadline` inside ``fn`` sees ``deadline``."""
    token = _deadline.set(deadline)
    try:
        if lock is None:
            check_deadline()
            return fn()
        if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise DeadlinePassed("the request's time limit passed while it waited its turn")
        try:
            check_deadline()
            return fn()
        finally:
            lock.release()
    finally:
        _deadline.reset(token)
