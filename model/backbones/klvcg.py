"""KLVCG: knowledge-enhanced live video comment generation (Chen et al., §IV-A, Fig. 2), the
backbone ``klvcg`` (:mod:`model.backbones.base`). Its configuration, presets and ablation rows
are in :mod:`model.backbones.klvcg_config`, its building blocks in
:mod:`model.backbones.klvcg_blocks`, its copy path in :mod:`model.backbones.klvcg_copy`.

- Visual encoder (``visual_encoder``): frame features of [t-l, t+l] -> linear -> + position
  -> transformer (V'). A second without a feature gets a learned "missing frame" vector
  instead of being masked, so a video without features still has a defined encoding.
- Comment@TimeStep encoder (``timestep_encoder``): each second's ``[CLS] c1 <&&&> c2 ...`` ->
  transformer; its ``[CLS]`` output is M_i. The row of other videos' comments (AC) is encoded
  the same way and joins M as one more step, the paper's "concatenate retrieved comments
  with the original context comments".
- Comment@TimeSpan encoder (``timespan_encoder``): M + position -> transformer (C').
- Knowledge encoder (``knowledge_encoder``), eq. (1): self-attention over the fact words
  (K~), then cross-attention with M as queries: K' = CrossAttention(M, K~, K~), one vector
  per comment step.
- Cross encoder (``cross_encoder``) over [V'; C'; K'] + token-type embedding + period-stage
  embedding (``period_embedding``): W.
- Decoder: 1 transformer decoder layer over W, then a linear layer to the vocabulary, tied to
  the word embedding (all encoders share it).
- ``+copy`` (ours, :mod:`model.backbones.klvcg_copy`): the fact words enter the knowledge
  encoder with a fact-index and a head/relation/value embedding; their encodings (K~, one
  vector per word) and the window's comment words' encodings (the Comment@TimeStep outputs)
  join the decoder's memory next to W, and a pointer-generator head mixes copying them into
  the vocabulary distribution. Scoring, beam search and the loss use the mixed distribution.

Stages (§IV-C): pre-training, eq. (3) (:func:`mask_targets`): the target with 30 % of its words
masked (80 % ``[MASK]``, 10 % a random word, 10 % unchanged) is read without the causal mask
and the masked words are predicted; the ``basic`` row skips it. Fine-tuning, eq. (4):
teacher-forced left-to-right cross-entropy. Ranking (§V-A): the mean token cross-entropy of
each candidate; the context is encoded once and all candidates are scored in one batched
decoder pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model.backbones.base import (
    FINETUNE,
    PRETRAIN,
    Backbone,
    Stage,
    TrainingBatch,
    register,
)
from model.backbones.decoding import beam_search, mean_token_nll, trim
from model.backbones.klvcg_blocks import (
    EncoderOutput,
    KnowledgeEncoder,
    StepDecoder,
    key_mask,
    layer_rest,
    self_attention,
    split_heads,
    transformer_encoder,
)
from model.backbones.klvcg_config import (
    ABLATION_ALIASES,
    ABLATIONS,
    DEFAULT_ABLATION,
    KLVCGConfig,
    ablation_switches,
    make_configs,
)
from model.backbones.klvcg_copy import (
    GATE_COPY,
    GATE_GENERATE,
    PointerHead,
    gate_targets,
    gold_logp,
    source_words_before,
    words_before,
)
from model.backbones.transformer_parts import causal_mask
from model.config import TrainConfig
from model.data.vocab import BOS, EOS, PAD, SPECIALS, UNK
from model.encoded_split import Batch

TYPE_VISUAL, TYPE_COMMENT, TYPE_KNOWLEDGE = range(3)

#: Submodules named as the paper names them, by their names in the state dicts saved before
#: (checkpoints, training states): those still load (:func:`_rename_old_keys`).
OLD_NAMES = {
    "visual": "visual_encoder",
    "timestep": "timestep_encoder",
    "timespan": "timespan_encoder",
    "knowledge": "knowledge_encoder",
    "cross": "cross_encoder",
    "period": "period_embedding",
}


@register("klvcg")
class KLVCG(Backbone):
    """The backbone ``klvcg`` (the module docstring says what each part is)."""

    config_class = KLVCGConfig
    rows = (DEFAULT_ABLATION, *(a for a in ABLATIONS if a != DEFAULT_ABLATION))
    row_aliases = ABLATION_ALIASES

    def __init__(self, cfg: KLVCGConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)
        self.frame_proj = nn.Linear(cfg.frame_dim, d)
        self.missing_frame = nn.Parameter(torch.zeros(d))
        n_frames = 2 * cfg.radius + 1
        self.frame_pos = nn.Embedding(n_frames, d)
        self.word_pos = nn.Embedding(max(cfg.max_step_len, cfg.max_knowledge_len + 1), d)
        self.step_pos = nn.Embedding(2 * cfg.radius + 1, d)
        self.target_pos = nn.Embedding(cfg.max_len, d)
        self.visual_encoder = transformer_encoder(cfg, cfg.modality_layers, cfg.modality_heads)
        self.timestep_encoder = transformer_encoder(
            cfg, cfg.modality_layers, cfg.modality_heads, nested=True
        )
        self.timespan_encoder = transformer_encoder(cfg, cfg.modality_layers, cfg.modality_heads)
        self.knowledge_encoder = KnowledgeEncoder(cfg) if cfg.use_kg else None
        self.token_type = nn.Embedding(3, d)
        self.period_embedding = nn.Embedding(cfg.n_periods, d) if cfg.use_period else None
        self.cross_encoder = transformer_encoder(cfg, cfg.cross_layers, cfg.cross_heads)
        layer = nn.TransformerDecoderLayer(
            d, cfg.decoder_heads, cfg.ffn_factor * d, cfg.dropout, batch_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.decoder_layers)
        self.norm_in = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.vocab_size, bias=False)
        self.out.weight = self.embed.weight  # tied
        if cfg.copy:
            if not cfg.use_kg:
                raise ValueError("the copy path needs the knowledge encoder (use_kg)")
            self.fact_index = nn.Embedding(cfg.max_facts + 1, d)  # 0: not a fact word
            self.fact_part = nn.Embedding(4, d)  # model.word_ids.PART_*
            self.source_part = nn.Embedding(5, d)  # PART_* of a fact word; 4: a comment word
            self.pointer = PointerHead(d, span=cfg.follow_span)
        self.apply(self._init)
        self.register_load_state_dict_pre_hook(_rename_old_keys)
        self.register_buffer("causal", causal_mask(cfg.max_len), persistent=False)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()

    # -- configuration and stages ---------------------------------------------------------

    @classmethod
    def configure(
        cls, preset: str, ablation: str | None, vocab_size: int, frame_dim: int, **train_overrides
    ) -> tuple[KLVCGConfig, TrainConfig]:
        """:func:`model.backbones.klvcg_config.make_configs` (None: the ``+copy`` row)."""
        ablation = DEFAULT_ABLATION if ablation is None else ablation
        return make_configs(preset, ablation, vocab_size, frame_dim, **train_overrides)

    def stages(self, train: TrainConfig) -> tuple[Stage, ...]:
        """MLM pre-training (not in the ``basic`` row), then fine-tuning; the facts are fed in
        both, or in pre-training only (``kg_in_finetune``: the released code's setup)."""
        finetune = Stage(FINETUNE, train.epochs, train.lr, use_kg=train.kg_in_finetune)
        if not ablation_switches(train.ablation)["mlm"]:
            return (finetune,)
        return Stage(PRETRAIN, train.pretrain_epochs, train.lr, use_kg=True), finetune

    def _words(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[-1], device=ids.device)
        return self.norm_in(self.embed(ids) * math.sqrt(self.cfg.d_model) + self.word_pos(pos))

    # -- encoders ---------------------------------------------------------------------------

    def encode(self, batch: Batch, use_kg: bool = True) -> EncoderOutput:
        """W for a batch of contexts (:meth:`model.encoded_split.Encoded.batch`).
        ``use_kg=False`` leaves the facts out for a model that has a knowledge encoder (the
        released code's fine-tuning without facts): K' is then computed from no facts."""
        cfg = self.cfg
        frames = self.frame_proj(batch.frames)
        present = batch.frame_mask.unsqueeze(-1)
        frames = torch.where(present, frames, self.missing_frame.expand_as(frames))
        pos = torch.arange(frames.shape[1], device=frames.device)
        v = self.visual_encoder(frames + self.frame_pos(pos))

        rows = trim(batch.rows[:, : cfg.n_rows])
        b, r, n = rows.shape
        m, words = self._timestep(rows.reshape(b * r, n), cfg.copy)
        m = m.reshape(b, r, -1)
        c = self.timespan_encoder(m + self.step_pos(torch.arange(r, device=m.device)))

        parts = [v, c]
        types = [TYPE_VISUAL] * v.shape[1] + [TYPE_COMMENT] * r
        attention = k_tilde = None
        if self.knowledge_encoder is not None:
            k_ids = trim(batch.knowledge)
            if not use_kg:
                k_ids = torch.cat([k_ids[:, :1], torch.full_like(k_ids[:, 1:], PAD)], dim=1)
            k_in = self._words(k_ids)
            if cfg.copy:
                width = k_ids.shape[1]
                fact = (batch.fact_of[:, :width] + 1).clamp(0, cfg.max_facts)
                k_in = k_in + self.fact_index(fact) + self.fact_part(batch.fact_part[:, :width])
            k_out, attention, k_tilde = self.knowledge_encoder(m, k_in, k_ids.eq(PAD))
            parts.append(k_out)
            types += [TYPE_KNOWLEDGE] * r
        x = torch.cat(parts, dim=1)
        x = x + self.token_type(torch.tensor(types, device=x.device))
        if self.period_embedding is not None:
            x = x + self.period_embedding(batch.period).unsqueeze(1)
        w = self.cross_encoder(x)
        if not cfg.copy:
            return self._with_memory_kv(EncoderOutput(w, attention))
        words = words.reshape(b, r, n, -1)
        return self._with_memory_kv(self._with_source(w, attention, batch, k_tilde, words, use_kg))

    def _with_memory_kv(self, enc: EncoderOutput) -> EncoderOutput:
        enc.memory_kv = []
        for layer in self.decoder.layers:
            ca = layer.multihead_attn
            d = ca.embed_dim
            w, b = ca.in_proj_weight, ca.in_proj_bias
            k = F.linear(enc.memory, w[d : 2 * d], b[d : 2 * d])
            v = F.linear(enc.memory, w[2 * d :], b[2 * d :])
            enc.memory_kv.append((split_heads(k, ca.num_heads), split_heads(v, ca.num_heads)))
        return enc

    def _with_source(self, w, attention, batch, k_tilde, words, use_kg: bool) -> EncoderOutput:
        """The copy path's encoding: the source states in the batch's full layout (the
        positions its extended ids count), appended to the decoder's memory."""
        cfg = self.cfg
        b, d = w.shape[0], w.shape[-1]
        n_facts, row_len = batch.knowledge.shape[1], batch.rows.shape[2]
        facts = F.pad(k_tilde, (0, 0, 0, n_facts - k_tilde.shape[1]))
        context = words[:, : 2 * cfg.radius]
        context = (
            context + self.step_pos(torch.arange(context.shape[1], device=w.device))[None, :, None]
        )
        context = F.pad(context, (0, 0, 0, row_len - context.shape[2])).reshape(b, -1, d)
        part = torch.cat(
            [
                batch.fact_part,
                torch.full_like(batch.fact_part[:, :1], 4).expand(-1, context.shape[1]),
            ],
            dim=1,
        )
        source = torch.cat([facts, context], dim=1) + self.source_part(part)
        source_ext = batch.source_ext
        if not use_kg:
            source_ext = torch.cat(
                [torch.full_like(source_ext[:, :n_facts], PAD), source_ext[:, n_facts:]], dim=1
            )
        # in the full layout: the words before a position, whatever the batch keeps
        before = source_words_before(source_ext, cfg.follow_span)
        # only the positions that hold a word in some sample of the batch are kept (a lone
        # window keeps its own words): extended ids name positions, not the order kept
        keep = source_ext.ne(PAD).any(dim=0)
        positions = keep.nonzero()[:, 0]
        source, source_ext = source[:, positions], source_ext[:, positions]
        pad = torch.cat([torch.zeros_like(w[..., 0], dtype=torch.bool), source_ext.eq(PAD)], 1)
        return EncoderOutput(
            torch.cat([w, source], dim=1),
            attention,
            memory_pad=pad,
            keys=self.pointer.keys(source),
            source_ext=source_ext,
            n_facts=int(keep[:n_facts].sum()),
            n_source=keep.shape[0],
            source_positions=positions,
            source_before=before[:, positions],
        )

    def _timestep(
        self, flat: torch.Tensor, words: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """M: the [CLS] output of each row (N, n), and with ``words`` every position's output
        (N, n, d; zero for the rows without a comment). Rows with no comment (most seconds)
        all get the encoding of a lone [CLS], computed once, in the same pass as the rows
        that hold a comment (the encoder's weights are read once)."""
        filled = flat[:, 1:].ne(PAD).any(dim=1)
        rows = trim(flat[filled])
        rows = torch.cat([F.pad(flat[:1, :1], (0, rows.shape[1] - 1), value=PAD), rows])
        out = self.timestep_encoder(self._words(rows), src_key_padding_mask=rows.eq(PAD))
        lone, out = out[0, 0], out[1:]
        m = lone.expand(flat.shape[0], -1)
        states = None
        if words:
            states = torch.zeros(*flat.shape, lone.shape[-1], device=flat.device, dtype=lone.dtype)
        if len(out):
            at = (filled.nonzero()[:, 0],)
            m = torch.where(filled.unsqueeze(1), m.index_put(at, out[:, 0]), m)
            if words:
                states = states.index_put(at, F.pad(out, (0, 0, 0, flat.shape[1] - out.shape[1])))
        return m, states

    # -- decoder ----------------------------------------------------------------------------

    def input_words(self, ids: torch.Tensor) -> torch.Tensor:
        """The decoder's input embedding of (extended) ids: a copied word the model has no id
        for reads as ``<UNK>`` (See et al. 2017)."""
        ids = torch.where(ids < self.cfg.vocab_size, ids, torch.full_like(ids, UNK))
        return self.embed(ids) * math.sqrt(self.cfg.d_model)

    def decode_states(
        self, enc: EncoderOutput, tgt_in: torch.Tensor, causal: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder states ``(B, len, d)`` for the input words ``tgt_in`` (B, len), and the
        inputs they read (the copy gate's ``x``)."""
        n = tgt_in.shape[1]
        pos = torch.arange(n, device=tgt_in.device)
        x = self.norm_in(self.input_words(tgt_in) + self.target_pos(pos))
        allowed = tgt_in.ne(PAD)[:, None, None, :]  # (B, 1, 1, n): keys that are words
        if causal:
            allowed = allowed & ~self.causal[:n, :n]
        memory_mask = key_mask(enc.memory_pad)
        h = x
        for layer, (mk, mv) in zip(self.decoder.layers, enc.memory_kv, strict=True):
            sa = self_attention(layer, h, allowed, self.training)
            h = layer_rest(layer, h, sa, mk, mv, memory_mask, self.training)
        return h, x

    def decode(self, enc: EncoderOutput, tgt_in: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """Vocabulary logits ``(B, len, vocab)`` for the input words ``tgt_in`` (B, len)."""
        return self.out(self.decode_states(enc, tgt_in, causal)[0])

    def token_logp(
        self, enc: EncoderOutput, tgt_in: torch.Tensor, gold: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """log P(gold) ``(B, len)`` after each prefix of ``tgt_in`` (teacher forcing), and the
        copy gate ``p_gen`` (None without the copy path)."""
        h, x = self.decode_states(enc, tgt_in)
        logits = self.out(h)
        if not self.cfg.copy:
            logp = F.log_softmax(logits.float(), dim=-1)
            return logp.gather(-1, gold.unsqueeze(-1)).squeeze(-1), None
        read = words_before(tgt_in, self.cfg.follow_span)
        p_gen, att = self.pointer(h, x, enc.keys, enc.source_ext, enc.source_before, read)
        return gold_logp(logits, gold, p_gen, att, enc.source_ext), p_gen

    # -- losses -----------------------------------------------------------------------------

    def loss(self, memory: EncoderOutput, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """The loss of ``stage`` for the ground truths of ``batch`` (one row of ``memory``
        each): pre-training's MLM loss of the masked targets (:meth:`mlm_loss`, the masking
        drawn from the batch's generator), fine-tuning's teacher-forced cross-entropy with,
        on the copy path, the copy gate's loss (:meth:`generation_loss`)."""
        space, settings, device = batch.space, batch.settings, memory.memory.device
        if stage == PRETRAIN:
            targets = torch.as_tensor(space.to_model(batch.targets), dtype=torch.long)
            masked, labels = mask_targets(
                targets, space.mask_id, space.model_words, settings.mask_prob, batch.generator
            )
            return self.mlm_loss(memory, masked.to(device), labels.to(device))
        if stage != FINETUNE:
            raise ValueError(f"KLVCG has no training stage {stage!r}")
        targets = torch.as_tensor(space.target_ext(batch.targets, batch.source), dtype=torch.long)
        gate = None
        if batch.source is not None:
            gold, source = torch.as_tensor(batch.targets[:, 1:]), torch.as_tensor(batch.source)
            gate = gate_targets(gold, source, batch.n_facts)
        return self.generation_loss(
            memory, targets.to(device), settings.copy_gate_weight, gate, settings.gate_copy_side
        )

    def generation_loss(
        self,
        enc: EncoderOutput,
        targets: torch.Tensor,
        gate_weight: float = 0.0,
        gate: torch.Tensor | None = None,
        copy_side: float = 1.0,
    ) -> torch.Tensor:
        """Eq. (4): teacher-forced cross-entropy of ``targets`` (B, g) = <BOS> words <EOS>;
        with the copy path, plus ``gate_weight`` times the copy gate's binary cross-entropy
        against ``gate`` (B, g - 1: :func:`~model.backbones.klvcg_copy.gate_targets`), each side
        averaged apart and the copy side's mean weighted by ``copy_side``."""
        targets = trim(targets, least=2)
        gold = targets[:, 1:]
        logp, p_gen = self.token_logp(enc, targets[:, :-1], gold)
        keep = gold.ne(PAD)
        loss = -(logp * keep).sum() / keep.sum().clamp(min=1)
        if p_gen is not None and gate_weight > 0:
            if gate is None:
                raise ValueError("a copy-gate loss needs the gate targets")
            want = gate[:, : gold.shape[1]].to(p_gen.device)
            p = p_gen.float().clamp(1e-6, 1 - 1e-6)
            # Each side's mean, summed: words to copy are few next to words to generate, and
            # one pooled mean let the many generated words drown the few copied ones.
            sides = ((GATE_COPY, torch.log1p(-p), copy_side), (GATE_GENERATE, torch.log(p), 1.0))
            for side, term, weight in sides:
                mask = want.eq(side) & keep
                if bool(mask.any()):
                    loss = loss - gate_weight * weight * term[mask].mean()
        return loss

    def mlm_loss(
        self, enc: EncoderOutput, masked: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Eq. (3): predict the original words where ``labels`` is not PAD, reading the masked
        target without the causal mask."""
        masked, labels = trim(masked), labels[:, : trim(masked).shape[1]]
        logits = self.decode(enc, masked, causal=False)
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=PAD
        )

    @torch.no_grad()
    def score(self, enc: EncoderOutput, candidates: torch.Tensor, rows: int = 512) -> torch.Tensor:
        """Mean token cross-entropy of every candidate (B, C, g) -> (B, C), lower is better;
        +inf for an all-padding row (:func:`model.backbones.decoding.mean_token_nll`)."""
        return mean_token_nll(
            candidates,
            lambda samples, cand: (
                -self.token_logp(enc.select(samples), cand[:, :-1], cand[:, 1:])[0]
            ),
            rows,
        )

    # -- generation -------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self, enc: EncoderOutput, beam: int = 5, banned: tuple[int, ...] = ()
    ) -> list[tuple[list[int], float]]:
        """Beam search for ONE context (``enc`` of batch 1): up to ``beam`` finished
        hypotheses ``(word ids without <BOS>/<EOS>, mean log-probability)``, best first.
        At most g ids including <BOS> and <EOS>; an empty comment is never finished."""
        span = self.cfg.follow_span
        device = enc.memory.device
        stepper = StepDecoder(self, enc)

        def next_logp(hyps: list[list[int]], step: int) -> torch.Tensor:
            read = [([PAD] * span + [BOS, *h])[: -span - 1 : -1] for h in hyps]
            return stepper.next_logp(torch.tensor(read, dtype=torch.long, device=device))

        return beam_search(
            next_logp,
            stepper.reorder,
            width=self.cfg.vocab_size + (enc.n_source if self.cfg.copy else 0),
            max_len=self.cfg.max_len,
            beam=beam,
            banned=banned,
            device=device,
        )

    @torch.no_grad()
    def copy_shares(self, enc: EncoderOutput, hyps: list[list[int]]) -> list[torch.Tensor]:
        """For each comment (extended ids, without <BOS>/<EOS>) of the first context of
        ``enc``: ``(len, S)``, the share of each word's probability that copying it from each
        source position (of the full layout) contributed (rows sum to the word's copied
        share, at most one)."""
        if not self.cfg.copy or not hyps:
            return [torch.zeros(len(h), 0) for h in hyps]
        width = max(len(h) for h in hyps) + 1
        seqs = torch.full((len(hyps), width), PAD, dtype=torch.long, device=enc.memory.device)
        for i, h in enumerate(hyps):
            seqs[i, : len(h) + 1] = torch.tensor([BOS, *h])
        one = enc.select(torch.zeros(len(hyps), dtype=torch.long, device=seqs.device))
        h, x = self.decode_states(one, seqs[:, :-1])
        gold = seqs[:, 1:]
        read = words_before(seqs[:, :-1], self.cfg.follow_span)
        p_gen, att = self.pointer(h, x, one.keys, one.source_ext, one.source_before, read)
        p = gold_logp(self.out(h), gold, p_gen, att, one.source_ext).exp()
        hit = one.source_ext[:, None, :].eq(gold.unsqueeze(-1))
        shares = (1 - p_gen).unsqueeze(-1) * att * hit / p.unsqueeze(-1)
        full = shares.new_zeros(*shares.shape[:2], one.n_source)
        full[..., one.source_positions] = shares  # back to the full layout's positions
        return [full[i, : len(hyp)].float().cpu() for i, hyp in enumerate(hyps)]

    def knowledge_attention(self, enc: EncoderOutput) -> torch.Tensor | None:
        """(B, m+1): the knowledge encoder's cross-attention from the comment steps M to the
        knowledge words (eq. 1, averaged over heads and steps); None without it."""
        return enc.knowledge_attention


def mask_targets(
    targets: torch.Tensor, mask_id: int, vocab_size: int, prob: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking of the target words (§IV-C): each word (not <BOS>/<EOS>/<PAD>) is
    chosen with ``prob`` (at least one per comment); a chosen word becomes ``[MASK]`` 80 % of
    the time, a random word 10 %, and stays 10 %. Returns (input, labels: PAD where unchosen)."""
    words = targets.ne(PAD) & targets.ne(BOS) & targets.ne(EOS)
    u = torch.rand(targets.shape, generator=gen)
    chosen = words & (u < prob)
    # at least one per comment: the word with the smallest draw
    first = torch.where(words, u, torch.full_like(u, 2.0)).argmin(dim=1)
    has_word = words.any(dim=1)
    chosen[torch.arange(len(targets))[has_word], first[has_word]] = True
    labels = torch.where(chosen, targets, torch.full_like(targets, PAD))
    action = torch.rand(targets.shape, generator=gen)
    masked = targets.clone()
    masked[chosen & (action < 0.8)] = mask_id
    rand_words = torch.randint(len(SPECIALS), vocab_size, targets.shape, generator=gen)
    swap = chosen & (action >= 0.8) & (action < 0.9)
    masked[swap] = rand_words[swap]
    return masked, labels


def _rename_old_keys(module: KLVCG, state_dict: dict, prefix: str, *_) -> None:
    """A load-state-dict pre-hook: the keys of a state dict saved with the old submodule
    names (:data:`OLD_NAMES`) renamed in the copy ``load_state_dict`` works on; the
    parameters' order is unchanged, so a saved optimiser state still fits."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        name, dot, rest = key[len(prefix) :].partition(".")
        if dot and name in OLD_NAMES:
            state_dict[f"{prefix}{OLD_NAMES[name]}.{rest}"] = state_dict.pop(key)
