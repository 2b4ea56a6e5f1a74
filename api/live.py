"""The asynchronous side of a live session (``/live``; protocol: docs/data-contracts.md,
section "Live sessions"): what is read, what is queued to send, when the model runs, when
the session ends. The session's logic is :class:`model.live_session.LiveSession`; the
WebSocket and Server-Sent-Events transports (:mod:`api.live_transport`) share this runner.

Per session:

- an incoming message larger than :data:`MAX_MESSAGE_BYTES` ends it (close 1009, after an
  error message); malformed JSON or a bad message is an error message and the session goes
  on, until :data:`MAX_ERRORS` of them (close 1008);
- one generation at a time, in a worker thread under the lock recall and generation share
  (:func:`api.deps.run_blocking`), given up after :data:`GENERATION_TIMEOUT_S`; triggers that
  come meanwhile wait as one (the latest), never a queue. The sessions take turns (one
  live generation at a time in the app, first come first served): a session waits for its
  turn without holding a thread, and what it generates is decided when its turn comes, from
  its latest trigger and comments;
- the outgoing queue holds at most :data:`OUTBOX` messages: a client that does not read
  loses the oldest bot comments first (counted, ``dropped.queue``), and one whose queue stays
  full for :data:`SLOW_CLIENT_S` is closed (1008);
- a disconnect cancels the session's tasks; a generation in flight finishes in its thread
  and is dropped. Nothing a client sends reaches the server's other sessions: an unexpected
  error closes its own session (1011).

:class:`LiveSessions` is the app's set of sessions: at most ``API_LIVE_MAX_SESSIONS`` open
at once; the SSE ones live in a task group of the app's lifespan and are closed when nobody
reads their events and no message came for :attr:`LiveSessions.idle_s`.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from api.deps import run_on_model
from api.settings import Settings
from api.state import ApiState
from common.errors import UserError
from model.live_messages import LiveError, Start, StatsRequest, Stop, parse_message

if TYPE_CHECKING:  # the model (and torch) is imported when the first session opens
    from model.live_session import LiveSession

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
MAX_ERRORS = 20
OUTBOX = 100
SLOW_CLIENT_S = 10.0
DRAIN_S = 2.0  # how long a closing session's last messages may take to go out
GENERATION_TIMEOUT_S = 10.0  # a live comment later than this is no use
STATS_EVERY_S = 30.0
WATCH_EVERY_S = 1.0

#: Error codes that end the session, and the WebSocket close code of each.
CLOSE_CODES = {"too_big": 1009, "unknown_video": 4404, "no_model": 4503, "busy": 1013}
NORMAL, POLICY_VIOLATION, INTERNAL = 1000, 1008, 1011


@dataclass(frozen=True)
class Close:
    code: int | None  # the WebSocket close code (None: the client is gone)
    reason: str
    drain: bool  # send what is queued first


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def decode(data: str | bytes) -> object:
    """One client message's JSON (:class:`LiveError` ``too_big`` or ``bad_json``)."""
    size = len(data)  # a character is at least a byte: count the bytes only near the limit
    if isinstance(data, str) and MAX_MESSAGE_BYTES // 4 < size <= MAX_MESSAGE_BYTES:
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise LiveError("too_big", f"a message over {MAX_MESSAGE_BYTES} bytes (the most read)")
    try:
        return json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError included
        raise LiveError("bad_json", f"not JSON: {e}") from None


