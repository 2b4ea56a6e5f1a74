"""Samples plus recalled knowledge -> the arrays KLVCG reads.

Design: docs/architecture.md, section "Data flow".

For a sample at second t (KLVCG §IV-A):

- ``frames`` ``(2l+1, F)`` and ``frame_mask``: the frame features of [t-l, t+l];
- ``rows`` ``(2l+1, n)``: one word row per context second t-l..t-1, t+1..t+l (the
  Comment@TimeStep encoder's input: ``[CLS]`` then the second's comments joined by ``<&&&>``,
  LiveBot's separator), then one row of comments of *other* videos about the same entities
  (the paper's AC, "concatenated with the original context comments");
- ``knowledge`` ``(m+1,)``: ``[CLS]`` then the recalled facts' words joined by ``<&&&>``, with
  ``fact_of`` mapping each position to the fact it came from (-1 for ``[CLS]``, separators and
  padding), so the knowledge encoder's attention can be read back as attention over facts, and
  ``fact_part`` saying whether a word is of the fact's head, relation or value (the copy path's
  segment embedding; the three parts are segmented separately);
- ``period``: the viewing-period stage of t;
- ``targets``: the ground-truth comments as ``<BOS> words <EOS>`` rows of g ids;
- ``stated``: per ground truth, the KG facts it states (:mod:`retrieval.stated`), and
  ``knowledge_stated``: whether any ground truth of the sample states one (the
  knowledge-bearing samples of every corpus; ``knowledge_target`` keeps the demo's flags).

Word ids. The arrays hold *corpus* ids: the prepared vocabulary's words, then ``[MASK]`` and
``[CLS]``, then the split's words that the vocabulary lacks (``oov``: a name or a value no
training comment has), so that a word of the facts or the comments is never lost to
``<UNK>``. A model reads them through a :class:`WordSpace`: the words it has embeddings for
(the vocabulary, or its frequent part when rare words are cut to ``<UNK>``) keep their ids,
everything else is ``<UNK>`` on input, and with a copy path a word of the window's facts or
comments gets an *extended* id, ``vocab_size +`` its first position in the window's source
(the facts then the context rows, flattened), so it can still be scored and generated.

A split is encoded once (recall is the slow part) and cached under the data directory as a
``.npz`` (no pickle) plus the facts as JSON, keyed by everything it was built from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.atomic import atomic_open, write_json
from kg.triples import bare_name
from model.data.samples import Sample, build_samples
from model.data.schema import DataError
from model.data.vocab import BOS, EOS, PAD, SEP, SPECIALS, UNK, Tokenizer, Vocab

log = logging.getLogger(__name__)
ENCODING_VERSION = 4  # part of the cache key: bump when the encoding changes
RECALL_BATCH = 256


def model_specials(vocab: Vocab) -> tuple[int, int]:
    """Ids of the model's own tokens after the corpus vocabulary: ``[MASK]``, ``[CLS]``."""
    return len(vocab), len(vocab) + 1


@dataclass(frozen=True)
class Lengths:
    radius: int
    max_len: int
    max_step_len: int
    max_knowledge_len: int


#: ``fact_part`` values: not a fact word, or a word of the fact's head, relation or value.
PART_NONE, PART_HEAD, PART_RELATION, PART_VALUE = range(4)


class Unseen:
    """A split's words that the vocabulary lacks, with their corpus ids (``base + i``)."""

    def __init__(self, base: int, words: Sequence[str] = ()) -> None:
        self.base, self.words = base, list(words)
        self.ids = {w: base + i for i, w in enumerate(self.words)}

    def add(self, word: str) -> int:
        if word not in self.ids:
            self.ids[word] = self.base + len(self.words)
            self.words.append(word)
        return self.ids[word]


