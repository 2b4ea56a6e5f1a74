"""What a live session's client may send, parsed and checked here, so a bad message is one
clear error naming the field (protocol: docs/data-contracts.md, section "Live sessions").

Every client message is a JSON object with a ``type``: ``start`` (a corpus video, or an ad-hoc
one by title), ``position`` (the playback position, in video seconds), ``comment`` (a viewer
comment), ``frames`` (one second's frame features), ``policy`` (new knob values), ``stats``
and ``stop``. Unknown types and fields are refused, not ignored, so a misspelt field
(``"postion"``) is an error rather than a message silently doing nothing. Numbers must be
JSON numbers (not ``true`` or ``"30"``) and finite.

A ``policy`` message changes the knobs of :class:`model.live_policy.Policy` (checked there,
all or none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.errors import UserError

MAX_TITLE_CHARS = 200
MAX_COMMENT_CHARS = 500
MAX_SECONDS = 10**7  # longer than any video: a bound for the numbers, not a policy

#: The knobs of :class:`model.live_policy.Policy` (a ``policy`` message's fields).
POLICY_KNOBS = (
    "max_per_minute",
    "min_gap_s",
    "min_score",
    "quiet_after_seek_s",
    "no_repeat",
    "beam",
)


class LiveError(UserError):
    """A message the session cannot take: ``code`` (``bad_message``, ``bad_policy``, ...)
    and one line saying why. The connection goes on unless the caller decides otherwise."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail

    def as_message(self) -> dict:
        return {"type": "error", "code": self.code, "detail": self.detail}


def number(value: object, where: str, code: str = "bad_message") -> float:
    """A finite JSON number (a bool or a string is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LiveError(code, f"{where} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise LiveError(code, f"{where} must be a finite number")
    return value


def _seconds(value: object, where: str) -> float:
    t = number(value, where)
    if not 0 <= t <= MAX_SECONDS:
        raise LiveError("bad_message", f"{where} must be 0..{MAX_SECONDS} seconds, got {t:g}")
    return float(t)


def _text(value: object, where: str, most: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LiveError("bad_message", f"{where} must be a non-empty string")
    if len(value) > most:
        raise LiveError("bad_message", f"{where} is longer than {most} characters")
    return value


@dataclass(frozen=True)
class Start:
    video: str | None  # a corpus video's id, or None for an ad-hoc video
    title: str | None  # the ad-hoc video's title (its id too)
    duration_s: float | None
    policy: dict


@dataclass(frozen=True)
class Position:
    t: float


@dataclass(frozen=True)
class ViewerComment:
    text: str
    t: float | None  # None: the session's current position


@dataclass(frozen=True)
class Frames:
    t: int
    features: list[float]


@dataclass(frozen=True)
class PolicyUpdate:
    knobs: dict


@dataclass(frozen=True)
class StatsRequest:
    pass


@dataclass(frozen=True)
class Stop:
    pass


Message = Start | Position | ViewerComment | Frames | PolicyUpdate | StatsRequest | Stop

#: type -> (required fields, optional fields); ``policy`` takes the knobs as its fields.
FIELDS = {
    "start": ((), ("video", "title", "duration_s", "policy")),
    "position": (("t",), ()),
    "comment": (("text",), ("t",)),
    "frames": (("t", "features"), ()),
    "policy": ((), POLICY_KNOBS),
    "stats": ((), ()),
    "stop": ((), ()),
}


def parse_message(value: object) -> Message:
    """The client message ``value`` (decoded JSON) as its type, or :class:`LiveError`."""
    if not isinstance(value, dict):
        raise LiveError("bad_message", "a message must be a JSON object with a 'type'")
    kind = value.get("type")
    if kind not in FIELDS:
        known = ", ".join(FIELDS)
        raise LiveError("bad_message", f"unknown message type {kind!r} (types: {known})")
    required, optional = FIELDS[kind]
    missing = [f for f in required if f not in value]
    if missing:
        raise LiveError("bad_message", f"a {kind} message needs {missing[0]!r}")
    extra = sorted(set(value) - {"type", *required, *optional})
    if extra:
        code = "bad_policy" if kind == "policy" else "bad_message"
        raise LiveError(code, f"unknown field {extra[0]!r} in a {kind} message")
    return _PARSERS[kind](value)


def _start(m: dict) -> Start:
    video, title = m.get("video"), m.get("title")
    if (video is None) == (title is None):
        raise LiveError("bad_message", "a start message names a 'video' (id) or a 'title'")
    if video is not None:
        video = _text(video, "video", MAX_TITLE_CHARS)
        if "duration_s" in m:
            raise LiveError("bad_message", "duration_s is for an ad-hoc video (by title)")
    if title is not None:
        title = _text(title, "title", MAX_TITLE_CHARS).strip()
    duration = m.get("duration_s")
    if duration is not None:
        duration = _seconds(duration, "duration_s")
        if duration <= 0:
            raise LiveError("bad_message", "duration_s must be positive")
    policy = m.get("policy", {})
    if not isinstance(policy, dict):
        raise LiveError("bad_policy", "policy must be an object of knobs")
    return Start(video, title, duration, policy)


def _frames(m: dict) -> Frames:
    t = _seconds(m["t"], "t")
    features = m["features"]
    if not isinstance(features, list) or not features:
        raise LiveError("bad_frames", "features must be a non-empty list of numbers")
    for i, x in enumerate(features):
        number(x, f"features[{i}]", "bad_frames")
    return Frames(int(t), features)


_PARSERS = {
    "start": _start,
    "position": lambda m: Position(_seconds(m["t"], "t")),
    "comment": lambda m: ViewerComment(
        _text(m["text"], "text", MAX_COMMENT_CHARS),
        _seconds(m["t"], "t") if m.get("t") is not None else None,
    ),
    "frames": _frames,
    "policy": lambda m: PolicyUpdate({k: v for k, v in m.items() if k != "type"}),
    "stats": lambda m: StatsRequest(),
    "stop": lambda m: Stop(),
}