class LiveRunner:
    """One session's queues and tasks (see the module docstring)."""

    def __init__(
        self,
        session: LiveSession,
        state: ApiState,
        settings: Settings,
        turns: Callable[[], anyio.CapacityLimiter] | None = None,
    ) -> None:
        self.session, self.state, self.settings = session, state, settings
        self._turns = turns or _own_turns()
        self.outbox: deque[tuple[dict, float | None]] = deque()
        self._ready = anyio.Event()  # something to send, or closing
        self._wake = anyio.Event()  # a trigger waits
        self.closing: Close | None = None
        self.closed = anyio.Event()
        self.drained = anyio.Event()
        self.errors = 0
        self.full_since: float | None = None
        self.last_activity = time.monotonic()
        self.last_stats: tuple | None = None
        self.background = False  # an SSE session: its tasks run in the app's task group
        self.reading = False  # an SSE reader is attached
        self.on_close: Callable[[LiveRunner], None] | None = None

    @property
    def id(self) -> str:
        return self.session.id

    # -- in ------------------------------------------------------------------------------
    def accept(self, value: object, arrival: float) -> None:
        """Take one decoded client message; a bad one raises :class:`LiveError` (counted:
        the :data:`MAX_ERRORS`-th closes the session)."""
        self.last_activity = time.monotonic()
        try:
            message = parse_message(value)
            if isinstance(message, Stop):
                self.stop()
                return
            if isinstance(message, Start):
                raise LiveError("bad_message", "the session has started: one start message only")
            if isinstance(message, StatsRequest):
                self.put(self.stats())
                return
            replies = self.session.receive(message, arrival)
        except LiveError:
            self.count_error()
            raise
        for reply in replies:
            self.put(reply)
        if self.session.want is not None:
            self._wake.set()

    def accept_data(self, data: str | bytes, arrival: float) -> None:
        """Take one raw client message (a WebSocket frame)."""
        try:
            value = decode(data)
        except LiveError as e:
            if e.code in CLOSE_CODES:
                self.put(e.as_message())
                self.close(CLOSE_CODES[e.code], "message too big", drain=True)
                return
            self.count_error()
            raise
        self.accept(value, arrival)

    def count_error(self) -> None:
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            self.close(POLICY_VIOLATION, f"{MAX_ERRORS} bad messages", drain=True)

    def stop(self) -> dict:
        """End the session at the client's request: its final stats go out first."""
        final = self.stats()
        if self.closing is None:
            self.put(final)
            self.close(NORMAL, "stopped", drain=True)
        return final

    # -- out -----------------------------------------------------------------------------
    def stats(self) -> dict:
        return self.session.stats(errors=self.errors, queued=len(self.outbox))

    def put(self, message: dict, arrival: float | None = None) -> None:
        """Queue ``message`` (``arrival``: stamp its latency when sent); a full queue loses
        its oldest bot comment (else its oldest message), counted."""
        if self.closing is not None and not self.closing.drain:
            return
        if len(self.outbox) >= OUTBOX:
            oldest = next((i for i, (m, _) in enumerate(self.outbox) if m["type"] == "comment"), 0)
            del self.outbox[oldest]
            self.session.dropped["queue"] += 1
            if self.full_since is None:
                self.full_since = time.monotonic()
        self.outbox.append((message, arrival))
        self._ready.set()

    async def next_out(self) -> tuple[dict, float | None] | None:
        """The next message to send; None once the session is closing and (when it drains)
        its queue is empty."""
        while True:
            draining = self.closing is None or self.closing.drain
            if self.outbox and draining:
                item = self.outbox.popleft()
                if len(self.outbox) < OUTBOX:
                    self.full_since = None
                return item
            if self.closing is not None:
                self.drained.set()
                return None
            await self._ready.wait()
            self._ready = anyio.Event()

    @staticmethod
    def render(item: tuple[dict, float | None]) -> str:
        """A queued message as sent: JSON, a bot comment with its latency stamped now."""
        message, arrival = item
        if arrival is not None:
            latency = round((time.monotonic() - arrival) * 1000, 2)
            message = {**message, "latency_ms": latency}
        return json.dumps(message, ensure_ascii=False)

    def close(self, code: int | None, reason: str, drain: bool = False) -> None:
        if self.closing is not None:
            return
        self.closing = Close(code, reason, drain)
        self._ready.set()
        self._wake.set()
        self.closed.set()
        if self.on_close is not None:
            self.on_close(self)

    # -- tasks ---------------------------------------------------------------------------
    async def worker(self) -> None:
        """Run the session's generations, one at a time, until it closes."""
        while self.closing is None:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self.closing is None and self.session.want is not None:
                if not await self._generate():
                    return

    async def _generate(self) -> bool:
        """Run the waiting trigger's generation in this session's turn; False when the
        session had to be closed."""
        async with self._turns():
            job = self.session.next_job() if self.closing is None else None
            if job is None:
                return True
            try:
                generation = await run_on_model(
                    self.settings,
                    self.session.run,
                    job,
                    lock=self.state.knowledge_lock,
                    timeout_s=min(GENERATION_TIMEOUT_S, self.settings.timeout_s),
                )
            except TimeoutError:
                self.session.dropped["timeout"] += 1
                return True
            except UserError as e:
                self.put(LiveError("generation", str(e)).as_message())
                return True
            except Exception:
                log.exception("live session %s: generation failed", self.id)
                self.put(LiveError("internal", "generation failed").as_message())
                self.close(INTERNAL, "internal error", drain=True)
                return False
        if self.closing is not None:
            return True  # the session ended while it ran (its last message is out)
        emission = self.session.finish(job, generation)
        if emission is not None:
            self.put(emission.message, emission.arrival)
        return True

    async def watch(self) -> None:
        """Close a session whose client does not read; send stats now and then."""
        last_sent = time.monotonic()
        while self.closing is None:
            await anyio.sleep(WATCH_EVERY_S)
            now = time.monotonic()
            if self.full_since is not None and now - self.full_since > SLOW_CLIENT_S:
                self.close(POLICY_VIOLATION, "the client does not read its messages")
            elif now - last_sent >= STATS_EVERY_S:
                last_sent = now
                s = self.session
                counters = (s.received, s.generated, s.emitted, sum(s.dropped.values()))
                if counters != self.last_stats:
                    self.last_stats = counters
                    self.put(self.stats())


