"""Samples plus recalled knowledge -> the arrays KLVCG reads (DESIGN.md §1 "Sample -> Batch").

For a sample at second t (KLVCG §IV-A):

- ``frames`` ``(2l+1, F)`` and ``frame_mask``: the frame features of [t-l, t+l];
- ``rows`` ``(2l+1, n)``: one word row per context second t-l..t-1, t+1..t+l (the
  Comment@TimeStep encoder's input: ``[CLS]`` then the second's comments joined by ``<&&&>``,
  LiveBot's separator), then one row of comments of *other* videos about the same entities
  (the paper's AC, "concatenated with the original context comments");
- ``knowledge`` ``(m+1,)``: ``[CLS]`` then the recalled facts' words joined by ``<&&&>``, with
  ``fact_of`` mapping each position to the fact it came from (-1 for ``[CLS]``, separators and
  padding), so the knowledge encoder's attention can be read back as attention over facts;
- ``period``: the viewing-period stage of t;
- ``targets``: the ground-truth comments as ``<BOS> words <EOS>`` rows of g ids;
- ``stated``: per ground truth, the KG facts it states (:mod:`retrieval.stated`), and
  ``knowledge_stated``: whether any ground truth of the sample states one (the
  knowledge-bearing samples of every corpus; ``knowledge_target`` keeps the demo's flags).

A split is encoded once (recall is the slow part) and cached under the data directory as a
``.npz`` (no pickle) plus the facts as JSON, keyed by everything it was built from.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.data.fileio import atomic_json
from model.data.samples import Sample, build_samples
from model.data.vocab import BOS, EOS, PAD, SEP, Tokenizer, Vocab

log = logging.getLogger(__name__)
ENCODING_VERSION = 3  # part of the cache key: bump when the encoding changes
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


@dataclass
class Encoded:
    """A split, encoded: ``N`` samples and ``T`` (sample, ground truth) training pairs."""

    video: list[str]
    t: np.ndarray  # (N,) int32
    frames: np.ndarray  # (N, 2l+1, F) float32
    frame_mask: np.ndarray  # (N, 2l+1) bool
    rows: np.ndarray  # (N, 2l+1, n) int32
    knowledge: np.ndarray  # (N, m+1) int32
    fact_of: np.ndarray  # (N, m+1) int16
    period: np.ndarray  # (N,) int64
    knowledge_target: np.ndarray  # (N,) bool
    targets: np.ndarray  # (T, g) int32
    target_sample: np.ndarray  # (T,) int32
    facts: list[list[dict]]  # per sample: the recalled facts {head, relation, tail, text}
    ac: list[list[str]]  # per sample: the other-video comments in its AC row
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

    def batch(self, idx: Sequence[int] | np.ndarray, device: torch.device | str = "cpu") -> dict:
        """The context tensors of samples ``idx`` (no targets)."""
        idx = np.asarray(idx)

        def tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(a[idx]).to(device=device, dtype=dtype)

        return {
            "frames": tensor(self.frames, torch.float32),
            "frame_mask": tensor(self.frame_mask, torch.bool),
            "rows": tensor(self.rows, torch.long),
            "knowledge": tensor(self.knowledge, torch.long),
            "period": tensor(self.period, torch.long),
        }

    _ARRAYS = (
        "t",
        "frames",
        "frame_mask",
        "rows",
        "knowledge",
        "fact_of",
        "period",
        "knowledge_target",
        "targets",
        "target_sample",
    )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{k: getattr(self, k) for k in self._ARRAYS})
        meta = {
            "video": self.video,
            "facts": self.facts,
            "ac": self.ac,
            "linked": self.linked,
            "stated": self.stated,
        }
        atomic_json(path.with_suffix(".json"), meta)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Encoded:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in cls._ARRAYS}
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        return cls(
            video=meta["video"],
            facts=meta["facts"],
            ac=meta["ac"],
            linked=meta["linked"],
            stated=meta["stated"],
            **arrays,
        )


class Featurizer:
    """Words -> ids with the corpus vocabulary and the model's specials."""

    def __init__(self, vocab: Vocab, tokenizer: Tokenizer, lengths: Lengths) -> None:
        self.vocab, self.tokenizer, self.lengths = vocab, tokenizer, lengths
        self.mask_id, self.cls_id = model_specials(vocab)

    def words(self, text: str) -> list[int]:
        return self.vocab.encode(self.tokenizer(text))

    def row(self, texts: Sequence[str]) -> list[int]:
        """``[CLS] c1 <&&&> c2 ...`` cut to the row length."""
        ids = [self.cls_id]
        for i, text in enumerate(texts):
            ids += ([SEP] if i else []) + self.words(text)
        return ids[: self.lengths.max_step_len]

    def knowledge(self, fact_texts: Sequence[str]) -> tuple[list[int], list[int]]:
        ids, fact_of = [self.cls_id], [-1]
        for i, text in enumerate(fact_texts):
            if i:
                ids.append(SEP)
                fact_of.append(-1)
            words = self.words(text)
            ids += words
            fact_of += [i] * len(words)
        n = self.lengths.max_knowledge_len + 1
        return ids[:n], fact_of[:n]

    def target(self, text: str) -> list[int]:
        """``<BOS> words <EOS>``, words cut so the whole is at most g ids."""
        return [BOS, *self.words(text)[: self.lengths.max_len - 2], EOS]


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
    rows = np.full((len(samples), n_rows, lengths.max_step_len), PAD, dtype=np.int32)
    kn = np.full((len(samples), lengths.max_knowledge_len + 1), PAD, dtype=np.int32)
    fact_of = np.full(kn.shape, -1, dtype=np.int16)
    targets, target_sample, facts, ac = [], [], [], []
    for i, (s, k) in enumerate(zip(samples, knowledge, strict=True)):
        for j, offset in enumerate(seconds):
            row = featurizer.row(s.context.get(s.t + offset, []))
            rows[i, j, : len(row)] = row
        ac_texts = [h.text for h in k.comments]
        row = featurizer.row(ac_texts)
        rows[i, n_rows - 1, : len(row)] = row
        ids, of = featurizer.knowledge([f.text for f in k.facts])
        kn[i, : len(ids)], fact_of[i, : len(of)] = ids, of
        facts.append(
            [
                {"head": f.head, "relation": f.relation, "tail": f.tail, "text": f.text}
                for f in k.facts
            ]
        )
        ac.append(ac_texts)
        for text in s.targets:
            targets.append(featurizer.target(text))
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
        period=np.array([s.period for s in samples], dtype=np.int64),
        knowledge_target=np.array([s.knowledge_target for s in samples], dtype=bool),
        targets=_pad(targets, lengths.max_len),
        target_sample=np.array(target_sample, dtype=np.int32),
        facts=facts,
        ac=ac,
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
        return Encoded.load(path)
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
