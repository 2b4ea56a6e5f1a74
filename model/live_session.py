"""A live comment session: viewers' comments and the playback position come in, the bot's
comments go out (the engine behind the API's ``/live``; protocol: docs/data-contracts.md,
section "Live sessions"; design: docs/architecture.md, section "API").

KLVCG comments on second t from the frames, the comments and the recalled facts of the window
[t-5, t+5] (§IV). Live, the window's future half holds only what has arrived, and the model
speaks for the second after the playback position, so it reads every comment posted so far
(the viewers' comments of the current second included; at t itself they would be targets).
One session holds:

- the video: a corpus video (its id, title, duration and frame features; its own corpus
  comments are not read: the comments are the ones the client sends) or an ad-hoc one
  named by its title (frames from ``frames`` messages, else masked as missing; no keyword
  set, since that comes from a video's comments);
- the comments received (:class:`retrieval.live_recall.LiveComments`: sorted, capped, each
  linked once) and recall over them (:class:`retrieval.live_recall.LiveRecall`, equal to
  :func:`retrieval.recall.recall` on them, doing only what the new seconds add);
- the playback position: a step back of up to ``SEEK_TOLERANCE_S`` is jitter and ignored, a
  step back further or forward by more than ``SEEK_JUMP_S`` is a seek. A seek drops the
  comments at or after the new position (a replay sends them again as it plays them; the
  earlier ones stay, the history and window they would be), forgets the bot's recent
  comments for the rate and the gap, abandons a generation in flight and starts the quiet
  period;
- the policy (:mod:`model.live_policy`), applied in video time: a trigger whose
  comment could not go out now (quiet, gap, rate) does not run the model; a generated
  comment goes out only if it is no repeat and scores above the threshold. A viewer comment
  triggers a generation; one that arrives when the policy holds the bot back leaves a
  pending trigger that the next position message at which it may speak fires.

The engine is synchronous and not thread-safe: the caller (:mod:`api.live`) runs
:meth:`LiveSession.receive`, :meth:`~LiveSession.next_job` and :meth:`~LiveSession.finish` on
one thread and only :meth:`~LiveSession.run` (recall and beam search) in a worker, one at a
time per session; a :class:`Job` carries a snapshot of what it reads.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from model.data.samples import sample_at
from model.data.schema import Comment, FrameFeatures, Video
from model.live_messages import Frames, LiveError, PolicyUpdate, Position, Start, ViewerComment
from model.live_policy import Policy, Voice, normalised
from model.split_encoding import encode_samples
from retrieval.live_recall import CommentsSnapshot, LiveComments, LiveRecall

if TYPE_CHECKING:
    from model.generator import Generation, Generator

SEEK_TOLERANCE_S = 1.0  # a position this much earlier than the last is jitter, not a seek
SEEK_JUMP_S = 10.0  # a position this much later than the last is a seek forward
MAX_COMMENTS = 2000  # comments held per session (the earliest dropped first)
RECENT_S = 60.0  # the repeat check reads this much video before t; so long is kept
COMMENTS_PER_S, COMMENT_BURST = 50.0, 100  # token bucket on incoming comments
FLOOD_NOTICE_S = 1.0  # at most one flood error a second
MAX_FRAME_SECONDS = 64  # frames held per session (those furthest from the position go)
MAX_FACTS = 5  # facts listed with a comment
ASSUMED_DURATION_S = 7200.0  # an ad-hoc video without a duration: its period stage


@dataclass(frozen=True)
class Trigger:
    kind: str  # "comment" | "position"
    arrival: float  # when the triggering message arrived (time.monotonic())


@dataclass(frozen=True)
class Job:
    """One generation: second ``t`` over a snapshot of the session's comments and frames."""

    t: int
    beam: int
    trigger: Trigger
    epoch: int  # the session's seek count when it started: a later seek makes it stale
    comments: CommentsSnapshot
    frames: FrameFeatures
    duration_s: float


