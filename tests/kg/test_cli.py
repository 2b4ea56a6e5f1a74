"""The command lines later checks call: ``python -m kg.load`` and ``python -m kg.query``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from tests.conftest import cli_env


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=300,
    )


def test_load_without_arguments_loads_the_bundled_sample(data_dir):
    res = run("kg.load", "--json", env=cli_env(DANMAKU_DATA=str(data_dir)))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("triples_read", "triples_loaded", "bad_rows", "entities", "relations", "seconds"):
        assert key in summary
    assert summary["triples_read"] == summary["triples_loaded"] > 3000
    assert summary["bad_rows"] == 0
    assert (data_dir / "kg" / "filmkg" / "kg.sqlite").exists()

    res = run(
        "kg.query",
        "facts",
        "阿甘正传",
        "--json",
        "--limit",
        "3",
        env=cli_env(DANMAKU_DATA=str(data_dir)),
    )
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert len(lines) == 3 and set(lines[0]) == {"head", "relation", "tail"}
    assert lines[0]["head"].startswith("阿甘正传（")

    res = run("kg.query", "search", "阿甘", env=cli_env(DANMAKU_DATA=str(data_dir)))
    assert "阿甘正传" in res.stdout.splitlines()
    res = run("kg.query", "stats", "--json", env=cli_env(DANMAKU_DATA=str(data_dir)))
    assert json.loads(res.stdout)["triples"] == summary["triples_read"]


def test_load_into_an_explicit_db_with_bad_rows(tmp_path, data_dir):
    src = tmp_path / "o.csv"
    src.write_text("实体,属性,值\n甲,标签,文化\n坏\n", encoding="utf-8")
    db = tmp_path / "db"
    res = run(
        "kg.load",
        "--kg",
        "ownthink",
        "--path",
        str(src),
        "--db",
        str(db),
        "--json",
        env=cli_env(DANMAKU_DATA=str(data_dir)),
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (summary["triples_loaded"], summary["bad_rows"]) == (1, 1)
    assert f"{src}:3: expected 3 columns" in res.stderr
    res = run("kg.load", "--kg", "ownthink", "--path", str(src), "--db", str(db), "--strict")
    assert res.returncode == 2 and "--strict" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["kg.load", "--kg", "ownthink", "--path", "/no/such.csv"], "no such file"),
        (["kg.load", "--kg", "rdf", "--path", __file__], "unknown RDF format"),
        (["kg.load", "--kg", "ownthink"], "needs --path"),
        (["kg.query", "stats", "--db", "/no/such/dir"], "no knowledge-graph store"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, message, data_dir):
    res = run(*args, env=cli_env(DANMAKU_DATA=str(data_dir)))
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr


def test_unknown_entity_is_a_clear_error(tmp_path, data_dir):
    db = tmp_path / "db"
    assert run("kg.load", "--db", str(db)).returncode == 0
    res = run("kg.query", "facts", "没有这个实体", "--db", str(db))
    assert res.returncode == 2 and "no such entity" in res.stderr


def test_neo4j_import_csv_files(tmp_path, filmkg_sample):
    out = tmp_path / "import"
    res = run("kg.load", "--path", str(filmkg_sample), "--neo4j-import-csv", str(out), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    with (out / "relations.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [":START_ID", ":END_ID", "name", ":TYPE"]
    assert len(rows) - 1 == summary["triples_read"] == 3891
    with (out / "entities.csv").open(encoding="utf-8") as f:
        names = {r[0] for r in list(csv.reader(f))[1:]}
    assert {r[0] for r in rows[1:]} | {r[1] for r in rows[1:]} == names


@pytest.mark.neo4j
def test_load_and_query_through_neo4j(bolt_env, data_dir):
    from kg.neo4j_store import Neo4jStore
    from kg.settings import Neo4jSettings

    settings = Neo4jSettings.from_env(
        bolt_env["NEO4J_URI"],
        bolt_env.get("NEO4J_USER"),
        bolt_env.get("NEO4J_PASSWORD"),
        bolt_env.get("NEO4J_DATABASE"),
    )
    with Neo4jStore.connect(settings) as store:
        store._write(lambda tx: tx.run("MATCH (n) DETACH DELETE n").consume())
    env = cli_env(DANMAKU_DATA=str(data_dir), **bolt_env)
    res = run("kg.load", "--store", "neo4j", "--json", "--no-progress", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["triples_loaded"] == 3891
    res = run("kg.query", "facts", "恋恋笔记本", "--store", "neo4j", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert {json.loads(x)["head"] for x in res.stdout.splitlines()} == {
        "恋恋笔记本（美国2004年尼克·卡索维茨导演爱情片）"
    }
    bad = dict(env, NEO4J_PASSWORD="wrong-password")
    res = run("kg.query", "stats", "--store", "neo4j", env=bad)
    assert res.returncode == 2 and "cannot connect to Neo4j" in res.stderr
