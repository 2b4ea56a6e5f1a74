"""Every backbone as a Hugging Face ``transformers`` model, so a checkpoint is a folder in the
layout the ecosystem shares models in: ``config.json`` + ``model.safetensors``, written by
``save_pretrained`` and read offline by ``from_pretrained(folder)`` (or ``AutoModel``).

Each registered backbone gets its own pair of classes, made here from the registry
(:mod:`model.backbones`): a :class:`DanmakuConfig` subclass whose ``model_type`` is
``danmaku_<name>``, holding the backbone's config (``model``, its ``to_dict``) and the
project's record (training config, vocabulary fingerprint, data record, dev metrics, a digest
of the weights); and a :class:`DanmakuModel` subclass whose one submodule, ``backbone``, is
the backbone itself (so every weight is saved as ``backbone.<name>``). Both are registered
with ``AutoConfig`` / ``AutoModel``.

Two things ``from_pretrained`` does not do for a module it did not write, done here: weights
that one module shares with another (KLVCG ties its output layer to its word embedding) are
declared from the module's own sharing, so they are saved once and tied again on loading;
and buffers outside the state dict (attention masks, position tables: values the backbone
computes from its config) are built on a meta device and never filled, so they are copied
from a freshly built backbone after loading.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import ClassVar

import torch
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

from model.backbones import (
    BACKBONES,
    LEGACY_BACKBONE,
    Backbone,
    backbone_class,
    build_backbone,
    config_from_dict,
)

SAFETENSORS = "model.safetensors"
CONFIG = "config.json"


class DanmakuConfig(PretrainedConfig):
    """A backbone's config (``model``) and the project's record of how it was trained."""

    model_type = "danmaku"
    backbone_name: ClassVar[str] = LEGACY_BACKBONE

    backbone: str | None = None  # the registry name, for readers that do not know the class
    model: dict | None = None  # the backbone's config (its ``to_dict``)
    train: dict | None = None  # model.config.TrainConfig
    vocab_fingerprint: str | None = None
    data: dict | None = None  # the corpus and encoding it was trained on
    dev: dict | None = None  # the dev metrics the weights were selected on
    weights_digest: str | None = None  # model.checkpoint.weights_digest of the backbone

    def __post_init__(self, **kwargs) -> None:
        self.backbone = self.backbone_name
        super().__post_init__(**kwargs)


class DanmakuModel(PreTrainedModel):
    """A backbone inside a ``PreTrainedModel`` (its only submodule, ``backbone``)."""

    config_class = DanmakuConfig
    base_model_prefix = "backbone"

    def __init__(self, config: DanmakuConfig) -> None:
        super().__init__(config)
        self.backbone: Backbone = build_backbone(config_from_dict(config.backbone, config.model))
        self._tied_weights_keys = shared_parameters(self)
        config.tie_word_embeddings = bool(self._tied_weights_keys)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Nothing: a new model keeps its backbone's own initialisation, and a loaded one
        has every weight from the file (a missing one is refused by :func:`load_pretrained`)."""

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        model = super().from_pretrained(*args, **kwargs)
        loaded = model[0] if isinstance(model, tuple) else model  # output_loading_info=True
        fresh = build_backbone(loaded.backbone.cfg)
        saved = set(fresh.state_dict())
        for name, buffer in fresh.named_buffers():
            if name not in saved:  # computed from the config: not in the file
                owner, _, attr = name.rpartition(".")
                module = loaded.backbone.get_submodule(owner) if owner else loaded.backbone
                module._buffers[attr] = buffer.to(loaded.device)
        return model

    def forward(self, *args, **kwargs):
        raise NotImplementedError("use the backbone's encode, loss, score and generate")


def shared_parameters(module: torch.nn.Module) -> dict[str, str]:
    """{name: the first name of the same parameter} for every parameter seen twice."""
    first: dict[int, str] = {}
    tied: dict[str, str] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        if id(p) in first:
            tied[name] = first[id(p)]
        else:
            first[id(p)] = name
    return tied


@functools.cache
def pretrained_classes(name: str) -> tuple[type[DanmakuConfig], type[DanmakuModel]]:
    """The config and model classes of the backbone ``name``, registered with the Auto classes;
    ValueError for a name the registry does not have."""
    backbone_class(name)
    title = "".join(part.capitalize() for part in name.split("_"))
    config_cls = type(
        f"{title}Config",
        (DanmakuConfig,),
        {"model_type": f"danmaku_{name}", "backbone_name": name, "__module__": __name__},
    )
    model_cls = type(
        f"{title}Model", (DanmakuModel,), {"config_class": config_cls, "__module__": __name__}
    )
    AutoConfig.register(config_cls.model_type, config_cls)
    AutoModel.register(config_cls, model_cls)
    return config_cls, model_cls


for _name in BACKBONES:
    pretrained_classes(_name)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """transformers' loading reports and progress bars off (our CLIs print their own)."""
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
