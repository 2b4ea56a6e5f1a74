"""KLVCG's model configuration (:class:`KLVCGConfig`), its sizes per preset and its ablations.

Design: docs/architecture.md, section "Model".

Paper defaults (KLVCG, Chen et al., §V-A "Training setup"): hidden size d = 384; visual,
Comment@TimeStep and Comment@TimeSpan encoders of 2 layers x 6 heads; a knowledge encoder of
one self-attention and one cross-attention block, 6 heads each; a cross encoder of 2 layers x
12 heads; a decoder of 1 layer x 12 heads; context window [t-5, t+5]; g = 20 words including
``<BOS>``/``<EOS>``; beam 5; pre-training masks 30 % of the target words (80 % ``[MASK]``,
10 % random, 10 % kept); lr 1e-4 with warm-up and linear decay (UniVL's ``warmup_linear``),
AdamW; batch 128.

``--preset paper`` is exactly that. The default ``cpu`` preset keeps the architecture (every
encoder, the same layer counts and the window) at d = 144 with 6/12/12 heads and a higher
learning rate, no dropout and shorter per-second rows (16 words) for the small number of steps
a 2-core machine gets in the 15 minutes the main job has.

Ablations (paper table IV), each adding one component to the previous row:
``basic`` (trained from scratch, no knowledge, no period), ``+mlm`` (MLM pre-training),
``+kg`` (knowledge-graph facts), ``+ac`` (comments of other videos), ``+period`` (the period
embedding: the full model, also called ``full``).

``+copy`` is our addition on top of the full model, and the main job's default: in the paper's
model the decoder sees the facts only through K' (one pooled vector per comment step), so no
fact word is addressable and a value that training never wrote cannot be generated. ``+copy``
adds the fact words' encodings (and those of the window's comment words the model has no id
for) to the decoder's memory and a pointer-generator head (See et al. 2017, "Get To The Point")
that copies them (:mod:`model.backbones.klvcg_copy`), supervises the copy gate and drops the
facts of some training windows (``COPY_TRAINING``).

Every row cuts rare training words to ``<UNK>`` (``min_word_count``), so that an unseen word
in a test comment has a learned probability, as it has under the papers' 30,000-word cap on
their much larger corpora.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from model.backbones.base import SavedConfig
from model.config import PRESETS, TrainConfig, preset_training

ABLATIONS = ("basic", "+mlm", "+kg", "+ac", "+period", "+copy")
DEFAULT_ABLATION = "+copy"
ABLATION_ALIASES = {"full": "+period"}


@dataclass(frozen=True)
class KLVCGConfig(SavedConfig):
    name: ClassVar[str] = "klvcg"
    vocab_size: int  # the corpus vocabulary plus the model's [MASK] and [CLS]
    frame_dim: int
    d_model: int = 384
    modality_layers: int = 2  # visual, Comment@TimeStep, Comment@TimeSpan encoders
    modality_heads: int = 6
    knowledge_heads: int = 6
    cross_layers: int = 2
    cross_heads: int = 12
    decoder_layers: int = 1
    decoder_heads: int = 12
    ffn_factor: int = 4
    dropout: float = 0.1
    radius: int = 5  # context window [t-l, t+l]
    max_len: int = 20  # g: target words including <BOS> and <EOS>
    max_step_len: int = 32  # words of one second's comments (with [CLS] and separators)
    max_knowledge_len: int = 80  # words of the recalled facts (KLVCG's max_kg_len)
    n_periods: int = 5
    use_kg: bool = True
    use_ac: bool = True
    use_period: bool = True
    copy: bool = False  # the pointer-generator over the window's fact and comment words
    max_facts: int = 32  # fact-index embeddings of the copy path (later facts share the last)
    # the copy path points at every fact word, and at the window's comment words the model has
    # no id for (a name just said that training never saw). True also points at the comment
    # words it knows (See et al.'s pointer over the whole source): the decoder already reads
    # those through W, and a pointer over them makes a candidate that repeats the window's
    # comments outrank the ground truth (TF-IDF-similar candidates came first almost always:
    # docs/results-2026-12-04.md)
    copy_known_comment_words: bool = False
    # the words read last that the pointer matches against the words before a source position
    # to go on copying a value (:class:`model.backbones.klvcg_copy.PointerHead`): three tell
    # "三届 香港电影 金像奖 | 影帝" from "第23届 香港电影 金像奖 | 10项提名", and two the day of
    # one date from another's ("12 月 | 21"); one word (the checkpoints saved before this
    # setting) cannot
    follow_span: int = 3

    def __post_init__(self) -> None:
        for heads in (self.modality_heads, self.knowledge_heads, self.cross_heads):
            if self.d_model % heads:
                raise ValueError(f"d_model={self.d_model} is not divisible by {heads} heads")
        if self.d_model % self.decoder_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by the decoder heads")
        if self.follow_span < 1:
            raise ValueError("follow_span counts the words read last: it must be at least 1")
        if self.max_len < 3:
            raise ValueError("max_len counts <BOS> and <EOS>: it must be at least 3")

    @property
    def n_rows(self) -> int:
        """Comment rows: the 2l context seconds, plus the row of other videos' comments."""
        return 2 * self.radius + (1 if self.use_ac else 0)

    @classmethod
    def upgrade(cls, d: dict) -> dict:
        if "follow_span" not in d:  # saved before the setting: the pointer read one word back
            d = {**d, "follow_span": 1}
        return d


