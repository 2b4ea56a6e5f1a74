"""``kg.neo4j_import``: the summary's row counts, over-long names and import command."""

from __future__ import annotations

import csv
import shlex

from kg.neo4j_import import FILES, INDEX_KEY_BYTES, write_import_csv


def _rows(path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))[1:]


def test_summary_counts_rows_long_names_and_gives_the_command(tmp_path):
    source = tmp_path / "ownthink.csv"
    long_cjk = "长" * (INDEX_KEY_BYTES // 3 + 1)  # 3 bytes a character: over the limit
    long_ascii = "a" * (INDEX_KEY_BYTES // 2)  # more characters than the check's bound, fewer bytes
    with source.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(
            [
                ["实体", "属性", "值"],
                ["甲（人物）", "描述", long_cjk],
                ["甲（人物）", "别名", "甲甲、甲乙"],
                ["甲（人物）", "描述", long_cjk],  # repeated: dropped
                ["乙", "描述", 'a "quoted", value\nover two lines'],
                ["乙", "简介", long_ascii],
                ["丙", "描述", long_cjk],  # the same long name again: counted once
            ]
        )
    out = tmp_path / "import"
    summary = write_import_csv("ownthink", source, out, progress=False)

    rows = {name: _rows(out / name) for name in FILES}
    assert summary["entity_rows"] == len(rows["entities.csv"]) == 8
    assert summary["relationship_rows"] == len(rows["relations.csv"]) == 5
    assert summary["alias_rows"] == len(rows["aliases.csv"]) == len(rows["alias_of.csv"]) == 3
    assert rows["relations.csv"][2][1] == 'a "quoted", value\nover two lines'
    assert summary["names_over_index_limit"] == 1
    assert summary["longest_name_chars"] == len(long_ascii)

    command = shlex.split(summary["neo4j_admin_command"])
    assert command[:5] == ["neo4j-admin", "database", "import", "full", "neo4j"]
    assert "--skip-duplicate-nodes=true" in command and "--multiline-fields=true" in command
    assert "--bad-tolerance=1000" in command  # at least the importer's default
    assert f"--nodes=Entity={out / 'entities.csv'}" in command
    assert f"--relationships=REL={out / 'relations.csv'}" in command
    assert f"--nodes=Alias={out / 'aliases.csv'}" in command
    assert f"--relationships=ALIAS_OF={out / 'alias_of.csv'}" in command
