"""The context window of second t of a video, as recall, the cue learner and evaluation see it.

KLVCG §IV-B: the window is the comments of [t-l, t+l] except second t itself (those are the
targets); the video's comments before the window are its history (the topic entities). A pure
function of the video and t, in a module of its own so that everything that needs a window
(:mod:`retrieval.recall`, :mod:`retrieval.stated`, :mod:`retrieval.relation_cues`) imports it
from below them all.
"""

from __future__ import annotations

from model.data.schema import Comment, Video


def window_of(video: Video, t: int, radius: int) -> tuple[list[Comment], list[Comment]]:
    """(window: [t-l, t+l] without second t, history: everything before t-l)."""
    window = [c for c in video.comments_between(t - radius, t + radius + 1) if c.second != t]
    return window, video.comments_between(float("-inf"), t - radius)
