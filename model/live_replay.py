"""A corpus video replayed against the live endpoint (``/live``, a WebSocket), as a viewer's
player would feed it: the library behind ``python -m model.live`` and
``bench/live_latency.py`` (protocol: docs/data-contracts.md, section "Live sessions").

The replay is a list of cues (:func:`replay_cues`): a ``position`` tick every
:data:`TICK_S` video seconds and each viewer comment of the video at its second, from
``start_s`` for ``seconds``. They are sent at wall time (video time - start) / speed after the
session opens, whatever the server is doing (an open loop: a slow server is not hidden by a
client that waits for it).

A bot comment answers one message, its trigger: a viewer comment, or a position tick that
fires a comment the policy held back (a gap, the rate). The server coalesces triggers that
come while it generates (the latest wins) and stamps each bot comment with ``latency_ms``,
from reading its trigger to sending it. The client's latency runs from just before the
trigger was sent to just after the comment was read, adding the sockets, the messages the
server had not read yet and both event loops: the end-to-end figure a viewer sees. The
protocol carries no message ids, so the trigger is found by time (:class:`SentLog`): the
latest message of its kind sent before ``received - latency_ms`` (the server cannot have read
a later one), and of messages sent together, the first one not matched yet. A message sent
while the comment travelled back can be taken for its trigger; on loopback that window is
well under a millisecond unless the client's own loop is busy.

After the last cue the client waits for generations still running (:func:`_settle`), sends
``stop`` and reads until the server closes, keeping its final ``stats`` (received,
generated, emitted, dropped by reason).

Whether a bot comment states a fact is read two ways: the model drew on a fact (``facts``
lists one with copy mass above zero, as the copy path does for nearly every comment) and the
text says it (the comment contains the tail of one of its facts, spaces aside, at least two
characters long).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from bisect import bisect_right
from dataclasses import asdict, dataclass, field

from model.data.schema import Video

TICK_S = 1.0  # video seconds between position ticks
#: ``latency_ms`` is rounded and the two clocks are read apart: a trigger may seem sent this
#: much after ``received - latency_ms``.
MATCH_SLACK_S = 0.001
BURST_S = 0.002  # messages sent this close together were sent as one burst
SETTLE_S = 0.5  # after the last cue, stop once no comment has come for this long ...
SETTLE_LATENCIES = 2  # ... or for this many times the slowest server latency seen
MAX_SETTLE_S = 10.0  # the server gives up on a generation after 10 s
STOP_TIMEOUT_S = 60.0  # the wait for the server to finish and close after ``stop``
OPEN_TIMEOUT_S = 30.0
MIN_TAIL_CHARS = 2


@dataclass(frozen=True)
class Cue:
    t: float  # video second
    kind: str  # "position" | "comment"
    text: str = ""

    def message(self) -> dict:
        if self.kind == "position":
            return {"type": "position", "t": round(self.t, 3)}
        return {"type": "comment", "text": self.text, "t": round(self.t, 3)}


def replay_cues(
    video: Video, start_s: float = 0.0, seconds: float | None = None, tick_s: float = TICK_S
) -> list[Cue]:
    """Position ticks and viewer comments of ``video`` in [start_s, start_s + seconds) (to its
    end when ``seconds`` is None), in time order, a tick before a comment of the same time."""
    end = video.duration_s if seconds is None else min(video.duration_s, start_s + seconds)
    ticks = [Cue(start_s + k * tick_s, "position") for k in range(int((end - start_s) / tick_s))]
    comments = [
        Cue(c.time_s, "comment", c.text) for c in video.comments if start_s <= c.time_s < end
    ]
    return sorted(ticks + comments, key=lambda c: (c.t, c.kind != "position"))


def stated_fact(text: str, facts: list[dict]) -> dict | None:
    """The first of ``facts`` whose tail ``text`` contains (spaces aside; tails of at least
    :data:`MIN_TAIL_CHARS` characters), else None."""
    text = text.replace(" ", "")
    for fact in facts:
        tail = str(fact.get("tail", "")).replace(" ", "")
        if len(tail) >= MIN_TAIL_CHARS and tail in text:
            return fact
    return None


@dataclass
class BotComment:
    seq: int | None
    t: float  # the video second it is for
    text: str
    score: float | None
    copied: float | None
    facts: list[dict]  # {"head", "relation", "tail", "mass"}
    trigger: str  # "comment" | "position"
    server_ms: float | None  # the server's latency_ms
    client_ms: float | None  # from sending the trigger to reading this (None: not matched)
    at_s: float  # wall seconds from the session's start to reading it
    received: float = field(default=0.0, repr=False)  # perf_counter when read

    @property
    def drew_on_fact(self) -> bool:
        return any((f.get("mass") or 0) > 0 for f in self.facts)

    @property
    def states_fact(self) -> bool:
        return stated_fact(self.text, self.facts) is not None

    def as_dict(self) -> dict:
        out = asdict(self)
        del out["received"]
        out |= {"drew_on_fact": self.drew_on_fact, "states_fact": self.states_fact}
        return out


@dataclass
class SentLog:
    """When each message of one kind was sent (perf_counter seconds), in order."""

    times: list[float] = field(default_factory=list)
    used: set[int] = field(default_factory=set)

    def add(self, at: float) -> None:
        self.times.append(at)

    def match(self, before: float) -> float | None:
        """The send time of the latest message sent by ``before`` and not matched yet; of
        messages sent together (within :data:`BURST_S`, as a second's comments are) the first
        unmatched one, since the server takes them in order."""
        i = bisect_right(self.times, before) - 1
        while i >= 0 and i in self.used:
            i -= 1
        if i < 0:
            return None
        while i > 0 and i - 1 not in self.used and self.times[i] - self.times[i - 1] <= BURST_S:
            i -= 1
        self.used.add(i)
        return self.times[i]


@dataclass
class Replay:
    """What one session's replay sent and received."""

    video: str
    speed: float
    start_s: float
    seconds: float  # video seconds replayed
    session: dict = field(default_factory=dict)  # the server's answer to ``start``
    comments: list[BotComment] = field(default_factory=list)
    stats: dict | None = None  # the server's last stats
    errors: list[dict] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=lambda: {"position": 0, "comment": 0})
    close_code: int | None = None
    close_reason: str = ""
    wall_s: float = 0.0
    late_s: float = 0.0  # the most a cue was sent after its due time (a busy client)


