"""Candidate sets for the ranking evaluation, as LiveBot's ``data/add_candidate.py`` builds
them (LiveBot, Ma et al. 2019, section 5; KLVCG section V-A; design: docs/evaluation.md,
section "Candidate sets").

For each test sample, exactly ``size`` distinct comment texts:

1. the ground-truth comments at t (label 1): identical texts de-duplicated, at most 5 kept;
2. of the 20 most frequent training comments, those not already present (label 2, popular);
3. of the 20 training comments most TF-IDF-similar to the sample's context, those not already
   present (label 3, plausible);
4. random distinct training comments not already present until there are ``size`` (label 4).

The order is then shuffled. The Twitch files of LiveChat/SFAT (docs/data-contracts.md, section
"Twitch") use 80 candidates, 1 ground truth + 20 plausible + 20 popular + 39 random:
:data:`TWITCH_SPEC`. Those files ship their sets unshuffled; the Twitch reader labels them by
:meth:`CandidateSpec.ordered_labels`.

Two choices differ from ``add_candidate.py``: TF-IDF uses the caller's tokenizer (jieba in the
project; sklearn's default token pattern drops one-character Chinese words), and a training
comment with zero similarity to the context is not "plausible" (LiveBot takes the top 20 even
when they share no word with it); the random fill takes its place. Sets are built once, seeded
per sample from ``(seed, video, t)``, and saved as JSON lines with the data.

The released ``candidate`` objects ``{words: label}`` of LiveBot's and MovieLC's test records
are parsed here too (:func:`released_labels`), for both readers alike.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.atomic import atomic_open
from model.data.fileio import bad, describe, join_words
from model.data.schema import Candidate, DataError

TRUTH, POPULAR, PLAUSIBLE, RANDOM = 1, 2, 3, 4
LABELS = (TRUTH, POPULAR, PLAUSIBLE, RANDOM)

Tokenizer = Callable[[str], list[str]]


def char_tokenize(text: str) -> list[str]:
    """Characters of ``text`` without whitespace: the default tokenizer (tests, no jieba)."""
    return [ch for ch in text if not ch.isspace()]


@dataclass(frozen=True, slots=True)
class CandidateSpec:
    """How many candidates of each kind a set holds, and in which order kinds are added."""

    size: int = 100
    max_truths: int = 5
    n_popular: int = 20
    n_plausible: int = 20
    #: Add the plausible comments before the popular ones (decides the label of an overlap).
    plausible_first: bool = False

    def __post_init__(self) -> None:
        if self.size < 1 or self.max_truths < 1 or self.max_truths > self.size:
            raise ValueError(f"need 1 <= max_truths <= size, got {self}")
        if self.n_popular < 0 or self.n_plausible < 0:
            raise ValueError(f"n_popular and n_plausible must be >= 0, got {self}")

    def ordered_labels(self) -> list[int]:
        """The label of each position of a full set left in the order kinds are added, before
        the shuffle: ``max_truths`` ground truths, the popular and plausible ones in the spec's
        order, then random up to ``size`` (how the Twitch files ship theirs)."""
        kinds = [(POPULAR, self.n_popular), (PLAUSIBLE, self.n_plausible)]
        labels = [TRUTH] * self.max_truths
        for label, n in reversed(kinds) if self.plausible_first else kinds:
            labels += [label] * n
        return (labels + [RANDOM] * self.size)[: self.size]


LIVEBOT_SPEC = CandidateSpec()
TWITCH_SPEC = CandidateSpec(size=80, max_truths=1, plausible_first=True)


@dataclass(frozen=True, slots=True)
class CandidateRequest:
    """What one sample's candidate set is built from."""

    video: str
    t: int
    ground_truths: tuple[str, ...]
    context: str


@dataclass(frozen=True, slots=True)
class CandidateSet:
    """The saved candidate set of the sample at second ``t`` of ``video``."""

    video: str
    t: int
    candidates: list[Candidate]

    def to_json(self) -> str:
        cands = [{"text": c.text, "label": c.label} for c in self.candidates]
        record = {"video": self.video, "t": self.t, "candidates": cands}
        return json.dumps(record, ensure_ascii=False)


