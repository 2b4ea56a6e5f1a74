"""Which fact a window leads up to, learned from a corpus's knowledge-bearing comments.

A comment that states a KG fact (:mod:`retrieval.stated`) tells what the window before it led
up to: "哪年上映的" is followed by a 上映时间 value, "ta是哪里人" by a 国籍 or 出生地 value, a
window that has just named a person by a fact of that person. :func:`learn` fits, on every
training comment that states a fact, a log-linear ranking model (conditional logit, McFadden
1974) of *which* fact of the entity it speaks of it states:

    score(fact) = rate[relation] + sum_w a_w * cue[w][relation]
                  + echo * [value already in the window] + named * [relation named in it]

- ``rate``: how often a relation is the one stated (a film's director far more often than its
  IMDb number);
- ``cue``: the words (jieba tokens of the lexicon tokenizer, and adjacent pairs of them) of
  the window's comments before the comment, ``a_w`` their recency weight; entity names are
  not cues (which entity is a matter of linking, and names do not carry over to other videos);
- ``echo``: a value already in the window (danmaku repeat each other; a dialogue does not
  repeat an answer); ``named``: the relation's own name in the window ("导演是谁").

A ranking model rather than counts: a window holds dozens of chatter words, and summing their
chance associations (pointwise mutual information) swamps the one question word that matters;
fitted jointly, words that do not tell relations apart get weights near zero. Weights have a
Gaussian prior (L2, :attr:`~retrieval.cue_model.CueConfig.l2`); a small hand seed list of
question words enters as pseudo-examples the data outweighs. Which *entity* a comment speaks of
is the linker's part (recency, pronouns, topic), learned from the same comments
(:mod:`retrieval.focus`: which of the window's linked entities it states facts of): the model
ranks the facts of the entities the comment states facts of, and
:class:`~retrieval.linker.Linker` scores a fact with its entity's probability times
``exp(score)`` normalised over the entity's facts. Long descriptions and alias values are not
stated facts (:mod:`retrieval.stated`), so the model says nothing of them; the linker's priors
stay.
The model itself, and how the linker applies it, is :mod:`retrieval.cue_model`.
:func:`cached_cues` saves the learned model as JSON next to the corpus's keyword sets, keyed
by the examples' videos, the lexicon and what the examples were drawn with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from common.atomic import write_json
from model.data.schema import Comment, Video
from retrieval import focus
from retrieval.cue_model import (
    CUES_VERSION,
    Candidate,
    CueConfig,
    RelationCues,
    comment_cues,
    window_cues,
)
from retrieval.fact_kinds import stateable
from retrieval.lexicon import EntityLexicon
from retrieval.linker import Linker
from retrieval.stated import LINKED_ENTITIES, StatedFact, stated_in
from retrieval.window import window_of

log = logging.getLogger(__name__)
#: Question words and the relations they ask for: a prior (pseudo-counts), not the model.
SEEDS: dict[str, tuple[str, ...]] = {
    "哪里人": ("国籍", "出生地"),
    "哪国": ("国籍",),
    "国籍": ("国籍",),
    "哪年": ("出生日期", "上映时间"),
    "多大": ("出生日期",),
    "生日": ("出生日期",),
    "出生": ("出生日期", "出生地"),
    "多高": ("身高",),
    "星座": ("星座",),
    "毕业": ("毕业院校",),
    "导演": ("导演",),
    "谁演": ("主演",),
    "主演": ("主演",),
    "上映": ("上映时间",),
    "票房": ("票房",),
    "多长": ("片长",),
    "编剧": ("编剧",),
}


@dataclass(frozen=True, slots=True)
class Example:
    """One comment that states facts: the cue words of the window before it (word -> recency
    weight), the facts of the window's linked entities, and the indices of those it states."""

    cues: dict[str, float]
    candidates: tuple[Candidate, ...]
    stated: frozenset[int]
    #: the evidence (:data:`retrieval.focus.FEATURES`) of the window's linked entities, and
    #: the indices of those whose facts it states
    entities: tuple[tuple[float, ...], ...] = ()
    spoken_of: frozenset[int] = frozenset()


def candidates_of(linker: Linker, cands, window_text: str) -> list[Candidate]:
    """The facts of the linked entities ``cands`` a comment can state (:func:`retrieval.
    fact_kinds.stateable`: not alias values, long descriptions or one-character values), each
    once."""
    out: dict[tuple[str, str, str], Candidate] = {}
    for cand in cands:
        for f in linker.entity_facts(cand.entity):
            key = (f.head, f.relation, f.tail)
            if not stateable(f.relation, f.tail) or key in out:
                continue
            echo = len(f.tail) >= 2 and f.tail in window_text
            out[key] = Candidate(*key, echo, f.relation in window_text)
    return list(out.values())


