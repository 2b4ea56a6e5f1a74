"""Recall for a live session: :func:`retrieval.recall.recall` over comments that arrive one by
one, doing only the work the new ones add (design: docs/architecture.md, section "API").

A live session (:mod:`model.live_session`) receives the comments viewers post as they arrive
and asks, second after second, what KLVCG's window [t-l, t+l] recalls (§IV-B). Calling
:func:`~retrieval.recall.recall` on everything received each time would scan every comment
for entity names again and embed and search the other-video query again. Instead:

- :class:`LiveComments` holds the comments sorted by time and scans each for entity mentions
  once, when it arrives: a new comment re-links only its own text. Of the comments before
  the window (the history) the linker reads only those that name an entity (the video's
  topic, :mod:`retrieval.linker`), so a comment that names none is kept only while the window
  or the session's repeat check may still read it (:meth:`LiveComments.prune`); the named
  ones stay, all of them capped in number (the earliest dropped, counted). Memory per session
  is therefore bounded whatever the length of the video.
- :class:`LiveRecall` recombines the window's facts from the cached mentions (the linker's
  own caches hold the entities' facts), answers again from memory when neither the comments
  nor t changed, and embeds and searches the other-video query only when its units (the
  names and keywords the window holds, :func:`retrieval.recall.ac_units`) change.

The answer is the one :func:`~retrieval.recall.recall` gives for a video holding every
comment received (tested): the history's comments without a mention contribute nothing to it.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from model.data.schema import Comment
from retrieval.comment_index import CommentIndex, Hit
from retrieval.linker import Linker
from retrieval.recall import DEFAULT_K_COMMENTS, Knowledge, ac_units, query_vectors

#: Versions of every :class:`LiveComments` come from one counter, so a version names one
#: state of one session's comments (the key of :class:`LiveRecall`'s memory).
_versions = itertools.count(1)


@dataclass(frozen=True)
class CommentsSnapshot:
    """The comments of a :class:`LiveComments` at one version, safe to read in another thread."""

    version: int
    comments: list[Comment]  # sorted by time, ties in arrival order
    times: list[float]
    named: list[Comment]  # those that name an entity, in the same order
    named_times: list[float]

    def between(self, start_s: float, end_s: float) -> list[Comment]:
        """The comments with ``start_s <= time_s < end_s``."""
        return self.comments[bisect_left(self.times, start_s) : bisect_left(self.times, end_s)]

    def window(self, t: int, radius: int) -> list[Comment]:
        """The comments of [t-l, t+l] except second t (:func:`retrieval.window.window_of`)."""
        return [c for c in self.between(t - radius, t + radius + 1) if c.second != t]

    def history(self, t: int, radius: int) -> list[Comment]:
        """The comments before the window that name an entity: all the linker reads of it."""
        return self.named[: bisect_left(self.named_times, t - radius)]


class LiveComments:
    """A session's comments, sorted by time (ties in arrival order), each scanned for entity
    mentions once; at most ``max_comments`` (the earliest dropped first)."""

    def __init__(self, linker: Linker, max_comments: int) -> None:
        self.linker, self.max_comments = linker, max_comments
        self._entries: list[tuple[float, int, Comment, bool]] = []  # (time, arrival, c, named)
        self._arrivals = itertools.count()
        self.version = next(_versions)
        self._snapshot: CommentsSnapshot | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def _changed(self) -> None:
        self.version, self._snapshot = next(_versions), None

    def add(self, comment: Comment) -> int:
        """Hold ``comment``; returns how many of the earliest were dropped to stay in the cap."""
        named = bool(self.linker.mentions(comment.text))
        insort(self._entries, (comment.time_s, next(self._arrivals), comment, named))
        over = max(0, len(self._entries) - self.max_comments)
        del self._entries[:over]
        self._changed()
        return over

    def prune(self, before: float) -> int:
        """Forget the comments before ``before`` that name no entity (recall no longer reads
        them); returns how many. Not a loss: the answer of recall is the same without them."""
        keep = [e for e in self._entries if e[3] or e[0] >= before]
        gone = len(self._entries) - len(keep)
        if gone:
            self._entries = keep
            self._changed()
        return gone

    def drop_from(self, t: float) -> int:
        """Drop the comments at ``t`` or later (after a seek back to ``t``); returns how many."""
        cut = bisect_left(self._entries, (t, -1))
        gone = len(self._entries) - cut
        if gone:
            del self._entries[cut:]
            self._changed()
        return gone

    def between(self, start_s: float, end_s: float) -> Iterable[Comment]:
        """The held comments with ``start_s <= time_s < end_s``."""
        lo, hi = bisect_left(self._entries, (start_s, -1)), bisect_left(self._entries, (end_s, -1))
        return (e[2] for e in self._entries[lo:hi])

    def snapshot(self) -> CommentsSnapshot:
        if self._snapshot is None:
            comments = [e[2] for e in self._entries]
            named = [e[2] for e in self._entries if e[3]]
            self._snapshot = CommentsSnapshot(
                self.version,
                comments,
                [c.time_s for c in comments],
                named,
                [c.time_s for c in named],
            )
        return self._snapshot


class LiveRecall:
    """:func:`retrieval.recall.recall` for one live video over :class:`CommentsSnapshot`\\ s.

    Not thread-safe: one session asks one question at a time (its generations do not overlap).
    """

    #: Answers and other-video searches remembered (the latest).
    MEMORY = 32

    def __init__(
        self,
        linker: Linker,
        index: CommentIndex | None,
        video_id: str,
        title: str,
        keywords: set[str] | frozenset[str] = frozenset(),
        k_comments: int = DEFAULT_K_COMMENTS,
    ) -> None:
        self.linker, self.index = linker, index
        self.video_id, self.title, self.keywords = video_id, title, set(keywords)
        self.k_comments = k_comments
        self._answers: OrderedDict[tuple[int, int], Knowledge] = OrderedDict()
        self._searches: OrderedDict[tuple[str, ...], list[Hit]] = OrderedDict()

    def recall(self, comments: CommentsSnapshot, t: int) -> Knowledge:
        """Facts and other-video comments for the window of second ``t``."""
        key = (comments.version, int(t))
        known = _remembered(self._answers, key)
        if known is None:
            radius = self.linker.config.radius
            window = comments.window(t, radius)
            facts = self.linker.link(window, comments.history(t, radius), t, self.title)
            hits = self._other_comments(ac_units(window, t, self.linker, self.keywords))
            known = _remember(self._answers, key, Knowledge(self.video_id, int(t), facts, hits))
        return Knowledge(known.video, known.t, list(known.facts), list(known.comments))

    def _other_comments(self, units: list[str]) -> list[Hit]:
        """The other videos' comments for the query made of ``units``, as recall searches."""
        if self.index is None or not units:
            return []
        key = tuple(units)
        hits = _remembered(self._searches, key)
        if hits is None:
            (hits,) = self.index.search(
                query_vectors(self.index, [units]),
                k=self.k_comments,
                exclude_video=[self.video_id],
                distinct=True,
            )
            _remember(self._searches, key, hits)
        return hits


def _remembered(memory: OrderedDict, key):
    value = memory.get(key)
    if value is not None:
        memory.move_to_end(key)
    return value


def _remember(memory: OrderedDict, key, value):
    memory[key] = value
    while len(memory) > LiveRecall.MEMORY:
        memory.popitem(last=False)
    return value
