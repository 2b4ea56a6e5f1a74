"""Encoding a split (:class:`model.encoded_split.Encoded`): its samples' words as corpus ids
(:mod:`model.word_ids`), frames, likes and the recalled knowledge of every window, and the
cache that keeps it. A split is encoded once (recall is the slow part) and cached under the
data directory, keyed by everything it was built from (:func:`encoded_path`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.data.samples import Sample, build_samples
from model.data.schema import DataError, Video
from model.data.vocab import PAD
from model.encoded_split import Encoded
from model.word_ids import PART_NONE, Lengths, PackedFact, TextEncoder, Unseen

log = logging.getLogger(__name__)
ENCODING_VERSION = 5  # part of the cache key: bump when the encoding changes
RECALL_BATCH = 256


@dataclass
class _SampleIds:
    """One sample's corpus ids (:func:`_encode_sample`)."""

    rows: list[list[int]]  # the 2l context seconds' rows, then the other videos' row
    held: list[int]  # how many comments each context second's row holds
    knowledge: list[int]
    fact_of: list[int]
    fact_part: list[int]
    targets: list[list[int]]
    facts: list[PackedFact]
    ac: list[str]


def _encode_sample(sample: Sample, knowledge, encoder: TextEncoder, unseen: Unseen) -> _SampleIds:
    """The ids of one sample and its recalled ``knowledge`` (``retrieval.recall.Knowledge``);
    its unseen words join ``unseen`` in reading order: context rows, facts, targets."""
    r = encoder.lengths.radius
    seconds = [s for s in range(-r, r + 1) if s != 0]
    rows, held = [], []
    for s in seconds:
        row, n = encoder.row_held(sample.context.get(sample.t + s, []), unseen)
        rows.append(row)
        held.append(n)
    ac = [h.text for h in knowledge.comments]
    rows.append(encoder.row(ac, unseen))
    facts = [PackedFact(f.head, f.relation, f.tail, f.text) for f in knowledge.facts]
    ids, fact_of, part = encoder.knowledge(facts, unseen)
    targets = [encoder.target(text, unseen) for text in sample.targets]
    return _SampleIds(rows, held, ids, fact_of, part, targets, facts, ac)