@dataclass(frozen=True)
class Emission:
    message: dict  # the comment message, without its latency (stamped when it is sent)
    arrival: float  # the triggering message's arrival


class SessionFrames:
    """A session's frame features: the ones the client sent, over the corpus's (if any)."""

    def __init__(self, base: FrameFeatures | None, video_id: str, dim: int, sent: dict) -> None:
        self.base, self.video_id, self.dim, self.sent = base, video_id, dim, sent

    def get(self, video_id: str, second: int) -> np.ndarray | None:
        vec = self.sent.get(second) if video_id == self.video_id else None
        if vec is None and self.base is not None and self.base.dim == self.dim:
            return self.base.get(video_id, second)
        return vec


class LiveSession:
    def __init__(
        self,
        session_id: str,
        generator: Generator,
        video: Video,
        frames: FrameFeatures | None,
        keywords: set[str],
        length_known: bool,
        policy: Policy,
    ) -> None:
        self.id, self.generator, self.video, self.policy = session_id, generator, video, policy
        # a corpus video, or an ad-hoc one given a duration (else it grows with the position)
        self.length_known = length_known
        ctx, self.radius = generator.ctx, generator.ckpt.model_config.radius
        self.frame_dim = generator.ckpt.model_config.frame_dim
        self.comments = LiveComments(ctx.linker, MAX_COMMENTS)
        self.recall = LiveRecall(ctx.linker, ctx.index, video.id, video.title, keywords)
        self.sent_frames: dict[int, np.ndarray] = {}
        self.base_frames = frames
        self.position, self.positioned = 0.0, False
        self.pruned_at = 0  # the second of the last pruning
        self.epoch = 0
        self.voice = Voice()
        self.want: Trigger | None = None  # the next generation to run (the latest wins)
        self.pending = False  # a trigger held back by the policy, fired by a position
        self.seq = 0
        self.received = self.generated = self.emitted = self.messages = self.seeks = 0
        self.dropped: Counter[str] = Counter()
        self.tokens, self.refilled = float(COMMENT_BURST), None
        self.flood_noticed = -math.inf

    @classmethod
    def start(cls, session_id: str, generator: Generator, start: Start) -> LiveSession:
        """A session for the video ``start`` names (:class:`LiveError` ``unknown_video``,
        ``bad_policy``)."""
        policy = Policy().updated(start.policy)
        ctx = generator.ctx
        if start.video is not None:
            video = ctx.corpus.videos.get(start.video)
            if video is None:
                raise LiveError("unknown_video", f"no video {start.video!r} in {ctx.corpus.path}")
            video = replace(video, comments=[])
            return cls(
                session_id,
                generator,
                video,
                ctx.corpus.features,
                ctx.keyword_set(video.id),
                True,
                policy,
            )
        duration = start.duration_s or ASSUMED_DURATION_S
        video = Video(id=start.title, title=start.title, duration_s=duration)
        known = start.duration_s is not None
        return cls(session_id, generator, video, None, set(), known, policy)

    # -- what the client sees ------------------------------------------------------------
    def hello(self) -> dict:
        return {
            "type": "session",
            "session": self.id,
            "video": self.video.id,
            "title": self.video.title,
            "duration_s": self.video.duration_s if self.length_known else None,
            "policy": self.policy.as_dict(),
            "frame_dim": self.frame_dim,
        }

    def stats(self, **extra: object) -> dict:
        return {
            "type": "stats",
            "received": self.received,
            "generated": self.generated,
            "emitted": self.emitted,
            "dropped": {k: n for k, n in sorted(self.dropped.items()) if n},
            "window_comments": len(self.comments),
            "position": self.position,
            "seeks": self.seeks,
            "messages": self.messages,
            **extra,
        }

    # -- messages ------------------------------------------------------------------------
    def receive(self, message, arrival: float) -> list[dict]:
        """Take one client message (not ``start``, ``stats`` or ``stop``: the caller's);
        returns the replies to send now. A bad one is :class:`LiveError` and changes nothing."""
        self.messages += 1
        if isinstance(message, Position):
            self._position(message.t, arrival)
        elif isinstance(message, ViewerComment):
            return self._comment(message, arrival)
        elif isinstance(message, Frames):
            self._frames(message)
        elif isinstance(message, PolicyUpdate):
            self.policy = self.policy.updated(message.knobs)
            return [{"type": "policy", "policy": self.policy.as_dict()}]
        else:
            raise LiveError("bad_message", "the session has started: one start message only")
        return []

    def _check_time(self, t: float, where: str) -> None:
        if self.length_known and t > self.video.duration_s:
            end = self.video.duration_s
            raise LiveError("bad_message", f"{where}={t:g} is past the video's end ({end:g} s)")

    def _position(self, t: float, arrival: float) -> None:
        self._check_time(t, "t")
        step = t - self.position
        if not self.positioned:
            self.positioned, self.position = True, t
        elif -SEEK_TOLERANCE_S <= step <= 0:
            return  # jitter: out of order by a little
        elif 0 < step <= SEEK_JUMP_S:
            self.position = t
        else:
            self._seek(t)
            return
        self._prune()
        if self.pending and self.want is None and self._held_back(self._target()) is None:
            self.pending, self.want = False, Trigger("position", arrival)

    def _seek(self, t: float) -> None:
        self.seeks += 1
        self.epoch += 1
        if t < self.position:
            self.dropped["seek"] += self.comments.drop_from(t)
        self.position = t
        self.voice.seek(t, self.policy)
        self.want, self.pending = None, False
        self._prune()

    def _prune(self) -> None:
        second = int(self.position)
        if second != self.pruned_at:
            self.pruned_at = second
            self.comments.prune(self.position - RECENT_S - self.radius)

    def _comment(self, message: ViewerComment, arrival: float) -> list[dict]:
        self.received += 1
        if not self._take_token(arrival):
            self.dropped["flood"] += 1
            if arrival - self.flood_noticed < FLOOD_NOTICE_S:
                return []
            self.flood_noticed = arrival
            detail = (
                f"more than {COMMENTS_PER_S:g} comments a second (bursts of {COMMENT_BURST}): "
                f"{self.dropped['flood']} dropped so far"
            )
            return [LiveError("flood", detail).as_message()]
        t = self.position if message.t is None else message.t
        self._check_time(t, "t")
        if 0 < t - self.position <= SEEK_JUMP_S:  # a client that sends only comments
            self.position = t
        self.dropped["window"] += self.comments.add(Comment(t, message.text))
        self._trigger("comment", arrival)
        return []

    def _take_token(self, arrival: float) -> bool:
        if self.refilled is not None:
            elapsed = max(0.0, arrival - self.refilled)
            self.tokens = min(float(COMMENT_BURST), self.tokens + elapsed * COMMENTS_PER_S)
        self.refilled = arrival
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def _frames(self, message: Frames) -> None:
        if len(message.features) != self.frame_dim:
            raise LiveError(
                "bad_frames",
                f"features of {len(message.features)} numbers; the model reads {self.frame_dim}",
            )
        self._check_time(message.t, "t")
        self.sent_frames[message.t] = np.asarray(message.features, dtype=np.float32)
        if len(self.sent_frames) > MAX_FRAME_SECONDS:
            far = max(self.sent_frames, key=lambda s: abs(s - self.position))
            del self.sent_frames[far]

    # -- the policy ----------------------------------------------------------------------
    def _duration(self) -> float:
        if self.length_known:
            return self.video.duration_s
        return max(ASSUMED_DURATION_S, math.floor(self.position) + 1.0)

    def _target(self) -> int:
        """The second the bot speaks for: the one after the position (within the video)."""
        return min(math.floor(self.position) + 1, math.floor(self._duration()))

    def _held_back(self, t: int) -> str | None:
        """Why a comment for second ``t`` may not go out now (None: it may)."""
        return self.voice.held_back(self.policy, t, self.position)

    def _trigger(self, kind: str, arrival: float) -> None:
        reason = self._held_back(self._target())
        if reason is not None:
            self.dropped[reason] += 1
            self.pending = True
            return
        if self.want is not None:
            self.dropped["busy"] += 1  # coalesced: the latest trigger wins
        self.want = Trigger(kind, arrival)

    # -- generation ----------------------------------------------------------------------
    def next_job(self) -> Job | None:
        """The generation to run now, if any (the latest trigger, if the policy lets it)."""
        trigger, self.want = self.want, None
        if trigger is None:
            return None
        t = self._target()
        reason = self._held_back(t)
        if reason is not None:
            self.dropped[reason] += 1
            self.pending = True
            return None
        sent = dict(self.sent_frames)
        frames = SessionFrames(self.base_frames, self.video.id, self.frame_dim, sent)
        return Job(
            t,
            self.policy.beam,
            trigger,
            self.epoch,
            self.comments.snapshot(),
            frames,
            self._duration(),
        )

    def run(self, job: Job) -> Generation:
        """Recall and beam search for ``job`` (blocking: the caller's worker thread)."""
        knowledge = self.recall.recall(job.comments, job.t)
        # the sample reads the comments of its window only
        window = job.comments.between(job.t - self.radius, job.t + self.radius + 1)
        video = replace(self.video, comments=window, duration_s=job.duration_s)
        sample = sample_at(video, job.frames, job.t, self.radius)
        encoded = encode_samples([sample], [knowledge], self.generator.encoder)
        return self.generator.generate_encoded(encoded, job.beam)

    def finish(self, job: Job, generation: Generation) -> Emission | None:
        """The comment to emit from ``generation`` (None: dropped, and counted why)."""
        self.generated += 1
        if job.epoch != self.epoch:
            self.dropped["stale"] += 1  # a seek came while it ran
            return None
        reason = self._held_back(job.t)  # the policy may have changed meanwhile
        if reason is not None:
            self.dropped[reason] += 1
            return None
        recent = self._recent_texts(job.t) if self.policy.no_repeat else set()
        fresh = [c for c in generation.comments if c.text.strip()]
        fresh = [c for c in fresh if normalised(c.text) not in recent]
        if not fresh:
            self.dropped["repeat"] += 1
            return None
        best = fresh[0]
        if self.policy.min_score is not None and best.score < self.policy.min_score:
            self.dropped["score"] += 1
            return None
        self.seq += 1
        self.emitted += 1
        self.voice.say(job.t, best.text)
        message = {
            "type": "comment",
            "seq": self.seq,
            "t": job.t,
            "text": best.text,
            "score": best.score,
            "copied": best.copy.copied if best.copy is not None else None,
            "facts": _facts(best, generation),
            "trigger": job.trigger.kind,
        }
        return Emission(message, job.trigger.arrival)

    def _recent_texts(self, t: int) -> set[str]:
        """What a comment for second ``t`` must not repeat: the viewers' comments of the last
        minute and the window, and the bot's of the last minute (normalised)."""
        start = t - RECENT_S
        seen = {normalised(c.text) for c in self.comments.between(start, t + self.radius + 1)}
        return seen | self.voice.said_since(start)


def _facts(comment, generation: Generation) -> list[dict]:
    """The facts ``comment`` copied from, the most first (copy path), else the facts the
    knowledge encoder attended to most."""
    by_index = {f.index: f for f in generation.facts}
    if comment.copy is not None:
        ranked = [(by_index[f.fact], f.mass) for f in comment.copy.facts if f.fact in by_index]
    else:
        ranked = [(f, f.weight) for f in generation.facts if f.weight > 0]
    return [
        {"head": f.head, "relation": f.relation, "tail": f.tail, "mass": mass}
        for f, mass in ranked[:MAX_FACTS]
    ]
