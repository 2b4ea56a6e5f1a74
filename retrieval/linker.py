"""Knowledge recall for a context window: comments -> entities -> ranked facts -> a budget.

KLVCG §IV-B recalls, for the window [t-l, t+l], KG facts of the entities its comments name
and packs them, ``<SEP>``-separated, into the knowledge encoder's input. Its released
scripts link by a token-overlap rule, drop useful facts with a relation blacklist, let long
``Information`` text fill the budget first and are not seeded (docs/evaluation.md, section
"Pitfalls of the released code"; design: docs/architecture.md, section "Retrieval"). This
module does instead:

1. Entities: mentions in the window (longest-match lexicon scan, aliases and bracket-free
   names included), weighted sharply by closeness to t, and a comment that refers by pronoun
   ("ta", 他, 她) to the entity named last counts as a mention of it; joined by the video's
   *topic*: entities named earlier in the video (decaying with distance, saturating: named a
   hundred times earlier is the topic, not a hundred times likelier than the one named just
   now) and the entity of its title, because a film conversation names the entity it talks
   about in the window only about half the time but earlier in the video almost always.
   With a learned model (:mod:`retrieval.focus`), these parts and the order in which the
   entities were last named are the evidence of which entity the window is about right
   now: the best of the hand-weighted pool are ranked by its probability instead.
2. Facts of the best entities (1 hop), then of the heads their facts point to (2 hops, when
   the budget is not full), each scored by its entity's weight, a relation prior, and its
   overlap with the window: a relation the window names ("导演是谁") is what comes next; a
   value the window already states is not news. With a model learned from the corpus's
   knowledge-bearing comments (:mod:`retrieval.relation_cues`), the learned weight of the
   entity's linking weight, the rate of its relation, the cues of the window that predict
   its relation ("哪年" -> 出生日期), and the learned weights of a value already in the window
   and of a named relation replace these hand factors; with the learned entity model a fact
   scores P(entity) * P(fact | entity), the fact model normalised over its entity's facts.
3. Packing: best first, each fact ``head relation tail`` (bracket-free head, a long value cut
   to ``max_fact_tokens``) until ``budget`` tokens. Ties break on the fact's text, so recall
   is deterministic. Each fact carries why it was chosen (keyword, entity, hop, score).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from kg.store import GraphStore
from kg.triples import ALIAS_RELATIONS, bare_name
from model.data.schema import Comment
from retrieval.cue_model import RelationCues, window_cues
from retrieval.fact_kinds import LONG_TEXT_RELATIONS, stateable
from retrieval.focus import RECENT
from retrieval.lexicon import EntityLexicon

SEP = "<SEP>"
#: Third-person pronouns of danmaku and chat ("ta" is the gender-neutral written form); not
#: 他们/她们 (they) or 其他 (other).
PRONOUN = re.compile(r"(?<![A-Za-z])[Tt][Aa](?![A-Za-z])|(?<!其)[他她](?![们])")


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
    # Recency (issue 14). A window mention weighs window_weight / (1 + |t - time|) ** power:
    # 2 halves the weight of a mention 1 s further off sooner than 1 did, so the entity named
    # a moment ago outweighs one named at the window's edge (1: the earlier weighting).
    window_recency_power: float = 2.0
    # The topic's weight from the history saturates at this (s * (1 - exp(-sum / s))): the
    # topic is likely, but not a hundred times likelier than the entity just named for being
    # named a hundred times earlier (0: the plain sum, as before).
    topic_saturation: float = 2.0
    # A window comment with a pronoun and no name counts as a mention of the entity named last
    # before it, at this fraction of a mention's weight ("是葛素媛！" ... "ta是韩国人"); not 1,
    # since a pronoun may also be a character on screen (0: off, as before).
    pronoun_weight: float = 0.5
    # With learned relation cues (retrieval.relation_cues) a fact scores exp of the learned
    # model's score instead of the hand factors above (entity weight, relation prior,
    # relation_named_boost, value_stated_factor); these scale its relation rate, window cue
    # and echo parts. 1: the model as fitted (its prior already shrinks what is rare); 0
    # turns a part off.
    rate_weight: float = 1.0
    # With learned cues, facts are ranked by score per budget token (its tokens and the <SEP>):
    # the scores are then comparable likelihoods, and the budget is what they compete for (a
    # 24-token description must be as likely as four 6-token facts together); the greedy
    # order for a knapsack.
    rank_per_token: bool = True
    cue_weight: float = 1.0
    echo_weight: float = 1.0
    # With learned cues that hold an entity model (retrieval.focus), the entities are the
    # best max_entities of the best entity_pool by the hand weighting (the pool the model
    # learned from: retrieval.stated.LINKED_ENTITIES), ranked by the learned
    # probability of being the one spoken of, and a fact scores that probability times its
    # probability among its entity's facts (False: the hand weighting, unnormalised scores).
    learned_focus: bool = True
    entity_pool: int = 8
    # Fingerprint of the relation cues in use (set by Linker): caches keyed by this config
    # (the encoded samples' recalled knowledge) change when the learned model does.
    cue_model: str = ""


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
    evidence: tuple[float, ...] = ()  # retrieval.focus.FEATURES


class Linker:
    def __init__(
        self,
        store: GraphStore,
        lexicon: EntityLexicon,
        config: LinkerConfig | None = None,
        cues: RelationCues | None = None,
    ) -> None:
        config = config or LinkerConfig()
        if config.cue_model != (cues.fingerprint if cues is not None else ""):
            config = replace(config, cue_model=cues.fingerprint if cues is not None else "")
        self.store, self.lexicon, self.config, self.cues = store, lexicon, config, cues
        self._cue_words: dict[str, list[str]] = {}
        # Danmaku repeat and windows overlap: the same texts, entities and facts come back
        # window after window (bounded caches; the store is read-only while recalling).
        self._mentions = lru_cache(maxsize=200_000)(lexicon.mentions)
        self._facts = lru_cache(maxsize=20_000)(
            lambda entity: store.facts(entity, limit=self.config.facts_per_entity)
        )
        self._pack_text = lru_cache(maxsize=200_000)(self._fact_text)

    # -- entities ----------------------------------------------------------------------------
    def mentions(self, text: str):
        """The entity mentions of ``text`` (cached, as recall reads them; do not modify)."""
        return self._mentions(text)

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
        """The best entities of the window (``limit``, default ``max_entities``) by the hand
        weighting, best first, each with its evidence (:data:`retrieval.focus.FEATURES`)."""
        cfg = self.config
        found: dict[str, _Candidate] = {}
        # evidence per head: window, topic, title, pronoun (the last-named ones set below)
        parts: dict[str, list[float]] = {}

        def add(head: str, part: int, value: float, keyword: str) -> None:
            parts.setdefault(head, [0.0] * 4)[part] += value
            c = found.setdefault(head, _Candidate(head, 0.0, ""))
            if value > 0 and not c.keyword:
                c.keyword = keyword

        decay = math.log(2) / cfg.topic_half_life_s
        topic: dict[str, tuple[float, str]] = {}
        named: dict[str, None] = {}  # heads named before t, in the order last named
        last: tuple[str, str] | None = None  # (head, name) of the latest mention
        for c in history:
            for m in self._mentions(c.text):
                weight, name = topic.get(m.head, (0.0, m.name))
                topic[m.head] = (weight + math.exp(-decay * max(0.0, t - c.time_s)), name)
                last = (m.head, m.name)
                named.pop(m.head, None)
                named[m.head] = None
        for c in sorted(window, key=lambda c: c.time_s):
            recency = 1.0 / (1.0 + abs(t - c.time_s)) ** cfg.window_recency_power
            mentions = self._mentions(c.text)
            for m in mentions:
                add(m.head, 0, recency, m.name)
                last = (m.head, m.name)
                if c.time_s < t:
                    named.pop(m.head, None)
                    named[m.head] = None
            pronoun = not mentions and cfg.pronoun_weight and PRONOUN.search(c.text)
            if pronoun and last is not None:
                add(last[0], 3, recency, last[1])
        s = cfg.topic_saturation
        for head, (weight, name) in topic.items():
            add(head, 1, s * (1.0 - math.exp(-weight / s)) if s > 0 else weight, name)
        for m in self._mentions(title):
            add(m.head, 2, 1.0, m.name)
        recent = list(reversed(named))[:RECENT]
        for head, c in found.items():
            window_w, topic_w, title_w, pronoun_w = parts[head]
            c.weight = cfg.window_weight * (window_w + cfg.pronoun_weight * pronoun_w)
            c.weight += topic_w + title_w
            order = [float(head == r) for r in recent] + [0.0] * (RECENT - len(recent))
            c.evidence = (window_w, topic_w, title_w, pronoun_w, *order)
        ranked = sorted(found.values(), key=lambda c: (-c.weight, c.entity))
        return ranked[: cfg.max_entities if limit is None else limit]

    # -- facts -----------------------------------------------------------------------------
    def _prior(self, relation: str) -> float:
        if relation in ALIAS_RELATIONS:
            return self.config.alias_relation_prior
        if relation in LONG_TEXT_RELATIONS:
            return self.config.long_text_prior
        return 1.0

    def _score(
        self,
        cand: _Candidate,
        relation: str,
        tail: str,
        window_text: str,
        relation_cues: dict[str, float],
    ) -> float:
        cfg, cues = self.config, self.cues
        named = relation in window_text
        echo = len(tail) >= 2 and tail in window_text
        if cues is None:
            score = cand.weight * self._prior(relation)
            score *= cfg.relation_named_boost if named else 1.0
            score *= cfg.value_stated_factor if echo else 1.0
        else:
            # The learned model (retrieval.relation_cues), its parts scaled by the config.
            # Alias facts were not among what it learned from: their prior stays.
            prior = cfg.alias_relation_prior if relation in ALIAS_RELATIONS else 1.0
            if relation in LONG_TEXT_RELATIONS and relation not in cues.rate:
                prior = cfg.long_text_prior
            score = (
                cand.weight
                * prior
                * math.exp(
                    cfg.rate_weight * cues.rate.get(relation, 0.0)
                    + cfg.cue_weight * relation_cues.get(relation, 0.0)
                    + cfg.echo_weight * cues.echo * echo
                    + cues.named * named
                )
            )
        return score * (cfg.hop2_factor if cand.hop == 2 else 1.0)

    def relation_cues(self, window: Sequence[Comment], t: float) -> dict[str, float]:
        """Relation -> how strongly the window's comments before ``t`` lead up to it (empty
        without a cue model)."""
        if self.cues is None:
            return {}
        words = window_cues(self.lexicon, window, t, self.cues.config.half_life_s, self._cue_words)
        if len(self._cue_words) > 200_000:  # bounded, as the other caches
            self._cue_words.clear()
        return self.cues.relation_scores(words)

    def _fact_text(self, head: str, relation: str, tail: str) -> tuple[str, int]:
        tokens = self.lexicon.tokens(f"{bare_name(head) or head} {relation} {tail}")
        if len(tokens) > self.config.max_fact_tokens:
            tokens = tokens[: self.config.max_fact_tokens - 1] + ["…"]
        return "".join(tokens), len(tokens)

    def _focused(self) -> bool:
        return self.cues is not None and bool(self.cues.focus) and self.config.learned_focus

    def _focus(self, cands: list[_Candidate]) -> list[_Candidate]:
        """The best ``max_entities`` of ``cands`` by the learned entity model, each weighing
        its probability of being the one spoken of."""
        from retrieval.focus import probabilities

        p = probabilities(self.cues.focus, [c.evidence for c in cands])
        out = [replace(c, weight=w) for c, w in zip(cands, p, strict=True)]
        return sorted(out, key=lambda c: (-c.weight, c.entity))[: self.config.max_entities]

    def _scored(self, cands: list[_Candidate], window_text: str, relation_cues: dict):
        per_token = self.cues is not None and self.config.rank_per_token
        focused = self._focused()
        for cand in cands:
            facts = self._facts(cand.entity)
            scores = [
                self._score(cand, f.relation, f.tail, window_text, relation_cues) for f in facts
            ]
            if focused:
                # P(entity) * P(fact | entity): normalised over what the fact model ranks
                z = sum(
                    s for f, s in zip(facts, scores, strict=True) if stateable(f.relation, f.tail)
                )
                # (the scores' common factor, the entity's weight and hop, cancels in s / z)
                mass = cand.weight * (self.config.hop2_factor if cand.hop == 2 else 1.0)
                scores = [s / z * mass for s in scores] if z > 0 else scores
            for f, score in zip(facts, scores, strict=True):
                key = (
                    score / (self._pack_text(f.head, f.relation, f.tail)[1] + 1)
                    if per_token
                    else score
                )
                yield (-key, f.head, f.relation, f.tail), cand, score

    def link(
        self, window: Sequence[Comment], history: Sequence[Comment], t: float, title: str = ""
    ) -> list[RecalledFact]:
        """Facts for the window, best first, packed into the token budget."""
        cfg = self.config
        if self._focused():
            cands = self._focus(self.entities(window, history, t, title, limit=cfg.entity_pool))
        else:
            cands = self.entities(window, history, t, title)
        window_text = " ".join(c.text for c in window)
        cues = self.relation_cues(window, t)
        ranked = _diversified(
            sorted(self._scored(cands, window_text, cues), key=lambda x: x[0]),
            cfg.facts_first_round,
        )
        packed, used = self._pack(ranked, cfg.budget)
        if used < cfg.budget and cands:
            hop2 = self._second_hop(cands[:2], packed)
            more, _ = self._pack(
                sorted(self._scored(hop2, window_text, cues), key=lambda x: x[0]),
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
