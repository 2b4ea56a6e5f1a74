"""``python -m model.live``: a corpus video replayed against the live endpoint of a real
``python -m api`` process the command starts itself, on a tiny untrained KLVCG checkpoint over
a 4-film demo corpus (the plumbing and the report, not the comments); and the replay's parts
(the cues, matching bot comments to their triggers, reading whether one states a fact).
"""

from __future__ import annotations

import json
import os

import pytest

from api.settings import Settings
from model import live
from model.api_process import ApiProcess, ServerOptions
from model.data.demo import DemoConfig, ensure_demo
from model.data.readers import read_corpus
from model.data.schema import Comment, Video
from model.data.vocab import Vocab
from model.live_replay import BotComment, SentLog, replay_cues
from tests.model.conftest import call
from tests.model.test_generate_video_file import tiny_checkpoint

#: The started server's settings (the command must not depend on the caller's shell).
API_VARIABLES = [f.validation_alias for f in Settings.model_fields.values() if f.validation_alias]
KEY = "s3cret"
EVERY_COMMENT = ["--min-gap-s", "0", "--max-per-minute", "600", "--repeat"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("live-client")
    mp = pytest.MonkeyPatch()
    for name in API_VARIABLES:
        mp.delenv(name, raising=False)
    mp.setenv("DANMAKU_DATA", str(root / "data"))
    corpus = ensure_demo(root / "corpus", DemoConfig(films=4))
    videos = read_corpus("demo", corpus)
    vocab = Vocab.build(list(c.text) for v in videos for c in v.comments)
    video = min(videos, key=lambda v: v.id)
    yield {
        "root": root,
        "corpus": corpus,
        "video": video,
        "ckpt": tiny_checkpoint(root / "ckpt", corpus, vocab, 128),
        "common": ["--embedder", "hashing:32", "--device", "cpu"],
    }
    mp.undo()


@pytest.mark.slow
def test_a_replay_reports_latency_and_facts_of_each_bot_comment(env, capsys):
    video = env["video"]
    start = int(video.comments[0].time_s)
    argv = ["--checkpoint", str(env["ckpt"]), "--video", video.id, "--from", str(start)]
    argv += ["--seconds", "20", "--speed", "16", "--beam", "2", *EVERY_COMMENT, *env["common"]]
    log = env["root"] / "api.log"
    code, out, err = call(live.main, [*argv, "--server-log", str(log), "--json"], capsys)
    assert code == 0, err + log.read_text()
    report = json.loads(out.strip().splitlines()[-1])
    for key in ("latency", "comments_per_minute", "states_fact", "drew_on_fact", "dropped"):
        assert key in report
    assert report["video"] == video.id and report["speed"] == 16 and report["seconds"] == 20
    viewer = sum(start <= c.time_s < start + 20 for c in video.comments)
    assert report["sent"] == {"comment": viewer, "position": 20}
    assert report["policy"]["min_gap_s"] == 0 and report["policy"]["beam"] == 2
    assert report["received"] == viewer  # the server took every viewer comment
    assert report["bot_comments"] == len(report["comments"]) >= 1
    # every comment may trigger: each bot comment answers a viewer comment, timed twice
    timed = [c for c in report["comments"] if c["trigger"] == "comment"]
    assert timed and all(c["client_ms"] >= c["server_ms"] - 0.05 > 0 for c in timed)
    assert all(c["text"] and start < c["t"] <= start + 20 for c in report["comments"])
    latency = report["latency_by_trigger"]["comment"]
    assert latency["client"]["n"] == len(timed) and latency["client"]["p99_ms"] > 0
    assert report["comments_per_minute"] == pytest.approx(report["bot_comments"] / (20 / 60))
    assert report["close_code"] == 1000 and report["errors"] == []
    # the same replay, read by a person
    code, out, err = call(live.main, argv, capsys)
    assert code == 0, err
    assert f"{video.id} " in out and "latency (all triggers)" in out and "bot comments:" in out


@pytest.fixture(scope="module")
def keyed_server(env):
    """A server of the same checkpoint behind an API key, started apart from the command."""
    ckpt, corpus = str(env["ckpt"]), str(env["corpus"])
    options = ServerOptions(ckpt, corpus, "demo", embedder="hashing:32", device="cpu")
    environ = {**os.environ, "API_KEY": KEY}
    with ApiProcess(options, env["root"] / "keyed.log", env=environ) as server:
        yield server


@pytest.mark.slow
def test_a_running_server_is_replayed_against_with_its_key(env, keyed_server, capsys):
    argv = ["--url", keyed_server.url, "--video", env["video"].id, "--speed", "16"]
    argv += ["--seconds", "5", "--corpus", str(env["corpus"]), "--format", "demo"]
    code, _, err = call(live.main, argv, capsys)  # the server's own model: no --checkpoint
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "4401" in line and "X-API-Key" in line
    code, out, err = call(live.main, [*argv, "--api-key", KEY, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["url"] == keyed_server.ws_url and report["close_code"] == 1000
    assert report["seconds"] == 5 and report["sent"]["position"] == 5
    code, _, err = call(live.main, [*argv, "--api-key", KEY, "--policy", '{"often": 1}'], capsys)
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "refused the session (bad_policy" in line and "often" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--video", "nope"], "--video nope: not in the corpus"),
        (["--video", "demo0000", "--speed", "0"], "--speed 0"),
        (["--video", "demo0000", "--policy", "[1]"], "--policy"),
        (["--video", "demo0000", "--url", "ftp://x"], "--url ftp://x"),
    ],
)
def test_bad_input_is_one_error_line_before_any_server(env, capsys, argv, message):
    argv = ["--checkpoint", str(env["ckpt"]), *argv, *env["common"]]
    code, out, err = call(live.main, argv, capsys)
    assert code == 2 and not out
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err and "starting python -m api" not in err


def test_a_server_that_refuses_to_start_is_its_error_line(env, capsys):
    argv = ["--checkpoint", str(env["ckpt"]), "--video", env["video"].id, *env["common"]]
    code, _, err = call(live.main, [*argv, "--db", str(env["root"] / "no" / "store")], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "python -m api" in errors[0], err


def test_cues_are_ticks_and_comments_in_time_order():
    video = Video("v", "t", 30.0, [Comment(2.0, "a"), Comment(2.0, "b"), Comment(9.5, "c")])
    cues = replay_cues(video, start_s=2.0, seconds=6.0)
    assert [(c.t, c.kind, c.text) for c in cues] == [
        (2.0, "position", ""),
        (2.0, "comment", "a"),
        (2.0, "comment", "b"),
        (3.0, "position", ""),
        (4.0, "position", ""),
        (5.0, "position", ""),
        (6.0, "position", ""),
        (7.0, "position", ""),
    ]
    assert cues[1].message() == {"type": "comment", "text": "a", "t": 2.0}
    assert len(replay_cues(video, 25.0)) == 5  # to the end


def test_a_bot_comment_is_matched_to_the_latest_trigger_sent_before_the_server_took_it():
    log = SentLog()
    for at in (10.0, 11.0, 11.0005, 12.0, 13.0):
        log.add(at)
    # sent together: the server took the first of them first
    assert log.match(before=11.5) == 11.0 and log.used == {1}
    assert log.match(before=11.5) == 11.0005 and log.used == {1, 2}  # each answers one
    assert log.match(before=11.5) == 10.0
    assert log.match(before=11.5) is None
    assert log.match(before=20.0) == 13.0  # the latest: the server coalesces triggers


def test_whether_a_bot_comment_states_a_fact():
    def comment(text: str, facts: list[dict]) -> BotComment:
        return BotComment(1, 3.0, text, -1.0, 0.2, facts, "comment", 5.0, 6.0, 1.0)

    fact = {"head": "阿甘正传", "relation": "导演", "tail": "罗伯特·泽米吉斯", "mass": 0.3}
    said = comment("导演 是 罗伯特·泽米吉斯", [fact])
    assert said.states_fact and said.drew_on_fact
    unsaid = comment("好看", [fact])
    assert not unsaid.states_fact and unsaid.drew_on_fact
    short = comment("好 看", [{**fact, "tail": "好", "mass": 0.0}])
    assert not short.states_fact and not short.drew_on_fact