def examples_from_videos(
    linker: Linker,
    videos: Iterable[Video],
    config: CueConfig | None = None,
    before_only: bool = False,
) -> Iterator[Example]:
    """An :class:`Example` for every comment of ``videos`` that states a fact
    (:mod:`retrieval.stated`: a value of a fact of an entity linked in its window), with the
    facts of the entities it states facts of as the candidates. The window is recall's
    (``[t-l, t+l]`` without second t; ``before_only``: ``[t-l, t)``, for data whose recall
    sees only the past, such as a dialogue)."""
    config = config or CueConfig()
    cache: dict[str, list[str]] = {}
    for video in videos:
        by_second: dict[int, list[Comment]] = {}
        for c in video.comments:
            by_second.setdefault(c.second, []).append(c)
        for t in sorted(by_second):
            window, history = window_of(video, t, linker.config.radius)
            if before_only:
                window = [c for c in window if c.time_s < t]
            cands = linker.entities(window, history, t, video.title, limit=LINKED_ENTITIES)
            window_text = " ".join(w.text for w in window)
            facts = candidates_of(linker, cands, window_text)
            index = {(f.head, f.relation, f.tail): i for i, f in enumerate(facts)}
            values = [StatedFact(f.head, f.relation, f.tail) for f in facts]
            cues = None
            for c in by_second[t]:
                said = {index[(f.head, f.relation, f.tail)] for f in stated_in(c.text, values)}
                if not said:
                    continue
                if cues is None:
                    cues = window_cues(linker.lexicon, window, t, config.half_life_s, cache)
                # Which fact of the entity it speaks of: which entity is the linker's part.
                heads = {facts[i].head for i in said}
                own = [i for i, f in enumerate(facts) if f.head in heads]
                yield Example(
                    cues,
                    tuple(facts[i] for i in own),
                    frozenset(j for j, i in enumerate(own) if i in said),
                    tuple(c.evidence for c in cands),
                    frozenset(j for j, c in enumerate(cands) if c.entity in heads),
                )


# One training row: cue word -> activation, the competing facts as (relation index, echo,
# named, stated), and the row's weight (1 for an example, ``seed_count`` for a seed phrase).
_Row = tuple[dict[str, float], list[tuple[int, bool, bool, bool]], float]


def learn(
    examples: Iterable[Example],
    config: CueConfig | None = None,
    seeds: dict[str, tuple[str, ...]] | None = None,
    lexicon: EntityLexicon | None = None,
) -> RelationCues:
    """Fit the ranking model of the module docstring to ``examples`` (maximum a posteriori,
    L-BFGS). ``seeds`` (default :data:`SEEDS`) are phrases tokenized like cue comments (with
    ``lexicon``), each a pseudo-example of weight ``seed_count`` in which one fact of every
    relation competes and its relations are the ones stated. The examples' entity evidence
    fits the entity model (:func:`retrieval.focus.fit`) alongside."""
    config = config or CueConfig()
    examples = [ex for ex in examples if ex.candidates and ex.stated]
    if not examples:
        return RelationCues(config=config)
    relations = sorted({c.relation for ex in examples for c in ex.candidates})
    rows = _rows(examples, relations, config, SEEDS if seeds is None else seeds, lexicon)
    vocab = sorted({w for cues, _, _ in rows for w in cues})
    theta, rate, coef = _fit(rows, vocab, len(relations), config)
    out = RelationCues(examples=len(examples), config=config)
    out.focus = focus.fit([(ex.entities, ex.spoken_of) for ex in examples], config.l2)
    out.echo, out.named = (round(float(x), 4) for x in coef)
    out.rate = {r: round(float(v), 4) for r, v in zip(relations, rate, strict=True)}
    for i, w in enumerate(vocab):
        # |weight| under 0.01 moves a score by at most 1 %: not worth storing
        row = {relations[j]: round(float(v), 4) for j, v in enumerate(theta[i]) if abs(v) >= 0.01}
        if row:
            out.cues[w] = row
    return out


def _rows(
    examples: list[Example],
    relations: list[str],
    config: CueConfig,
    seeds: dict[str, tuple[str, ...]],
    lexicon: EntityLexicon | None,
) -> list[_Row]:
    """The training rows: one per example (its cue words seen at least ``min_count`` times),
    then one per seed phrase whose relations occur."""
    rel_index = {r: i for i, r in enumerate(relations)}
    seen: dict[str, int] = defaultdict(int)
    for ex in examples:
        for word in ex.cues:
            seen[word] += 1
    rows: list[_Row] = []
    for ex in examples:
        cands = [
            (rel_index[c.relation], c.echo, c.named, i in ex.stated)
            for i, c in enumerate(ex.candidates)
        ]
        rows.append(({w: a for w, a in ex.cues.items() if seen[w] >= config.min_count}, cands, 1))
    for phrase, targets in sorted(seeds.items()):
        words = comment_cues(lexicon, phrase) if lexicon is not None else [phrase]
        targets = [r for r in targets if r in rel_index]
        if not targets or not words:
            continue
        cands = [(i, False, False, r in targets) for i, r in enumerate(relations)]
        rows.append((dict.fromkeys(words, 1.0), cands, config.seed_count))
    return rows


