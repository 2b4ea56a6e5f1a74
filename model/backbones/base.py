"""The backbone interface, and the registry that names the backbones.

Design: docs/architecture.md, section "Model"; DESIGN.md §5 (one file per backbone, one
interface). A backbone is a comment-generation model: the trainer, ranking, evaluation,
generation, checkpoints and the API use it only through :class:`Backbone`:

- a frozen config dataclass (:class:`BackboneConfig`) with the backbone's ``name``, saved in
  every checkpoint and given back to build the same model;
- ``stages(train)``: its training stages in order (KLVCG: MLM pre-training, then
  fine-tuning; a one-stage backbone: fine-tuning only, the default), each with its epochs,
  learning rate and whether its contexts carry the recalled facts. The last stage,
  :data:`FINETUNE`, is the one the checkpoint is selected in (dev MRR);
- ``encode(batch) -> memory``: the memory of a batch of contexts
  (:class:`model.encoded_split.Batch`), selectable per sample (:meth:`Memory.select`), so a
  context is encoded once however many comments are trained on or scored against it;
- ``loss(memory, batch, stage)``: the loss of a stage for the ground truths in
  :class:`TrainingBatch` (one row of ``memory`` each);
- ``score(memory, candidates) -> (B, C)``: lower is better (the ranking protocol);
- ``generate(memory, beam, banned)``: beam search for one context;
- optionally the facts each comment used: :meth:`Backbone.copy_shares` (a copy path) and
  :meth:`Backbone.knowledge_attention` (a knowledge encoder).

Each backbone registers its class under its name with :func:`register`, which refuses a name
registered twice; :mod:`model.backbones` imports every backbone module by name (nothing is
found by scanning folders).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from model.config import TrainConfig, preset_training
from model.encoded_split import Batch, Encoded
from model.word_ids import WordSpace

PRETRAIN, FINETUNE = "pretrain", "finetune"
#: The backbone of checkpoints and training states saved before backbones had names.
LEGACY_BACKBONE = "klvcg"


class BackboneConfig(Protocol):
    """What every backbone's config has: its name, the sizes the data is encoded with (the
    vocabulary, the frame features, the window and the row lengths), and whether the model
    reads words it has no id for as extended ids (a copy path: :class:`WordSpace`)."""

    name: ClassVar[str]
    vocab_size: int  # the model's word ids: the (cut) vocabulary plus [MASK] and [CLS]
    frame_dim: int
    radius: int  # the context window [t - radius, t + radius]
    max_len: int  # g: the words of a comment, <BOS> and <EOS> included
    max_step_len: int
    max_knowledge_len: int
    copy: bool
    copy_known_comment_words: bool

    def to_dict(self) -> dict: ...

    @classmethod
    def from_dict(cls, d: dict) -> Any: ...


class SavedConfig:
    """What a backbone's frozen config dataclass inherits to be saved in a checkpoint:
    ``to_dict`` and ``from_dict``, which refuses a setting the config does not have."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Any:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown model settings {sorted(unknown)}")
        return cls(**cls.upgrade(d))

    @classmethod
    def upgrade(cls, d: dict) -> dict:
        """A config saved by an older version, in today's fields (by default: as it is)."""
        return d


class Memory(Protocol):
    """A backbone's encoding of a batch of contexts: whatever its decoder reads."""

    def select(self, idx: torch.Tensor) -> Any:
        """The memory of the samples ``idx`` (repeats allowed: one per comment)."""
        ...


@dataclass(frozen=True)
class Stage:
    """One training stage: each runs its own optimiser and schedule over its epochs."""

    name: str  # PRETRAIN, FINETUNE or a backbone's own; also seeds the stage's draws
    epochs: float
    lr: float
    use_kg: bool = True  # the contexts carry the recalled facts in this stage


@dataclass(frozen=True)
class TrainingBatch:
    """The ground truths of a training batch, one row per (sample, ground truth) pair, in
    the order of the memory's rows; ids are corpus ids (:mod:`model.word_ids`)."""

    targets: np.ndarray  # (T, g) <BOS> words <EOS>
    space: WordSpace  # how the model reads corpus ids
    settings: TrainConfig
    generator: torch.Generator  # the step's random draws (seeded per step: same on resume)
    source: np.ndarray | None = None  # (T, S) the copy path's source of each row
    n_facts: int = 0  # the source's first n_facts positions are the fact words
    likes: np.ndarray | None = None  # (T,) int: each ground truth's like count (0: no count)
    has_likes: np.ndarray | None = None  # (T,) bool: its video has like counts at all
    owner: np.ndarray | None = None  # (T,) int: the batch's sample each row belongs to

    @classmethod
    def of(
        cls,
        split: Encoded,
        samples: np.ndarray,
        space: WordSpace,
        settings: TrainConfig,
        generator: torch.Generator,
        drop: np.ndarray | None = None,
    ) -> TrainingBatch:
        """Every ground truth of the (sorted or not) batch ``samples`` of ``split``, in sample
        order; ``drop``: the samples whose facts the copy path's source leaves out."""
        offsets = np.searchsorted(split.target_sample, np.arange(len(split) + 1))
        starts, ends = offsets[samples], offsets[samples + 1]
        pairs = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
        owner = np.repeat(np.arange(len(samples)), ends - starts)
        return cls(
            split.targets[pairs],
            space,
            settings,
            generator,
            source=split.source(samples, drop)[owner] if space.copy else None,
            n_facts=split.knowledge.shape[1],
            likes=split.target_likes[pairs],
            has_likes=split.has_likes[samples][owner],
            owner=owner,
        )


