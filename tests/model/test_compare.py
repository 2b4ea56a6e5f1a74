"""``python -m model.compare``: its rows, the table and chart of their records, and a run of
two rows on a small demo corpus that a second run does not train again."""

from __future__ import annotations

import json

import pytest

from model import compare
from model.backbones import BACKBONES
from model.comparison_report import COLUMNS, chart, markdown_table
from tests.model.conftest import call


def record(mrr: float, swap: float | None) -> dict:
    def block(v: float) -> dict:
        return {
            "r1": 10 * v,
            "r5": 20 * v,
            "r10": 30 * v,
            "mr": 5 / v,
            "mrr": v,
            "ci": {k: [0.0, 100.0] for k in ("r1", "r5", "r10", "mr", "mrr")},
            "random": {"r1": 1.0, "r5": 5.0, "r10": 10.0, "mr": 50.0, "mrr": 0.05},
        }

    return {
        **block(mrr),
        "knowledge_subset": block(mrr / 2),
        "value_swap": block(swap) if swap is not None else {"n": 0},
        "parameters": 2_500_000,
        "train_samples_per_s": 12.345,
    }


def test_every_backbone_and_klvcgs_rows_are_compared():
    rows = compare.all_rows()
    names = [r.name for r in rows]
    assert len(names) == len(set(names))
    assert set(BACKBONES) - {"klvcg"} <= set(names)
    klvcg = {r.name: r.ablation for r in rows if r.backbone == "klvcg"}
    assert klvcg == {
        "basic": "basic",
        "+mlm": "+mlm",
        "+kg": "+kg",
        "+ac": "+ac",
        "full": "+period",
        "+copy": "+copy",
    }


def test_the_table_has_one_line_per_row_and_the_random_ranker(tmp_path):
    rows = [("a", "s2s_i", "default", record(0.2, 0.5)), ("b", "klvcg", "basic", record(0.1, None))]
    lines = markdown_table(rows).splitlines()
    assert lines[0] == "| " + " | ".join(COLUMNS) + " |"
    assert len(lines) == 2 + 2 + 1
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:5] == ["a", "s2s_i", "default", "2.50 M", "12.3"]
    assert cells[9] == "0.200 [0.000, 100.000]" and cells[10].startswith("0.100 ")
    assert lines[3].split("|")[-2].strip() == "n/a"  # no value-swap sets
    assert lines[4].startswith("| random ranker |") and "0.050" in lines[4]
    chart(rows, tmp_path / "c.png", "t")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_options_compare_sets_itself_are_refused(capsys):
    with pytest.raises(SystemExit):
        compare.parse_args(["--ablation", "basic"])
    assert "sets --ablation for each row itself" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare.parse_args(["--rows", "nope"])
    args, passed = compare.parse_args(["--rows", "basic", "--corpus", "X", "--seed", "3"])
    assert args.rows == ["basic"] and passed[:4] == ["--corpus", "X", "--seed", "3"]
    assert "--kg" in passed and "--generation-samples" in passed


@pytest.mark.slow
def test_two_rows_are_compared_and_not_trained_again(env, capsys):
    out = env["root"] / "compare"
    argv = ["--out", str(out), "--rows", "s2s_i", "basic", "--budget-minutes", "0.02"]
    argv += [*env["common"], "--max-steps", "2", "--eval-samples", "16", "--json"]
    code, stdout, err = call(compare.main, argv, capsys)
    assert code == 0, err
    records = json.loads(stdout.strip().splitlines()[-1])
    assert set(records) == {"s2s_i", "basic"}
    assert records["basic"]["ablation"] == "basic" and records["basic"]["n"] == 16
    table = (out / "comparison.md").read_text(encoding="utf-8")
    assert "| s2s_i | s2s_i | default |" in table and "| basic | klvcg | basic |" in table
    assert (out / "comparison.png").stat().st_size > 0
    before = {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()}

    code, stdout, err = call(compare.main, argv, capsys)
    assert code == 0 and err.count("finished before") == 2
    assert {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()} == before
    assert json.loads(stdout.strip().splitlines()[-1]) == records

    code, _, err = call(compare.main, [*argv[:-1], "--budget-minutes", "1"], capsys)
    assert code == 2 and "a comparison with other settings" in err
