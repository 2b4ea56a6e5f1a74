"""A split's samples plus their recalled knowledge, as the arrays the backbones read.

Design: docs/architecture.md, section "Data flow".

For a sample at second t (KLVCG §IV-A), in corpus ids (:mod:`model.word_ids`):

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
- ``subtitle`` and ``transcript`` ``(s+1,)``: ``[CLS]`` then the window's subtitle lines (the
  audio transcript's stretches) joined by ``<&&&>``, in time order (what TTE and the engaging
  model read; KLVCG does not);
- ``context_likes`` ``(2l+1, c)``: the like counts of the comments each context row holds, in
  the row's order (the k-th stretch between separators), -1 where the row holds no k-th
  comment (always in the other videos' row); ``target_likes``: each ground truth's count; a
  comment without a count reads 0, and ``has_likes`` says whether the sample's video has
  counts at all (:mod:`model.data.samples`);
- ``targets``: the ground-truth comments as ``<BOS> words <EOS>`` rows of g ids;
- ``stated``: per ground truth, the KG facts it states (:mod:`retrieval.stated`), and
  ``knowledge_stated``: whether any ground truth of the sample states one (the
  knowledge-bearing samples of every corpus; ``knowledge_target`` keeps the demo's flags).

:meth:`Encoded.batch` gives a batch of samples as tensors in a model's ids (:class:`Batch`);
:meth:`Encoded.save` / :meth:`Encoded.load` keep a split as a ``.npz`` (no pickle) plus the
records as JSON. Building one from samples and recall is :mod:`model.split_encoding`.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.atomic import atomic_open, write_json
from model.data.schema import DataError
from model.data.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab
from model.word_ids import PART_NONE, PackedFact, Unseen, WordSpace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """The context tensors of a batch of B samples in a model's ids (no targets): what
    a backbone's ``encode`` reads (:class:`model.backbones.Backbone`)."""

    frames: torch.Tensor  # (B, 2l+1, F) float32
    frame_mask: torch.Tensor  # (B, 2l+1) bool
    rows: torch.Tensor  # (B, 2l+1, n) long
    knowledge: torch.Tensor  # (B, m+1) long
    fact_of: torch.Tensor  # (B, m+1) long: the fact of each knowledge word, -1 none
    fact_part: torch.Tensor  # (B, m+1) long: PART_* of each knowledge word
    period: torch.Tensor  # (B,) long
    subtitle: torch.Tensor  # (B, s+1) long: [CLS] the window's subtitle lines, <&&&> between
    transcript: torch.Tensor  # (B, s+1) long: [CLS] the window's transcript stretches, likewise
    context_likes: torch.Tensor  # (B, 2l+1, c) long: likes of each comment a row holds, -1 none
    has_likes: torch.Tensor  # (B,) bool: the sample's video has like counts (else all 0)
    source_ext: torch.Tensor | None = None  # (B, S) the copy path's source, extended ids