class Backbone(nn.Module):
    """The interface (see the module docstring); a backbone subclasses it and registers."""

    config_class: ClassVar[type]  # its BackboneConfig dataclass
    rows: ClassVar[tuple[str, ...]] = ("default",)  # its ablation rows, the default first
    row_aliases: ClassVar[dict[str, str]] = {}  # other names of rows (name -> row)
    #: each preset's model sizes over the config's defaults (the paper's: ``"paper": {}``)
    preset_sizes: ClassVar[dict[str, dict]] = {"paper": {}}
    #: each preset's training settings over :func:`model.config.preset_training`'s
    preset_training: ClassVar[dict[str, dict]] = {}
    cfg: BackboneConfig

    @classmethod
    def configure(
        cls, preset: str, ablation: str | None, vocab_size: int, frame_dim: int, **train_overrides
    ) -> tuple[BackboneConfig, TrainConfig]:
        """The model and training configurations of a preset and an ablation row (None: the
        backbone's default row); training settings given (not None) override the preset's.
        ValueError for a preset or row the backbone does not have."""
        if preset not in cls.preset_sizes:
            raise ValueError(f"unknown preset {preset!r}: one of {', '.join(cls.preset_sizes)}")
        row = cls.canonical_ablation(ablation)
        model = cls.config_class(
            vocab_size=vocab_size,
            frame_dim=frame_dim,
            **cls.preset_sizes[preset],
            **cls.row_settings(row),
        )
        train = TrainConfig(preset=preset, ablation=row)
        train = replace(train, **{**preset_training(preset), **cls.preset_training.get(preset, {})})
        train = replace(train, **{k: v for k, v in train_overrides.items() if v is not None})
        return model, train

    @classmethod
    def row_settings(cls, row: str) -> dict:
        """The model settings of the ablation row ``row`` (by default none)."""
        return {}

    @classmethod
    def canonical_ablation(cls, name: str | None) -> str:
        """The ablation row ``name`` as the configuration records it (None: the backbone's
        default row); ValueError for a row the backbone does not have."""
        if name is None:
            return cls.rows[0]
        name = cls.row_aliases.get(name, name)
        if name not in cls.rows:
            choices = (
                f"only {cls.rows[0]}" if len(cls.rows) == 1 else f"one of {', '.join(cls.rows)}"
            )
            raise ValueError(
                f"backbone {cls.config_class.name!r} has no ablation {name!r}: {choices}"
            )
        return name

    def stages(self, train: TrainConfig) -> tuple[Stage, ...]:
        """The training stages in order; by default one, fine-tuning."""
        return (Stage(FINETUNE, train.epochs, train.lr, train.kg_in_finetune),)

    def encode(self, batch: Batch, use_kg: bool = True) -> Memory:
        """The memory of the contexts of ``batch``; ``use_kg=False`` leaves the facts out."""
        raise NotImplementedError

    def loss(self, memory: Memory, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """The scalar loss of ``stage`` for the ground truths of ``batch``."""
        raise NotImplementedError

    def score(self, memory: Memory, candidates: torch.Tensor) -> torch.Tensor:
        """Candidates (B, C, g) in the model's ids -> (B, C), lower is better; +inf for an
        all-padding row (a set smaller than the batch's widest)."""
        raise NotImplementedError

    def generate(
        self, memory: Memory, beam: int = 5, banned: tuple[int, ...] = ()
    ) -> list[tuple[list[int], float]]:
        """Beam search for ONE context: up to ``beam`` comments (ids without <BOS>/<EOS>,
        at most g ids with them) and their scores, best first; never ``banned`` ids."""
        raise NotImplementedError

    def copy_shares(self, memory: Memory, hyps: list[list[int]]) -> list[torch.Tensor]:
        """For each comment of the first context: ``(len, S)``, the share of each word's
        probability that copying each source position gave; none without a copy path."""
        return [torch.zeros(len(h), 0) for h in hyps]

    def knowledge_attention(self, memory: Memory) -> torch.Tensor | None:
        """(B, m+1): how much the encoding read each knowledge word; None if it reads none."""
        return None


T = TypeVar("T", bound=Backbone)
BACKBONES: dict[str, type[Backbone]] = {}


def register(name: str) -> Callable[[type[T]], type[T]]:
    """Register a backbone class under ``name`` (its config's name); a second registration
    of a name is a bug."""

    def deco(cls: type[T]) -> type[T]:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} registered twice")
        if cls.config_class.name != name:
            raise ValueError(f"backbone {name!r}: its config is named {cls.config_class.name!r}")
        BACKBONES[name] = cls
        return cls

    return deco


def backbone_class(name: str) -> type[Backbone]:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r} (registered: {', '.join(sorted(BACKBONES))})")
    return BACKBONES[name]


def config_from_dict(name: str, d: dict) -> BackboneConfig:
    """The config of the backbone ``name`` saved as ``d`` (``to_dict``)."""
    return backbone_class(name).config_class.from_dict(d)


def describe_rows() -> str:
    """Each backbone's ablation rows, for help texts: ``name: default, other (alias = row)``."""
    parts = []
    for name in sorted(BACKBONES):
        cls = BACKBONES[name]
        aliases = "".join(f", {a} = {r}" for a, r in cls.row_aliases.items())
        parts.append(f"{name}: {', '.join(cls.rows)}{aliases}")
    return "; ".join(parts)


def build_backbone(cfg: BackboneConfig) -> Backbone:
    """A new model of the backbone ``cfg`` names (freshly initialised, on the CPU)."""
    return backbone_class(cfg.name)(cfg)
