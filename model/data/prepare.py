"""Artefacts built once per corpus and saved with it: the vocabulary and the candidate sets.

DESIGN.md §6 and §9: candidate sets are seeded, built once and saved with the data; built
artefacts record the inputs and settings they came from and are rebuilt when those change.
``prepare`` writes, under ``out``::

    dicts-30000.json        the word vocabulary (LiveBot format) of the training comments
    candidates/<split>.jsonl  one 100-candidate set per sample of the split
    manifest.json           what they were built from: corpus fingerprint, seed, sizes, spec
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from model.data.candidates import (
    LIVEBOT_SPEC,
    CandidatePool,
    CandidateRequest,
    CandidateSet,
    CandidateSpec,
    build_all,
    load_candidate_sets,
    save_candidate_sets,
)
from model.data.samples import build_samples
from model.data.schema import Corpus
from model.data.vocab import DEFAULT_SIZE, VOCAB_FILE, Tokenizer, Vocab

log = logging.getLogger(__name__)
PREPARE_VERSION = 1


@dataclass
class Prepared:
    vocab: Vocab
    candidates: dict[str, list[CandidateSet]]  # split -> sets, in sample order
    directory: Path


def corpus_fingerprint(corpus: Corpus) -> str:
    """Changes whenever a video, its split, duration or any comment changes."""
    h = hashlib.sha256()
    for v in corpus:
        h.update(f"{v.id}\t{v.split}\t{v.duration_s}\n".encode())
        for c in v.comments:
            h.update(f"{c.time_s}\t{c.text}\n".encode())
    return h.hexdigest()[:16]


def _context_text(context: dict[int, list[str]]) -> str:
    return " ".join(text for s in sorted(context) for text in context[s])


def prepare(
    corpus: Corpus,
    out: str | Path,
    *,
    seed: int = 0,
    vocab_size: int = DEFAULT_SIZE,
    spec: CandidateSpec = LIVEBOT_SPEC,
    splits: tuple[str, ...] = ("dev", "test"),
    tokenizer: Tokenizer | None = None,
    tokenizer_key: str = "jieba",
    progress: bool = True,
) -> Prepared:
    """Load the vocabulary and candidate sets of ``corpus`` from ``out``, building them first
    if they are missing or were built from other inputs or settings. ``tokenizer_key`` names
    the tokenizer (its extra words) so that another one rebuilds the vocabulary."""
    out = Path(out)
    wanted = {
        "version": PREPARE_VERSION,
        "corpus": corpus_fingerprint(corpus),
        "seed": seed,
        "vocab_size": vocab_size,
        "spec": asdict(spec),
        "splits": list(splits),
        "tokenizer": tokenizer_key,
    }
    manifest = out / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text(encoding="utf-8")) == wanted:
        return Prepared(
            Vocab.load(out / VOCAB_FILE),
            {s: load_candidate_sets(out / "candidates" / f"{s}.jsonl") for s in splits},
            out,
        )
    manifest.unlink(missing_ok=True)  # a half-rebuilt directory must not look complete
    tokenizer = tokenizer or Tokenizer()
    train = [c.text for v in corpus.split("train") for c in v.comments]
    if not train:
        raise ValueError(f"{corpus.path}: no training comments to build a vocabulary from")
    vocab = Vocab.build((tokenizer(t) for t in train), size=vocab_size)
    vocab.save(out / VOCAB_FILE)
    pool = CandidatePool(train, tokenizer, spec)
    candidates = {}
    (out / "candidates").mkdir(parents=True, exist_ok=True)
    for split in splits:
        requests = [
            CandidateRequest(s.video_id, s.t, tuple(s.targets), _context_text(s.context))
            for s in build_samples(corpus, split)
        ]
        bar = tqdm(requests, desc=f"candidates {split}", unit=" samples", disable=not progress)
        candidates[split] = build_all(pool, bar, seed)
        save_candidate_sets(out / "candidates" / f"{split}.jsonl", candidates[split])
    manifest.write_text(json.dumps(wanted, indent=1), encoding="utf-8")
    log.info(
        "prepared %s: %d words, %s", out, len(vocab), {s: len(c) for s, c in candidates.items()}
    )
    return Prepared(vocab, candidates, out)
