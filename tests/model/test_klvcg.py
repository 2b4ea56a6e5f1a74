"""KLVCG's model: encodings, losses, ranking scores, beam search, masking and the schedule,
on tiny configurations and synthetic batches (no corpus needed)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.backbones.decoding import trim
from model.backbones.klvcg import KLVCG, OLD_NAMES, mask_targets
from model.backbones.klvcg_blocks import StepDecoder
from model.backbones.klvcg_config import (
    KLVCGConfig,
    ablation_switches,
    canonical_ablation,
    make_configs,
)
from model.data.vocab import BOS, EOS, PAD
from model.encoded_split import Batch
from model.trainer import warmup_linear

V, FRAME = 40, 6  # vocabulary (ids 0-4 specials, 38 MASK, 39 CLS) and frame-feature size
MASK, CLS = V - 2, V - 1


def tiny(**kw) -> KLVCGConfig:
    base = dict(
        vocab_size=V,
        frame_dim=FRAME,
        d_model=24,
        modality_heads=2,
        knowledge_heads=2,
        cross_heads=4,
        decoder_heads=4,
        ffn_factor=2,
        dropout=0.0,
        max_step_len=8,
        max_knowledge_len=12,
        max_len=8,
    )
    return KLVCGConfig(**{**base, **kw})


def batch(b: int, seed: int = 0, knowledge: torch.Tensor | None = None) -> Batch:
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(5, V - 2, (b, 11, 8), generator=g)
    rows[:, :, 0] = CLS
    rows[:, :, 5:] = PAD
    rows[:, 3, 1:] = PAD  # a second nobody commented at
    if knowledge is None:
        knowledge = torch.randint(5, V - 2, (b, 13), generator=g)
        knowledge[:, 0] = CLS
        knowledge[:, 9:] = PAD
    mask = torch.ones(b, 11, dtype=torch.bool)
    mask[:, 0] = False
    return Batch(
        frames=torch.randn(b, 11, FRAME, generator=g),
        frame_mask=mask,
        rows=rows,
        knowledge=knowledge,
        fact_of=torch.full_like(knowledge, -1),
        fact_part=torch.zeros_like(knowledge),
        period=torch.randint(0, 5, (b,), generator=g),
        # read by other backbones, not KLVCG
        subtitle=torch.randint(5, V - 2, (b, 10), generator=g),
        transcript=torch.randint(5, V - 2, (b, 10), generator=g),
        context_likes=torch.randint(-1, 50, (b, 11, 4), generator=g),
        has_likes=torch.ones(b, dtype=torch.bool),
    )


def targets(b: int, seed: int = 1, length: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.full((b, length), PAD)
    for i in range(b):
        n = int(torch.randint(1, length - 1, (1,), generator=g))
        t[i, 0] = BOS
        t[i, 1 : n + 1] = torch.randint(5, V - 2, (n,), generator=g)
        t[i, n + 1] = EOS
    return t


@pytest.mark.parametrize(
    "switches,length",
    [
        ({}, 11 + 11 + 11),  # frames, 10 seconds + AC row, K' per comment step
        ({"use_ac": False}, 11 + 10 + 10),
        ({"use_kg": False, "use_ac": False}, 11 + 10),
    ],
)
def test_cross_encoder_sequence_is_frames_comments_knowledge(switches, length):
    torch.manual_seed(0)
    model = KLVCG(tiny(**switches)).eval()
    enc = model.encode(batch(3))
    assert enc.memory.shape == (3, length, 24)
    assert (enc.knowledge_attention is None) == (not tiny(**switches).use_kg)
    if enc.knowledge_attention is not None:  # a distribution over the knowledge words
        att = enc.knowledge_attention
        assert torch.allclose(att.sum(-1), torch.ones(3), atol=1e-5)


def test_knowledge_and_period_change_the_encoding_only_when_switched_on():
    torch.manual_seed(0)
    full = KLVCG(tiny()).eval()
    b1, b2 = batch(2), batch(2, seed=7)
    b2 = replace(b1, knowledge=b2.knowledge)
    assert not torch.allclose(full.encode(b1).memory, full.encode(b2).memory)
    no_kg = KLVCG(tiny(use_kg=False)).eval()
    assert torch.allclose(no_kg.encode(b1).memory, no_kg.encode(b2).memory)
    other_period = replace(b1, period=(b1.period + 1) % 5)
    assert not torch.allclose(full.encode(b1).memory, full.encode(other_period).memory)
    no_period = KLVCG(tiny(use_period=False)).eval()
    assert torch.allclose(no_period.encode(b1).memory, no_period.encode(other_period).memory)


def test_subtitles_transcripts_and_likes_do_not_change_klvcg():
    """They are in the batch for other backbones (TTE, the engaging model): KLVCG, with or
    without its copy path, reads none of them."""
    torch.manual_seed(0)
    for model in (KLVCG(tiny()).eval(), KLVCG(tiny(copy=True)).eval()):
        b = copy_batch(2)
        other = replace(
            b,
            subtitle=torch.full_like(b.subtitle, PAD),
            transcript=b.transcript.flip(1),
            context_likes=torch.zeros_like(b.context_likes),
            has_likes=~b.has_likes,
        )
        cands = targets(6).reshape(2, 3, -1)
        assert torch.equal(model.encode(b).memory, model.encode(other).memory)
        assert torch.equal(
            model.score(model.encode(b), cands), model.score(model.encode(other), cands)
        )


def test_dropping_facts_at_encode_time_equals_an_empty_knowledge_input():
    torch.manual_seed(0)
    model = KLVCG(tiny()).eval()
    b = batch(2)
    empty = b.knowledge.clone()
    empty[:, 1:] = PAD
    assert torch.allclose(
        model.encode(b, use_kg=False).memory,
        model.encode(replace(b, knowledge=empty)).memory,
        atol=1e-6,
    )


def test_decoder_is_causal_in_fine_tuning():
    torch.manual_seed(0)
    model = KLVCG(tiny()).eval()
    enc = model.encode(batch(1))
    t = targets(1, length=8)
    t[0, :7] = torch.tensor([BOS, 7, 8, 9, 10, 11, EOS])
    changed = t.clone()
    changed[0, 4] = 20
    a, b = model.decode(enc, t[:, :-1]), model.decode(enc, changed[:, :-1])
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5)
    assert not torch.allclose(a[:, 4:6], b[:, 4:6])


def test_score_is_the_mean_token_cross_entropy_of_each_candidate():
    torch.manual_seed(0)
    model = KLVCG(tiny()).eval()
    b = batch(2)
    with torch.no_grad():
        enc = model.encode(b)
    cands = torch.stack([targets(5, seed=s) for s in (3, 4)])  # (2, 5, 8)
    scores = model.score(enc, cands, rows=3)  # several length-sorted chunks
    for i in range(2):
        for j in range(5):
            c = trim(cands[i, j : j + 1], least=2)
            logits = model.decode(enc.select(torch.tensor([i])), c[:, :-1])
            n = int(c[0, 1:].ne(PAD).sum())
            expect = F.cross_entropy(logits[0, :n], c[0, 1 : n + 1])
            assert math.isclose(float(scores[i, j]), expect.item(), rel_tol=1e-4)


def test_generation_loss_ignores_padding():
    torch.manual_seed(0)
    model = KLVCG(tiny()).eval()
    enc = model.encode(batch(1))
    t = targets(1)
    padded = torch.cat([t, torch.full((1, 4), PAD)], dim=1)[:, :8]
    assert torch.allclose(model.generation_loss(enc, t), model.generation_loss(enc, padded))


def test_beam_search_finishes_non_empty_comments_within_g_best_first():
    torch.manual_seed(0)
    model = KLVCG(tiny()).eval()
    enc = model.encode(batch(1))
    hyps = model.generate(enc, beam=5, banned=(MASK, CLS))
    assert 1 <= len(hyps) <= 5
    scores = [s for _, s in hyps]
    assert scores == sorted(scores, reverse=True)
    for words, _ in hyps:
        assert 1 <= len(words) <= 8 - 2
        assert not {PAD, BOS, EOS, MASK, CLS} & set(words)


def test_beam_of_one_is_greedy_decoding():
    torch.manual_seed(0)
    model = KLVCG(tiny()).eval()
    enc = model.encode(batch(1))
    [(words, _)] = model.generate(enc, beam=1)
    seq = [BOS]
    for step in range(1, 8):
        logits = model.decode(enc, torch.tensor([seq]))[0, -1]
        logits[[PAD, BOS]] = -math.inf
        if step == 1:
            logits[EOS] = -math.inf
        nxt = EOS if step == 7 else int(logits.argmax())
        if nxt == EOS:
            break
        seq.append(nxt)
    assert words == seq[1:]


def test_masking_follows_30_percent_and_80_10_10():
    g = torch.Generator().manual_seed(0)
    t = torch.full((4000, 20), PAD)
    t[:, 0], t[:, 1:19], t[:, 19] = BOS, torch.randint(5, 30, (4000, 18), generator=g), EOS
    masked, labels = mask_targets(t, MASK, 38, 0.3, g)
    chosen = labels.ne(PAD)
    assert not chosen[:, 0].any() and not chosen[:, 19].any()  # never <BOS>/<EOS>
    assert chosen.any(dim=1).all()
    assert abs(chosen[:, 1:19].float().mean().item() - 0.3) < 0.01
    assert torch.equal(labels[chosen], t[chosen])
    as_mask = (masked[chosen] == MASK).float().mean().item()
    kept = (masked[chosen] == t[chosen]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.02 and 0.09 < kept < 0.13  # 10 % + random draws of itself
    assert torch.equal(masked[~chosen], t[~chosen])
    one_word = torch.tensor([[BOS, 9, EOS, PAD]])
    _, lab = mask_targets(one_word, MASK, 38, 0.3, g)
    assert lab.tolist() == [[PAD, 9, PAD, PAD]]  # at least one word per comment


def test_warmup_then_linear_decay():
    lrs = [warmup_linear(s, 100, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(1 / 90)


def test_ablation_rows_add_one_component_each():
    rows = [ablation_switches(name) for name in ("basic", "+mlm", "+kg", "+ac", "+period", "+copy")]
    on = [sum(r.values()) for r in rows]
    assert on == [0, 1, 2, 3, 4, 5]
    assert canonical_ablation("full") == "+period"
    with pytest.raises(ValueError, match="unknown ablation"):
        canonical_ablation("+mlp")
    model, train = make_configs("paper", "+kg", vocab_size=100, frame_dim=8)
    assert (model.d_model, model.modality_heads, model.cross_heads, model.decoder_heads) == (
        384,
        6,
        12,
        12,
    )
    assert (model.modality_layers, model.cross_layers, model.decoder_layers) == (2, 2, 1)
    assert (model.max_len, model.radius, train.lr, train.mask_prob) == (20, 5, 1e-4, 0.3)
    assert model.use_kg and not model.use_ac and not model.use_period


def test_knowledge_encoder_lets_the_model_use_recalled_facts():
    """A task only the facts can solve: the comment is the one fact word. With its knowledge
    encoder the model learns it; without it, it ranks no better than chance."""

    def data(n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        word = torch.randint(5, 15, (n,), generator=g)
        k = torch.full((n, 13), PAD)
        k[:, 0], k[:, 1] = CLS, word
        t = torch.full((n, 8), PAD)
        t[:, 0], t[:, 1], t[:, 2] = BOS, word, EOS
        return batch(n, seed, knowledge=k), t, word

    def mrr(use_kg: bool) -> float:
        torch.manual_seed(0)
        model = KLVCG(tiny(use_kg=use_kg, use_ac=False))
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for step in range(120):
            b, t, _ = data(32, step)
            loss = model.generation_loss(model.encode(b), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        b, _, word = data(64, 10_000)
        cands = torch.full((64, 10, 8), PAD)
        cands[:, :, 0], cands[:, :, 1], cands[:, :, 2] = BOS, torch.arange(5, 15), EOS
        scores = model.score(model.encode(b), cands).numpy()
        truth = (torch.arange(5, 15)[None, :] == word[:, None]).numpy()
        ranks = 1 + ((scores <= scores[truth][:, None]) & ~truth).sum(1)
        return float(np.mean(1 / ranks))

    with_kg, without = mrr(True), mrr(False)
    assert with_kg > 0.7
    assert without < 0.45  # chance is 0.29 for 10 candidates


def test_incremental_decoding_gives_the_full_decoders_logits():
    torch.manual_seed(0)
    model = KLVCG(tiny(decoder_layers=2)).eval()
    with torch.no_grad():
        enc = model.encode(batch(1))
        seqs = torch.tensor([[BOS, 7, 9, 11, 13, 6], [BOS, 8, 8, 20, 5, 30]])
        stepper = StepDecoder(model, enc)
        for n in range(1, seqs.shape[1] + 1):
            full = model.decode(enc.repeat(2), seqs[:, :n])[:, -1]
            assert torch.allclose(model.out(stepper.step(seqs[:, n - 1])[0]), full, atol=1e-4)
        stepper.reorder(torch.tensor([1, 1]))  # both hypotheses now continue the second
        nxt = torch.tensor([3, 4])
        full = model.decode(enc.repeat(2), torch.cat([seqs[[1, 1]], nxt[:, None]], 1))[:, -1]
        assert torch.allclose(model.out(stepper.step(nxt)[0]), full, atol=1e-4)


#: The submodules in the order their parameters had in the code that named them by their old
#: names (:data:`model.backbones.klvcg.OLD_NAMES`): a saved optimiser state numbers parameters so.
OLD_ORDER = [
    "missing_frame",
    "embed",
    "frame_proj",
    "frame_pos",
    "word_pos",
    "step_pos",
    "target_pos",
    "visual",
    "timestep",
    "timespan",
    "knowledge",
    "token_type",
    "period",
    "cross",
    "decoder",
    "norm_in",
    "fact_index",
    "fact_part",
    "source_part",
    "pointer",
]


def with_old_names(state: dict) -> dict:
    """``state`` as the code before the paper's submodule names saved it."""
    new_to_old = {new: old for old, new in OLD_NAMES.items()}
    out = {}
    for key, value in state.items():
        name, dot, rest = key.partition(".")
        out[f"{new_to_old.get(name, name)}{dot}{rest}"] = value
    return out