class SessionFailed(Exception):
    """The server refused or closed the session: its close code (None: it answered an error)
    and the reason."""

    def __init__(self, code: int | None, reason: str) -> None:
        if code is None:
            super().__init__(f"the server refused the session ({reason})")
        else:
            super().__init__(f"the server closed the session ({code}{': ' * bool(reason)}{reason})")
        self.code, self.reason = code, reason


async def replay(
    url: str,
    video: str,
    cues: list[Cue],
    speed: float = 1.0,
    policy: dict | None = None,
    api_key: str | None = None,
    start_s: float = 0.0,
    seconds: float | None = None,
) -> Replay:
    """Open a ``/live`` session at ``url`` (``ws://host:port``) for corpus ``video``, send
    ``cues`` at (t - start_s) / speed wall seconds, let the last generations arrive, stop, and
    return what came back; ``seconds``: the video seconds the cues cover (default: to the
    last cue). :class:`SessionFailed` when the server refuses the session."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    if seconds is None:
        seconds = (cues[-1].t - start_s + TICK_S) if cues else 0.0
    result = Replay(video, speed, start_s, seconds)
    logs = {"position": SentLog(), "comment": SentLog()}
    headers = {"X-API-Key": api_key} if api_key else None
    start = {"type": "start", "video": video} | ({"policy": policy} if policy else {})
    async with connect(
        f"{url.rstrip('/')}/live", additional_headers=headers, open_timeout=OPEN_TIMEOUT_S
    ) as ws:
        with contextlib.suppress(ConnectionClosed):  # refused at once: read why below
            await ws.send(json.dumps(start, ensure_ascii=False))
        result.session = await _first_answer(ws)
        began = time.perf_counter()
        reader = asyncio.create_task(_read(ws, result, logs, began))
        try:
            await _send_cues(ws, cues, result, logs, began, reader)
            await asyncio.wait_for(asyncio.shield(reader), STOP_TIMEOUT_S)
        except TimeoutError:
            detail = f"the server did not close the session {STOP_TIMEOUT_S:g} s after stop"
            result.errors.append({"type": "error", "code": "client_timeout", "detail": detail})
        finally:
            reader.cancel()
        result.wall_s = time.perf_counter() - began
    result.close_code, result.close_reason = ws.close_code, ws.close_reason or ""
    return result


async def _send_cues(
    ws, cues: list[Cue], result: Replay, logs: dict[str, SentLog], began: float, reader
) -> None:
    """Each cue at its due time, then ``stop``; nothing more once the server has closed."""
    from websockets.exceptions import ConnectionClosed

    try:
        for cue in cues:
            due = began + (cue.t - result.start_s) / result.speed
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if reader.done():  # the server closed the session
                return
            result.late_s = max(result.late_s, time.perf_counter() - due)
            logs[cue.kind].add(time.perf_counter())
            await ws.send(json.dumps(cue.message(), ensure_ascii=False))
            result.sent[cue.kind] += 1
        await _settle(result, reader)
        await ws.send(json.dumps({"type": "stop"}))
    except ConnectionClosed:
        return


async def _settle(result: Replay, reader) -> None:
    """Wait for generations still running: until no bot comment has come for
    :data:`SETTLE_S`, or twice the slowest server latency seen (at most
    :data:`MAX_SETTLE_S`): ``stop`` ends the session without them."""
    slowest = max((c.server_ms or 0.0 for c in result.comments), default=0.0) / 1000
    settle = min(MAX_SETTLE_S, max(SETTLE_S, SETTLE_LATENCIES * slowest))
    quiet_since = time.perf_counter()
    while not reader.done():
        last = result.comments[-1].received if result.comments else 0.0
        waited = time.perf_counter() - max(quiet_since, last)
        if waited >= settle:
            return
        await asyncio.sleep(settle - waited)


async def _first_answer(ws) -> dict:
    """The ``session`` message; an error (a bad policy ...) or a close instead is
    :class:`SessionFailed`: the replay has no other start to send."""
    from websockets.exceptions import ConnectionClosed

    try:
        msg = json.loads(await ws.recv())
    except ConnectionClosed:
        raise SessionFailed(ws.close_code, ws.close_reason or "") from None
    if msg.get("type") == "session":
        return msg
    if msg.get("type") == "error":
        raise SessionFailed(None, f"{msg.get('code')}: {msg.get('detail')}")
    raise SessionFailed(None, f"answered {json.dumps(msg, ensure_ascii=False)[:200]} to start")


async def _read(ws, result: Replay, logs: dict[str, SentLog], began: float) -> None:
    """Every message until the server closes: comments matched to their triggers, stats,
    errors."""
    from websockets.exceptions import ConnectionClosed

    try:
        async for raw in ws:
            received = time.perf_counter()
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "comment":
                result.comments.append(_bot_comment(msg, received, logs, began))
            elif kind == "stats":
                result.stats = msg
            elif kind == "error":
                result.errors.append(msg)
    except ConnectionClosed:
        pass


def _bot_comment(msg: dict, received: float, logs: dict[str, SentLog], began: float) -> BotComment:
    trigger = msg.get("trigger") or "comment"
    server_ms = msg.get("latency_ms")
    before = received - (server_ms or 0.0) / 1000 + MATCH_SLACK_S
    sent = logs[trigger].match(before) if trigger in logs else None
    return BotComment(
        seq=msg.get("seq"),
        t=msg.get("t"),
        text=msg.get("text", ""),
        score=msg.get("score"),
        copied=msg.get("copied"),
        facts=list(msg.get("facts") or []),
        trigger=trigger,
        server_ms=server_ms,
        client_ms=None if sent is None else round((received - sent) * 1000, 3),
        at_s=round(received - began, 4),
        received=received,
    )


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (as ``bench/api_load.py``); None for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


def latency_summary(values: list[float]) -> dict:
    def r(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    return {
        "n": len(values),
        "p50_ms": r(percentile(values, 0.50)),
        "p99_ms": r(percentile(values, 0.99)),
        "max_ms": r(max(values, default=None)),
    }


def latencies(comments: list[BotComment]) -> dict:
    """p50/p99/max of the client's and the server's latency over ``comments``."""
    return {
        "client": latency_summary([c.client_ms for c in comments if c.client_ms is not None]),
        "server": latency_summary([c.server_ms for c in comments if c.server_ms is not None]),
    }


def summarise(result: Replay) -> dict:
    """The report's figures: latencies (client and server, over every bot comment, and by
    what triggered it), bot comments per minute of video, how many state a fact, the
    server's counts."""
    stats = result.stats or {}
    minutes = result.seconds / 60
    triggers = sorted({c.trigger for c in result.comments} | {"comment", "position"})
    return {
        "video": result.video,
        "session": result.session.get("session"),
        "policy": result.session.get("policy"),
        "speed": result.speed,
        "from_s": result.start_s,
        "seconds": round(result.seconds, 3),
        "wall_s": round(result.wall_s, 3),
        "sent": dict(result.sent),
        "bot_comments": len(result.comments),
        "comments_per_minute": round(len(result.comments) / minutes, 2) if minutes else None,
        "latency": latencies(result.comments),
        "latency_by_trigger": {
            kind: latencies([c for c in result.comments if c.trigger == kind]) for kind in triggers
        },
        "triggers": {kind: sum(c.trigger == kind for c in result.comments) for kind in triggers},
        "drew_on_fact": sum(c.drew_on_fact for c in result.comments),
        "states_fact": sum(c.states_fact for c in result.comments),
        "received": stats.get("received"),
        "generated": stats.get("generated"),
        "emitted": stats.get("emitted"),
        "dropped": stats.get("dropped", {}),
        "errors": result.errors,
        "close_code": result.close_code,
        "close_reason": result.close_reason,
        "late_s": round(result.late_s, 4),
        "comments": [c.as_dict() for c in result.comments],
    }
