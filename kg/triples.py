"""Core value types of the knowledge-graph layer: triples, bad rows, load reports, aliases.

DESIGN.md section 2. FilmKG (the KdConv ``kb_film.json`` schema) marks alias names with
relations such as ``别名`` and disambiguates heads with a bracketed description
(``恋恋笔记本（美国2004年尼克·卡索维茨导演爱情片）``); both make *alias names* under which the
head must be found. The same rules apply to Ownthink, whose heads use the same conventions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import itemgetter
from typing import NamedTuple

from kg.errors import UserError

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


def split_aliases(value: str) -> list[str]:
    """The alias names listed in an alias relation's value (empty and over-long parts dropped)."""
    parts = (p.strip().strip("\"'“”《》") for p in _ALIAS_SPLIT.split(value))
    return [p for p in parts if p and len(p) <= _MAX_ALIAS_CHARS]


def alias_pairs(triple: Triple, first_of_head: bool) -> list[tuple[str, str]]:
    """Every ``(alias, entity)`` pair a row defines: the head's bracket-free name (once per
    head, on its first row), the names an alias relation lists, and, for a disambiguation
    row, the page's name as an alias of the entity it points to."""
    pairs = []
    if first_of_head and (bare := bare_name(triple.head)):
        pairs.append((bare, triple.head))
    return pairs + _row_alias_pairs(triple.head, triple.relation, triple.tail)


def batch_alias_pairs(triples: Sequence[Triple]) -> list[tuple[str, str]]:
    """The pairs of :func:`alias_pairs` for every row of a batch, de-duplicated: the
    bracket-free name of each head, then those of alias and disambiguation rows, in order.
    (Two passes in C pick the few rows concerned: 0.5 s a million rows, against 0.7 s row by
    row.)"""
    pairs: dict[tuple[str, str], None] = {}
    for head in dict.fromkeys(map(_HEAD, triples)):
        if head.endswith(_CLOSING) and (bare := bare_name(head)):
            pairs[bare, head] = None
    rows = compress(triples, map(_ALIASING.__contains__, map(_RELATION, triples)))
    for head, relation, tail in map(_HEAD_RELATION_TAIL, rows):
        pairs.update(dict.fromkeys(_row_alias_pairs(head, relation, tail)))
    return list(pairs)


def _row_alias_pairs(head: str, relation: str, tail: str) -> list[tuple[str, str]]:
    """The pairs of an alias row (its listed names, less the head's own) or of a
    disambiguation row; none for other rows."""
    pairs = []
    if relation in ALIAS_RELATIONS:
        pairs = [(a, head) for a in split_aliases(tail) if a != head]
    if relation in DISAMBIGUATION_RELATIONS:
        pairs.append((head, tail))
    return pairs
