"""Word vocabulary in LiveBot's ``dicts-30000.json`` format, and the jieba tokenizer.

LiveBot (Ma et al. 2019, §5.1) and KLVCG (§V-A) keep the 30,000 most frequent words plus
LiveBot's specials: ``<PAD>`` 0, ``<BOS>`` 1, ``<EOS>`` 2, ``<UNK>`` 3, ``<&&&>`` 4 (the
separator of context comments). The file is ``{"word2id": {word: id}, "id2word": {"id": word}}``
so a vocabulary saved here loads in the released code and the other way round.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from common.atomic import write_json
from model.data.schema import DataError

SPECIALS = ("<PAD>", "<BOS>", "<EOS>", "<UNK>", "<&&&>")
PAD, BOS, EOS, UNK, SEP = range(len(SPECIALS))
DEFAULT_SIZE = 30_000
VOCAB_FILE = "dicts-30000.json"


class Tokenizer:
    """jieba word segmentation (accurate mode, no HMM: stable across runs), with extra words
    (KG entity names and aliases) kept whole. Segmentations are memoised (bounded): a corpus
    repeats its comments ("哈哈哈", a name said again), and every window, candidate set and
    fact pack re-reads them."""

    CACHE_SIZE = 500_000

    def __init__(self, extra_words: Iterable[str] = ()) -> None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        for word in extra_words:
            self._jieba.add_word(word, tag="nz")  # a proper noun for part-of-speech tagging
        self._pos = None
        self._cut = lru_cache(maxsize=self.CACHE_SIZE)(self._segment)

    def _segment(self, text: str) -> tuple[str, ...]:
        return tuple(w for w in self._jieba.lcut(text, HMM=False) if w.strip())

    def __call__(self, text: str) -> list[str]:
        return list(self._cut(text))

    def pos_cut(self, text: str) -> list[tuple[str, str]]:
        """``(word, part-of-speech)`` pairs (jieba.posseg tags: n nouns, nr names, ...)."""
        if self._pos is None:
            from jieba import posseg

            self._pos = posseg.POSTokenizer(self._jieba)
        return [(p.word, p.flag) for p in self._pos.cut(text, HMM=False) if p.word.strip()]


def words_to_text(words: Iterable[str]) -> str:
    """Segmented words back to text: joined directly (Chinese), with a space between two
    words that would otherwise run together (Latin letters or digits on both sides)."""
    out = ""
    for w in words:
        if out and out[-1].isascii() and out[-1].isalnum() and w[:1].isascii() and w[:1].isalnum():
            out += " "
        out += w
    return out


class Vocab:
    """Word <-> id; ids 0-4 are LiveBot's specials."""

    def __init__(self, words: list[str]) -> None:
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.words = words
        self.ids = {w: i for i, w in enumerate(words)}
        if len(self.ids) != len(words):
            raise ValueError("duplicate words in the vocabulary")

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], size: int = DEFAULT_SIZE) -> Vocab:
        """The ``size`` most frequent words (ties broken by first appearance) plus specials."""
        counts = Counter(w for tokens in token_lists for w in tokens if w not in SPECIALS)
        return cls([*SPECIALS, *(w for w, _ in counts.most_common(size))])

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.ids.get(w, UNK) for w in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to the first ``<EOS>``, without ``<BOS>``/``<PAD>``."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (BOS, PAD):
                out.append(self.words[i] if 0 <= i < len(self.words) else SPECIALS[UNK])
        return out

    @property
    def fingerprint(self) -> str:
        """Identifies the vocabulary (checkpoints record it to refuse a mismatched one)."""
        return hashlib.sha256("\n".join(self.words).encode()).hexdigest()[:16]

    def save(self, path: str | Path) -> None:
        doc = {"word2id": self.ids, "id2word": {str(i): w for i, w in enumerate(self.words)}}
        write_json(path, doc)

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            word2id = doc["word2id"]
        except FileNotFoundError:
            raise DataError(f"{path}: no such vocabulary file") from None
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(f"{path}: not a LiveBot dicts file ({e!r})") from None
        words: list[str | None] = [None] * len(word2id)
        for w, i in word2id.items():
            if not isinstance(i, int) or not 0 <= i < len(words) or words[i] is not None:
                raise DataError(f"{path}: word2id[{w!r}]: bad or repeated id {i!r}")
            words[i] = w
        try:
            return cls(words)  # type: ignore[arg-type]
        except ValueError as e:
            raise DataError(f"{path}: {e}") from None
