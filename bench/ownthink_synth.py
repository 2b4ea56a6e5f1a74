"""Synthetic Ownthink rows (``实体,属性,值``) for the KG benches, streamed to disk.

What :func:`generate` writes, deterministically from its seed, in constant memory:

- heads: Chinese names of 2-6 characters, some with a bracketed disambiguation
  (``名字（描述）``) or a middle dot; about 5 rows a head (log-normal, a long tail of heads
  with hundreds), rows grouped by head as in Ownthink;
- a ``描述`` description first for each head, mostly a sentence or two, some long, some with
  ASCII commas and quotes (csv-quoted) and a few over several lines;
- relations by a Zipf-like law over Ownthink's common ones followed by a long tail of rare
  ones; alias relations (``中文名``, ``别名``, ``外文名``, ``英文名``, ``简称``, ``其他译名``) with
  what the loader makes aliases of (lists split on ``、``, Latin names with commas);
- values that are other heads (recent ones and ones sampled from the whole file so far) for
  part of the rows, popular tags, dates, phrases;
- disambiguation pages (``多义词`` rows listing bracketed heads, which follow them);
- repeated rows (a head's previous row again) and exactly ``bad_rows`` bad rows, spread
  evenly: wrong column counts, an empty head, relation or value.

It also samples heads and aliases across the whole file (reservoir sampling) for lookups.
"""

from __future__ import annotations

import csv
import json
import random
from collections import deque
from dataclasses import asdict, dataclass, field
from itertools import accumulate
from pathlib import Path

from kg_load import CHARS, RELATIONS

#: Bad rows as the Ownthink reader reports them: (row, reason prefix).
BAD_KINDS = (
    (lambda h, r: [h, r], "expected 3 columns"),
    (lambda h, r: [h, r, "值", "多余的列"], "expected 3 columns"),
    (lambda h, r: ["", r, "值"], "empty head"),
    (lambda h, r: [h, "", "值"], "empty relation"),
    (lambda h, r: [h, r, "   "], "empty tail"),
)
ALIASING = {"中文名", "别名", "外文名", "英文名", "简称", "其他译名"}
MORE_RELATIONS = [
    "英文名",
    "简称",
    "其他译名",
    "民族",
    "出生地",
    "毕业院校",
    "性别",
    "身高",
    "星座",
    "血型",
    "经纪公司",
    "制片地区",
    "片长",
    "语言",
    "首播时间",
    "集数",
    "作者",
    "出版社",
    "面积",
    "人口",
]
TAIL_RARE = 3000  # rare relations after the named ones
ZIPF_S = 1.1
LATIN = "abcdefghijklmnopqrstuvwxyz"
GENERATOR_VERSION = 1


