"""The comment-generation backbones, by name: the interface and the registry are in
:mod:`model.backbones.base`; each backbone's module is imported here by name, which registers
it (nothing is found by scanning folders).

- ``engaging`` (:mod:`model.backbones.engaging`): the iQIYI paper's engaging-comment model
  trained with like counts (competitive context pairs, semantic gap contrastive losses); its
  rows are the paper's table 4 losses (``isg``, ``jsg1``, ``jsg2``, ``mle``).
- ``fusional_rnn`` (:mod:`model.backbones.fusional_rnn`): LiveBot's Fusional RNN (Ma et al.
  2019): frame LSTM, word- and sentence-level comment LSTMs attending to the video, and an
  LSTM decoder attending to both; no knowledge.
- ``klvcg`` (:mod:`model.backbones.klvcg`): KLVCG (Chen et al. 2023), its table IV ablation
  rows and our copy path.
- ``livebot_transformer`` (:mod:`model.backbones.livebot_transformer`): LiveBot's Unified
  Transformer (Ma et al. 2019): video encoder, text encoder, comment decoder; no knowledge.
- ``mmlcg`` (:mod:`model.backbones.mmlcg`): VideoIC's MML-CG (Wang et al. 2020): a
  multimodal (video x comments co-attention) transformer encoder, a transformer decoder, and
  an auxiliary time-prediction task; no knowledge.
- ``s2s_i``, ``s2s_c``, ``s2s_ic`` (:mod:`model.backbones.s2s`): LiveBot's sequence-to-sequence
  baselines (Ma et al. 2019) on the video only, the comments only, and both.
- ``sfat`` (:mod:`model.backbones.sfat`): SFAT (Fatima et al. 2025): frames weighted by their
  similarity to the chat context and summed, a multimodal encoder, a decoder attending to
  the text, then the video; no knowledge.
- ``tte`` (:mod:`model.backbones.tte`): LiveChat's triple transformer encoder (arXiv
  2311.12826): video, audio-transcript and comment encoders, a decoder attending to each; one
  random ground truth per sample and step; no knowledge.
"""

from model.backbones import (
    engaging,  # noqa: F401  (registers "engaging")
    fusional_rnn,  # noqa: F401  (registers "fusional_rnn")
    klvcg,  # noqa: F401  (registers "klvcg")
    livebot_transformer,  # noqa: F401  (registers "livebot_transformer")
    mmlcg,  # noqa: F401  (registers "mmlcg")
    s2s,  # noqa: F401  (registers "s2s_i", "s2s_c", "s2s_ic")
    sfat,  # noqa: F401  (registers "sfat")
    tte,  # noqa: F401  (registers "tte")
)
from model.backbones.base import (
    BACKBONES,
    FINETUNE,
    LEGACY_BACKBONE,
    PRETRAIN,
    Backbone,
    BackboneConfig,
    Memory,
    Stage,
    TrainingBatch,
    backbone_class,
    build_backbone,
    config_from_dict,
    describe_rows,
    register,
)

DEFAULT_BACKBONE = "klvcg"

__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "FINETUNE",
    "LEGACY_BACKBONE",
    "PRETRAIN",
    "Backbone",
    "BackboneConfig",
    "Memory",
    "Stage",
    "TrainingBatch",
    "backbone_class",
    "build_backbone",
    "config_from_dict",
    "describe_rows",
    "register",
]
