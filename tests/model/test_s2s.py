"""LiveBot's sequence-to-sequence baselines (:mod:`model.backbones.s2s`): the input switches
really switch (the rest of the interface is the backbone contract suite's), the one ablation
row, and the presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.backbones import backbone_class, build_backbone
from tests.model.test_backbone_contract import N, candidates, configs, synthetic


def scores(name: str, change: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores of an untrained model on the synthetic split, and with ``change`` ("rows":
    the comments, "frames") replaced by other random values."""
    torch.manual_seed(0)
    model = build_backbone(configs(name, None)[0]).eval()
    data, other = synthetic(0), synthetic(1)
    ids, _ = candidates(data, model)
    space = data.space(model.cfg)
    out = []
    with torch.no_grad():
        for split in (data, other):
            batch = data.batch(np.arange(N), space=space)
            changed = split.batch(np.arange(N), space=space)
            batch = type(batch)(**{**batch.__dict__, change: getattr(changed, change)})
            out.append(model.score(model.encode(batch), ids)[:, :N])
    return out[0], out[1]


@pytest.mark.parametrize(
    "name,change,reads",
    [
        ("s2s_i", "rows", False),
        ("s2s_i", "frames", True),
        ("s2s_c", "frames", False),
        ("s2s_c", "rows", True),
        ("s2s_ic", "frames", True),
        ("s2s_ic", "rows", True),
    ],
)
def test_each_baseline_reads_only_its_inputs(name, change, reads):
    before, after = scores(name, change)
    assert torch.equal(before, after) is not reads


@pytest.mark.parametrize("name", ["s2s_i", "s2s_c", "s2s_ic"])
def test_one_default_row_and_both_presets(name):
    cls = backbone_class(name)
    model_cfg, train_cfg = cls.configure("cpu", None, 40, 6)
    assert train_cfg.ablation == "default" == cls.canonical_ablation("default")
    assert model_cfg.name == name and not model_cfg.copy
    paper, paper_train = cls.configure("paper", "default", 40, 6, lr=1e-3)
    assert (paper.embed_dim, paper.hidden, paper_train.batch_size) == (512, 512, 64)
    assert paper_train.lr == 1e-3  # an override wins over the preset
    assert type(paper).from_dict(paper.to_dict()) == paper
    with pytest.raises(ValueError, match="no ablation 'full'"):
        cls.configure("cpu", "full", 40, 6)
    with pytest.raises(ValueError, match="unknown preset"):
        cls.configure("gpu", None, 40, 6)
    assert build_backbone(paper).stages(paper_train)[-1].name == "finetune"
