"""The learned relation-cue model: its weights, how it scores a window's facts, its JSON form.

:mod:`retrieval.relation_cues` learns it from a corpus's knowledge-bearing comments with a
:class:`~retrieval.linker.Linker`; the linker scores facts with it. The model is data the
linker reads, the learner is code that runs the linker: so the model, the cue words of a
comment and of a window, and the settings it was learned with live here, below the linker,
and the learner above it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from model.data.schema import Comment
from retrieval.lexicon import EntityLexicon

CUES_VERSION = 3
ENTITY = "<ENT>"  # an entity name in a cue comment: never a cue, breaks word pairs
_NOISE = re.compile(r"^[\W\d_]+$")


@dataclass(frozen=True)
class CueConfig:
    #: Strength of the Gaussian prior on every weight (L2 penalty ``l2/2 * w**2`` against the
    #: summed log-likelihood of the examples): variance 1, so a weight of one e-fold needs the
    #: evidence of about one example against it, and a word seen a few times stays near zero.
    l2: float = 1.0
    #: A word in fewer knowledge-bearing windows than this is no cue (chance co-occurrence).
    min_count: int = 3
    #: Weight of a hand seed phrase, in examples: enough to act on a corpus with no such
    #: questions, little against a corpus that has them.
    seed_count: float = 2.0
    #: A cue comment's weight halves with this many seconds between it and the comment: the
    #: question just before an answer is what it answers.
    half_life_s: float = 2.0
    #: L-BFGS iterations (full batch; the loss is convex, it converges well before).
    iterations: int = 100


@dataclass(frozen=True, slots=True)
class Candidate:
    """A fact a comment could state: of an entity linked in its window, with what the model
    scores it by."""

    head: str
    relation: str
    tail: str
    echo: bool  # its value is in the window
    named: bool  # its relation's name is in the window


@dataclass
class RelationCues:
    """The learned model (:mod:`retrieval.relation_cues`): per relation a rate, per cue word the
    relations it points to or away from, the echo and named weights, and the weights of
    which entity the window is about (:mod:`retrieval.focus`)."""

    rate: dict[str, float] = field(default_factory=dict)
    cues: dict[str, dict[str, float]] = field(default_factory=dict)
    echo: float = 0.0
    named: float = 0.0
    focus: dict[str, float] = field(default_factory=dict)
    examples: int = 0
    config: CueConfig = field(default_factory=CueConfig)

    # -- applying --------------------------------------------------------------------------
    def window_cues(
        self, lexicon: EntityLexicon, window: Sequence[Comment], t: float
    ) -> dict[str, float]:
        """The cue words of the window's comments before ``t``, each with the recency weight
        of its closest comment."""
        return window_cues(lexicon, window, t, self.config.half_life_s)

    def relation_scores(self, cues: dict[str, float]) -> dict[str, float]:
        """Relation -> the summed (recency-weighted) cue weights of the window's words."""
        out: dict[str, float] = defaultdict(float)
        for word, weight in cues.items():
            for relation, w in self.cues.get(word, {}).items():
                out[relation] += weight * w
        return dict(out)

    def score(self, c: Candidate, relation_scores: dict[str, float]) -> float:
        """The model's score of a candidate (log scale)."""
        return (
            self.rate.get(c.relation, 0.0)
            + relation_scores.get(c.relation, 0.0)
            + self.echo * c.echo
            + self.named * c.named
        )

    # -- saving ----------------------------------------------------------------------------
    def as_json(self) -> dict:
        return {
            "version": CUES_VERSION,
            "config": asdict(self.config),
            "examples": self.examples,
            "echo": self.echo,
            "named": self.named,
            "focus": self.focus,
            "rate": dict(sorted(self.rate.items())),
            "cues": {w: dict(sorted(r.items())) for w, r in sorted(self.cues.items())},
        }

    @classmethod
    def from_json(cls, raw: dict) -> RelationCues:
        if raw.get("version") != CUES_VERSION:
            raise ValueError(f"relation cues of version {raw.get('version')}, not {CUES_VERSION}")
        return cls(
            rate={k: float(v) for k, v in raw["rate"].items()},
            cues={w: {r: float(v) for r, v in rs.items()} for w, rs in raw["cues"].items()},
            echo=float(raw["echo"]),
            named=float(raw["named"]),
            focus={f: float(v) for f, v in raw["focus"].items()},
            examples=int(raw["examples"]),
            config=CueConfig(**raw["config"]),
        )

    @property
    def fingerprint(self) -> str:
        blob = json.dumps(self.as_json(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def comment_cues(lexicon: EntityLexicon, text: str) -> list[str]:
    """The cue words of one comment: its tokens and adjacent token pairs, entity names and
    punctuation left out (a name also breaks the pairs across it)."""
    spans = [(m.start, m.start + len(m.name)) for m in lexicon.mentions(text)]
    pieces, last = [], 0
    for start, end in spans:
        pieces += [text[last:start], None]
        last = end
    pieces.append(text[last:])
    words: list[str] = []
    for piece in pieces:
        if piece is None:
            words.append(ENTITY)
            continue
        words += [w for w in lexicon.tokens(piece) if not _NOISE.match(w)] if piece else []
    out = [w for w in words if w != ENTITY]
    out += [a + b for a, b in zip(words, words[1:], strict=False) if ENTITY not in (a, b)]
    return list(dict.fromkeys(out))


def window_cues(
    lexicon: EntityLexicon,
    window: Sequence[Comment],
    t: float,
    half_life_s: float,
    cache: dict[str, list[str]] | None = None,
) -> dict[str, float]:
    """Cue word -> recency weight (``2 ** (-(t - time) / half_life_s)``, the closest comment's)
    over the window's comments before ``t``."""
    out: dict[str, float] = {}
    for c in window:
        if c.time_s >= t:
            continue
        weight = 2.0 ** (-(t - c.time_s) / half_life_s) if half_life_s > 0 else 1.0
        words = cache.get(c.text) if cache is not None else None
        if words is None:
            words = comment_cues(lexicon, c.text)
            if cache is not None:
                cache[c.text] = words
        for w in words:
            if weight > out.get(w, 0.0):
                out[w] = weight
    return out