def _pad(rows: Sequence[Sequence[int]], width: int, fill: int = PAD) -> np.ndarray:
    out = np.full((len(rows), width), fill, dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r[:width]
    return out


def _context_likes(samples: list[Sample], each: list[_SampleIds], lengths: Lengths) -> np.ndarray:
    """(N, 2l+1, c): the likes of the comments each context row holds, -1 where none."""
    r, c = lengths.radius, lengths.step_comments
    seconds = [s for s in range(-r, r + 1) if s != 0]
    out = np.full((len(samples), 2 * r + 1, c), -1, dtype=np.int32)
    for i, (sample, e) in enumerate(zip(samples, each, strict=True)):
        for j, (s, held) in enumerate(zip(seconds, e.held, strict=True)):
            likes = sample.context_likes.get(sample.t + s, [])[: min(held, c)]
            out[i, j, : len(likes)] = likes
    return out


def _target_likes(samples: list[Sample]) -> np.ndarray:
    """(T,): each ground truth's likes, in target order."""
    likes = []
    for s in samples:
        if len(s.target_likes) != len(s.targets):
            raise ValueError(f"sample {s.video_id}@{s.t}: likes not aligned with its targets")
        likes += s.target_likes
    return np.array(likes, dtype=np.int32)


def _frames(samples: list[Sample], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The samples' frame features and mask; one zero feature when the corpus has none."""
    if samples and samples[0].frames.shape[1]:
        return np.stack([s.frames for s in samples]), np.stack([s.frame_mask for s in samples])
    return np.zeros((len(samples), n_rows, 1), np.float32), np.zeros((len(samples), n_rows), bool)


def encode_samples(
    samples: list[Sample],
    knowledge: list,  # retrieval.recall.Knowledge per sample
    encoder: TextEncoder,
    linked: list[list[str]] | None = None,
    stated: list[list[list[str]]] | None = None,
) -> Encoded:
    """The arrays of ``samples``; ``linked``/``stated`` (per sample / per ground truth, from
    :func:`stated_facts_of`) are left empty when not given (one window for generation)."""
    lengths = encoder.lengths
    n_rows, m = 2 * lengths.radius + 1, lengths.max_knowledge_len + 1
    unseen = encoder.unseen()
    each = [_encode_sample(s, k, encoder, unseen) for s, k in zip(samples, knowledge, strict=True)]
    # after every sample's other rows, so their ids (and their unseen words') are as before
    width = lengths.max_text_len
    subtitle = [encoder.row(s.subtitles, unseen, width) for s in samples]
    transcript = [encoder.row(s.transcript, unseen, width) for s in samples]
    rows = np.full((len(each), n_rows, lengths.max_step_len), PAD, dtype=np.int32)
    for i, e in enumerate(each):
        rows[i] = _pad(e.rows, lengths.max_step_len)
    frames, frame_mask = _frames(samples, n_rows)
    target_sample = np.repeat(np.arange(len(each)), [len(e.targets) for e in each])
    return Encoded(
        video=[s.video_id for s in samples],
        t=np.array([s.t for s in samples], dtype=np.int32),
        frames=frames,
        frame_mask=frame_mask,
        rows=rows,
        knowledge=_pad([e.knowledge for e in each], m),
        fact_of=_pad([e.fact_of for e in each], m, fill=-1).astype(np.int16),
        fact_part=_pad([e.fact_part for e in each], m, fill=PART_NONE).astype(np.int8),
        period=np.array([s.period for s in samples], dtype=np.int64),
        knowledge_target=np.array([s.knowledge_target for s in samples], dtype=bool),
        targets=_pad([t for e in each for t in e.targets], lengths.max_len),
        target_sample=target_sample.astype(np.int32),
        facts=[e.facts for e in each],
        ac=[e.ac for e in each],
        corpus_words=len(encoder.vocab),
        oov=unseen.words,
        linked=linked if linked is not None else [[] for _ in samples],
        stated=stated if stated is not None else [[] for _ in target_sample],
        subtitle=_pad(subtitle, width),
        transcript=_pad(transcript, width),
        context_likes=_context_likes(samples, each, lengths),
        target_likes=_target_likes(samples),
        has_likes=np.array([s.has_likes for s in samples], dtype=bool),
    )


def stated_facts_of(
    ctx, samples: list[Sample], videos: dict[str, Video] | None = None
) -> tuple[list[list[str]], list[list[list[str]]]]:
    """(linked entities per sample, the facts each ground truth states, in target order).
    ``videos``: the samples' videos as their split sees them (default: the corpus's)."""
    from retrieval.stated import linked_entities, stated_in, window_facts

    videos = ctx.corpus.videos if videos is None else videos
    linked, stated = [], []
    for s in samples:
        entities = linked_entities(ctx.linker, videos[s.video_id], s.t)
        facts = window_facts(ctx.linker, entities)
        linked.append(entities)
        for text in s.targets:
            stated.append([[f.head, f.relation, f.tail] for f in stated_in(text, facts)])
    return linked, stated


def encoded_path(cache_dir: Path, cache_key: dict, split: str) -> Path:
    """Where the encoded ``split`` built from ``cache_key`` is cached."""
    key = hashlib.sha256(json.dumps({**cache_key, "split": split}, sort_keys=True).encode())
    return cache_dir / f"{split}-{key.hexdigest()[:16]}.npz"


def _recall_split(
    ctx, samples: list[Sample], split: str, videos: dict[str, Video], progress: bool
) -> list:
    """The knowledge recalled for each sample (``retrieval.recall.Knowledge``), in batches,
    over ``videos``: each video's part in ``split``."""
    from retrieval.recall import recall_many

    knowledge = []
    bar = tqdm(total=len(samples), desc=f"recall {split}", unit=" windows", disable=not progress)
    for i in range(0, len(samples), RECALL_BATCH):
        chunk = samples[i : i + RECALL_BATCH]
        windows = [(videos[s.video_id], s.t, ctx.keyword_set(s.video_id)) for s in chunk]
        knowledge += recall_many(ctx.store, ctx.linker, ctx.index, windows)
        bar.update(len(chunk))
    bar.close()
    return knowledge


def encode_split(
    ctx,  # retrieval.context.RetrievalContext
    split: str,
    encoder: TextEncoder,
    cache_dir: Path | None,
    cache_key: dict,
    progress: bool = True,
) -> Encoded:
    """Samples of ``split`` with their recalled knowledge, encoded (loaded from the cache when
    it was built from the same inputs)."""
    path = encoded_path(cache_dir, cache_key, split) if cache_dir else None
    if path is not None and path.exists() and path.with_suffix(".json").exists():
        try:
            return Encoded.load(path)
        except DataError as e:  # a cache: build it again
            log.warning("%s: encoding the %s split again", e, split)
    samples = list(build_samples(ctx.corpus, split, radius=encoder.lengths.radius))
    # each video as the split sees it (``Corpus.split``): the window and history that recall
    # links in are of the split, as the samples' context is
    parts = {v.id: v for v in ctx.corpus.split(split)}
    knowledge = _recall_split(ctx, samples, split, parts, progress)
    linked, stated = stated_facts_of(ctx, samples, parts)
    encoded = encode_samples(samples, knowledge, encoder, linked, stated)
    if path is not None:
        encoded.save(path)
    return encoded