@dataclass
class Generated:
    """What :func:`generate` wrote: counts, and names sampled for lookups."""

    path: str
    rows: int  # records, bad ones included (not lines: a value may span several)
    seed: int
    bad_rows: int
    heads: int
    duplicate_rows: int = 0
    multiline_rows: int = 0
    quoted_rows: int = 0  # values csv must quote (commas, quotes, newlines)
    entity_tail_rows: int = 0
    alias_rows: int = 0
    disambiguation_rows: int = 0
    bytes: int = 0
    version: int = GENERATOR_VERSION
    probe_heads: list[str] = field(default_factory=list)
    probe_aliases: list[tuple[str, str]] = field(default_factory=list)  # (alias, head)

    def to_json(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def from_json(cls, path: Path) -> Generated:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != GENERATOR_VERSION:
            data["rows"] = -1  # made by another version of the generator: never reused
        data.pop("version", None)
        return cls(**data)


class _Rows:
    """The random parts of rows, from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        names = [*RELATIONS[1:], *MORE_RELATIONS]  # 描述 comes first in each head, apart
        rare = random.Random(seed + 1)
        names += ["".join(rare.choices(CHARS, k=rare.randint(2, 5))) for _ in range(TAIL_RARE)]
        self.relations = list(dict.fromkeys(names))
        self.cum = list(accumulate(1 / (i + 1) ** ZIPF_S for i in range(len(self.relations))))
        self.tags = [self.word(1, 3) for _ in range(500)]
        self.tag_cum = list(accumulate(1 / (i + 1) for i in range(len(self.tags))))
        self.recent: deque[str] = deque(maxlen=2000)
        self.pool: list[str] = []  # a uniform sample of every head so far
        self.seen_heads = 0

    def word(self, lo: int, hi: int) -> str:
        return "".join(self.rng.choices(CHARS, k=self.rng.randint(lo, hi)))

    def latin(self) -> str:
        rng = self.rng
        words = [
            "".join(rng.choices(LATIN, k=rng.randint(3, 9))).title()
            for _ in range(rng.randint(1, 3))
        ]
        return ", ".join(words) if rng.random() < 0.2 else " ".join(words)

    def head(self) -> str:
        r = self.rng.random()
        if r < 0.15:
            return f"{self.word(2, 6)}（{self.word(4, 12)}）"
        if r < 0.2:
            return f"{self.word(2, 4)}·{self.word(2, 4)}"
        return self.word(2, 6)

    def description(self) -> str:
        rng = self.rng
        n = min(2000, int(rng.lognormvariate(4.2, 0.7)))  # characters, mostly 30-150
        parts, size = [], 0
        while size < n:
            parts.append(self.word(4, 16))
            size += len(parts[-1]) + 1
        text = "".join(p + ("。" if rng.random() < 0.3 else "，") for p in parts)
        r = rng.random()
        if r < 0.05:
            text += f' 又称"{self.word(2, 4)}", 见{self.word(2, 4)}'
        elif r < 0.055:
            text += "\n" + self.word(10, 40)
        return text

    def tail(self, relation: str, head: str, bare: str) -> tuple[str, bool]:
        """A value for ``relation`` of ``head``; whether it names another head."""
        rng = self.rng
        if relation == "中文名":
            return bare, False
        if relation == "别名":
            return "、".join(self.word(2, 4) for _ in range(rng.randint(1, 3))), False
        if relation in ("外文名", "英文名"):
            return self.latin(), False
        if relation in ALIASING:
            return self.word(2, 4), False
        if relation == "标签":
            return rng.choices(self.tags, cum_weights=self.tag_cum)[0], False
        r = rng.random()
        if r < 0.3 and self.recent:
            if r < 0.15 or not self.pool:
                return rng.choice(self.recent), True
            return rng.choice(self.pool), True
        if r < 0.6:
            return self.word(1, 6), False
        if r < 0.72:
            return f"{rng.randint(1900, 2020)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日", False
        text = "，".join(self.word(3, 12) for _ in range(rng.randint(2, 5)))
        return (text + ', "引号", 逗号' if r < 0.75 else text), False

    def remember(self, head: str, pool_size: int = 100_000) -> None:
        self.recent.append(head)
        self.seen_heads += 1
        _reservoir(self.rng, self.pool, head, self.seen_heads, pool_size)


def _reservoir(rng: random.Random, sample: list, item: object, seen: int, k: int) -> None:
    """Algorithm R: after ``seen`` items, ``sample`` is a uniform sample of ``k`` of them."""
    if len(sample) < k:
        sample.append(item)
    elif (j := rng.randrange(seen)) < k:
        sample[j] = item


def _needs_quotes(row: list[str]) -> bool:
    return any(c in v for v in row for c in ',"\n\r')


def generate(
    path: Path, rows: int, *, seed: int = 0, bad_rows: int | None = None, probes: int = 2000
) -> Generated:
    """Write ``rows`` Ownthink records (header excluded; bad ones included) to ``path``.

    ``bad_rows`` (default one in 10,000, at least one of each kind when ``rows`` allows) are
    spread evenly over the file.
    """
    if bad_rows is None:
        bad_rows = min(max(len(BAD_KINDS), rows // 10_000), rows // 10)
    bad_at = {(2 * i + 1) * rows // (2 * bad_rows) for i in range(bad_rows)}
    gen = _Rows(seed)
    rng = gen.rng
    out = Generated(str(path), rows, seed, bad_rows=0, heads=0)
    aliases_seen = 0
    pages: deque[str] = deque()  # a disambiguation page's entries, then its heads
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["实体", "属性", "值"])
        left, head, bare, last = 0, "", "", None
        for written in range(rows):
            if left == 0:
                head, bare, left, page = _next_head(gen, pages)
                if not page:
                    out.heads += 1
                    _reservoir(rng, out.probe_heads, head, out.heads, probes)
                first, last = True, None
            left -= 1
            if written in bad_at:
                make, _ = BAD_KINDS[out.bad_rows % len(BAD_KINDS)]
                out.bad_rows += 1
                w.writerow(make(head, "属性"))
                continue
            if last is not None and rng.random() < 0.01:
                row = last
                out.duplicate_rows += 1
            elif page:
                row = [head, "多义词", pages[len(pages) - left - 1]]
                out.disambiguation_rows += 1
            elif first:
                row = [head, "描述", gen.description()]
            else:
                rel = rng.choices(gen.relations, cum_weights=gen.cum)[0]
                tail, entity = gen.tail(rel, head, bare)
                row = [head, rel, tail]
                out.entity_tail_rows += entity
                out.alias_rows += rel in ALIASING
                if rel == "别名":
                    aliases_seen += 1
                    pair = (tail.split("、")[0], head)
                    _reservoir(rng, out.probe_aliases, pair, aliases_seen, probes)
            w.writerow(row)
            out.multiline_rows += "\n" in row[2]
            out.quoted_rows += _needs_quotes(row)
            first, last = False, row
    out.bytes = path.stat().st_size
    return out


def _next_head(gen: _Rows, pages: deque[str]) -> tuple[str, str, int, bool]:
    """The next head, its bare name, its number of rows and whether it is a disambiguation
    page. A page (one head in 200) lists 2-3 bracketed heads, which come right after it."""
    rng = gen.rng
    if pages:
        head = pages.popleft()
    elif rng.random() < 0.005:
        bare = gen.word(2, 4)
        pages.extend(f"{bare}（{gen.word(4, 12)}）" for _ in range(rng.randint(2, 3)))
        return bare, bare, len(pages), True
    else:
        head = gen.head()
    gen.remember(head)
    left = max(1, min(500, int(rng.lognormvariate(1.2, 0.9))))
    return head, head.split("（")[0], left, False