class CandidatePool:
    """The training comments candidate sets draw from, indexed once.

    ``texts`` are all training comments (repeats count towards popularity); blank ones are
    skipped. Distinct texts are kept in order of decreasing frequency (first occurrence on a
    tie), as LiveBot's ``get_comment_set``, which also fixes the order among equal similarities.
    """

    def __init__(
        self,
        texts: Iterable[str],
        tokenizer: Tokenizer = char_tokenize,
        spec: CandidateSpec = LIVEBOT_SPEC,
    ) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer  # slow: only when building

        counts = Counter(t for t in texts if t.strip())
        if not counts:
            raise ValueError("the candidate pool needs at least one non-blank training comment")
        self.spec = spec
        self.texts: list[str] = [text for text, _ in counts.most_common()]
        self.counts: list[int] = [counts[text] for text in self.texts]
        self._index = {text: i for i, text in enumerate(self.texts)}
        self._vectorizer = TfidfVectorizer(tokenizer=tokenizer, lowercase=False, token_pattern=None)
        try:
            self._matrix = self._vectorizer.fit_transform(self.texts)  # (n_texts, vocab), L2 rows
        except ValueError as e:  # sklearn: "empty vocabulary"
            raise ValueError(
                f"the tokenizer yields no token from the training comments: {e}"
            ) from e

    def __len__(self) -> int:
        return len(self.texts)

    def popular(self, k: int | None = None) -> list[str]:
        """The ``k`` (default ``spec.n_popular``) most frequent training comments."""
        return self.texts[: self.spec.n_popular if k is None else k]

    def plausible(self, context: str, k: int | None = None) -> list[str]:
        """Up to ``k`` (default ``spec.n_plausible``) training comments most similar to
        ``context`` by TF-IDF cosine, most similar first; none with zero similarity."""
        k = self.spec.n_plausible if k is None else k
        if k <= 0:
            return []
        query = self._vectorizer.transform([context])  # (1, vocab)
        sims = (self._matrix @ query.T).tocoo()  # (n_texts, 1), sparse: only similar texts
        rows, values = sims.row, sims.data
        keep = values > 0
        rows, values = rows[keep], values[keep]
        order = np.lexsort((rows, -values))[:k]  # by similarity, then frequency order
        return [self.texts[i] for i in rows[order]]

    def _random_fill(self, present: dict[str, int], n: int, rng: np.random.Generator) -> list[str]:
        """``n`` distinct pool texts not in ``present``, drawn uniformly."""
        in_pool = sum(1 for text in present if text in self._index)
        if len(self.texts) - in_pool < n:
            raise ValueError(
                f"the pool of {len(self.texts)} distinct training comments cannot fill "
                f"{self.spec.size} distinct candidates ({n} more needed, "
                f"{len(self.texts) - in_pool} available)"
            )
        # n + in_pool distinct draws hold at least n texts not yet present.
        draws = rng.choice(len(self.texts), size=n + in_pool, replace=False)
        fresh = [self.texts[i] for i in draws if self.texts[i] not in present]
        return fresh[:n]

    def build(
        self, ground_truths: Sequence[str], context: str, rng: np.random.Generator
    ) -> list[Candidate]:
        """Exactly ``spec.size`` distinct candidates of one sample, shuffled with ``rng``."""
        spec = self.spec
        present: dict[str, int] = {}  # text -> label, in order of addition
        for text in ground_truths:
            if text.strip() and text not in present and len(present) < spec.max_truths:
                present[text] = TRUTH
        if not present:
            raise ValueError("a candidate set needs at least one non-blank ground truth")
        kinds = [(POPULAR, self.popular()), (PLAUSIBLE, self.plausible(context))]
        for label, texts in reversed(kinds) if spec.plausible_first else kinds:
            for text in texts:
                present.setdefault(text, label)
        if len(present) > spec.size:
            raise ValueError(f"{len(present)} ground truths, popular and plausible > {spec.size}")
        for text in self._random_fill(present, spec.size - len(present), rng):
            present[text] = RANDOM
        cands = [Candidate(text, label) for text, label in present.items()]
        return [cands[i] for i in rng.permutation(len(cands))]


def sample_rng(seed: int, video: str, t: int) -> np.random.Generator:
    """The generator of one sample's set: a set depends on (seed, video, t) only, not on which
    other samples are built or in which order."""
    return np.random.default_rng([seed, zlib.crc32(video.encode("utf-8")), t])


def build_all(
    pool: CandidatePool, requests: Iterable[CandidateRequest], seed: int = 0
) -> list[CandidateSet]:
    """The candidate sets of many samples, each seeded by :func:`sample_rng`."""
    return [
        CandidateSet(
            r.video, r.t, pool.build(r.ground_truths, r.context, sample_rng(seed, r.video, r.t))
        )
        for r in requests
    ]


