"""Value-swap candidate sets: does the model prefer the true fact value over a false one?

The 100-candidate ranking is nearly blind to knowledge: its distractors almost never differ
from the truth only in a fact value. For every knowledge-bearing ground truth (it states a KG
fact, :mod:`retrieval.stated`), a value-swap set holds the truth and up to ``SWAPS`` copies of
it with the stated value replaced by other values of the *same relation* that are not true for
that entity (drawn from the facts of the entities linked anywhere in the split, seeded per
ground truth). A model that reads and uses the facts ranks the truth first; one that does not
is at chance (R@1 10 %, MRR 0.2929 for 10 candidates). Sets are built once per encoded split
and saved beside it as JSON.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common.atomic import write_json
from model.data.vocab import PAD
from model.encoded_split import Encoded
from model.word_ids import TextEncoder, Unseen
from retrieval.fact_kinds import stateable
from retrieval.linker import Linker

SWAPS = 9


@dataclass(frozen=True)
class SwapSet:
    sample: int  # index in the encoded split
    target: int  # index of the ground truth among the split's targets
    head: str
    relation: str
    value: str
    texts: list[str]  # the truth first, then the swaps


def _target_texts(encoded: Encoded, corpus, split: str | None) -> list[str]:
    """The ground-truth texts of the split, in target order (as the samples list them), read
    from each video's part in ``split`` when given (``Corpus.split``)."""
    from model.data.samples import sample_at

    videos = corpus.videos if split is None else {v.id: v for v in corpus.split(split)}
    out = []
    for video_id, t in zip(encoded.video, encoded.t.tolist(), strict=True):
        video = videos[video_id]
        out += sample_at(video, None, int(t), radius=0).targets
    return out


def relation_values(encoded: Encoded, linker: Linker) -> dict[str, set[str]]:
    """relation -> the stateable values of the entities linked anywhere in the split."""
    pool: dict[str, set[str]] = {}
    for entities in encoded.linked:
        for entity in entities:
            for f in linker.entity_facts(entity):
                if stateable(f.relation, f.tail):
                    pool.setdefault(f.relation, set()).add(f.tail)
    return pool


def build_swap_sets(
    encoded: Encoded,
    corpus,
    linker: Linker,
    seed: int = 0,
    swaps: int = SWAPS,
    split: str | None = None,
) -> list[SwapSet]:
    """One set per knowledge-bearing ground truth with at least one possible swap;
    ``split``: the split ``encoded`` holds (its videos' parts give the ground truths)."""
    pool = relation_values(encoded, linker)
    texts = _target_texts(encoded, corpus, split)
    out = []
    owners = encoded.target_sample.tolist()
    for j, (i, facts) in enumerate(zip(owners, encoded.stated, strict=True)):
        if not facts:
            continue
        head, relation, value = sorted(facts, key=lambda f: (-len(f[2]), f[1], f[0]))[0]
        truth = texts[j]
        true_values = {f.tail for f in linker.entity_facts(head) if f.relation == relation}
        others = sorted(
            v
            for v in pool.get(relation, ())
            if v not in true_values and v not in truth and value not in v
        )
        rng = np.random.default_rng([seed, zlib.crc32(f"{encoded.video[i]}:{j}".encode())])
        chosen, seen = [], {truth}
        for k in rng.permutation(len(others)):
            text = truth.replace(value, others[k], 1)
            if text not in seen:
                seen.add(text)
                chosen.append(text)
            if len(chosen) == swaps:
                break
        if chosen:
            out.append(SwapSet(i, j, head, relation, value, [truth, *chosen]))
    return out


def save_swap_sets(path: Path, sets: list[SwapSet]) -> None:
    write_json(path, [asdict(s) for s in sets])


def load_swap_sets(path: Path) -> list[SwapSet]:
    """The sets :func:`save_swap_sets` wrote; a ``ValueError`` when the file is not that."""
    sets = [SwapSet(**d) for d in json.loads(path.read_text(encoding="utf-8"))]
    for s in sets:
        ints = isinstance(s.sample, int) and isinstance(s.target, int)
        if not ints or not all(isinstance(t, str) for t in s.texts) or len(s.texts) < 2:
            raise ValueError(f"not a value-swap set: {s}")
    return sets


def swap_arrays(
    sets: list[SwapSet], encoder: TextEncoder, unseen: Unseen | None = None, swaps: int = SWAPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample of each set (S,), candidate ids (S, 1+swaps, g), is_truth (S, 1+swaps)); a set
    with fewer swaps is padded with all-``<PAD>`` rows; ``unseen``: the split's
    (:meth:`model.encoded_split.Encoded.unseen`)."""
    g = encoder.lengths.max_len
    ids = np.full((len(sets), 1 + swaps, g), PAD, dtype=np.int32)
    truth = np.zeros((len(sets), 1 + swaps), dtype=bool)
    truth[:, 0] = True
    for i, s in enumerate(sets):
        for k, text in enumerate(s.texts):
            row = encoder.target(text, unseen)
            ids[i, k, : len(row)] = row
    return np.array([s.sample for s in sets], dtype=np.int64), ids, truth
