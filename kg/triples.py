"""Core value types of the knowledge-graph layer: triples, bad rows, load reports, aliases.

Design: docs/architecture.md, section "Knowledge-graph stores".

FilmKG (the KdConv ``kb_film.json`` schema) marks alias names with relations such as ``别名``
and disambiguates heads with a bracketed description
(``恋恋笔记本（美国2004年尼克·卡索维茨导演爱情片）``); both make *alias names* under which the
head must be found. The same rules apply to Ownthink, whose heads use the same conventions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import NamedTuple

from common.errors import UserError

#: Relations whose tail is another name of the head (FilmKG and Ownthink spellings).
ALIAS_RELATIONS = frozenset(
    {
        "别名",
        "中文名",
        "中文名称",
        "外文名",
        "外文名称",
        "英文名",
        "英文名称",
        "其它译名",
        "其他译名",
        "译名",
        "原名",
        "本名",
        "简称",
        "昵称",
    }
)

#: Relations of a disambiguation page: ``(燃情岁月, 多义词, 燃情岁月（美国1994年…电影）)``. Such a
#: head is not an entity of its own; its name is an alias of the pages it lists.
DISAMBIGUATION_RELATIONS = frozenset({"多义词"})

_ALIASING = ALIAS_RELATIONS | DISAMBIGUATION_RELATIONS
_HEAD, _RELATION, _HEAD_RELATION_TAIL = itemgetter(0), itemgetter(1), itemgetter(0, 1, 2)

# A trailing disambiguation: full-width or ASCII parentheses, or square brackets.
_BRACKETED = re.compile(r"^(?P<bare>.+?)\s*(?:（[^（）]*）|\([^()]*\)|\[[^\[\]]*\])$")
_CLOSING = ("）", ")", "]")  # what a name that has one ends with
# Alias values list several names: "小李子、李奥纳多；Leo".
_ALIAS_SPLIT = re.compile(r"[、，,；;/／|]")
_MAX_ALIAS_CHARS = 64
_QUOTES = "\"'“”《》"  # stripped from the ends of listed alias names


class KGError(UserError):
    """A user-facing error of the KG layer: one line naming the file/record and the reason."""


class Triple(NamedTuple):
    """One fact ``(head, relation, tail)`` and where it was read (file, line).

    A NamedTuple rather than a dataclass: parsers make one per row (Ownthink has 140 M rows)
    and tuple construction is several times cheaper.
    """

    head: str
    relation: str
    tail: str
    source: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not become a triple: reported with file and line, never dropped."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Fact:
    """A stored fact as queries return it."""

    head: str
    relation: str
    tail: str

    def as_dict(self) -> dict[str, str]:
        return {"head": self.head, "relation": self.relation, "tail": self.tail}


@dataclass
class LoadReport:
    """What one load did; ``as_dict`` is the ``--json`` summary of ``kg.load``."""

    source: str
    store: str
    triples_read: int = 0
    triples_loaded: int = 0
    bad_rows: int = 0
    resumed_from: int = 0
    entities: int = 0
    relations: int = 0
    seconds: float = 0.0
    bad_examples: list[BadRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "store": self.store,
            "triples_read": self.triples_read,
            "triples_loaded": self.triples_loaded,
            "bad_rows": self.bad_rows,
            "resumed_from": self.resumed_from,
            "entities": self.entities,
            "relations": self.relations,
            "seconds": round(self.seconds, 3),
            "bad_row_examples": [str(b) for b in self.bad_examples],
        }


def bare_name(name: str) -> str | None:
    """The name without its trailing disambiguation bracket, or None if it has none."""
    m = _BRACKETED.match(name)
    if m is None:
        return None
    bare = m.group("bare").strip()
    return bare or None


def alias_pairs(triple: Triple, first_of_head: bool) -> list[tuple[str, str]]:
    """Every ``(alias, entity)`` pair a row defines: the head's bracket-free name (once per
    head, on its first row), the names an alias relation lists, and, for a disambiguation
    row, the page's name as an alias of the entity it points to."""
    pairs = []
    if first_of_head and (bare := bare_name(triple.head)):
        pairs.append((bare, triple.head))
    return pairs + list(_rows_alias_pairs([triple[:3]]))


def batch_alias_pairs(triples: Sequence[Triple]) -> list[tuple[str, str]]:
    """The pairs of :func:`alias_pairs` for every row of a batch, de-duplicated: the
    bracket-free name of each head, then those of alias and disambiguation rows, in order.
    (Two passes in C pick the few rows concerned and one generator walks them, which is
    faster than a pass row by row; figures in docs/results-kg-store.md.)"""
    pairs: dict[tuple[str, str], None] = {}
    for head in dict.fromkeys(map(_HEAD, triples)):
        if head.endswith(_CLOSING) and (bare := bare_name(head)):
            pairs[bare, head] = None
    rows = compress(triples, map(_ALIASING.__contains__, map(_RELATION, triples)))
    pairs.update(dict.fromkeys(_rows_alias_pairs(map(_HEAD_RELATION_TAIL, rows))))
    return list(pairs)


def _rows_alias_pairs(rows: Iterable[tuple[str, str, str]]) -> Iterator[tuple[str, str]]:
    """The pairs of alias rows (the names their value lists, stripped of quotes, less empty
    and over-long ones and the head's own) and of disambiguation rows; none for other rows."""
    for head, relation, tail in rows:
        if relation in ALIAS_RELATIONS:
            for part in _ALIAS_SPLIT.split(tail):
                alias = part.strip().strip(_QUOTES)
                if alias and len(alias) <= _MAX_ALIAS_CHARS and alias != head:
                    yield alias, head
        if relation in DISAMBIGUATION_RELATIONS:
            yield head, tail