def _fit(rows: list[_Row], vocab: list[str], n_relations: int, config: CueConfig):
    """The maximum a posteriori weights of ``rows``: ``(theta (words, relations), rate
    (relations,), coef (echo, named))`` as numpy arrays."""
    import numpy as np
    import torch

    word_index = {w: i for i, w in enumerate(vocab)}
    n, k = len(rows), max(len(c) for _, c, _ in rows)
    rel = np.zeros((n, k), dtype=np.int64)
    feats = np.zeros((n, k, 2), dtype=np.float64)  # echo, named
    mask = np.zeros((n, k), dtype=bool)
    target = np.zeros((n, k), dtype=bool)
    weight = np.zeros(n, dtype=np.float64)
    a_rows, a_cols, a_vals = [], [], []
    for e, (cues, cands, w) in enumerate(rows):
        weight[e] = w
        for j, (r, echo, named, said) in enumerate(cands):
            rel[e, j], feats[e, j], mask[e, j], target[e, j] = r, (echo, named), True, said
        for word, a in cues.items():
            a_rows.append(e)
            a_cols.append(word_index[word])
            a_vals.append(a)
    dtype = torch.float64
    A = torch.sparse_coo_tensor(
        torch.tensor([a_rows, a_cols], dtype=torch.int64).reshape(2, -1),
        torch.tensor(a_vals, dtype=dtype),
        (n, max(len(vocab), 1)),
        check_invariants=True,
    ).coalesce()
    rel_t, feats_t = torch.from_numpy(rel), torch.from_numpy(feats)
    mask_t, target_t = torch.from_numpy(mask), torch.from_numpy(target)
    weight_t = torch.from_numpy(weight)
    theta = torch.zeros((max(len(vocab), 1), n_relations), dtype=dtype, requires_grad=True)
    rate = torch.zeros(n_relations, dtype=dtype, requires_grad=True)
    coef = torch.tensor([0.0, 0.0], dtype=dtype, requires_grad=True)  # echo, named
    neg = torch.tensor(-math.inf, dtype=dtype)
    opt = torch.optim.LBFGS(
        [theta, rate, coef],
        max_iter=config.iterations,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        by_relation = torch.sparse.mm(A, theta)  # (examples, relations)
        s = torch.gather(by_relation, 1, rel_t) + rate[rel_t] + feats_t @ coef
        log_all = torch.logsumexp(torch.where(mask_t, s, neg), dim=1)
        log_said = torch.logsumexp(torch.where(target_t, s, neg), dim=1)
        nll = (weight_t * (log_all - log_said)).sum()
        prior = (theta**2).sum() + (rate**2).sum() + (coef**2).sum()
        value = nll + 0.5 * config.l2 * prior
        value.backward()
        return value

    opt.step(closure)
    return theta.detach().numpy(), rate.detach().numpy(), coef.detach().numpy()


def videos_fingerprint(videos: Sequence[Video]) -> str:
    """Changes whenever one of ``videos`` (id, title, any comment) does."""
    h = hashlib.sha256()
    for v in videos:
        h.update(f"{v.id}\t{v.title}\n".encode())
        for c in v.comments:
            h.update(f"{c.time_s}\t{c.text}\n".encode())
    return h.hexdigest()[:16]


def cues_key(
    linker: Linker, config: CueConfig, videos: Sequence[Video], extra: dict | None = None
) -> str:
    """What a cue model learned with ``linker`` depends on besides the lexicon: the videos, the
    learner, its settings, the seeds, the linker's settings and the store's size."""
    blob = json.dumps(
        {
            "version": CUES_VERSION,
            "videos": videos_fingerprint(videos),
            "config": asdict(config),
            "seeds": SEEDS,
            "linker": asdict(linker.config),
            "kg": linker.store.stats(),
            **(extra or {}),
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cached_cues(
    videos: Sequence[Video], linker: Linker, folder: Path, config: CueConfig | None = None
) -> RelationCues:
    """The cue model of ``videos`` (a corpus's training split), learned once and saved as
    ``relation-cues-<lexicon>-<key>.json`` in ``folder`` (the corpus's retrieval folder)."""
    config = config or CueConfig()
    key = cues_key(linker, config, videos)
    path = folder / f"relation-cues-{linker.lexicon.fingerprint}-{key}.json"
    if path.exists():
        try:
            return RelationCues.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError) as e:  # derived: learned again
            log.warning("%s: damaged or older relation cues (%s): learning them again", path, e)
    cues = learn(examples_from_videos(linker, videos, config), config, lexicon=linker.lexicon)
    write_json(path, cues.as_json())
    return cues
