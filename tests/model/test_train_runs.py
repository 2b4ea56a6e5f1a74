"""Runs that must not spoil each other or report wrong figures, end to end on a small demo
corpus: a second ``model.train`` into a busy ``--out`` is refused naming the holder (real
processes), a killed run's lock is taken over, default run names tell runs apart, damaged
checkpoint weights are refused without touching ``metrics.json``, and damaged caches are
built again with the same figures."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file, save_file

from common.paths import data_dir
from model import evaluate, train
from model.checkpoint import WEIGHTS
from tests.conftest import cli_env
from tests.model.conftest import METRICS, call, train_quietly

pytestmark = pytest.mark.slow


def train_args(env, out, *extra) -> list[str]:
    args = ["--kg", "filmkg", *env["common"], "--out", str(out), "--batch-size", "8"]
    args += ["--dev-samples", "8", "--eval-samples", "24", "--generation-samples", "2"]
    return [*args, "--json", *extra]


def eval_args(env, checkpoint) -> list[str]:
    args = ["--checkpoint", str(checkpoint), "--no-progress", "--embedder", "hashing:32"]
    args += ["--corpus", str(env["corpus"]), "--format", "demo", "--eval-samples", "24"]
    return [*args, "--generation-samples", "0", "--json"]


@pytest.fixture(scope="module")
def trained(env):
    out = env["root"] / "ckpt"
    train_quietly(train_args(env, out, "--max-steps", "2"))
    return out


def train_process(env, out, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "model.train", *train_args(env, out, *extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )


def lock_holder(out) -> dict | None:
    try:
        return json.loads((out / train.RUN_LOCK).read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None


def test_a_second_run_into_a_busy_out_is_refused_and_a_killed_runs_lock_is_taken_over(env, trained):
    out = env["root"] / "busy"
    first = train_process(env, out, "--max-steps", "100000", "--eval-every", "100000")
    try:
        deadline = time.monotonic() + 600
        while (lock_holder(out) or {}).get("pid") != first.pid:
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.2)
        second = train_process(env, out, "--max-steps", "2", "--seed", "1")
        _, err = second.communicate(timeout=600)
        assert first.poll() is None  # still running: the refusal was the lock's
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    assert second.returncode == 2 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: {out}: another model.train run is using this directory")
    assert f"(pid {first.pid} on {socket.gethostname()}, started " in line

    third = train_process(env, out, "--max-steps", "2")  # the killed run's lock: taken over
    report, err = third.communicate(timeout=900)
    assert third.returncode == 0, err
    assert f"taking over from a run that ended without finishing (pid {first.pid}" in err
    assert json.loads(report.strip().splitlines()[-1])["checkpoint"] == str(out)
    assert lock_holder(out) is None  # released


def test_default_run_names_tell_seeds_steps_and_learning_rates_apart():
    def name(*argv):
        return train.run_name(train.parse_args(["--kg", "filmkg", *argv]), "1a2b3c4d5e6f")

    base = name()
    assert base == "klvcg-copy-cpu-demo-1a2b3c4d-seed0"
    assert base.startswith(train.legacy_run_name(train.parse_args([]), "1a2b3c4d5e6f"))
    names = {
        base,
        name("--seed", "1"),
        name("--lr", "3e-4"),
        name("--max-steps", "50"),
        name("--epochs", "2"),
        name("--batch-size", "16"),
        name("--eval-every", "10"),
        name("--embedder", "hashing:32"),
        name("--kg-in", "pretrain"),
        name("--gate-copy-side", "0.3"),
        name("--copy-gate-weight", "2"),
    }
    assert len(names) == 11

    assert name("--seed", "2", "--lr", "0.001", "--max-steps", "50").endswith(
        "-seed2-lr0.001-steps50"
    )
    assert name("--seed", "1") == name("--seed", "1", "--device", "cpu", "--eval-samples", "5")


@pytest.mark.parametrize("flag", ["--gate-copy-side", "--copy-gate-weight"])
def test_gate_weights_are_not_negative(flag, capsys):
    with pytest.raises(SystemExit) as stopped:
        train.parse_args(["--kg", "filmkg", flag, "-0.5"])
    assert stopped.value.code == 2
    assert f"{flag} must not be negative" in capsys.readouterr().err


def test_damaged_weights_are_refused_and_metrics_are_kept(env, trained, capsys, caplog):
    metrics = (trained / "metrics.json").read_bytes()

    zeroed = env["root"] / "zeroed"
    shutil.copytree(trained, zeroed)
    saved = load_file(zeroed / WEIGHTS)
    name = next(k for k, v in saved.items() if v.dtype.is_floating_point)
    saved[name].zero_()
    save_file(saved, zeroed / WEIGHTS, metadata={"format": "pt"})  # a valid file: only the digest
    code, _, err = call(evaluate.main, eval_args(env, zeroed), capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        f"error: {zeroed / WEIGHTS}: corrupted: the weights differ from the digest written "
        "when it was saved"
    )
    code, _, err = call(train.main, train_args(env, zeroed, "--max-steps", "2"), capsys)
    assert code == 2 and f"{zeroed / WEIGHTS}: corrupted" in err
    assert (zeroed / "metrics.json").read_bytes() == metrics

    flipped = env["root"] / "flipped"
    shutil.copytree(trained, flipped)
    data = bytearray((flipped / WEIGHTS).read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # inside the tensor data
    (flipped / WEIGHTS).write_bytes(bytes(data))
    code, _, err = call(evaluate.main, eval_args(env, flipped), capsys)
    assert code == 2 and "corrupted" in err and str(flipped / WEIGHTS) in err

    undigested = env["root"] / "undigested"  # no digest in its config: loads, with a warning
    shutil.copytree(trained, undigested)
    config = json.loads((undigested / "config.json").read_text(encoding="utf-8"))
    del config["weights_digest"]
    (undigested / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        code, out, err = call(evaluate.main, eval_args(env, undigested), capsys)
    assert code == 0, err
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(undigested / WEIGHTS) in w and "cannot be verified" in w for w in warned)


def test_damaged_caches_are_built_again_with_the_same_figures(env, trained, capsys, caplog):
    code, out, err = call(evaluate.main, eval_args(env, trained), capsys)
    assert code == 0, err
    expected = json.loads(out.strip().splitlines()[-1])

    root = data_dir()
    (encoded,) = root.glob("model/*/encoded/test-*.npz")
    (keywords,) = root.glob("retrieval/*/keywords-*.json")
    (candidates,) = root.glob("model/*/prepared/candidates/test.jsonl")
    (index,) = root.glob("retrieval/*/index-*/index.faiss")
    (swaps,) = root.glob("model/*/encoded/test-*.value-swap.json")
    (cues,) = root.glob("retrieval/*/relation-cues-*.json")
    swaps.write_bytes(swaps.read_bytes()[:-7])
    cues.write_bytes(cues.read_bytes()[:-9])
    encoded.write_bytes(encoded.read_bytes()[:1000])
    keywords.write_bytes(keywords.read_bytes()[:-5])
    text = candidates.read_bytes()
    lead = next(i for i, byte in enumerate(text) if byte >= 0xE0)  # a 3-byte character
    candidates.write_bytes(text[: lead + 1])  # cut inside it
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING):
        code, out, err = call(evaluate.main, eval_args(env, trained), capsys)
    assert code == 0 and "Traceback" not in err, err
    again = json.loads(out.strip().splitlines()[-1])
    assert {k: again[k] for k in METRICS} == {k: expected[k] for k in METRICS}
    assert again["value_swap"] == expected["value_swap"] and again["value_swap"]["n"] > 0
    warned = " | ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    for path in (encoded, keywords, candidates, index, swaps, cues):
        assert str(path) in warned
