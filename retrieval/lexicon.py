"""Entity lexicon and tokenizer for linking comments to the knowledge graph.

Design: docs/architecture.md, section "Retrieval".

Every head name and alias of the store (bracket-free names included, see :mod:`kg.triples`)
maps to its head. Mentions are found by longest-match dictionary scan over the text rather
than by jieba alone: jieba splits at characters outside its Han/alphanumeric class, so a
name like ``瑞恩·高斯林`` can never come out of it whole. The tokenizer (jieba, with every
name added to its dictionary so multi-character names stay whole where jieba can keep them)
counts the knowledge budget and feeds the TF-IDF keywords.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from kg.store import GraphStore
from model.data.vocab import Tokenizer

MIN_NAME_CHARS = 2
# Function words and danmaku chatter: never keywords, never entity mentions.
STOP_WORDS = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "我",
        "你",
        "他",
        "她",
        "它",
        "们",
        "这",
        "那",
        "有",
        "和",
        "就",
        "都",
        "也",
        "还",
        "又",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "哦",
        "嗯",
        "哈",
        "啦",
        "一个",
        "这个",
        "那个",
        "什么",
        "怎么",
        "为什么",
        "没有",
        "不是",
        "就是",
        "还是",
        "可以",
        "知道",
        "觉得",
        "真的",
        "非常",
        "已经",
        "哈哈",
        "哈哈哈",
        "哈哈哈哈",
        "前方",
        "高能",
        "打卡",
        "来了",
        "好看",
        "弹幕",
        "电影",
        "这部",
        "一部",
        "部",
        "看",
        "说",
        "想",
        "会",
        "要",
    ]
)
_NOISE = re.compile(r"^[\W\d_]+$")


@dataclass(frozen=True, slots=True)
class Mention:
    name: str  # as written in the text
    head: str  # the entity it names
    start: int


class EntityLexicon:
    """Names -> heads, with a longest-match scan for mentions."""

    def __init__(self, names: Iterable[tuple[str, str]]) -> None:
        self.head_of: dict[str, str] = {}
        for name, head in names:
            if len(name) >= MIN_NAME_CHARS and name not in STOP_WORDS and not _NOISE.match(name):
                self.head_of.setdefault(name, head)
        self._by_first: dict[str, list[str]] = {}
        for name in sorted(self.head_of, key=len, reverse=True):
            self._by_first.setdefault(name[0], []).append(name)
        self._tokenizer: Tokenizer | None = None

    @classmethod
    def from_store(cls, store: GraphStore) -> EntityLexicon:
        return cls(store.iter_names())

    def __len__(self) -> int:
        return len(self.head_of)

    def mentions(self, text: str) -> list[Mention]:
        """Non-overlapping entity mentions, longest name first at each position."""
        found, i = [], 0
        while i < len(text):
            for name in self._by_first.get(text[i], ()):
                if text.startswith(name, i):
                    found.append(Mention(name, self.head_of[name], i))
                    i += len(name)
                    break
            else:
                i += 1
        return found

    @property
    def tokenizer(self) -> Tokenizer:
        """jieba with every name of the lexicon in its dictionary (built on first use)."""
        if self._tokenizer is None:
            self._tokenizer = Tokenizer(self.head_of)
        return self._tokenizer

    def tokens(self, text: str) -> list[str]:
        return self.tokenizer(text)

    @property
    def fingerprint(self) -> str:
        """Identifies the names and their heads (what keyword sets and vocabularies built with
        this lexicon depend on)."""
        h = hashlib.sha256()
        for name in sorted(self.head_of):
            h.update(f"{name}\t{self.head_of[name]}\n".encode())
        return h.hexdigest()[:12]