@dataclass
class Encoded:
    """A split, encoded: ``N`` samples and ``T`` (sample, ground truth) training pairs; ids are
    corpus ids (:mod:`model.word_ids`), ``oov`` the split's words the vocabulary lacks."""

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
    facts: list[list[PackedFact]]  # per sample: the recalled facts, in recall order
    ac: list[list[str]]  # per sample: the other-video comments in its AC row
    corpus_words: int  # the vocabulary's size: corpus ids of unseen words start at +2
    oov: list[str] = field(default_factory=list)
    linked: list[list[str]] = field(default_factory=list)  # per sample: its linked entities
    stated: list[list[list[str]]] = field(default_factory=list)  # per target: [h, r, t] facts
    # What other backbones read (module docstring): ``subtitle``, ``transcript`` (N, s+1)
    # int32; ``context_likes`` (N, 2l+1, c) int32, -1 where a row holds no such comment;
    # ``target_likes`` (T,) int32; ``has_likes`` (N,) bool. Left out (a test's synthetic
    # split), the split reads as one without subtitles, transcripts or likes (__post_init__).
    subtitle: np.ndarray = None  # type: ignore[assignment]
    transcript: np.ndarray = None  # type: ignore[assignment]
    context_likes: np.ndarray = None  # type: ignore[assignment]
    target_likes: np.ndarray = None  # type: ignore[assignment]
    has_likes: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n, rows = len(self.t), self.rows.shape
        if self.subtitle is None:
            self.subtitle = np.full((n, 1), self.corpus_words + 1, np.int32)  # [CLS] alone
        if self.transcript is None:
            self.transcript = np.full((n, 1), self.corpus_words + 1, np.int32)
        if self.context_likes is None:
            self.context_likes = np.full((n, rows[1], max(1, rows[2] // 2)), -1, np.int32)
        if self.target_likes is None:
            self.target_likes = np.zeros(len(self.targets), np.int32)
        if self.has_likes is None:
            self.has_likes = np.zeros(n, bool)

    @property
    def knowledge_stated(self) -> np.ndarray:
        """(N,) bool: a ground truth of the sample states a KG fact."""
        out = np.zeros(len(self), dtype=bool)
        for i, facts in zip(self.target_sample.tolist(), self.stated, strict=True):
            out[i] |= bool(facts)
        return out

    def __len__(self) -> int:
        return len(self.video)

    def space(self, cfg) -> WordSpace:  # cfg: a model.backbones.BackboneConfig
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
    ) -> Batch:
        """The context tensors of samples ``idx``, in the ids of ``space`` (default: corpus
        ids unchanged), with the source's extended ids for a copy path; ``drop`` as in
        :meth:`source`."""
        idx = np.asarray(idx)
        space = space or WordSpace(self.corpus_words, self.corpus_words)

        def tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(a).to(device=device, dtype=dtype)

        knowledge, part = self._facts(idx, drop)
        source_ext = None
        if space.copy:
            source = self._source_of(idx, knowledge)
            source_ext = tensor(space.source_ext(source, knowledge.shape[1]), torch.long)
        return Batch(
            frames=tensor(self.frames[idx], torch.float32),
            frame_mask=tensor(self.frame_mask[idx], torch.bool),
            rows=tensor(space.to_model(self.rows[idx]), torch.long),
            knowledge=tensor(space.to_model(knowledge), torch.long),
            fact_of=tensor(self.fact_of[idx], torch.long),
            fact_part=tensor(part, torch.long),
            period=tensor(self.period[idx], torch.long),
            subtitle=tensor(space.to_model(self.subtitle[idx]), torch.long),
            transcript=tensor(space.to_model(self.transcript[idx]), torch.long),
            context_likes=tensor(self.context_likes[idx], torch.long),
            has_likes=tensor(self.has_likes[idx], torch.bool),
            source_ext=source_ext,
        )

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
        "subtitle",
        "transcript",
        "context_likes",
        "target_likes",
        "has_likes",
    )

    def save(self, path: Path) -> None:
        """The arrays to ``path`` (``.npz``), the rest to its ``.json``, each atomically and
        the ``.json`` first: a cache entry counts once its ``.npz`` exists."""
        meta = {
            "video": self.video,
            "facts": [[asdict(f) for f in facts] for facts in self.facts],
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
            facts = [[PackedFact(**f) for f in sample] for sample in meta.pop("facts", [])]
            encoded = cls(**meta, **arrays, facts=facts)
        except (OSError, ValueError, TypeError, AttributeError) as e:  # UnicodeDecodeError too
            raise DataError(
                f"{meta_path}: damaged encoded split ({type(e).__name__}: {e})"
            ) from None
        n, pairs = len(encoded.t), len(encoded.targets)
        sizes = [(encoded.video, n), (encoded.facts, n), (encoded.ac, n)]
        sizes += [(encoded.linked, n), (encoded.stated, pairs)] if encoded.linked else []
        sizes += [(getattr(encoded, k), n) for k in ("subtitle", "transcript", "has_likes")]
        sizes += [(encoded.context_likes, n), (encoded.target_likes, pairs)]
        if any(len(records) != size for records, size in sizes):
            raise DataError(f"{meta_path}: damaged encoded split (records and arrays disagree)")
        return encoded
