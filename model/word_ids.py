"""Words -> corpus ids, and how a model reads them.

Design: docs/architecture.md, section "Data flow".

Corpus ids: the prepared vocabulary's words, then ``[MASK]`` and ``[CLS]``, then the words of
a split that the vocabulary lacks (:class:`Unseen`: a name or a value no training comment
has), so that a word of the facts or the comments is never lost to ``<UNK>``. A model reads
them through a :class:`WordSpace`: the words it has embeddings for (the vocabulary, or its
frequent part when rare words are cut to ``<UNK>``) keep their ids, everything else is
``<UNK>`` on input, and with a copy path a word of the window's facts or comments gets an
*extended* id, ``vocab_size +`` its first position in the window's source (the facts then
the context rows, flattened), so it can still be scored and generated.

:class:`TextEncoder` turns a sample's texts into those ids: a second's comments into a row,
the recalled facts (:class:`PackedFact`) into the knowledge row with the fact and the part
(head, relation, value) of each word, a comment into a target, the window's subtitle lines or
transcript stretches into a row like a second's comments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kg.triples import Fact, bare_name
from model.data.vocab import BOS, EOS, PAD, SEP, SPECIALS, UNK, Tokenizer, Vocab

#: ``fact_part`` values: not a fact word, or a word of the fact's head, relation or value.
PART_NONE, PART_HEAD, PART_RELATION, PART_VALUE = range(4)


def model_specials(vocab: Vocab) -> tuple[int, int]:
    """Ids of the model's own tokens after the corpus vocabulary: ``[MASK]``, ``[CLS]``."""
    return len(vocab), len(vocab) + 1


#: Default ``Lengths.max_text_len``: the window's subtitles or transcript as one row (the
#: demo corpus's longest transcript row is 45 words; LiveChat's 30 s clips need more).
MAX_TEXT_LEN = 64


