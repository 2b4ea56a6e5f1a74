"""Everything recall needs, built once per process (or loaded from its cache).

Under ``$DANMAKU_DATA/retrieval/<corpus fingerprint>/``: ``keywords-<lexicon>.json`` (the
per-video keyword sets), ``relation-cues-<lexicon>-<key>.json`` (which relation a window
leads up to, learned from the training split's knowledge-bearing comments,
:mod:`retrieval.relation_cues`; the linker scores facts with it) and ``index-<embedder>/``
(the FAISS index of the training comments, :mod:`retrieval.comment_index`). All are keyed by
what they were built from, so a changed corpus, KG or embedder builds new ones.

A video that is not in the corpus (a video file given to ``model.generate``) joins a copy of
the context (:meth:`RetrievalContext.with_video`): recall reads it like any corpus video, with
a keyword set scored against the corpus's document frequencies (``keyword-df-<lexicon>.json``
beside the keyword sets, counted on first use); the index and the linker's relation cues stay
those of the training comments.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from common.atomic import write_json
from common.paths import data_dir
from common.settings import RunSettings
from kg.store import GraphStore
from model.data.prepare import corpus_fingerprint
from model.data.schema import Corpus, DataError, FrameFeatures, Video
from retrieval.comment_index import CommentIndex, entries_fingerprint, entries_from_corpus
from retrieval.embedders import CachedEmbedder, make_embedder
from retrieval.index_format import DamagedIndexError, StaleIndexError
from retrieval.keywords import (
    DocumentFrequencies,
    Keyword,
    new_video_keywords,
    video_keywords,
)
from retrieval.lexicon import EntityLexicon
from retrieval.linker import Linker, LinkerConfig
from retrieval.relation_cues import cached_cues

log = logging.getLogger(__name__)
DEFAULT_EMBEDDER = RunSettings.embedder


@dataclass
class RetrievalContext:
    corpus: Corpus
    store: GraphStore
    linker: Linker
    index: CommentIndex | None
    keywords: dict[str, list[Keyword]]
    folder: Path | None = None  # where the caches above live (None: nowhere, counted anew)
    _frequencies: list[DocumentFrequencies] = field(default_factory=list, repr=False)

    def keyword_set(self, video_id: str) -> set[str]:
        return {k.word for k in self.keywords.get(video_id, [])}

    def with_video(self, video: Video, features: FrameFeatures | None) -> RetrievalContext:
        """A copy of the context whose corpus also holds ``video``, a video the corpus lacks,
        with its keyword set and ``features`` as the corpus's frame features; this context is
        left as it was, so it serves the next video the same."""
        if video.id in self.corpus.videos:
            raise DataError(f"video {video.id!r} is already in the corpus {self.corpus.path}")
        corpus = replace(
            self.corpus, videos={**self.corpus.videos, video.id: video}, features=features
        )
        keywords = new_video_keywords(video, self.linker.lexicon, self.document_frequencies())
        return replace(self, corpus=corpus, keywords={**self.keywords, video.id: keywords})

    def document_frequencies(self) -> DocumentFrequencies:
        """The corpus's document frequencies of content words (cached in ``folder``)."""
        if not self._frequencies:  # shared with the copies: counted once per process
            self._frequencies.append(
                cached_frequencies(self.corpus, self.linker.lexicon, self.folder)
            )
        return self._frequencies[0]


def load_corpus(settings: RunSettings) -> Corpus:
    """The corpus the settings name: ``settings.corpus`` in ``settings.format``, or the demo
    corpus where :func:`retrieval.bootstrap.ensure_demo_corpus` generates it."""
    from model.data.demo import MANIFEST, demo_dir
    from model.data.readers import read_corpus

    if settings.corpus is not None:
        return read_corpus(settings.format, settings.corpus)
    if settings.format not in ("demo", None):
        raise DataError(f"--format {settings.format} needs --corpus PATH (the dataset directory)")
    if not (demo_dir() / MANIFEST).exists():
        raise DataError(f"{demo_dir()}: no demo corpus: run python -m model.data.demo")
    return read_corpus("demo", demo_dir())