#: Training of ``+copy``, with the reasons:
COPY_TRAINING = {
    # the gate learns from the token loss alone only slowly when the vocabulary already
    # explains a value a little; words that only the facts hold should come from the facts,
    # words the source does not hold from the vocabulary (a binary cross-entropy on p_gen,
    # the same scale as the token loss)
    "copy_gate_weight": 1.0,
    # a window without facts still has comments that state values: trained only with facts,
    # the model would learn that a value is always given; one window in ten without them
    # keeps it from stating values it was not given (it must then spread its probability)
    "knowledge_dropout": 0.1,
}


def canonical_ablation(name: str) -> str:
    name = ABLATION_ALIASES.get(name, name)
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}: one of {', '.join(ABLATIONS)} or full")
    return name


def ablation_switches(name: str) -> dict[str, bool]:
    """What the row ``name`` of table IV turns on (each row adds to the one above)."""
    level = ABLATIONS.index(canonical_ablation(name))
    return {
        "mlm": level >= 1,
        "use_kg": level >= 2,
        "use_ac": level >= 3,
        "use_period": level >= 4,
        "copy": level >= 5,
    }


def preset_sizes(preset: str) -> dict:
    if preset == "paper":
        return {}
    if preset == "cpu":
        # no dropout: a CPU run sees about one epoch (under-fitting, not over-fitting), and
        # drawing dropout masks is two thirds of a CPU training step. d = 144 (not 192): a
        # step and a ranking pass cost about half as much, which is what lets the main job
        # (data, both stages, the test evaluation) fit its 15 minutes on 2 cores
        return {"d_model": 144, "max_step_len": 16, "dropout": 0.0}
    raise ValueError(f"unknown preset {preset!r}: one of {', '.join(PRESETS)}")


def make_configs(
    preset: str, ablation: str, vocab_size: int, frame_dim: int, **train_overrides
) -> tuple[KLVCGConfig, TrainConfig]:
    switches = ablation_switches(ablation)
    model = KLVCGConfig(
        vocab_size=vocab_size,
        frame_dim=frame_dim,
        use_kg=switches["use_kg"],
        use_ac=switches["use_ac"],
        use_period=switches["use_period"],
        copy=switches["copy"],
        **preset_sizes(preset),
    )
    train = TrainConfig(preset=preset, ablation=canonical_ablation(ablation))
    train = replace(train, **preset_training(preset), **(COPY_TRAINING if switches["copy"] else {}))
    train = replace(train, **{k: v for k, v in train_overrides.items() if v is not None})
    return model, train
