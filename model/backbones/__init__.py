"""The comment-generation backbones, by name: the interface and the registry are in
:mod:`model.backbones.base`; each backbone's module is imported here by name, which registers
it (nothing is found by scanning folders).

- ``engaging`` (:mod:`model.backbones.engaging`): the iQIYI paper's engaging-comment model
  trained with like counts (competitive context pairs, semantic gap contrastive losses); its
  rows are the paper's table 4 losses (``isg``, ``jsg1``, ``jsg2``, ``mle``).
- ``klvcg`` (:mod:`model.backbones.klvcg`): KLVCG (Chen et al. 2023), its table IV ablation
  rows and our copy path.
- ``livebot_transformer`` (:mod:`model.backbones.livebot_transformer`): LiveBot's Unified
  Transformer (Ma et al. 2019): video encoder, text encoder, comment decoder; no knowledge.
- ``s2s_i``, ``s2s_c``, ``s2s_ic`` (:mod:`model.backbones.s2s`): LiveBot's sequence-to-sequence
  baselines (Ma et al. 2019) on the video only, the comments only, and both.
"""

from model.backbones import (
    engaging,  # noqa: F401  (registers "engaging")
    klvcg,  # noqa: F401  (registers "klvcg")
    livebot_transformer,  # noqa: F401  (registers "livebot_transformer")
    s2s,  # noqa: F401  (registers "s2s_i", "s2s_c", "s2s_ic")
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
    "register",
]