def cached_keywords(corpus: Corpus, lexicon: EntityLexicon, folder: Path) -> dict:
    """The keyword sets of ``corpus``, from ``folder`` when saved there; a damaged file is
    derived data, so it is built again (with a warning), never an error."""
    path = folder / f"keywords-{lexicon.fingerprint}.json"
    if path.exists():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return {v: [Keyword(*k) for k in ks] for v, ks in raw.items()}
        except (ValueError, TypeError, AttributeError) as e:  # UnicodeDecodeError included
            log.warning("%s: damaged keyword sets (%s): building them again", path, e)
    keywords = video_keywords(corpus, lexicon)
    write_json(path, {v: [[k.word, k.score, k.entity] for k in ks] for v, ks in keywords.items()})
    return keywords


def cached_frequencies(
    corpus: Corpus, lexicon: EntityLexicon, folder: Path | None
) -> DocumentFrequencies:
    """The document frequencies of ``corpus``, from ``folder`` when saved there (a damaged
    file is built again, with a warning)."""
    path = folder / f"keyword-df-{lexicon.fingerprint}.json" if folder is not None else None
    if path is not None and path.exists():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return DocumentFrequencies(
                int(raw["n_docs"]), {str(w): int(n) for w, n in raw["df"].items()}
            )
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            log.warning("%s: damaged document frequencies (%s): counting them again", path, e)
    frequencies = DocumentFrequencies.of(corpus, lexicon)
    if path is not None:
        write_json(path, {"n_docs": frequencies.n_docs, "df": frequencies.df})
    return frequencies


def cached_index(corpus: Corpus, embedder_spec: str, folder: Path) -> CommentIndex | None:
    embedder = CachedEmbedder(make_embedder(embedder_spec))  # query units recur: embed once
    directory = folder / f"index-{embedder.name.replace('/', '_').replace(':', '_')}"
    entries = list(entries_from_corpus(corpus, "train"))
    if not entries:
        log.warning("%s: no training comments: no other-video comments", corpus.path)
        return None
    if (directory / "manifest.json").exists():
        try:
            return CommentIndex.load(directory, embedder, entries_fingerprint(entries))
        except StaleIndexError:
            log.info("%s was built from other comments: rebuilding it", directory)
        except DamagedIndexError as e:
            log.warning("%s: %s: building the comment index again", e.path, e.reason)
    index = CommentIndex.build(entries, embedder)
    index.save(directory)
    return index


def build_linker(corpus: Corpus, store: GraphStore, lexicon: EntityLexicon, folder: Path) -> Linker:
    """The linker recall uses: the default settings, with relation cues learned from the
    corpus's training split (cached in ``folder``; none when the split states no fact): each
    video's training part, so a video split by time teaches only its training ranges."""
    base = Linker(store, lexicon, LinkerConfig())
    cues = cached_cues(corpus.split("train"), base, folder)
    return Linker(store, lexicon, LinkerConfig(), cues=cues if cues.examples else None)


def build_context(settings: RunSettings, store: GraphStore) -> RetrievalContext:
    """Recall's parts for the corpus of ``settings`` over ``store``: the linker with its
    relation cues, the videos' keyword sets and the FAISS index of the training comments, each
    loaded from its cache under the data directory or built there."""
    corpus = load_corpus(settings)
    folder = data_dir() / "retrieval" / corpus_fingerprint(corpus)
    lexicon = EntityLexicon.from_store(store)
    linker = build_linker(corpus, store, lexicon, folder)
    keywords = cached_keywords(corpus, lexicon, folder)
    index = cached_index(corpus, settings.embedder, folder)
    return RetrievalContext(corpus, store, linker, index, keywords, folder)