@dataclass(frozen=True)
class WordSpace:
    """How a model reads corpus ids (see the module docstring).

    ``corpus_words``: the prepared vocabulary's size (corpus ids below it are its words, then
    ``[MASK]``, ``[CLS]``, then a split's unseen words); ``model_words``: how many of those
    words (the most frequent first) the model has its own ids for; ``copy``: whether the
    model points at its source, so that the other words get extended ids."""

    corpus_words: int
    model_words: int
    copy: bool = False
    #: with the copy path, whether a comment word the model has an id for is copyable too
    #: (See et al.'s pointer over every source word), or only the comment words it lacks
    copy_known_comment_words: bool = False

    @property
    def vocab_size(self) -> int:
        return self.model_words + 2

    @property
    def mask_id(self) -> int:
        return self.model_words

    @property
    def cls_id(self) -> int:
        return self.model_words + 1

    def to_model(self, ids: np.ndarray) -> np.ndarray:
        """Model input ids of corpus ids: a word without its own id is ``<UNK>``."""
        ids = np.asarray(ids)
        out = np.where(ids < self.model_words, ids, UNK)
        out = np.where(ids == self.corpus_words, self.mask_id, out)
        return np.where(ids == self.corpus_words + 1, self.cls_id, out)

    def _word(self, ids: np.ndarray) -> np.ndarray:
        """True where a corpus id is a word (not padding, a special or a model token)."""
        return (ids >= len(SPECIALS)) & (ids != self.corpus_words) & (ids != self.corpus_words + 1)

    def source_ext(self, source: np.ndarray, n_facts: int | None = None) -> np.ndarray:
        """Extended ids of a window's source (..., S) corpus ids: a word with a model id keeps
        it, any other word is ``vocab_size +`` its first position in the source; ``<PAD>``
        where nothing can be copied (padding, separators, ``[CLS]``, and unless
        ``copy_known_comment_words``, a word after the first ``n_facts`` positions, the
        comments', that the model has an id for)."""
        source = np.asarray(source)
        word = self._word(source)
        same = (source[..., :, None] == source[..., None, :]) & word[..., None, :]
        first = same.argmax(axis=-1)
        known = source < self.model_words
        out = np.where(known, source, self.vocab_size + first)
        if n_facts is not None and not self.copy_known_comment_words:
            word = word & ~(known & (np.arange(source.shape[-1]) >= n_facts))
        return np.where(word, out, PAD)

    def target_ext(self, tokens: np.ndarray, source: np.ndarray | None) -> np.ndarray:
        """Extended ids of comments (..., g) in corpus ids, each against its window's source
        (..., S): a word without a model id is its first position in the source when it is
        there (with a copy path), else ``<UNK>``."""
        tokens = np.asarray(tokens)
        out = self.to_model(tokens)
        if not self.copy or source is None:
            return out
        source = np.asarray(source)
        oov = self._word(tokens) & (tokens >= self.model_words)
        same = tokens[..., :, None] == source[..., None, :]
        found = same.any(axis=-1)
        return np.where(oov & found, self.vocab_size + same.argmax(axis=-1), out)


def frequent_words(vocab: Vocab, targets: np.ndarray, min_count: int) -> int:
    """How many of the vocabulary's first ids a model keeps when words seen fewer than
    ``min_count`` times in the training targets (corpus ids) are cut to ``<UNK>``: the
    vocabulary is ordered by training frequency, so the kept words are a prefix (its length
    is one past the last word that is frequent enough)."""
    if min_count <= 1:
        return len(vocab)
    counts = np.bincount(targets[targets < len(vocab)].ravel(), minlength=len(vocab))
    frequent = np.flatnonzero(counts[len(SPECIALS) :] >= min_count)
    return len(SPECIALS) + (int(frequent[-1]) + 1 if frequent.size else 0)