def copy_batch(b: int) -> Batch:
    """:func:`batch` with a copy path's source: the knowledge row, then the context rows."""
    x = batch(b)
    return replace(x, source_ext=torch.cat([x.knowledge, x.rows[:, :10].reshape(b, -1)], 1))


def test_parameters_keep_the_order_of_the_old_names():
    new_to_old = {new: old for old, new in OLD_NAMES.items()}
    order = []
    for name, _ in KLVCG(tiny(copy=True)).named_parameters():
        head = new_to_old.get(name.split(".")[0], name.split(".")[0])
        if head not in order:
            order.append(head)
    assert order == OLD_ORDER


def test_weights_saved_with_the_old_submodule_names_still_load(tmp_path):
    torch.manual_seed(0)
    saved = KLVCG(tiny(copy=True)).eval()
    old = with_old_names(saved.state_dict())
    assert "visual.layers.0.linear1.weight" in old and "period.weight" in old
    torch.save(old, tmp_path / "old.pt")
    torch.manual_seed(1)
    model = KLVCG(tiny(copy=True)).eval()
    state = torch.load(tmp_path / "old.pt", weights_only=True)
    model.load_state_dict(state)  # strict
    assert "visual.layers.0.linear1.weight" in state  # the caller's dict is left as it was
    for key, value in saved.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    b = copy_batch(2)
    assert torch.equal(model.encode(b).memory, saved.encode(b).memory)
    no_kg = KLVCG(tiny(use_kg=False, use_period=False))  # an ablation without some of them
    no_kg.load_state_dict(with_old_names(no_kg.state_dict()))


def test_a_training_state_saved_with_the_old_names_resumes(tmp_path):
    """The trainer's ``state.pt``: the weights by name, the optimiser state by parameter
    index (both groups as :meth:`model.trainer.Trainer._optimizer` makes them)."""

    def optimizer(model):
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay}]
        return torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.0)

    torch.manual_seed(0)
    before = KLVCG(tiny(copy=True))
    opt = optimizer(before)
    before.generation_loss(before.encode(copy_batch(2)), targets(2)).backward()
    opt.step()
    torch.save(
        {"model_state": with_old_names(before.state_dict()), "optim_state": opt.state_dict()},
        tmp_path / "state.pt",
    )
    saved = torch.load(tmp_path / "state.pt", weights_only=True)
    torch.manual_seed(1)
    after = KLVCG(tiny(copy=True))
    after.load_state_dict(saved["model_state"])
    resumed = optimizer(after)
    resumed.load_state_dict(saved["optim_state"])
    for p, q in zip(before.parameters(), after.parameters(), strict=True):
        assert torch.equal(opt.state[p]["exp_avg"], resumed.state[q]["exp_avg"])
