"""The typed evaluation report (model.evaluation_report): its JSON form (the keys and order of
``metrics.json`` and ``--json``) and its table; and the evaluation library staying a library."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np

from model.evaluation_report import (
    EvaluationReport,
    GenerationReport,
    KnowledgeCounts,
    KnowledgeGeneration,
    KnowledgeSubset,
    RankBlock,
    ValueSwapBlock,
    format_generation,
    format_table,
    rank_block,
)

ROOT = Path(__file__).resolve().parents[2]


def report(generation: bool = True) -> EvaluationReport:
    """Every sample ranks its truth first (so the bootstrap intervals are points); no
    knowledge-bearing sample among them."""
    truth = np.zeros((4, 10), dtype=bool)
    truth[:, 0] = True
    valid = np.ones_like(truth)
    ranks = np.ones(4, dtype=np.int64)
    knowledge = KnowledgeGeneration(5, 0.2, 1, 1.0, 0.0, 0.1)
    return EvaluationReport(
        ranking=rank_block(ranks, truth, valid),
        knowledge_subset=KnowledgeSubset(rank_block(ranks[:0], truth[:0], valid[:0]), "stated"),
        knowledge_counts=KnowledgeCounts(flagged=0, stated=0, both=0),
        candidates=10,
        split="test",
        value_swap=ValueSwapBlock(rank_block(ranks[:2], truth[:2], valid[:2]), 2, 10.0),
        generation=GenerationReport(3, 1.0, 0.5, 0.6, 0.7, 0.8, 0.01, 12.5, knowledge)
        if generation
        else None,
    )


def test_the_json_form_keeps_the_keys_and_their_order():
    d = report().as_dict()
    assert list(d) == [
        "r1",
        "r5",
        "r10",
        "mr",
        "mrr",
        "ci",
        "n",
        "random",
        "knowledge_subset",
        "knowledge_counts",
        "candidates",
        "split",
        "value_swap",
        "generation",
    ]
    assert d["r1"] == 100.0 and d["mr"] == 1.0 and d["n"] == 4
    assert d["ci"]["mrr"] == [1.0, 1.0]
    assert d["random"] == {"r1": 10.0, "r5": 50.0, "r10": 100.0, "mr": 5.5, "mrr": 0.2929}
    assert d["knowledge_subset"] == {"n": 0, "definition": "stated"}
    assert d["knowledge_counts"] == {"flagged": 0, "stated": 0, "both": 0}
    assert list(d["value_swap"])[-3:] == ["random", "sets", "mean_size"]
    assert d["generation"] == {
        "samples": 3,
        "non_empty": 1.0,
        "distinct_1": 0.5,
        "distinct_2": 0.6,
        "distinct_3": 0.7,
        "distinct_4": 0.8,
        "bleu": 0.01,
        "latency_ms_p50": 12.5,
        "knowledge_samples": 5,
        "fact_copy": 0.2,
        "with_values": 1,
        "supported_values": 1.0,
        "unsupported_values": 0.0,
        "knowledge_f1": 0.1,
    }
    assert "generation" not in report(generation=False).as_dict()
    json.dumps(d)  # plain JSON types only


def test_a_block_without_samples():
    assert RankBlock(0).as_dict() == {"n": 0}
    assert rank_block(np.zeros(0), np.zeros((0, 3), bool), np.zeros((0, 3), bool)) == RankBlock(0)


def test_the_table_and_the_generation_line():
    lines = format_table(report()).splitlines()
    assert lines[0].split() == ["R@1", "R@5", "R@10", "MR", "MRR", "n"]
    assert lines[1] == (
        "all               100.00 [100.00,100.00]100.00 [100.00,100.00]"
        "100.00 [100.00,100.00]    1.00 [1.00,1.00]   1.000 [1.000,1.000]      4"
    )
    assert lines[2] == "knowledge subset          (no samples)"
    assert lines[3].startswith("value swap        100.00") and lines[3].endswith("      2")
    assert lines[4:] == [
        "random ranker, all: R@1 10.00, MRR 0.293",
        "random ranker, value swap: R@1 10.00, MRR 0.293",
    ]
    generation = report().generation
    assert generation is not None
    assert format_generation(generation).startswith("generation: samples 3, non_empty 1.0, ")
    assert format_generation(generation).endswith(", knowledge_f1 0.1")


def test_the_evaluation_library_neither_parses_arguments_nor_prints():
    for name in ("evaluation", "evaluation_report", "ranking", "generator", "checkpoint"):
        tree = ast.parse((ROOT / "model" / f"{name}.py").read_text(encoding="utf-8"))
        calls = {
            n.func.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert "print" not in calls, name
        if name != "checkpoint":  # it declares the options that name a checkpoint
            imported = {
                a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
            }
            assert "argparse" not in imported, name
