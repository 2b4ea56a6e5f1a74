"""Per-video keyword sets: TF-IDF of a video's comments against the corpus.

Design: docs/architecture.md, section "Retrieval".

As in KLVCG's preprocessing (``add_context.py`` takes each video's TF-IDF top words), each
video's comments form one document; words are jieba tokens (KG names kept whole), restricted
to nouns and names by ``jieba.posseg`` (KG names are tagged as proper nouns), minus stop
words; scikit-learn's TF-IDF over all videos ranks them and the top ``k`` are the video's
keywords. Texts repeat a lot in danmaku, so each distinct text is tagged once.

A video that is not in the corpus (``model.generate --video-file``) gets its keywords against
the corpus's document frequencies (:class:`DocumentFrequencies`, counted once and cached
beside the keyword sets), scored exactly as :func:`video_keywords` would score it among the
corpus's videos, without tagging the corpus again.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from model.data.schema import Video
from retrieval.lexicon import STOP_WORDS, EntityLexicon

NOUN_TAGS = ("n", "nr", "ns", "nt", "nz", "nw", "vn", "eng")
_NUMERIC = re.compile(r"^[\d.,:%年月日号]+$")
DEFAULT_TOP_K = 20


@dataclass(frozen=True, slots=True)
class Keyword:
    word: str
    score: float
    entity: str | None  # the head it names, when it is a KG name


def _content_words(text: str, lexicon: EntityLexicon) -> list[str]:
    """KG names as written (found by the lexicon scan, so ``瑞恩·高斯林`` stays whole), then
    the nouns of the rest of the text."""
    mentions = lexicon.mentions(text)
    words = [m.name for m in mentions]
    rest = list(text)
    for m in mentions:
        rest[m.start : m.start + len(m.name)] = " " * len(m.name)
    for word, flag in lexicon.tokenizer.pos_cut("".join(rest)):
        content = len(word) >= 2 and word not in STOP_WORDS and not _NUMERIC.match(word)
        if content and flag.startswith(NOUN_TAGS):
            words.append(word)
    return words


def _documents(videos: list[Video], lexicon: EntityLexicon) -> list[list[str]]:
    """Each video's comments as one document of content words."""
    cache: dict[str, list[str]] = {}
    docs = []
    for v in videos:
        doc = []
        for c in v.comments:
            if c.text not in cache:
                cache[c.text] = _content_words(c.text, lexicon)
            doc.extend(cache[c.text])
        docs.append(doc)
    return docs


def video_keywords(
    videos: Iterable[Video], lexicon: EntityLexicon, top_k: int = DEFAULT_TOP_K
) -> dict[str, list[Keyword]]:
    """The top-``k`` TF-IDF content words of each video, best first (ties by word)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    videos = list(videos)
    docs = _documents(videos, lexicon)
    if not any(docs):
        return {v.id: [] for v in videos}
    tfidf = TfidfVectorizer(analyzer=lambda doc: doc, sublinear_tf=True)
    matrix = tfidf.fit_transform(docs).tocsr()
    vocab = tfidf.get_feature_names_out()
    out = {}
    for row, v in enumerate(videos):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        pairs = sorted(
            zip(matrix.data[lo:hi], matrix.indices[lo:hi], strict=True),
            key=lambda p: (-p[0], vocab[p[1]]),
        )
        out[v.id] = [
            Keyword(str(vocab[i]), float(s), lexicon.head_of.get(str(vocab[i])))
            for s, i in pairs[:top_k]
        ]
    return out


@dataclass(frozen=True)
class DocumentFrequencies:
    """How many of a corpus's videos (``n_docs``) use each content word (``df``)."""

    n_docs: int
    df: dict[str, int]

    @classmethod
    def of(cls, videos: Iterable[Video], lexicon: EntityLexicon) -> DocumentFrequencies:
        docs = _documents(list(videos), lexicon)
        return cls(len(docs), dict(Counter(w for doc in docs for w in set(doc))))


def new_video_keywords(
    video: Video,
    lexicon: EntityLexicon,
    frequencies: DocumentFrequencies,
    top_k: int = DEFAULT_TOP_K,
) -> list[Keyword]:
    """The keywords :func:`video_keywords` gives ``video`` among the corpus's videos, from the
    corpus's document frequencies: scikit-learn's smoothed IDF ``ln((1+n)/(1+df)) + 1`` with
    the video counted in ``n`` and ``df``, sublinear TF ``1 + ln(count)``, L2-normalised."""
    (doc,) = _documents([video], lexicon)
    n = frequencies.n_docs + 1
    weights = {
        word: (1 + math.log(count)) * (math.log((1 + n) / (2 + frequencies.df.get(word, 0))) + 1)
        for word, count in Counter(doc).items()
    }
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    ranked = sorted(weights.items(), key=lambda ws: (-ws[1], ws[0]))
    return [Keyword(word, w / norm, lexicon.head_of.get(word)) for word, w in ranked[:top_k]]
