"""``bench/kg_scale.py`` and its synthetic Ownthink rows (``bench/ownthink_synth.py``): the
rows parse as they say, and the bench runs end to end on a tiny file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from kg.sources import read_ownthink
from kg.triples import ALIAS_RELATIONS, BadRow, Triple
from tests.conftest import cli_env

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def synth():
    sys.path.insert(0, str(BENCH))
    try:
        import ownthink_synth

        yield ownthink_synth
    finally:
        sys.path.remove(str(BENCH))


def test_generated_rows_parse_with_the_stated_bad_rows(synth, tmp_path):
    path = tmp_path / "ownthink.csv"
    gen = synth.generate(path, 2000, seed=3)
    records = list(read_ownthink(path))
    bad = [r for r in records if isinstance(r, BadRow)]
    triples = [r for r in records if isinstance(r, Triple)]

    assert gen.rows == len(records) == 2000
    assert gen.bad_rows == len(bad) == len(synth.BAD_KINDS)  # the minimum: one of each kind
    expected = [reason for _, reason in synth.BAD_KINDS]
    assert [b.reason[: len(r)] for b, r in zip(bad, expected, strict=True)] == expected
    assert gen.multiline_rows == sum("\n" in t.tail for t in triples)
    # counts of rows written apart from repeats (which may also come from equal rows)
    assert len(triples) - len({t[:3] for t in triples}) >= gen.duplicate_rows > 0
    relations = Counter(t.relation for t in triples)
    assert sum(relations[r] for r in ALIAS_RELATIONS) >= gen.alias_rows > 0
    assert relations["多义词"] >= gen.disambiguation_rows
    described = {t.head for t in triples if t.relation == "描述"}
    assert len(described) >= 0.9 * gen.heads  # a description first (unless a bad row)
    assert gen.quoted_rows > 0 and gen.entity_tail_rows > 0
    heads = {t.head for t in triples}
    assert set(gen.probe_heads) <= heads and len(gen.probe_heads) == min(2000, gen.heads)
    assert all(head in heads for _, head in gen.probe_aliases)
    # deterministic from the seed
    again = synth.generate(tmp_path / "again.csv", 2000, seed=3)
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()
    assert again.probe_heads == gen.probe_heads


def test_bench_runs_end_to_end_on_a_tiny_file(tmp_path):
    res = subprocess.run(
        [sys.executable, str(BENCH / "kg_scale.py"), "--rows", "2000", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    assert figures["rows"] == 2000 and figures["bad_rows"] == 5
    # the importer's files drop repeated facts within a head's rows, the store all of them
    assert 1500 < figures["store_triples"] <= figures["import_relationship_rows"]
    for job in ("import_big", "embedded_big", "import_small", "embedded_small"):
        assert figures[f"{job}_rows_per_s"] > 0 and figures[f"{job}_bytes"] > 0
        assert figures[f"{job}_max_process_rss_mib"] > 0
    for call in ("facts", "heads_among", "resolve_alias", "neighbors", "search"):
        assert 0 < figures[f"lookup_{call}_p50_ms"] <= figures[f"lookup_{call}_p99_ms"]
    assert figures["embedded_140m_hours"] > 0 and figures["import_140m_gib"] > 0
    # the outputs are removed, the generated files kept for the next run
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ownthink_200.csv",
        "ownthink_200.meta.json",
        "ownthink_2000.csv",
        "ownthink_2000.meta.json",
    ]
