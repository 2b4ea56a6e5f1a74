"""The copy path (``+copy``): extended ids, the mixed distribution, and a synthetic task only
copying can solve (the value to say is in the facts and was never a training target)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.backbones.klvcg import KLVCG
from model.backbones.klvcg_blocks import StepDecoder
from model.backbones.klvcg_config import KLVCGConfig
from model.backbones.klvcg_copy import (
    GATE_COPY,
    GATE_GENERATE,
    GATE_NONE,
    PointerHead,
    gate_targets,
    source_words_before,
    words_before,
)
from model.data.vocab import BOS, EOS, PAD, UNK, Vocab
from model.encoded_split import Encoded
from model.generator import banned_ids, copy_report
from model.word_ids import PART_RELATION, PART_VALUE, WordSpace, frequent_words
from tests.model.test_klvcg import FRAME, tiny

CORPUS = 40  # corpus vocabulary: 0-4 specials, 40 [MASK], 41 [CLS], 42+ a split's unseen words
MODEL = 25  # the model's own words: 5-24 (25-39 are rare words, <UNK> to the model)
# values the training comments state: frequent ones, and rare ones the model has no id for
# (so that, as in a real corpus, a comment goes on after a word read as <UNK>)
TRAIN_VALUES = np.concatenate([np.arange(5, 15), np.arange(35, 40)])
NEW_VALUES = np.arange(25, 35)  # values no training target has: not model words
RELATION, FILLER = 15, np.arange(16, 25)
CLS = CORPUS + 1


def copy_cfg(copy: bool):
    return tiny(vocab_size=MODEL + 2, copy=copy, max_knowledge_len=12, max_step_len=8)


def synthetic(values: np.ndarray, seed: int) -> Encoded:
    """One sample per value: the facts are ``[CLS] RELATION value``, the context seconds hold
    filler comments, and the one ground truth is ``<BOS> value <EOS>``."""
    rng = np.random.default_rng(seed)
    n = len(values)
    rows = np.full((n, 11, 8), PAD, dtype=np.int32)
    rows[:, :, 0] = CLS
    rows[:, :, 1:4] = rng.choice(FILLER, (n, 11, 3))
    rows[:, 4, 1:] = PAD  # a second nobody commented at
    knowledge = np.full((n, 13), PAD, dtype=np.int32)
    knowledge[:, :3] = np.stack([np.full(n, CLS), np.full(n, RELATION), values], axis=1)
    fact_of = np.full(knowledge.shape, -1, dtype=np.int16)
    fact_of[:, 1:3] = 0
    part = np.zeros(knowledge.shape, dtype=np.int8)
    part[:, 1], part[:, 2] = PART_RELATION, PART_VALUE
    targets = np.full((n, 8), PAD, dtype=np.int32)
    targets[:, :3] = np.stack([np.full(n, BOS), values, np.full(n, EOS)], axis=1)
    return Encoded(
        video=[f"v{i}" for i in range(n)],
        t=np.zeros(n, dtype=np.int32),
        frames=rng.standard_normal((n, 11, FRAME)).astype(np.float32),
        frame_mask=np.ones((n, 11), dtype=bool),
        rows=rows,
        knowledge=knowledge,
        fact_of=fact_of,
        fact_part=part,
        period=np.zeros(n, dtype=np.int64),
        knowledge_target=np.ones(n, dtype=bool),
        targets=targets,
        target_sample=np.arange(n, dtype=np.int32),
        facts=[[] for _ in range(n)],
        ac=[[] for _ in range(n)],
        corpus_words=CORPUS,
        oov=[f"w{i}" for i in range(10)],
    )


def test_word_space_maps_rare_words_to_unk_and_copied_words_to_source_positions():
    space = WordSpace(CORPUS, MODEL, copy=True)
    source = np.array([CLS, RELATION, 30, PAD, 30, 7, 42, 4])
    ext = space.source_ext(source)
    v = space.vocab_size
    assert ext.tolist() == [PAD, RELATION, v + 2, PAD, v + 2, 7, v + 6, PAD]
    tokens = np.array([BOS, 30, 7, 42, 31, EOS])
    assert space.target_ext(tokens, source).tolist() == [BOS, v + 2, 7, v + 6, UNK, EOS]
    assert space.to_model(np.array([CORPUS, CLS, 30, 7])).tolist() == [MODEL, MODEL + 1, UNK, 7]
    no_copy = WordSpace(CORPUS, MODEL, copy=False)
    assert no_copy.target_ext(tokens, source).tolist() == [BOS, UNK, 7, UNK, UNK, EOS]


def test_frequent_words_is_the_prefix_of_words_seen_often_enough():
    vocab = Vocab(["<PAD>", "<BOS>", "<EOS>", "<UNK>", "<&&&>", "a", "b", "c", "d"])
    targets = np.array([[1, 5, 5, 6, 2], [1, 5, 7, 7, 2], [1, 9, 9, 9, 2]])  # 9: unseen word
    assert frequent_words(vocab, targets, 2) == 8  # a, b(once) and c kept: the prefix to c
    assert frequent_words(vocab, targets, 3) == 6
    assert frequent_words(vocab, targets, 1) == len(vocab)


def test_mixed_distribution_sums_to_one_and_matches_the_teacher_forced_score():
    torch.manual_seed(0)
    model = KLVCG(copy_cfg(True)).eval()
    data = synthetic(NEW_VALUES[:2], seed=0)
    space = data.space(model.cfg)
    enc = model.encode(data.batch([0, 1], space=space))
    seqs = torch.tensor([[BOS, space.vocab_size + 2, 7], [BOS, 9, 9]])
    with torch.no_grad():
        stepper = StepDecoder(model, enc)
        read = words_before(seqs[:1], model.cfg.follow_span)
        for n in range(1, 4):
            lp = stepper.next_logp(read[:, n - 1])
            # one extended id per position of the full source: 13 fact words, 10 x 8 comments
            assert lp.shape[1] == space.vocab_size + enc.n_source == space.vocab_size + 13 + 80
            assert torch.allclose(lp.exp().sum(1), torch.ones(1), atol=1e-5)
            if n < 3:  # the step's log P of the next gold word is the teacher-forced one
                full, _ = model.token_logp(
                    enc.select(torch.tensor([0])), seqs[:1, :n], seqs[:1, 1 : n + 1]
                )
                assert lp[0, seqs[0, n]].item() == pytest.approx(full[0, -1].item(), abs=1e-4)


def test_a_window_with_nothing_to_copy_never_copies():
    torch.manual_seed(0)
    model = KLVCG(copy_cfg(True)).eval()
    data = synthetic(NEW_VALUES[:1], seed=0)
    data.knowledge[:, 1:] = PAD
    data.rows[:, :, 1:] = PAD
    space = data.space(model.cfg)
    enc = model.encode(data.batch([0], space=space))
    assert enc.source_ext.eq(PAD).all()
    h, x = model.decode_states(enc, torch.tensor([[BOS]]))
    bos = torch.tensor([[BOS]])
    read = words_before(bos, model.cfg.follow_span)
    p_gen, att = model.pointer(h, x, enc.keys, enc.source_ext, enc.source_before, read)
    assert p_gen.eq(1).all() and att.eq(0).all()
    with torch.no_grad():
        lp = StepDecoder(model, enc).next_logp(read[:, 0])
    assert torch.isfinite(lp[0, :MODEL]).all()
    assert torch.allclose(lp.exp().sum(1), torch.ones(1), atol=1e-5)


def test_gate_targets_copy_what_only_the_facts_hold_and_generate_what_the_source_lacks():
    source = torch.tensor([[0, 15, 30, 0, 16, 30, 17, 0]])  # 3 fact positions, then comments
    gold = torch.tensor([[15, 30, 17, 9, 2, 0]])
    assert gate_targets(gold, source, 3).tolist() == [
        [GATE_COPY, GATE_NONE, GATE_NONE, GATE_GENERATE, GATE_GENERATE, GATE_NONE]
    ]


def test_the_pointer_reaches_only_the_comment_words_the_model_lacks_unless_configured():
    source = np.array([CLS, RELATION, 30, PAD, 7, 30, 42, 16])  # 4 fact positions, comments
    v = WordSpace(CORPUS, MODEL, copy=True).vocab_size
    unseen_only = WordSpace(CORPUS, MODEL, copy=True).source_ext(source, 4)
    assert unseen_only.tolist() == [PAD, RELATION, v + 2, PAD, PAD, v + 2, v + 6, PAD]
    every = WordSpace(CORPUS, MODEL, copy=True, copy_known_comment_words=True)
    assert every.source_ext(source, 4).tolist() == [PAD, RELATION, v + 2, PAD, 7, v + 2, v + 6, 16]
    data = synthetic(NEW_VALUES[:1], seed=0)
    space = data.space(copy_cfg(True))
    ext = data.batch([0], space=space).source_ext[0]
    assert ext[:3].tolist() == [PAD, RELATION, v + 2]  # the facts: every word
    assert ext[13:].eq(PAD).all()  # the comments: fillers the model knows


def test_words_before_lists_the_last_words_nearest_first():
    ids = torch.tensor([[BOS, 7, 8]])
    assert words_before(ids, 2).tolist() == [[[BOS, PAD], [7, BOS], [8, 7]]]
    assert words_before(ids, 5)[0, 0].tolist() == [BOS, PAD, PAD, PAD, PAD]


def follow_only(span: int) -> PointerHead:
    """A pointer with no content match: only the "go on copying" biases."""
    torch.manual_seed(0)
    head = PointerHead(8, dim=4, span=span)
    with torch.no_grad():
        head.query.weight.zero_()
        head.query.bias.zero_()
        head.follow.weight.zero_()
        head.follow.bias.fill_(20.0)
    return head


def test_the_pointer_can_go_on_copying_the_word_after_the_one_just_read():
    head = follow_only(1)
    source_ext = torch.tensor([[7, 8, 9, PAD, 8, 6]])
    before = source_words_before(source_ext, 1)
    h, x = torch.randn(1, 3, 8), torch.randn(1, 3, 8)
    words = torch.tensor([[8, 7, BOS]])  # after 8: positions 2 and 5; after 7: 1; BOS: none
    with torch.no_grad():
        _, att = head(h, x, head.keys(torch.randn(1, 6, 8)), source_ext, before, words[..., None])
    assert att[0, 0, [2, 5]].sum() > 0.99 and att[0, 0, 2].item() == pytest.approx(0.5, abs=1e-3)
    assert att[0, 1, 1] > 0.99
    assert torch.allclose(att[0, 2], torch.tensor([0.2, 0.2, 0.2, 0.0, 0.2, 0.2]))


def test_the_words_read_before_tell_which_of_two_values_goes_on():
    # two dates end their month with the same word (月 = 8): after "12 月" only the day of
    # the date that has "12 月" goes on, where one word back cannot tell them apart
    source_ext = torch.tensor([[5, 11, 8, 21, PAD, 5, 12, 8, 19]])
    read = words_before(torch.tensor([[BOS, 5, 12, 8]]), 3)[:, -1:]  # "... 12 月" read
    h, x = torch.randn(1, 1, 8), torch.randn(1, 1, 8)
    keys = torch.randn(1, 9, 8)
    with torch.no_grad():
        for span, expect in ((1, [0.5, 0.5]), (3, [0.0, 1.0])):
            head = follow_only(span)
            before = source_words_before(source_ext, span)
            _, att = head(h, x, head.keys(keys), source_ext, before, read[..., :span])
            assert att[0, 0, [3, 8]].tolist() == pytest.approx(expect, abs=1e-3)


def train(copy: bool, steps: int = 150) -> KLVCG:
    torch.manual_seed(0)
    model = KLVCG(copy_cfg(copy))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        rng = np.random.default_rng(step)
        data = synthetic(rng.choice(TRAIN_VALUES, 32), seed=step)
        space = data.space(model.cfg)
        idx = np.arange(32)
        source = data.source(idx) if copy else None
        targets = space.target_ext(data.targets, source)
        enc = model.encode(data.batch(idx, space=space))
        gate = (
            gate_targets(torch.as_tensor(data.targets[:, 1:]), torch.as_tensor(source), 13)
            if copy
            else None
        )
        loss = model.generation_loss(enc, torch.as_tensor(targets, dtype=torch.long), 1.0, gate)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained() -> dict[bool, KLVCG]:
    return {copy: train(copy) for copy in (True, False)}


def new_value_mrr(model: KLVCG) -> float:
    """MRR of the truth among the 10 new values (each ``<BOS> value <EOS>``)."""
    data = synthetic(np.repeat(NEW_VALUES, 4), seed=10_000)
    space = data.space(model.cfg)
    idx = np.arange(len(data))
    cands = np.full((len(data), 10, 8), PAD, dtype=np.int64)
    cands[:, :, 0], cands[:, :, 1], cands[:, :, 2] = BOS, NEW_VALUES, EOS
    source = data.source(idx)[:, None, :] if space.copy else None
    ext = torch.as_tensor(space.target_ext(cands, source))
    with torch.no_grad():
        scores = model.score(model.encode(data.batch(idx, space=space)), ext).numpy()
    truth = NEW_VALUES[None, :] == data.targets[:, 1:2]
    ranks = 1 + ((scores <= scores[truth][:, None]) & ~truth).sum(1)  # ties count against
    return float(np.mean(1 / ranks))


def test_only_the_copy_path_learns_to_say_a_value_no_training_comment_said(trained):
    assert new_value_mrr(trained[True]) > 0.9
    assert new_value_mrr(trained[False]) < 0.2  # all <UNK> to it: the truth ties with all


def test_beam_search_generates_an_unseen_value_by_copying_it(trained):
    model = trained[True]
    data = synthetic(NEW_VALUES, seed=20_000)
    space = data.space(model.cfg)
    vocab = Vocab(["<PAD>", "<BOS>", "<EOS>", "<UNK>", "<&&&>", *(f"c{i}" for i in range(5, 40))])
    said = 0
    for i in range(len(data)):
        enc = model.encode(data.batch([i], space=space))
        [(ids, _)] = model.generate(enc, beam=1, banned=banned_ids(space))
        words = data.decode(ids, i, space, vocab)
        said += words == [vocab.words[NEW_VALUES[i]]]
        if words == [vocab.words[NEW_VALUES[i]]]:
            [shares] = model.copy_shares(enc, [ids])
            assert shares[0, 2] > 0.5  # copied from the value's position in the facts
            assert shares.sum() <= 1 + 1e-5
    assert said >= 9


def test_copy_report_names_the_fact_a_word_came_from():
    # source: 4 fact positions (facts 0, 0, 1, none), then 2 comment positions
    source_fact = np.array([0, 0, 1, -1, -1, -1])
    shares = np.array(
        [
            [0.0, 0.0, 0.9, 0.0, 0.0, 0.0],  # copied from fact 1
            [0.0, 0.0, 0.0, 0.0, 0.7, 0.0],  # copied from a comment
            [0.1, 0.1, 0.0, 0.0, 0.0, 0.0],  # mostly from the vocabulary
        ]
    )
    report = copy_report(["a", "b", "c"], shares, source_fact)
    assert [w.fact for w in report.words] == [1, None, None]
    assert [w.copied for w in report.words] == [0.9, 0.7, 0.2]
    assert report.copied == pytest.approx(0.6)
    assert [f.fact for f in report.facts] == [1, 0]
    assert [f.mass for f in report.facts] == [0.3, pytest.approx(0.0667, abs=1e-4)]
    assert report.as_dict()["facts"][0] == {"fact": 1, "mass": 0.3}


def test_padding_rows_of_a_smaller_set_score_inf_with_the_copy_path():
    torch.manual_seed(0)
    model = KLVCG(copy_cfg(True)).eval()
    data = synthetic(NEW_VALUES[:2], seed=0)
    space = data.space(model.cfg)
    cands = np.full((2, 3, 8), PAD, dtype=np.int64)
    cands[0, :, :3] = [[BOS, v, EOS] for v in NEW_VALUES[:3]]
    cands[1, 0, :3] = [BOS, NEW_VALUES[1], EOS]  # one candidate, then two padding rows
    ext = torch.as_tensor(space.target_ext(cands, data.source([0, 1])[:, None, :]))
    with torch.no_grad():
        scores = model.score(model.encode(data.batch([0, 1], space=space)), ext)
    assert torch.isfinite(scores[0]).all() and torch.isfinite(scores[1, 0])
    assert torch.isinf(scores[1, 1:]).all() and not torch.isnan(scores).any()


def test_a_configuration_saved_before_follow_span_reads_one_word_back():
    saved = copy_cfg(True).to_dict()
    assert KLVCGConfig.from_dict(saved).follow_span == saved["follow_span"] == 3
    del saved["follow_span"]
    assert KLVCGConfig.from_dict(saved).follow_span == 1