def _own_turns() -> Callable[[], anyio.CapacityLimiter]:
    """Turns for a runner outside :class:`LiveSessions` (made in the running event loop)."""
    made: list[anyio.CapacityLimiter] = []

    def turns() -> anyio.CapacityLimiter:
        if not made:
            made.append(anyio.CapacityLimiter(1))
        return made[0]

    return turns


class LiveSessions:
    """The app's live sessions (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.max_sessions = settings.live_max_sessions
        self.idle_s = 60.0  # an SSE session without reader and messages for this long ends
        self.keepalive_s = 15.0  # an SSE stream's comment line when nothing else is sent
        self.runners: dict[str, LiveRunner] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self.turns = _own_turns()  # one live generation at a time, in the order asked

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LiveSessions]:
        """The task group the SSE sessions run in, for the app's lifetime."""
        async with anyio.create_task_group() as group:
            self._group = group
            group.start_soon(self._reap)
            try:
                yield self
            finally:
                for runner in list(self.runners.values()):
                    runner.close(1001, "the server is shutting down")
                self._group = None
                group.cancel_scope.cancel()

    def open(self, state: ApiState, value: object, arrival: float) -> LiveRunner:
        """A session from a decoded ``start`` message (:class:`LiveError`: ``no_model``,
        ``busy``, ``unknown_video``, ``bad_message``, ``bad_policy``)."""
        from model.live_session import LiveSession

        if state.generator is None:
            raise LiveError("no_model", f"no model to comment with: {state.model.detail}")
        message = parse_message(value)
        if not isinstance(message, Start):
            raise LiveError("bad_message", "the first message must be a start message")
        if len(self.runners) >= self.max_sessions:
            raise LiveError(
                "busy", f"{self.max_sessions} live sessions are open (API_LIVE_MAX_SESSIONS)"
            )
        session_id = secrets.token_urlsafe(12)
        session = LiveSession.start(session_id, state.generator, message)
        runner = LiveRunner(session, state, state.settings, self.turns)
        runner.last_activity = arrival
        self.runners[session_id] = runner
        runner.on_close = self._closed
        return runner

    def _closed(self, runner: LiveRunner) -> None:
        self.runners.pop(runner.id, None)

    def start_background(self, runner: LiveRunner) -> None:
        """Run an SSE session's tasks in the app's task group until it closes."""
        if self._group is None:
            runner.close(INTERNAL, "the server is not running")
            raise LiveError("busy", "the server is starting or shutting down")
        runner.background = True
        self._group.start_soon(self._serve, runner)

    async def _serve(self, runner: LiveRunner) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(runner.worker)
            group.start_soon(runner.watch)
            await runner.closed.wait()
            group.cancel_scope.cancel()

    async def _reap(self) -> None:
        while True:
            await anyio.sleep(min(1.0, self.idle_s / 4))
            now = time.monotonic()
            for runner in list(self.runners.values()):
                idle = now - runner.last_activity > self.idle_s
                if runner.background and idle and not runner.reading:
                    log.info("live session %s: idle, closed", runner.id)
                    runner.close(1001, f"no event reader and no message for {self.idle_s:g} s")
