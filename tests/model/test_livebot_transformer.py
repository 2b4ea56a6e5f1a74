"""LiveBot's Unified Transformer (model/backbones/livebot_transformer.py): what it reads of a
window and its one ablation row; the contract suite covers the rest."""

from __future__ import annotations

import pytest

from model import train
from model.backbones import backbone_class, build_backbone
from model.backbones.livebot_transformer import nearest_seconds


def test_it_reads_the_five_frames_and_the_five_comment_seconds_nearest_t():
    cfg, _ = backbone_class("livebot_transformer").configure("cpu", None, 40, 6)
    model = build_backbone(cfg)
    assert model.frame_idx.tolist() == [3, 4, 5, 6, 7]  # t-2..t+2 of [t-5, t+5]
    # rows: t-5..t-1 (0-4), t+1..t+5 (5-9): t-3, t-2, t-1, t+1, t+2
    assert model.row_idx.tolist() == [2, 3, 4, 5, 6] == nearest_seconds(5, 5)
    assert nearest_seconds(2, 4) == [0, 1, 2, 3]


def test_presets_and_its_one_row():
    cls = backbone_class("livebot_transformer")
    paper, paper_train = cls.configure("paper", None, 40, 6)
    assert (paper.d_model, paper.layers, paper.heads, paper.d_ff) == (512, 6, 8, 2048)
    assert (paper_train.batch_size, paper_train.lr) == (64, 3e-4)
    cpu, cpu_train = cls.configure("cpu", "unified", 40, 6, max_steps=3)
    assert cpu.d_model < paper.d_model and cpu_train.max_steps == 3
    assert cpu_train.ablation == "unified" == cls.canonical_ablation(None)
    with pytest.raises(ValueError, match="no ablation '\\+copy'"):
        cls.configure("cpu", "+copy", 40, 6)
    with pytest.raises(ValueError, match="unknown preset"):
        cls.configure("big", None, 40, 6)


def test_the_cli_refuses_a_row_it_does_not_have_in_one_line(capsys):
    assert train.parse_args(["--backbone", "livebot_transformer"]).ablation is None
    with pytest.raises(SystemExit) as e:
        train.parse_args(["--backbone", "livebot_transformer", "--ablation", "basic"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and "has no ablation 'basic'" in err[-1]
