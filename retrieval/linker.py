"""Knowledge recall for a context window: comments -> entities -> ranked facts -> a budget.

KLVCG §IV-B recalls, for the window [t-l, t+l], KG facts of the entities its comments name
and packs them, ``<SEP>``-separated, into the knowledge encoder's input. DESIGN.md §4 says
what its released scripts get wrong (a token-overlap rule, a relation blacklist that drops a
fifth of the useful facts, long ``Information`` text filling the budget first, no seed) and
what to do instead; this module is that:

1. Entities: mentions in the window (longest-match lexicon scan, aliases and bracket-free
   names included), weighted by closeness to t; joined by the video's *topic*: entities named
   earlier in the video (decaying with distance) and the entity of its title, because a film
   conversation names the entity it talks about in the window only about half the time but
   earlier in the video almost always.
2. Facts of the best entities (1 hop), then of the heads their facts point to (2 hops, when
   the budget is not full), each scored by its entity's weight, a relation prior, and its
   overlap with the window: a relation the window names ("导演是谁") is what comes next; a
   value the window already states is not news.
3. Packing: best first, each fact ``head relation tail`` (bracket-free head, a long value cut
   to ``max_fact_tokens``) until ``budget`` tokens. Ties break on the fact's text, so recall
   is deterministic. Each fact carries why it was chosen (keyword, entity, hop, score).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from kg.store import GraphStore
from kg.triples import ALIAS_RELATIONS, bare_name
from model.data.schema import Comment
from retrieval.lexicon import EntityLexicon

SEP = "<SEP>"
LONG_TEXT_RELATIONS = frozenset({"Information", "描述", "简介"})


@dataclass(frozen=True)
class LinkerConfig:
    radius: int = 5  # KLVCG's window [t-5, t+5]
    budget: int = 80  # knowledge tokens (KLVCG's max_kg_len)
    max_fact_tokens: int = 24  # a longer value (an Information paragraph) is cut
    max_entities: int = 4  # entities whose facts compete for the budget
    facts_per_entity: int = 300
    topic_half_life_s: float = 300.0
    window_weight: float = 2.0
    relation_named_boost: float = 4.0
    value_stated_factor: float = 0.3
    alias_relation_prior: float = 0.3
    long_text_prior: float = 0.7
    hop2_factor: float = 0.35
    facts_first_round: int = 1  # each entity's best facts packed before any entity's next


@dataclass(frozen=True, slots=True)
class Why:
    keyword: str  # the text that named the entity (or the title)
    entity: str
    hop: int
    score: float

    def as_dict(self) -> dict[str, object]:
        return {
            "keyword": self.keyword,
            "entity": self.entity,
            "hop": self.hop,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True, slots=True)
class RecalledFact:
    head: str
    relation: str
    tail: str
    why: Why
    text: str  # as packed: bracket-free head, value cut to the fact budget
    tokens: int

    def as_dict(self) -> dict[str, object]:
        return {
            "head": self.head,
            "relation": self.relation,
            "tail": self.tail,
            "why": self.why.as_dict(),
        }


@dataclass
class _Candidate:
    entity: str
    weight: float
    keyword: str
    hop: int = 1


class Linker:
    def __init__(
        self, store: GraphStore, lexicon: EntityLexicon, config: LinkerConfig | None = None
    ) -> None:
        self.store, self.lexicon, self.config = store, lexicon, config or LinkerConfig()
        # Danmaku repeat and windows overlap: the same texts, entities and facts come back
        # window after window (bounded caches; the store is read-only while recalling).
        self._mentions = lru_cache(maxsize=200_000)(lexicon.mentions)
        self._facts = lru_cache(maxsize=20_000)(
            lambda entity: store.facts(entity, limit=self.config.facts_per_entity)
        )
        self._pack_text = lru_cache(maxsize=200_000)(self._fact_text)

    # -- entities ----------------------------------------------------------------------------
    def entity_facts(self, entity: str):
        """The facts of ``entity`` recall reads (cached)."""
        return self._facts(entity)

    def entities(
        self,
        window: Sequence[Comment],
        history: Sequence[Comment],
        t: float,
        title: str = "",
        limit: int | None = None,
    ) -> list[_Candidate]:
        """The best entities of the window (``limit``, default ``max_entities``), best first."""
        cfg = self.config
        found: dict[str, _Candidate] = {}

        def add(head: str, weight: float, keyword: str) -> None:
            c = found.get(head)
            if c is None:
                found[head] = _Candidate(head, weight, keyword)
            else:
                c.weight += weight
                if weight > 0 and not c.keyword:
                    c.keyword = keyword

        for c in window:
            for m in self._mentions(c.text):
                add(m.head, cfg.window_weight / (1.0 + abs(t - c.time_s)), m.name)
        decay = math.log(2) / cfg.topic_half_life_s
        for c in history:
            for m in self._mentions(c.text):
                add(m.head, math.exp(-decay * max(0.0, t - c.time_s)), m.name)
        for m in self._mentions(title):
            add(m.head, 1.0, m.name)
        ranked = sorted(found.values(), key=lambda c: (-c.weight, c.entity))
        return ranked[: cfg.max_entities if limit is None else limit]

    # -- facts -----------------------------------------------------------------------------
    def _prior(self, relation: str) -> float:
        if relation in ALIAS_RELATIONS:
            return self.config.alias_relation_prior
        if relation in LONG_TEXT_RELATIONS:
            return self.config.long_text_prior
        return 1.0

    def _score(self, cand: _Candidate, relation: str, tail: str, window_text: str) -> float:
        cfg = self.config
        score = cand.weight * self._prior(relation)
        if relation in window_text:
            score *= cfg.relation_named_boost
        if len(tail) >= 2 and tail in window_text:
            score *= cfg.value_stated_factor
        return score * (cfg.hop2_factor if cand.hop == 2 else 1.0)

    def _fact_text(self, head: str, relation: str, tail: str) -> tuple[str, int]:
        tokens = self.lexicon.tokens(f"{bare_name(head) or head} {relation} {tail}")
        if len(tokens) > self.config.max_fact_tokens:
            tokens = tokens[: self.config.max_fact_tokens - 1] + ["…"]
        return "".join(tokens), len(tokens)

    def _scored(self, cands: list[_Candidate], window_text: str):
        for cand in cands:
            for f in self._facts(cand.entity):
                score = self._score(cand, f.relation, f.tail, window_text)
                yield (-score, f.head, f.relation, f.tail), cand, score

    def link(
        self, window: Sequence[Comment], history: Sequence[Comment], t: float, title: str = ""
    ) -> list[RecalledFact]:
        """Facts for the window, best first, packed into the token budget."""
        cfg = self.config
        cands = self.entities(window, history, t, title)
        window_text = " ".join(c.text for c in window)
        ranked = _diversified(
            sorted(self._scored(cands, window_text), key=lambda x: x[0]), cfg.facts_first_round
        )
        packed, used = self._pack(ranked, cfg.budget)
        if used < cfg.budget and cands:
            hop2 = self._second_hop(cands[:2], packed)
            more, _ = self._pack(
                sorted(self._scored(hop2, window_text), key=lambda x: x[0]),
                cfg.budget - used,
                seen={(f.head, f.relation, f.tail) for f in packed},
            )
            packed += more
        return packed

    def _pack(self, ranked, budget: int, seen: set | None = None):
        seen = set() if seen is None else seen
        out, used = [], 0
        for (_, head, relation, tail), cand, score in ranked:
            if (head, relation, tail) in seen:
                continue
            text, n = self._pack_text(head, relation, tail)
            cost = n + (1 if out else 0)  # the <SEP> before it
            if used + cost > budget:
                continue
            seen.add((head, relation, tail))
            out.append(
                RecalledFact(
                    head, relation, tail, Why(cand.keyword, cand.entity, cand.hop, score), text, n
                )
            )
            used += cost
        return out, used

    def _second_hop(self, cands: list[_Candidate], packed: list[RecalledFact]):
        """Heads the packed facts of ``cands`` point to, inheriting their entity's weight."""
        heads = self.store.heads_among([f.tail for f in packed])
        done, out = {c.entity for c in cands}, {}
        for c in cands:
            for f in packed:
                if f.why.entity == c.entity and f.tail in heads and f.tail not in done:
                    out.setdefault(f.tail, _Candidate(f.tail, c.weight, c.keyword, hop=2))
        return list(out.values())


def _diversified(ranked: list, per_entity: int) -> list:
    """Every entity's best ``per_entity`` facts first (in score order), then the rest: one
    entity's many strong facts must not crowd out the other entities the window names."""
    first, rest, taken = [], [], {}
    for item in ranked:
        entity = item[1].entity
        if taken.get(entity, 0) < per_entity:
            taken[entity] = taken.get(entity, 0) + 1
            first.append(item)
        else:
            rest.append(item)
    return first + rest


def pack_text(facts: Sequence[RecalledFact]) -> str:
    """The knowledge encoder's input: packed facts separated by ``<SEP>``."""
    return f" {SEP} ".join(f.text for f in facts)
