"""Artefacts built once per corpus and saved with it: the vocabulary and the candidate sets.

Design: docs/evaluation.md, section "Candidate sets", and docs/architecture.md, section "Data flow".

Candidate sets are seeded, built once and saved with the data; built
artefacts record the inputs and settings they came from and are rebuilt when those change.
``prepare`` writes, under ``out``::

    dicts-30000.json        the word vocabulary (LiveBot format) of the training comments
    candidates/<split>.jsonl  one 100-candidate set per sample of the split
    manifest.json           what they were built from: corpus fingerprint, seed, sizes, spec,
                            and the size in bytes of each file above (written last)

They are derived data: a damaged or cut file (its size differs from the manifest's, or it does
not parse) is built again, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from common.atomic import write_text
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
from model.data.schema import Corpus, DataError
from model.data.vocab import DEFAULT_SIZE, VOCAB_FILE, Tokenizer, Vocab

log = logging.getLogger(__name__)
PREPARE_VERSION = 1


@dataclass
class Prepared:
    vocab: Vocab
    candidates: dict[str, list[CandidateSet]]  # split -> sets, in sample order
    directory: Path


def corpus_fingerprint(corpus: Corpus) -> str:
    """Changes whenever a video, its split (or split ranges), duration or any comment changes."""
    h = hashlib.sha256()
    for v in corpus:
        h.update(f"{v.id}\t{v.split}\t{v.duration_s}\n".encode())
        for r in v.split_ranges:  # a video split by time (none: the digest as before)
            h.update(f"range\t{r.start_s}\t{r.end_s}\t{r.split}\n".encode())
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
    files = [VOCAB_FILE, *(f"candidates/{s}.jsonl" for s in splits)]
    found = _read_manifest(manifest)
    if found is not None and {k: v for k, v in found.items() if k != "files"} == wanted:
        try:
            return _load_prepared(out, splits, files, found.get("files"))
        except DataError as e:
            log.warning("%s: building the vocabulary and candidate sets again", e)
    manifest.unlink(missing_ok=True)  # a half-rebuilt directory must not look complete
    tokenizer = tokenizer or Tokenizer()
    # the training part of each video (a video split by time: its training ranges only)
    train = [c.text for v in corpus.split("train") for c in v.comments]
    if not train:
        raise DataError(f"{corpus.path}: no training comments to build a vocabulary from")
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
    sizes = {name: (out / name).stat().st_size for name in files}
    write_text(manifest, json.dumps({**wanted, "files": sizes}, indent=1))
    log.info(
        "prepared %s: %d words, %s", out, len(vocab), {s: len(c) for s, c in candidates.items()}
    )
    return Prepared(vocab, candidates, out)


def _read_manifest(path: Path) -> dict | None:
    """The manifest, or None when it is missing or damaged (everything is built again)."""
    if not path.exists():
        return None
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        log.warning("%s: damaged manifest (%s)", path, e)
        return None
    return found if isinstance(found, dict) else None


def _load_prepared(
    out: Path, splits: tuple[str, ...], files: list[str], sizes: dict | None
) -> Prepared:
    """The saved artefacts; a :class:`DataError` when one is cut or damaged. ``sizes`` (bytes
    per file) is absent from manifests written before it was recorded."""
    for name in files if isinstance(sizes, dict) else ():
        path = out / name
        if not path.is_file() or path.stat().st_size != sizes.get(name):
            raise DataError(f"{path}: missing, or not the size the manifest records")
    try:
        vocab = Vocab.load(out / VOCAB_FILE)
    except (UnicodeDecodeError, OSError) as e:
        raise DataError(f"{out / VOCAB_FILE}: unreadable ({e})") from None
    return Prepared(
        vocab, {s: load_candidate_sets(out / "candidates" / f"{s}.jsonl") for s in splits}, out
    )
