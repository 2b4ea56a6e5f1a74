"""The backbone contract (docs/architecture.md, section "Model"): every registered backbone, on
a tiny configuration and a synthetic split, used only through :class:`model.backbones.Backbone`
as the trainer, ranking, generation and checkpoints use it: shapes, a finite loss with
gradients in each of its stages, one batch overfitted in a few dozen steps, the memorised
comment ranked first, beam search that ends within g words, and a checkpoint that loads
through the registry and scores the same."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from model.backbones import (
    BACKBONES,
    Backbone,
    TrainingBatch,
    backbone_class,
    build_backbone,
    register,
)
from model.checkpoint import build_model, load_checkpoint, save_checkpoint
from model.config import TrainConfig
from model.data.vocab import BOS, EOS, PAD, SPECIALS, Vocab
from model.encoded_split import Encoded
from model.generator import banned_ids
from model.word_ids import PART_HEAD, PART_RELATION, PART_VALUE

CORPUS, FRAME, G = 30, 6, 8  # corpus words (0-4 specials; 30 [MASK], 31 [CLS]), frame size, g
CLS = CORPUS + 1
N = 4  # samples of the synthetic split: one batch

#: Each backbone's sizes for the suite (over its ``cpu`` preset), and the configurations run.
TINY = {
    "fusional_rnn": dict(embed_dim=16, hidden=32, max_step_len=8, max_len=G),
    "klvcg": dict(
        d_model=24,
        modality_heads=2,
        knowledge_heads=2,
        cross_heads=4,
        decoder_heads=4,
        ffn_factor=2,
        dropout=0.0,
        max_step_len=8,
        max_knowledge_len=12,
        max_len=G,
    ),
    "engaging": dict(
        d_model=16,
        heads=2,
        encoder_layers=1,
        decoder_layers=1,
        d_ff=32,
        dropout=0.0,
        max_step_len=8,
        max_len=G,
    ),
    "livebot_transformer": dict(
        d_model=24, heads=4, layers=2, d_ff=48, dropout=0.0, max_step_len=8, max_len=G
    ),
    "mmlcg": dict(d_model=24, heads=4, layers=1, d_ff=48, dropout=0.0, max_step_len=8, max_len=G),
    **{
        name: dict(embed_dim=16, hidden=24, max_step_len=8, max_knowledge_len=12, max_len=G)
        for name in ("s2s_i", "s2s_c", "s2s_ic")
    },
    "tte": dict(d_model=16, heads=2, layers=1, d_ff=32, dropout=0.0, max_step_len=8, max_len=G),
    "sfat": dict(
        d_model=24,
        joint_dim=16,
        heads=4,
        text_layers=1,
        fusion_layers=1,
        decoder_layers=1,
        d_ff=48,
        max_step_len=8,
        max_len=G,
    ),
}
ROWS = {"klvcg": ("+copy", "full", "basic")}  # the default, the paper's full model, one stage
CASES = [(name, row) for name in sorted(BACKBONES) for row in ROWS.get(name, (None,))]


def configs(name: str, row: str | None):
    model_cfg, train_cfg = backbone_class(name).configure("cpu", row, CORPUS + 2, FRAME)
    return replace(model_cfg, **TINY.get(name, {})), train_cfg


def synthetic(seed: int = 0) -> Encoded:
    """N samples: random frames (the first second missing), context rows of three random
    words, one fact ``[CLS] head relation value``, and one ground truth of 2-4 words that no
    other sample has."""
    rng = np.random.default_rng(seed)
    rows = np.full((N, 11, 8), PAD, dtype=np.int32)
    rows[:, :, 0] = CLS
    rows[:, :, 1:4] = rng.integers(5, CORPUS, (N, 11, 3))
    rows[:, 4, 1:] = PAD  # a second nobody commented at
    knowledge = np.full((N, 13), PAD, dtype=np.int32)
    knowledge[:, 0] = CLS
    knowledge[:, 1:4] = rng.integers(5, CORPUS, (N, 3))
    fact_of = np.full(knowledge.shape, -1, dtype=np.int16)
    fact_of[:, 1:4] = 0
    part = np.zeros(knowledge.shape, dtype=np.int8)
    part[:, 1:4] = [PART_HEAD, PART_RELATION, PART_VALUE]
    targets = np.full((N, G), PAD, dtype=np.int32)
    words = rng.permutation(np.arange(5, CORPUS))
    for i in range(N):
        n = 2 + i % 3
        targets[i, : n + 2] = [BOS, *words[4 * i : 4 * i + n], EOS]
    mask = np.ones((N, 11), dtype=bool)
    mask[:, 0] = False
    return Encoded(
        video=[f"v{i}" for i in range(N)],
        t=np.zeros(N, dtype=np.int32),
        frames=rng.standard_normal((N, 11, FRAME)).astype(np.float32),
        frame_mask=mask,
        rows=rows,
        knowledge=knowledge,
        fact_of=fact_of,
        fact_part=part,
        period=np.arange(N, dtype=np.int64) % 5,
        knowledge_target=np.ones(N, dtype=bool),
        targets=targets,
        target_sample=np.arange(N, dtype=np.int32),
        facts=[[] for _ in range(N)],
        ac=[[] for _ in range(N)],
        corpus_words=CORPUS,
    )


def stage_loss(
    model: Backbone, data: Encoded, train_cfg: TrainConfig, stage, seed: int = 0
) -> torch.Tensor:
    """The loss of ``stage`` on the whole split, built as the trainer builds it."""
    space, idx = data.space(model.cfg), np.arange(N)
    memory = model.encode(data.batch(idx, space=space), use_kg=stage.use_kg)
    truths = TrainingBatch.of(data, idx, space, train_cfg, torch.Generator().manual_seed(seed))
    memory = memory.select(torch.as_tensor(truths.owner, dtype=torch.long))
    return model.loss(memory, truths, stage.name)


def candidates(data: Encoded, model: Backbone) -> tuple[torch.Tensor, np.ndarray]:
    """Each sample's candidate set in the model's ids (every sample's ground truth, then an
    all-padding row), and where its own ground truth is."""
    space = data.space(model.cfg)
    cands = np.full((N, N + 1, G), PAD, dtype=np.int64)
    cands[:, :N] = data.targets[None]
    source = data.source(np.arange(N))[:, None, :] if space.copy else None
    ids = torch.as_tensor(space.target_ext(cands, source), dtype=torch.long)
    return ids, np.arange(N)


def overfitted(name: str, row: str | None, steps: int = 40) -> tuple[Backbone, list[float]]:
    """A fresh model trained on the split's one batch with its last stage's loss."""
    torch.manual_seed(0)
    model_cfg, train_cfg = configs(name, row)
    model = build_backbone(model_cfg)
    data, last = synthetic(), model.stages(train_cfg)[-1]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = stage_loss(model, data, train_cfg, last)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), losses


@pytest.fixture(scope="module", params=CASES, ids=[f"{n}[{r}]" for n, r in CASES])
def trained(request):
    name, row = request.param
    model, losses = overfitted(name, row)
    return name, row, model, losses


def test_every_registered_backbone_has_a_tiny_configuration_here():
    assert set(TINY) == set(BACKBONES)


@pytest.mark.parametrize("name,row", CASES)
def test_each_stage_gives_a_finite_loss_and_gradients(name, row):
    torch.manual_seed(0)
    model_cfg, train_cfg = configs(name, row)
    model = build_backbone(model_cfg).train()
    assert type(model) is BACKBONES[name] and model.cfg.name == name
    stages = model.stages(train_cfg)
    assert stages and stages[-1].name == "finetune"
    assert len({s.name for s in stages}) == len(stages)
    reached = set()
    for stage in stages:
        model.zero_grad(set_to_none=True)
        loss = stage_loss(model, synthetic(), train_cfg, stage)
        assert loss.shape == () and torch.isfinite(loss), stage.name
        loss.backward()
        for pname, p in model.named_parameters():
            if p.grad is not None:
                assert torch.isfinite(p.grad).all(), (stage.name, pname)
                if p.grad.abs().sum() > 0:
                    reached.add(pname)
    # the gradient reaches (nearly) every part of the model in some stage
    assert len(reached) >= 0.8 * len(list(model.parameters()))


@pytest.mark.parametrize("name,row", CASES)
def test_memory_is_selected_per_sample_and_scores_have_the_sets_shape(name, row):
    torch.manual_seed(0)
    model = build_backbone(configs(name, row)[0]).eval()
    data = synthetic()
    ids, _ = candidates(data, model)
    with torch.no_grad():
        memory = model.encode(data.batch(np.arange(N), space=data.space(model.cfg)))
        scores = model.score(memory, ids)
        idx = torch.tensor([2, 2, 0])
        picked = model.score(memory.select(idx), ids[idx])
    assert scores.shape == (N, N + 1)
    assert torch.isfinite(scores[:, :N]).all() and torch.isinf(scores[:, N]).all()
    assert torch.allclose(picked, scores[idx], atol=1e-5)


def test_one_batch_is_overfitted_in_a_few_dozen_steps(trained):
    _, _, _, losses = trained
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.1 * losses[0], losses


def test_the_memorised_comment_ranks_first(trained):
    _, _, model, _ = trained
    data = synthetic()
    ids, truth = candidates(data, model)
    with torch.no_grad():
        memory = model.encode(data.batch(np.arange(N), space=data.space(model.cfg)))
        scores = model.score(memory, ids).numpy()
    own = scores[np.arange(N), truth]
    others = np.where(np.arange(N + 1)[None, :] == truth[:, None], np.inf, scores)
    assert (own < others.min(axis=1)).all(), scores


def test_generation_ends_within_g_words_best_first(trained):
    _, _, model, _ = trained
    data = synthetic()
    space = data.space(model.cfg)
    with torch.no_grad():
        memory = model.encode(data.batch(np.arange(N), space=space))
        for i in range(N):
            hyps = model.generate(memory.select(torch.tensor([i])), 3, banned_ids(space))
            assert 1 <= len(hyps) <= 3
            assert [s for _, s in hyps] == sorted((s for _, s in hyps), reverse=True)
            for ids, score in hyps:
                assert 1 <= len(ids) <= G - 2 and np.isfinite(score)
                assert not {PAD, BOS, EOS, *banned_ids(space)} & set(ids)


def test_a_checkpoint_loads_through_the_registry_and_scores_the_same(trained, tmp_path):
    name, row, model, _ = trained
    model_cfg, train_cfg = configs(name, row)
    vocab = Vocab([*SPECIALS, *(f"w{i}" for i in range(len(SPECIALS), CORPUS))])
    save_checkpoint(tmp_path, model, model_cfg, train_cfg, vocab, {"format": "demo"}, {})
    assert json.loads((tmp_path / "config.json").read_text())["backbone"] == name
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.model_config == model_cfg and ckpt.train_config == train_cfg
    loaded = build_model(ckpt, torch.device("cpu"))
    assert type(loaded) is BACKBONES[name] and not loaded.training
    data = synthetic()
    ids, _ = candidates(data, model)
    batch = data.batch(np.arange(N), space=data.space(model.cfg))
    with torch.no_grad():
        assert torch.equal(
            loaded.score(loaded.encode(batch), ids), model.score(model.encode(batch), ids)
        )


def test_a_name_is_registered_once_and_names_its_config():
    klvcg = BACKBONES["klvcg"]
    with pytest.raises(ValueError, match="registered twice"):
        register("klvcg")(klvcg)
    with pytest.raises(ValueError, match="its config is named 'klvcg'"):
        register("other")(klvcg)
    assert "other" not in BACKBONES
    with pytest.raises(ValueError, match="unknown backbone 'nope'"):
        backbone_class("nope")
