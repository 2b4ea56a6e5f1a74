"""Which entity a window is about right now, learned from a corpus's knowledge-bearing comments.

The linker's hand weighting of an entity (recency-weighted window mentions, the video's topic,
the title, pronouns) says which entities a window names, not which one the next comment
speaks of: a conversation keeps its topic in the history, so the topic outweighs the film
just named in the message before. A comment that states a fact (:mod:`retrieval.stated`)
names the entity it speaks of: :func:`fit` learns, on the training split's such comments, a
conditional logit (McFadden 1974) over the window's linked entities with the features of
:data:`FEATURES`, each a part of the hand weighting or the order in which the entities were
last named before t (the one named last, the one before it, ...). The linker then ranks the
entities by :func:`probabilities` and a fact by its entity's probability times the fact's
probability among its entity's facts (:mod:`retrieval.relation_cues`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The evidence of an entity, in the order of :attr:`retrieval.linker._Candidate.evidence`:
#: recency-weighted window mentions, saturated topic weight, named in the title, pronoun
#: references, and whether it is the entity named last, second-last, third-last before t.
FEATURES = ("window", "topic", "title", "pronoun", "last", "second", "third")
RECENT = 3  # the last named entities that get their own feature


def fit(
    rows: Sequence[tuple[Sequence[Sequence[float]], frozenset[int]]],
    l2: float,
    iterations: int = 100,
) -> dict[str, float]:
    """Feature weights (maximum a posteriori, Gaussian prior of strength ``l2``) of the
    conditional logit choosing, in each row, the candidates of ``chosen`` among
    ``candidates`` (each a vector of :data:`FEATURES`)."""
    import numpy as np
    import torch

    rows = [(c, s) for c, s in rows if c and s]
    if not rows:
        return {}
    k = max(len(c) for c, _ in rows)
    x = np.zeros((len(rows), k, len(FEATURES)))
    mask = np.zeros((len(rows), k), dtype=bool)
    target = np.zeros((len(rows), k), dtype=bool)
    for e, (cands, chosen) in enumerate(rows):
        for j, features in enumerate(cands):
            x[e, j], mask[e, j], target[e, j] = features, True, j in chosen
    x_t, mask_t, target_t = torch.from_numpy(x), torch.from_numpy(mask), torch.from_numpy(target)
    w = torch.zeros(len(FEATURES), dtype=torch.float64, requires_grad=True)
    neg = torch.tensor(-math.inf, dtype=torch.float64)
    opt = torch.optim.LBFGS(
        [w], max_iter=iterations, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        s = x_t @ w  # (rows, candidates)
        log_all = torch.logsumexp(torch.where(mask_t, s, neg), dim=1)
        log_chosen = torch.logsumexp(torch.where(target_t, s, neg), dim=1)
        value = (log_all - log_chosen).sum() + 0.5 * l2 * (w**2).sum()
        value.backward()
        return value

    opt.step(closure)
    return {f: round(float(v), 4) for f, v in zip(FEATURES, w.detach(), strict=True)}


def probabilities(weights: dict[str, float], evidence: Sequence[Sequence[float]]) -> list[float]:
    """The learned probability of each candidate (its ``evidence``) being the one spoken of."""
    scores = [
        sum(weights.get(f, 0.0) * v for f, v in zip(FEATURES, e, strict=True)) for e in evidence
    ]
    top = max(scores, default=0.0)
    exp = [math.exp(s - top) for s in scores]
    total = sum(exp)
    return [v / total for v in exp]
