"""A corpus video replayed against the live endpoint (``/live``, a WebSocket), as a viewer's
player would feed it: the library behind ``python -m model.live`` and
``bench/live_latency.py``.

The replay is a list of cues (:func:`replay_cues`): a ``position`` tick every
:data:`TICK_S` video seconds and each viewer comment of the video at its second, from
``start_s`` for ``seconds``. They are sent at wall time (video time - start) / speed after the
session opens, whatever the server is doing (an open loop: a slow server is not hidden by a
client that waits for it). Every bot comment the server sends is kept with two latencies:
the server's own (``latency_ms``: from reading the triggering message to sending the comment)
and the client's, from just before the triggering message was sent to just after the comment
was read, which adds the socket, the queue of messages the server has not read yet, and both
event loops; it is the end-to-end figure a viewer sees. After the last cue the client asks
for ``stop`` and keeps reading until the server closes, so comments still being generated are
counted, with the server's final ``stats`` (received, generated, emitted, dropped by reason).

Whether a bot comment states a fact is read two ways: the model drew on a fact (``facts``
lists one with copy mass above zero) and the text says it (the comment contains the tail of
one of its facts, spaces aside, at least two characters long).
"""

from __future__ import annotations

import asyncio
import json
import time
from bisect import bisect_right
from dataclasses import asdict, dataclass, field

from model.data.schema import Video

TICK_S = 1.0  # video seconds between position ticks
#: The server reads a message after it arrives; a comment it began on can have been sent a
#: moment after ``received - latency_ms`` by the client's clock.
MATCH_SLACK_S = 0.005
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

    @property
    def drew_on_fact(self) -> bool:
        return any((f.get("mass") or 0) > 0 for f in self.facts)

    @property
    def states_fact(self) -> bool:
        text = self.text.replace(" ", "")
        tails = (str(f.get("tail", "")).replace(" ", "") for f in self.facts)
        return any(len(tail) >= MIN_TAIL_CHARS and tail in text for tail in tails)

    def as_dict(self) -> dict:
        out = asdict(self)
        out |= {"drew_on_fact": self.drew_on_fact, "states_fact": self.states_fact}
        return out


@dataclass
class SentLog:
    """When each message of one kind was sent (perf_counter seconds), by its video second."""

    times: list[float] = field(default_factory=list)
    by_t: dict[float, list[int]] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)

    def add(self, t: float, at: float) -> None:
        self.by_t.setdefault(round(t, 3), []).append(len(self.times))
        self.times.append(at)

    def match(self, t: float | None, before: float) -> float | None:
        """The send time of the message a bot comment for second ``t`` answers: the first
        one not matched yet sent for that second (those of one second are sent together),
        else the latest one sent by ``before`` (when the server began on it)."""
        same = [] if t is None else self.by_t.get(round(t, 3), [])
        i = next((i for i in same if i not in self.used), None)
        if i is None:
            i = bisect_right(self.times, before) - 1
            while i >= 0 and i in self.used:
                i -= 1
        if i is None or i < 0:
            return None
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
    """The server refused or closed the session (its close code and reason)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"the server closed the session ({code}{': ' + reason if reason else ''})")
        self.code, self.reason = code, reason


async def replay(
    url: str,
    video: str,
    cues: list[Cue],
    speed: float = 1.0,
    policy: dict | None = None,
    api_key: str | None = None,
    start_s: float = 0.0,
) -> Replay:
    """Open a ``/live`` session at ``url`` (``ws://host:port``) for corpus ``video``, send
    ``cues`` at (t - start_s) / speed wall seconds, stop, and return what came back.
    :class:`SessionFailed` when the server refuses the session."""
    from websockets.asyncio.client import connect

    seconds = (cues[-1].t - start_s + TICK_S) if cues else 0.0
    result = Replay(video, speed, start_s, seconds)
    logs = {"position": SentLog(), "comment": SentLog()}
    headers = {"X-API-Key": api_key} if api_key else None
    start = {"type": "start", "video": video} | ({"policy": policy} if policy else {})
    async with connect(
        f"{url.rstrip('/')}/live", additional_headers=headers, open_timeout=OPEN_TIMEOUT_S
    ) as ws:
        await ws.send(json.dumps(start, ensure_ascii=False))
        result.session = await _first_answer(ws)
        began = time.perf_counter()
        reader = asyncio.create_task(_read(ws, result, logs, began))
        try:
            await _send_cues(ws, cues, result, logs, began, reader)
            await asyncio.wait_for(asyncio.shield(reader), STOP_TIMEOUT_S)
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
            logs[cue.kind].add(cue.t, time.perf_counter())
            await ws.send(json.dumps(cue.message(), ensure_ascii=False))
            result.sent[cue.kind] += 1
        await ws.send(json.dumps({"type": "stop"}))
    except ConnectionClosed:
        return


async def _first_answer(ws) -> dict:
    """The ``session`` message; an error or a close instead is :class:`SessionFailed`."""
    from websockets.exceptions import ConnectionClosed

    detail = ""
    try:
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("type") == "session":
                return msg
            if msg.get("type") == "error":
                detail = msg.get("detail") or msg.get("code") or ""
    except ConnectionClosed:
        raise SessionFailed(ws.close_code, detail or ws.close_reason or "") from None


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
    t = msg.get("t")
    sent = logs[trigger].match(t, before) if trigger in logs else None
    return BotComment(
        seq=msg.get("seq"),
        t=t,
        text=msg.get("text", ""),
        score=msg.get("score"),
        copied=msg.get("copied"),
        facts=list(msg.get("facts") or []),
        trigger=trigger,
        server_ms=server_ms,
        client_ms=None if sent is None else round((received - sent) * 1000, 3),
        at_s=round(received - began, 4),
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


def summarise(result: Replay) -> dict:
    """The report's figures: latencies (client and server, over comment-triggered bot
    comments, and over all), comments per minute of video, how many state a fact, the
    server's counts."""
    by_comment = [c for c in result.comments if c.trigger == "comment"]
    stats = result.stats or {}
    minutes = result.seconds / 60
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
        "latency": {
            "client": latency_summary([c.client_ms for c in by_comment if c.client_ms is not None]),
            "server": latency_summary([c.server_ms for c in by_comment if c.server_ms is not None]),
        },
        "latency_all_triggers": {
            "client": latency_summary(
                [c.client_ms for c in result.comments if c.client_ms is not None]
            ),
            "server": latency_summary(
                [c.server_ms for c in result.comments if c.server_ms is not None]
            ),
        },
        "triggers": {
            kind: sum(c.trigger == kind for c in result.comments)
            for kind in sorted({c.trigger for c in result.comments} | {"comment", "position"})
        },
        "drew_on_fact": sum(c.drew_on_fact for c in result.comments),
        "states_fact": sum(c.states_fact for c in result.comments),
        "received": stats.get("received"),
        "generated": stats.get("generated"),
        "emitted": stats.get("emitted"),
        "dropped": stats.get("dropped", {}),
        "errors": result.errors,
        "close_code": result.close_code,
        "late_s": round(result.late_s, 4),
        "comments": [c.as_dict() for c in result.comments],
    }