def save_candidate_sets(path: str | Path, sets: Iterable[CandidateSet]) -> int:
    """Write ``sets`` as JSON lines ``{"video", "t", "candidates": [{"text", "label"}]}``
    (atomically); returns the number written."""
    n = 0
    with atomic_open(path, "w") as f:
        for s in sets:
            f.write(s.to_json() + "\n")
            n += 1
    return n


def _parse_candidate(item: object, where: str) -> Candidate:
    if not isinstance(item, dict) or set(item) != {"text", "label"}:
        raise DataError(f'{where}: a candidate must be {{"text", "label"}}, got {item!r:.80}')
    text, label = item["text"], item["label"]
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: candidate text must be a non-blank string, got {text!r:.80}")
    if type(label) is not int or label not in LABELS:
        raise DataError(f"{where}: candidate label must be one of {LABELS}, got {label!r}")
    return Candidate(text, label)


def parse_candidate_set(line: str, where: str, size: int | None = None) -> CandidateSet:
    """One JSON line as a :class:`CandidateSet`; ``where`` (``file:line``) names it in errors."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not JSON: {e.msg} at column {e.colno}") from None
    if not isinstance(record, dict) or not {"video", "t", "candidates"} <= set(record):
        raise DataError(f'{where}: a record needs the fields "video", "t" and "candidates"')
    video, t, items = record["video"], record["t"], record["candidates"]
    if not isinstance(video, str) or not video:
        raise DataError(f'{where}: "video" must be a non-empty string, got {video!r:.80}')
    if type(t) is not int or t < 0:
        raise DataError(f'{where}: "t" must be a non-negative integer second, got {t!r:.80}')
    if not isinstance(items, list):
        raise DataError(f'{where}: "candidates" must be a list')
    cands = [_parse_candidate(item, f"{where}: candidate {i}") for i, item in enumerate(items)]
    if size is not None and len(cands) != size:
        raise DataError(f"{where}: {len(cands)} candidates, expected {size}")
    if not any(c.label == TRUTH for c in cands):
        raise DataError(f"{where}: no ground-truth candidate (label {TRUTH})")
    dup = next((text for text, n in Counter(c.text for c in cands).items() if n > 1), None)
    if dup is not None:
        raise DataError(f"{where}: candidate text {dup!r:.80} appears more than once")
    return CandidateSet(video, t, cands)


def load_candidate_sets(path: str | Path, size: int | None = None) -> list[CandidateSet]:
    """Read and validate saved candidate sets; a :class:`DataError` names ``file:line``.

    Every record must hold ``size`` candidates (default: as many as the first record), at least
    one ground truth, distinct texts, and a ``(video, t)`` no other record holds.
    """
    sets: list[CandidateSet] = []
    seen: dict[tuple[str, int], int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{where}: not UTF-8 text ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            s = parse_candidate_set(line, where, size)
            size = len(s.candidates) if size is None else size
            if (s.video, s.t) in seen:
                raise DataError(
                    f"{where}: video {s.video!r} t={s.t} already at line {seen[s.video, s.t]}"
                )
            seen[s.video, s.t] = lineno
            sets.append(s)
    return sets


def released_labels(raw: object, loc: str) -> dict[str, int]:
    """A released ``candidate`` object ``{words: label}`` (LiveBot's ``add_candidate.py``,
    MovieLC's test records) as ``{text: label}``, each text as :func:`join_words` rebuilds it.

    Labels are non-negative integers. Keys that join to the same text are one candidate: a
    ground truth if any of them is, else the first one's label. ``loc`` (``file:line``) names
    the record in errors.
    """
    if not isinstance(raw, dict) or not raw:
        raise bad(loc, "candidate", "an object {words: label}", raw)
    labels: dict[str, int] = {}
    for words, label in raw.items():
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            raise bad(loc, f"candidate[{describe(words)}]", "an integer label", label)
        text = join_words(words)
        labels[text] = TRUTH if label == TRUTH else labels.get(text, label)
    return labels


def released_candidates(labels: dict[str, int], loc: str) -> list[Candidate]:
    """The candidates of :func:`released_labels`; a :class:`DataError` when none is a ground
    truth."""
    if TRUTH not in labels.values():
        raise DataError(f"{loc}: field 'candidate': no ground truth (label 1) among the candidates")
    return [Candidate(text, label) for text, label in labels.items()]


def as_mapping(sets: Iterable[CandidateSet]) -> dict[tuple[str, int], list[Candidate]]:
    """Candidate sets keyed by ``(video, t)``, the layout of ``Corpus.candidates``."""
    return {(s.video, s.t): s.candidates for s in sets}
