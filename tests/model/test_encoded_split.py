"""What an encoded split carries besides KLVCG's inputs (docs/data-contracts.md, section
"Encoded splits"): the window's subtitle and transcript rows and the like counts of the
context and ground-truth comments, aligned with the rows and targets, through the cache and
out as :class:`model.encoded_split.Batch` tensors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model.data.candidates import char_tokenize
from model.data.samples import video_samples
from model.data.schema import Corpus, DataError
from model.data.vocab import PAD, SEP, Vocab
from model.encoded_split import Encoded
from model.split_encoding import encode_samples
from model.word_ids import Lengths, TextEncoder, WordSpace
from retrieval.recall import Knowledge

LENGTHS = Lengths(radius=5, max_len=8, max_step_len=16, max_knowledge_len=12)


def encode(corpus: Corpus, videos: list, per_video: int = 40):
    """The first samples of ``videos`` encoded with a character vocabulary of the corpus's
    training comments, with no recalled knowledge."""
    vocab = Vocab.build(char_tokenize(c.text) for v in corpus.split("train") for c in v.comments)
    encoder = TextEncoder(vocab, char_tokenize, LENGTHS)
    samples = [s for v in videos for s in list(video_samples(v, corpus.features))[:per_video]]
    knowledge = [Knowledge(s.video_id, s.t) for s in samples]
    return samples, encode_samples(samples, knowledge, encoder), vocab


@pytest.fixture(scope="module")
def demo_encoded(demo):
    """Two test films of the demo; the second with its like counts taken away."""
    first, second = demo.split("test")[:2]
    unliked = replace(second, comments=[replace(c, likes=None) for c in second.comments])
    return encode(demo, [first, unliked])


def text_of(row: np.ndarray, enc: Encoded, vocab: Vocab) -> str:
    """A subtitle or transcript row's characters, without [CLS]."""
    return "".join(enc.words(row[1:], vocab))


def test_subtitle_and_transcript_rows_are_the_windows_text(demo_encoded):
    samples, enc, vocab = demo_encoded
    n = len(samples)
    assert enc.subtitle.shape == enc.transcript.shape == (n, LENGTHS.max_text_len)
    assert (enc.subtitle[:, 0] == enc.corpus_words + 1).all(), "[CLS] first"
    checked = 0
    for i, s in enumerate(samples):
        for row, texts in ((enc.subtitle[i], s.subtitles), (enc.transcript[i], s.transcript)):
            if row[-1] != PAD:
                continue  # cut at the row length
            assert text_of(row, enc, vocab) == "<&&&>".join(
                "".join(char_tokenize(t)) for t in texts
            )
            checked += 1
    assert checked > n and sum(bool(s.subtitles) for s in samples) > 0.9 * n
    assert all(s.transcript for s in samples)


def test_likes_are_aligned_with_the_rows_comments_and_the_targets(demo_encoded):
    samples, enc, _ = demo_encoded
    r, c = LENGTHS.radius, LENGTHS.step_comments
    assert enc.context_likes.shape == (len(samples), 2 * r + 1, c)
    assert (enc.context_likes[:, -1] == -1).all(), "the other videos' row has no likes"
    seconds = [s for s in range(-r, r + 1) if s != 0]
    for i, s in enumerate(samples):
        for j, second in enumerate(seconds):
            comments = s.context.get(s.t + second, [])
            held = int((enc.rows[i, j] == SEP).sum()) + 1 if comments else 0
            likes = s.context_likes.get(s.t + second, [])
            assert enc.context_likes[i, j, :held].tolist() == likes[:held]
            assert (enc.context_likes[i, j, held:] == -1).all()
    assert len(enc.target_likes) == len(enc.targets)
    assert enc.target_likes.tolist() == [n for s in samples for n in s.target_likes]
    liked = enc.has_likes[enc.target_sample]
    assert enc.target_likes[liked].max() > 0 and (enc.context_likes[enc.has_likes] > 0).any()
    video = [v == samples[0].video_id for v in enc.video]
    assert enc.has_likes.tolist() == video, "the film without counts is told apart"
    assert (enc.target_likes[~liked] == 0).all()


def test_the_new_arrays_round_trip_through_the_cache_and_out_as_a_batch(demo_encoded, tmp_path):
    samples, enc, _ = demo_encoded
    path = tmp_path / "test-key.npz"
    enc.save(path)
    back = Encoded.load(path)
    for name in ("subtitle", "transcript", "context_likes", "target_likes", "has_likes"):
        a, b = getattr(enc, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert back.oov == enc.oov

    idx = np.array([0, 3, len(samples) - 1])
    space = WordSpace(enc.corpus_words, 40)  # a model that keeps 40 words: the rest <UNK>
    batch = back.batch(idx, space=space)
    assert batch.subtitle.shape == batch.transcript.shape == (3, LENGTHS.max_text_len)
    assert batch.subtitle.dtype == torch.long
    assert torch.equal(batch.subtitle, torch.as_tensor(space.to_model(enc.subtitle[idx])))
    assert (batch.subtitle[:, 0] == space.cls_id).all()
    assert batch.context_likes.shape == (3, 2 * LENGTHS.radius + 1, LENGTHS.step_comments)
    assert torch.equal(batch.context_likes, torch.as_tensor(enc.context_likes[idx]).long())
    assert batch.has_likes.dtype == torch.bool
    assert batch.has_likes.tolist() == enc.has_likes[idx].tolist() == [True, True, False]


def test_arrays_that_disagree_with_the_split_are_refused(demo_encoded, tmp_path):
    _, enc, _ = demo_encoded
    path = tmp_path / "test-key.npz"
    replace(enc, target_likes=enc.target_likes[:-1]).save(path)
    with pytest.raises(DataError, match="records and arrays disagree"):
        Encoded.load(path)


def test_a_split_made_without_them_reads_as_having_none():
    bare = Encoded(
        video=["v"],
        t=np.zeros(1, np.int32),
        frames=np.zeros((1, 3, 2), np.float32),
        frame_mask=np.ones((1, 3), bool),
        rows=np.zeros((1, 3, 6), np.int32),
        knowledge=np.zeros((1, 4), np.int32),
        fact_of=np.full((1, 4), -1, np.int16),
        fact_part=np.zeros((1, 4), np.int8),
        period=np.zeros(1, np.int64),
        knowledge_target=np.zeros(1, bool),
        targets=np.zeros((2, 5), np.int32),
        target_sample=np.zeros(2, np.int32),
        facts=[[]],
        ac=[[]],
        corpus_words=10,
    )
    batch = bare.batch([0])
    assert batch.subtitle.tolist() == batch.transcript.tolist() == [[11]]  # [CLS] alone
    assert batch.context_likes.shape == (1, 3, 3) and (batch.context_likes == -1).all()
    assert bare.target_likes.tolist() == [0, 0] and not batch.has_likes.any()


def test_a_row_says_how_many_comments_it_holds():
    vocab = Vocab.build([list("abcdefx")])
    encoder = TextEncoder(vocab, char_tokenize, replace(LENGTHS, max_step_len=6))
    row, held = encoder.row_held(["ab", "cd", "ef"])
    assert len(row) == 6 and held == 2, "the third's separator falls past the row"
    assert encoder.row_held(["abcdef", "x"])[1] == 1
    assert encoder.row_held(["ab", "c"])[1] == 2
    assert encoder.row_held([]) == ([encoder.cls_id], 0)
    assert len(encoder.row(["abcdef"], length=4)) == 4