@dataclass(frozen=True)
class Lengths:
    """The encoded rows' lengths, in ids: ``radius`` l (the window t-l..t+l), ``max_len`` g
    (a comment with ``<BOS>``/``<EOS>``), ``max_step_len`` n (a second's comments, with
    ``[CLS]`` and separators), ``max_knowledge_len`` m (the facts, without ``[CLS]``) and
    ``max_text_len`` (the window's subtitles, and its transcript, with ``[CLS]`` and
    separators)."""

    radius: int
    max_len: int
    max_step_len: int
    max_knowledge_len: int
    max_text_len: int = MAX_TEXT_LEN

    @property
    def step_comments(self) -> int:
        """The most comments of one or more words a context row holds: ``[CLS]``, then each
        comment's words after its separator."""
        return max(1, self.max_step_len // 2)


@dataclass(frozen=True, slots=True)
class PackedFact(Fact):
    """A recalled fact as the knowledge row holds it: the KG fact and its packed ``text``
    (the bare head, the relation, then the value cut to the fact budget:
    :class:`retrieval.linker.RecalledFact`)."""

    text: str

    def parts(self) -> tuple[str, str, str]:
        """The (head, relation, value) substrings of the packed text; a part the text does
        not start with as expected is empty."""
        head = bare_name(self.head) or self.head
        head = head if self.text.startswith(head) else ""
        rest = self.text[len(head) :]
        relation = self.relation if rest.startswith(self.relation) else ""
        return head, relation, rest[len(relation) :]


class Unseen:
    """A split's words that the vocabulary lacks, with their corpus ids (``base + i``)."""

    def __init__(self, base: int, words: Sequence[str] = ()) -> None:
        self.base, self.words = base, list(words)
        self.ids = {w: base + i for i, w in enumerate(self.words)}

    def add(self, word: str) -> int:
        if word not in self.ids:
            self.ids[word] = self.base + len(self.words)
            self.words.append(word)
        return self.ids[word]


@dataclass(frozen=True)
class WordSpace:
    """How a model reads corpus ids (see the module docstring).

    ``corpus_words``: the prepared vocabulary's size (corpus ids below it are its words, then
    ``[MASK]``, ``[CLS]``, then a split's unseen words); ``model_words``: how many of those
    words (the most frequent first) the model has its own ids for; ``copy``: whether the
    model points at its source, so that the other words get extended ids."""

    corpus_words: int
    model_words: int
    copy: bool = False
    #: with the copy path, whether a comment word the model has an id for is copyable too
    #: (See et al.'s pointer over every source word), or only the comment words it lacks
    copy_known_comment_words: bool = False

    @property
    def vocab_size(self) -> int:
        return self.model_words + 2

    @property
    def mask_id(self) -> int:
        return self.model_words

    @property
    def cls_id(self) -> int:
        return self.model_words + 1

    def to_model(self, ids: np.ndarray) -> np.ndarray:
        """Model input ids of corpus ids: a word without its own id is ``<UNK>``."""
        ids = np.asarray(ids)
        out = np.where(ids < self.model_words, ids, UNK)
        out = np.where(ids == self.corpus_words, self.mask_id, out)
        return np.where(ids == self.corpus_words + 1, self.cls_id, out)

    def _word(self, ids: np.ndarray) -> np.ndarray:
        """True where a corpus id is a word (not padding, a special or a model token)."""
        return (ids >= len(SPECIALS)) & (ids != self.corpus_words) & (ids != self.corpus_words + 1)

    def source_ext(self, source: np.ndarray, n_facts: int | None = None) -> np.ndarray:
        """Extended ids of a window's source (..., S) corpus ids: a word with a model id keeps
        it, any other word is ``vocab_size +`` its first position in the source; ``<PAD>``
        where nothing can be copied (padding, separators, ``[CLS]``, and unless
        ``copy_known_comment_words``, a word after the first ``n_facts`` positions, the
        comments', that the model has an id for)."""
        source = np.asarray(source)
        word = self._word(source)
        same = (source[..., :, None] == source[..., None, :]) & word[..., None, :]
        first = same.argmax(axis=-1)
        known = source < self.model_words
        out = np.where(known, source, self.vocab_size + first)
        if n_facts is not None and not self.copy_known_comment_words:
            word = word & ~(known & (np.arange(source.shape[-1]) >= n_facts))
        return np.where(word, out, PAD)

    def target_ext(self, tokens: np.ndarray, source: np.ndarray | None) -> np.ndarray:
        """Extended ids of comments (..., g) in corpus ids, each against its window's source
        (..., S): a word without a model id is its first position in the source when it is
        there (with a copy path), else ``<UNK>``."""
        tokens = np.asarray(tokens)
        out = self.to_model(tokens)
        if not self.copy or source is None:
            return out
        source = np.asarray(source)
        oov = self._word(tokens) & (tokens >= self.model_words)
        same = tokens[..., :, None] == source[..., None, :]
        found = same.any(axis=-1)
        return np.where(oov & found, self.vocab_size + same.argmax(axis=-1), out)


def frequent_words(vocab: Vocab, targets: np.ndarray, min_count: int) -> int:
    """How many of the vocabulary's first ids a model keeps when words seen fewer than
    ``min_count`` times in the training targets (corpus ids) are cut to ``<UNK>``: the
    vocabulary is ordered by training frequency, so the kept words are a prefix (its length
    is one past the last word that is frequent enough)."""
    if min_count <= 1:
        return len(vocab)
    counts = np.bincount(targets[targets < len(vocab)].ravel(), minlength=len(vocab))
    frequent = np.flatnonzero(counts[len(SPECIALS) :] >= min_count)
    return len(SPECIALS) + (int(frequent[-1]) + 1 if frequent.size else 0)


class TextEncoder:
    """Texts -> corpus ids with the corpus vocabulary, the model's specials and, when given
    an :class:`Unseen`, the split's words the vocabulary lacks (``<UNK>`` without one)."""

    def __init__(self, vocab: Vocab, tokenizer: Tokenizer, lengths: Lengths) -> None:
        self.vocab, self.tokenizer, self.lengths = vocab, tokenizer, lengths
        self.mask_id, self.cls_id = model_specials(vocab)

    def unseen(self) -> Unseen:
        return Unseen(len(self.vocab) + 2)

    def words(self, text: str, unseen: Unseen | None = None) -> list[int]:
        tokens = self.tokenizer(text)
        if unseen is None:
            return self.vocab.encode(tokens)
        ids = self.vocab.ids
        return [ids[w] if w in ids else unseen.add(w) for w in tokens]

    def row(
        self, texts: Sequence[str], unseen: Unseen | None = None, length: int | None = None
    ) -> list[int]:
        """``[CLS] c1 <&&&> c2 ...`` cut to ``length`` (default: a context row's, n)."""
        return self.row_held(texts, unseen, length)[0]

    def row_held(
        self, texts: Sequence[str], unseen: Unseen | None = None, length: int | None = None
    ) -> tuple[list[int], int]:
        """:meth:`row`, and how many of ``texts`` it holds: the first, and each whose
        separator lies inside the row (so the k-th text is the row's k-th stretch between
        separators). Every text's words are read, the cut ones too, so ``unseen`` grows the
        same however long the row is."""
        n = self.lengths.max_step_len if length is None else length
        ids, held = [self.cls_id], 0
        for i, text in enumerate(texts):
            held += 1 if not i or len(ids) < n else 0
            ids += ([SEP] if i else []) + self.words(text, unseen)
        return ids[:n], held

    def knowledge(
        self, facts: Sequence[PackedFact], unseen: Unseen | None = None
    ) -> tuple[list[int], list[int], list[int]]:
        """``[CLS] fact1 <&&&> fact2 ...`` (each fact's packed text) cut to m+1 words, the
        fact of each word and its part (head, relation or value, each segmented on its own:
        :meth:`PackedFact.parts`)."""
        ids, fact_of, part = [self.cls_id], [-1], [PART_NONE]
        for i, fact in enumerate(facts):
            if i:
                ids.append(SEP)
                fact_of.append(-1)
                part.append(PART_NONE)
            for kind, text in zip(
                (PART_HEAD, PART_RELATION, PART_VALUE), fact.parts(), strict=True
            ):
                words = self.words(text, unseen) if text else []
                ids += words
                fact_of += [i] * len(words)
                part += [kind] * len(words)
        n = self.lengths.max_knowledge_len + 1
        return ids[:n], fact_of[:n], part[:n]

    def target(self, text: str, unseen: Unseen | None = None) -> list[int]:
        """``<BOS> words <EOS>``, words cut so the whole is at most g ids."""
        return [BOS, *self.words(text, unseen)[: self.lengths.max_len - 2], EOS]
