"""When a live session's bot may speak: the policy knobs and what they read of its past
(protocol: docs/data-contracts.md, section "Live sessions").

The knobs are per session: at most ``max_per_minute`` comments in any minute, ``min_gap_s``
between two, none for ``quiet_after_seek_s`` after a seek, none below ``min_score`` (the
beam's length-normalised log-probability), none equal to a recent comment (``no_repeat``),
and the ``beam`` searched. The minute, the gap and the quiet period are in video time, not
wall time: a replay at 16x is held to the same comments per minute of video as one at 1x,
where a wall-clock limit would silence the bot for most of the video.

A comment repeats another when both are equal after :func:`normalised` (NFKC, lower case,
spaces and punctuation dropped: ``哈哈哈！`` is ``哈哈 哈``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import deque
from dataclasses import asdict, dataclass, fields, replace

from model.live_messages import LiveError, number

MAX_BEAM = 10
MAX_PER_MINUTE = 600
MAX_POLICY_SECONDS = 3600.0
MINUTE_S = 60.0
MAX_SAID = 600  # the bot's comments remembered: more than any minute may hold


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
        whole = number(value, f"policy.{name}", "bad_policy")
        if whole != int(whole) or not lo <= whole <= hi:
            raise LiveError("bad_policy", f"policy.{name} must be a whole number {lo}..{hi}")
        return int(whole)
    if name == "no_repeat":
        if not isinstance(value, bool):
            raise LiveError("bad_policy", f"policy.no_repeat must be true or false, not {value!r}")
        return value
    if name == "min_score":
        return None if value is None else number(value, "policy.min_score", "bad_policy")
    seconds = number(value, f"policy.{name}", "bad_policy")
    if not 0 <= seconds <= MAX_POLICY_SECONDS:
        raise LiveError("bad_policy", f"policy.{name} must be 0..{MAX_POLICY_SECONDS:g} seconds")
    return float(seconds)


def normalised(text: str) -> str:
    """``text`` as the repeat check compares it: NFKC, lower case, no spaces or punctuation
    (a text of nothing else is kept, less its spaces)."""
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZSC")
    return kept or re.sub(r"\s+", "", text)


class Voice:
    """What the policy reads of the bot's past: its comments (second, normalised text) and
    the end of the quiet period, both in video seconds."""

    def __init__(self) -> None:
        self.said: deque[tuple[int, str]] = deque(maxlen=MAX_SAID)
        self.quiet_until = -math.inf

    def held_back(self, policy: Policy, t: int, position: float) -> str | None:
        """Why a comment for second ``t`` may not go out at ``position`` (None: it may)."""
        if position < self.quiet_until:
            return "quiet"
        if self.said and t - self.said[-1][0] < policy.min_gap_s:
            return "gap"
        if sum(1 for s, _ in self.said if s > t - MINUTE_S) >= policy.max_per_minute:
            return "rate"
        return None

    def said_since(self, start: float) -> set[str]:
        return {text for s, text in self.said if s > start}

    def say(self, t: int, text: str) -> None:
        self.said.append((t, normalised(text)))

    def seek(self, t: float, policy: Policy) -> None:
        """After a seek to ``t``: quiet for a while, and its earlier comments no longer count
        (after a seek back they would lie in the future)."""
        self.said.clear()
        self.quiet_until = t + policy.quiet_after_seek_s
