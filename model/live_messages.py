"""What a live session's client may send, and the session's policy knobs: parsed and checked
here, so a bad message is one clear error naming the field (protocol:
docs/data-contracts.md, section "Live sessions").

Every client message is a JSON object with a ``type``: ``start`` (a corpus video, or an ad-hoc
one by title), ``position`` (the playback position, in video seconds), ``comment`` (a viewer
comment), ``frames`` (one second's frame features), ``policy`` (new knob values), ``stats``
and ``stop``. Unknown types and fields are refused, not ignored, so a misspelt field
(``"postion"``) is an error rather than a message silently doing nothing. Numbers must be
JSON numbers (not ``true`` or ``"30"``) and finite.

The policy (:class:`Policy`) says when the bot may speak; its minute, gap and quiet period
are in video time, so a replay at 16x is held to the same comments per minute of video as
one at 1x (docs/architecture.md, section "API").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from common.errors import UserError

MAX_TITLE_CHARS = 200
MAX_COMMENT_CHARS = 500
MAX_SECONDS = 10**7  # longer than any video: a bound for the numbers, not a policy
MAX_BEAM = 10
MAX_PER_MINUTE = 600
MAX_POLICY_SECONDS = 3600.0


class LiveError(UserError):
    """A message the session cannot take: ``code`` (``bad_message``, ``bad_policy``, ...)
    and one line saying why. The connection goes on unless the caller decides otherwise."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail

    def as_message(self) -> dict:
        return {"type": "error", "code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class Policy:
    """When the bot may emit a comment (all times in video seconds)."""

    max_per_minute: int = 6  # comments in any 60 s of video (0: the bot stays silent)
    min_gap_s: float = 4.0  # between two of its comments
    min_score: float | None = None  # the beam's length-normalised log-prob; None: any
    quiet_after_seek_s: float = 3.0  # silence after a seek
    no_repeat: bool = True  # never a comment equal (normalised) to a recent one
    beam: int = 5  # beam size (1..10)

    def as_dict(self) -> dict:
        return asdict(self)

    def updated(self, knobs: dict) -> Policy:
        """This policy with ``knobs`` changed, all or none (else :class:`LiveError`)."""
        names = [f.name for f in fields(self)]
        unknown = sorted(set(knobs) - set(names))
        if unknown:
            raise LiveError(
                "bad_policy", f"unknown policy knob {unknown[0]!r} (knobs: {', '.join(names)})"
            )
        checked = {name: _knob(name, value) for name, value in knobs.items()}
        return replace(self, **checked)


def _knob(name: str, value: object) -> object:
    if name in ("max_per_minute", "beam"):
        lo, hi = (0, MAX_PER_MINUTE) if name == "max_per_minute" else (1, MAX_BEAM)
        number = _number(value, f"policy.{name}", "bad_policy")
        if number != int(number) or not lo <= number <= hi:
            raise LiveError("bad_policy", f"policy.{name} must be a whole number {lo}..{hi}")
        return int(number)
    if name == "no_repeat":
        if not isinstance(value, bool):
            raise LiveError("bad_policy", f"policy.no_repeat must be true or false, not {value!r}")
        return value
    if name == "min_score":
        return None if value is None else _number(value, "policy.min_score", "bad_policy")
    number = _number(value, f"policy.{name}", "bad_policy")
    if not 0 <= number <= MAX_POLICY_SECONDS:
        raise LiveError("bad_policy", f"policy.{name} must be 0..{MAX_POLICY_SECONDS:g} seconds")
    return float(number)


def _number(value: object, where: str, code: str = "bad_message") -> float:
    """A finite JSON number (a bool or a string is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LiveError(code, f"{where} must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise LiveError(code, f"{where} must be a finite number")
    return value


def _seconds(value: object, where: str) -> float:
    t = _number(value, where)
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
    "policy": ((), tuple(f.name for f in fields(Policy))),
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
        _number(x, f"features[{i}]", "bad_frames")
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
