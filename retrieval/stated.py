"""Which KG facts a comment states: the corpus-independent definition of "knowledge-bearing".

A comment at second t of a video states the fact ``(head, relation, tail)`` when ``head`` is an
entity linked in the window of t (named in its comments, or the video's topic: named earlier,
or its title; aliases and bracket-free names resolve through the store, as recall does) and
the comment contains ``tail``. Alias relations (a value that is only another name of the
head), long descriptions and values of one character (``男``, a digit) are not stated facts:
they match comments that state nothing (:func:`retrieval.fact_kinds.stateable`, the rule the
linker ranks with too). Evaluation uses this on every corpus; the demo corpus's own flags are
a cross-check of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from model.data.schema import Video
from retrieval.fact_kinds import stateable
from retrieval.linker import Linker
from retrieval.window import window_of

#: Entities of a window whose facts a comment may state (more than recall packs: a fact
#: recall missed is still stated).
LINKED_ENTITIES = 8


@dataclass(frozen=True, slots=True)
class StatedFact:
    head: str
    relation: str
    tail: str


def linked_entities(linker: Linker, video: Video, t: int) -> list[str]:
    """The entities linked in the window of ``t`` (window mentions and the video's topic)."""
    window, history = window_of(video, t, linker.config.radius)
    cands = linker.entities(window, history, t, video.title, limit=LINKED_ENTITIES)
    return [c.entity for c in cands]


def window_facts(linker: Linker, entities: Iterable[str]) -> list[StatedFact]:
    """The stateable facts of ``entities`` (each fact once)."""
    out: dict[tuple[str, str, str], None] = {}
    for entity in entities:
        for f in linker.entity_facts(entity):
            if stateable(f.relation, f.tail):
                out.setdefault((f.head, f.relation, f.tail))
    return [StatedFact(*k) for k in out]


def stated_in(text: str, facts: Iterable[StatedFact]) -> list[StatedFact]:
    """The facts among ``facts`` whose value ``text`` contains; where one value contains
    another of the same entity (``2004年06月25日`` and ``2004年``), only the longer."""
    hits = [f for f in facts if f.tail in text]
    return [
        f
        for f in hits
        if not any(g.head == f.head and g.tail != f.tail and f.tail in g.tail for g in hits)
    ]


def stated_facts(linker: Linker, video: Video, t: int, text: str) -> list[StatedFact]:
    """The facts the comment ``text`` at second ``t`` of ``video`` states."""
    return stated_in(text, window_facts(linker, linked_entities(linker, video, t)))