@dataclass
class Encoded:
    """A split, encoded: ``N`` samples and ``T`` (sample, ground truth) training pairs; ids are
    corpus ids (the module docstring), ``oov`` the split's words the vocabulary lacks."""

    video: list[str]
    t: np.ndarray  # (N,) int32
    frames: np.ndarray  # (N, 2l+1, F) float32
    frame_mask: np.ndarray  # (N, 2l+1) bool
    rows: np.ndarray  # (N, 2l+1, n) int32
    knowledge: np.ndarray  # (N, m+1) int32
    fact_of: np.ndarray  # (N, m+1) int16
    fact_part: np.ndarray  # (N, m+1) int8: PART_* of each knowledge word
    period: np.ndarray  # (N,) int64
    knowledge_target: np.ndarray  # (N,) bool
    targets: np.ndarray  # (T, g) int32
    target_sample: np.ndarray  # (T,) int32
    facts: list[list[dict]]  # per sample: the recalled facts {head, relation, tail, text}
    ac: list[list[str]]  # per sample: the other-video comments in its AC row
    corpus_words: int  # the vocabulary's size: corpus ids of unseen words start at +2
    oov: list[str] = field(default_factory=list)
    linked: list[list[str]] = field(default_factory=list)  # per sample: its linked entities
    stated: list[list[list[str]]] = field(default_factory=list)  # per target: [h, r, t] facts

    @property
    def knowledge_stated(self) -> np.ndarray:
        """(N,) bool: a ground truth of the sample states a KG fact."""
        out = np.zeros(len(self), dtype=bool)
        for i, facts in zip(self.target_sample.tolist(), self.stated, strict=True):
            out[i] |= bool(facts)
        return out

    def __len__(self) -> int:
        return len(self.video)

    def space(self, cfg) -> WordSpace:  # cfg: model.config.ModelConfig
        """How the model of ``cfg`` reads this split's ids."""
        return WordSpace(
            self.corpus_words, cfg.vocab_size - 2, cfg.copy, cfg.copy_known_comment_words
        )

    def unseen(self) -> Unseen:
        """The split's unseen words, to encode more text of it (candidates) consistently."""
        return Unseen(self.corpus_words + 2, self.oov)

    def words(self, corpus_ids: Sequence[int], vocab: Vocab) -> list[str]:
        """The words of corpus ids (unseen ones included) up to ``<EOS>``, without
        ``<BOS>``/``<PAD>``."""
        out = []
        for i in corpus_ids:
            i = int(i)
            if i == EOS:
                break
            if i in (BOS, PAD):
                continue
            j = i - self.corpus_words - 2
            if 0 <= j < len(self.oov):
                out.append(self.oov[j])
            else:
                out.append(vocab.words[i] if 0 <= i < len(vocab) else SPECIALS[UNK])
        return out

    def decode(self, ids: Sequence[int], sample: int, space: WordSpace, vocab: Vocab) -> list[str]:
        """The words of a model's (extended) ids generated for ``sample``: a copied word is the
        word at its position of the sample's source."""
        source = self.source([sample])[0]
        corpus = []
        for i in ids:
            if i >= space.vocab_size:
                corpus.append(int(source[i - space.vocab_size]))
            elif i in (space.mask_id, space.cls_id):
                corpus.append(UNK)
            else:
                corpus.append(int(i))
        return self.words(corpus, vocab)

    def source(self, idx: Sequence[int] | np.ndarray, drop: np.ndarray | None = None) -> np.ndarray:
        """(len(idx), S) corpus ids a copy path points at: the knowledge row, then the 2l
        context rows flattened (not the other videos' row); ``drop`` (len(idx),) bool blanks
        the facts of those samples (knowledge dropout)."""
        idx = np.asarray(idx)
        return self._source_of(idx, self._facts(idx, drop)[0])

    def _facts(self, idx: np.ndarray, drop: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The knowledge rows and their ``fact_part`` of samples ``idx``, ``drop`` blanked."""
        knowledge, part = self.knowledge[idx], self.fact_part[idx]
        if drop is not None:
            drop = np.asarray(drop, dtype=bool)
            knowledge, part = knowledge.copy(), part.copy()
            knowledge[drop, 1:] = PAD
            part[drop] = PART_NONE
        return knowledge, part

    def _source_of(self, idx: np.ndarray, knowledge: np.ndarray) -> np.ndarray:
        context = self.rows[idx, : self.rows.shape[1] - 1].reshape(len(knowledge), -1)
        return np.concatenate([knowledge, context], axis=1)

    def batch(
        self,
        idx: Sequence[int] | np.ndarray,
        device: torch.device | str = "cpu",
        space: WordSpace | None = None,
        drop: np.ndarray | None = None,
    ) -> dict:
        """The context tensors of samples ``idx`` (no targets), in the ids of ``space``
        (default: corpus ids unchanged), with the source's extended ids for a copy path;
        ``drop`` as in :meth:`source`."""
        idx = np.asarray(idx)
        space = space or WordSpace(self.corpus_words, self.corpus_words)

        def tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(a).to(device=device, dtype=dtype)

        knowledge, part = self._facts(idx, drop)
        out = {
            "frames": tensor(self.frames[idx], torch.float32),
            "frame_mask": tensor(self.frame_mask[idx], torch.bool),
            "rows": tensor(space.to_model(self.rows[idx]), torch.long),
            "knowledge": tensor(space.to_model(knowledge), torch.long),
            "fact_of": tensor(self.fact_of[idx], torch.long),
            "fact_part": tensor(part, torch.long),
            "period": tensor(self.period[idx], torch.long),
        }
        if space.copy:
            source = self._source_of(idx, knowledge)
            out["source_ext"] = tensor(space.source_ext(source, knowledge.shape[1]), torch.long)
        return out

    _ARRAYS = (
        "t",
        "frames",
        "frame_mask",
        "rows",
        "knowledge",
        "fact_of",
        "fact_part",
        "period",
        "knowledge_target",
        "targets",
        "target_sample",
    )

    def save(self, path: Path) -> None:
        """The arrays to ``path`` (``.npz``), the rest to its ``.json``, each atomically and
        the ``.json`` first: a cache entry counts once its ``.npz`` exists."""
        meta = {
            "video": self.video,
            "facts": self.facts,
            "ac": self.ac,
            "corpus_words": self.corpus_words,
            "oov": self.oov,
            "linked": self.linked,
            "stated": self.stated,
        }
        write_json(path.with_suffix(".json"), meta)
        with atomic_open(path) as f:
            np.savez(f, **{k: getattr(self, k) for k in self._ARRAYS})

    @classmethod
    def load(cls, path: Path) -> Encoded:
        """A saved split; any damage (truncated or foreign ``.npz``, bad ``.json``, arrays
        and records that disagree) is a :class:`DataError` naming the file."""
        meta_path = path.with_suffix(".json")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in cls._ARRAYS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(f"{path}: damaged encoded split ({type(e).__name__}: {e})") from None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            encoded = cls(**meta, **arrays)
        except (OSError, ValueError, TypeError) as e:  # UnicodeDecodeError is a ValueError
            raise DataError(
                f"{meta_path}: damaged encoded split ({type(e).__name__}: {e})"
            ) from None
        n, pairs = len(encoded.t), len(encoded.targets)
        sizes = [(encoded.video, n), (encoded.facts, n), (encoded.ac, n)]
        sizes += [(encoded.linked, n), (encoded.stated, pairs)] if encoded.linked else []
        if any(len(records) != size for records, size in sizes):
            raise DataError(f"{meta_path}: damaged encoded split (records and arrays disagree)")
        return encoded


class Featurizer:
    """Words -> corpus ids with the corpus vocabulary, the model's specials and, when given an
    :class:`Unseen`, the split's words the vocabulary lacks (``<UNK>`` without one)."""

    def __init__(self, vocab: Vocab, tokenizer: Tokenizer, lengths: Lengths) -> None:
        self.vocab, self.tokenizer, self.lengths = vocab, tokenizer, lengths
        self.mask_id, self.cls_id = model_specials(vocab)

    def unseen(self) -> Unseen:
        return Unseen(len(self.vocab) + 2)

    def words(self, text: str, unseen: Unseen | None = None) -> list[int]:
        tokens = self.tokenizer(text)
        if unseen is None:
            return self.vocab.encode(tokens)
        ids = self.vocab.ids
        return [ids[w] if w in ids else unseen.add(w) for w in tokens]

    def row(self, texts: Sequence[str], unseen: Unseen | None = None) -> list[int]:
        """``[CLS] c1 <&&&> c2 ...`` cut to the row length."""
        ids = [self.cls_id]
        for i, text in enumerate(texts):
            ids += ([SEP] if i else []) + self.words(text, unseen)
        return ids[: self.lengths.max_step_len]

    def knowledge(
        self, facts: Sequence[dict], unseen: Unseen | None = None
    ) -> tuple[list[int], list[int], list[int]]:
        """``[CLS] fact1 <&&&> fact2 ...`` (each fact's packed ``text``) cut to m+1 words, the
        fact of each word and its part (head, relation or value: the packed text is the bare
        head, the relation, then the value, each segmented on its own)."""
        ids, fact_of, part = [self.cls_id], [-1], [PART_NONE]
        for i, fact in enumerate(facts):
            if i:
                ids.append(SEP)
                fact_of.append(-1)
                part.append(PART_NONE)
            for kind, text in zip(
                (PART_HEAD, PART_RELATION, PART_VALUE), _fact_parts(fact), strict=True
            ):
                words = self.words(text, unseen) if text else []
                ids += words
                fact_of += [i] * len(words)
                part += [kind] * len(words)
        n = self.lengths.max_knowledge_len + 1
        return ids[:n], fact_of[:n], part[:n]

    def target(self, text: str, unseen: Unseen | None = None) -> list[int]:
        """``<BOS> words <EOS>``, words cut so the whole is at most g ids."""
        return [BOS, *self.words(text, unseen)[: self.lengths.max_len - 2], EOS]


def _fact_parts(fact: dict) -> tuple[str, str, str]:
    """(head, relation, value) substrings of a fact's packed text (``retrieval.linker``)."""
    text = fact["text"]
    head = bare_name(fact["head"]) or fact["head"]
    head = head if text.startswith(head) else ""
    rest = text[len(head) :]
    relation = fact["relation"] if rest.startswith(fact["relation"]) else ""
    return head, relation, rest[len(relation) :]


def _pad(rows: Sequence[Sequence[int]], width: int, fill: int = PAD) -> np.ndarray:
    out = np.full((len(rows), width), fill, dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r[:width]
    return out


def encode_samples(
    samples: list[Sample],
    knowledge: list,  # retrieval.recall.Knowledge per sample
    featurizer: Featurizer,
    linked: list[list[str]] | None = None,
    stated: list[list[list[str]]] | None = None,
) -> Encoded:
    """The arrays of ``samples``; ``linked``/``stated`` (per sample / per ground truth, from
    :func:`stated_facts_of`) are left empty when not given (one window for generation)."""
    lengths = featurizer.lengths
    r = lengths.radius
    n_rows = 2 * r + 1
    seconds = [s for s in range(-r, r + 1) if s != 0]
    unseen = featurizer.unseen()
    rows = np.full((len(samples), n_rows, lengths.max_step_len), PAD, dtype=np.int32)
    kn = np.full((len(samples), lengths.max_knowledge_len + 1), PAD, dtype=np.int32)
    fact_of = np.full(kn.shape, -1, dtype=np.int16)
    fact_part = np.full(kn.shape, PART_NONE, dtype=np.int8)
    targets, target_sample, facts, ac = [], [], [], []
    for i, (s, k) in enumerate(zip(samples, knowledge, strict=True)):
        for j, offset in enumerate(seconds):
            row = featurizer.row(s.context.get(s.t + offset, []), unseen)
            rows[i, j, : len(row)] = row
        ac_texts = [h.text for h in k.comments]
        row = featurizer.row(ac_texts, unseen)
        rows[i, n_rows - 1, : len(row)] = row
        sample_facts = [
            {"head": f.head, "relation": f.relation, "tail": f.tail, "text": f.text}
            for f in k.facts
        ]
        ids, of, part = featurizer.knowledge(sample_facts, unseen)
        kn[i, : len(ids)], fact_of[i, : len(of)], fact_part[i, : len(part)] = ids, of, part
        facts.append(sample_facts)
        ac.append(ac_texts)
        for text in s.targets:
            targets.append(featurizer.target(text, unseen))
            target_sample.append(i)
    frames = np.zeros((len(samples), n_rows, 1), np.float32)  # one zero feature without any
    frame_mask = np.zeros((len(samples), n_rows), bool)
    if samples and samples[0].frames.shape[1]:
        frames = np.stack([s.frames for s in samples])
        frame_mask = np.stack([s.frame_mask for s in samples])
    return Encoded(
        video=[s.video_id for s in samples],
        t=np.array([s.t for s in samples], dtype=np.int32),
        frames=frames,
        frame_mask=frame_mask,
        rows=rows,
        knowledge=kn,
        fact_of=fact_of,
        fact_part=fact_part,
        period=np.array([s.period for s in samples], dtype=np.int64),
        knowledge_target=np.array([s.knowledge_target for s in samples], dtype=bool),
        targets=_pad(targets, lengths.max_len),
        target_sample=np.array(target_sample, dtype=np.int32),
        facts=facts,
        ac=ac,
        corpus_words=len(featurizer.vocab),
        oov=unseen.words,
        linked=linked if linked is not None else [[] for _ in samples],
        stated=stated if stated is not None else [[] for _ in target_sample],
    )


def stated_facts_of(ctx, samples: list[Sample]) -> tuple[list[list[str]], list[list[list[str]]]]:
    """(linked entities per sample, the facts each ground truth states, in target order)."""
    from retrieval.stated import linked_entities, stated_in, window_facts

    linked, stated = [], []
    for s in samples:
        entities = linked_entities(ctx.linker, ctx.corpus.videos[s.video_id], s.t)
        facts = window_facts(ctx.linker, entities)
        linked.append(entities)
        for text in s.targets:
            stated.append([[f.head, f.relation, f.tail] for f in stated_in(text, facts)])
    return linked, stated


def encoded_path(cache_dir: Path, cache_key: dict, split: str) -> Path:
    """Where the encoded ``split`` built from ``cache_key`` is cached."""
    key = hashlib.sha256(json.dumps({**cache_key, "split": split}, sort_keys=True).encode())
    return cache_dir / f"{split}-{key.hexdigest()[:16]}.npz"


def encode_split(
    ctx,  # retrieval.context.RetrievalContext
    split: str,
    featurizer: Featurizer,
    cache_dir: Path | None,
    cache_key: dict,
    progress: bool = True,
) -> Encoded:
    """Samples of ``split`` with their recalled knowledge, encoded (loaded from the cache when
    it was built from the same inputs)."""
    from retrieval.recall import recall_many

    path = encoded_path(cache_dir, cache_key, split) if cache_dir else None
    if path is not None and path.exists() and path.with_suffix(".json").exists():
        try:
            return Encoded.load(path)
        except DataError as e:  # a cache: build it again
            log.warning("%s: encoding the %s split again", e, split)
    samples = list(build_samples(ctx.corpus, split, radius=featurizer.lengths.radius))
    knowledge = []
    bar = tqdm(total=len(samples), desc=f"recall {split}", unit=" windows", disable=not progress)
    for i in range(0, len(samples), RECALL_BATCH):
        chunk = samples[i : i + RECALL_BATCH]
        windows = [(ctx.corpus.videos[s.video_id], s.t, ctx.keyword_set(s.video_id)) for s in chunk]
        knowledge += recall_many(ctx.store, ctx.linker, ctx.index, windows)
        bar.update(len(chunk))
    bar.close()
    linked, stated = stated_facts_of(ctx, samples)
    encoded = encode_samples(samples, knowledge, featurizer, linked, stated)
    if path is not None:
        encoded.save(path)
    return encoded
