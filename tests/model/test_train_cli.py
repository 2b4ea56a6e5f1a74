"""``model.train`` / ``model.evaluate`` / ``model.generate`` end to end on a small demo corpus and
the bundled FilmKG sample (a few training steps: this checks the plumbing, the JSON contract,
resumption and the errors, not the quality)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from model import evaluate, generate, train
from model.checkpoint import STATE, WEIGHTS
from model.data.demo import DemoConfig, ensure_demo
from model.data.vocab import VOCAB_FILE
from model.train_log import METRICS_CSV, read_log
from model.trainer import Trainer
from tests.model.conftest import METRICS, call, train_quietly

pytestmark = pytest.mark.slow


def train_args(env, out, *extra) -> list[str]:
    return [
        "--kg",
        "filmkg",
        *env["common"],
        "--out",
        str(out),
        "--batch-size",
        "8",
        "--dev-samples",
        "8",
        "--eval-samples",
        "24",
        "--generation-samples",
        "2",
        "--json",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(env):
    out = env["root"] / "ckpt"
    stdout = train_quietly(train_args(env, out, "--max-steps", "2"))
    return out, json.loads(stdout.strip().splitlines()[-1]), stdout


def test_train_prints_the_metrics_table_and_json_contract(trained):
    out, report, text = trained
    for block in (report, report["knowledge_subset"]):
        assert set(METRICS) <= set(block)
        assert 0 <= block["r1"] <= block["r5"] <= block["r10"] <= 100
        assert 1 <= block["mr"] <= 100 and 0 < block["mrr"] <= 1
        assert block["ci"]["mrr"][0] <= block["mrr"] <= block["ci"]["mrr"][1]
    assert report["n"] == 24 and report["candidates"] == 100
    assert 0 < report["knowledge_subset"]["n"] < report["n"]
    assert "knowledge subset" in text and "R@10" in text
    for name in (WEIGHTS, STATE, VOCAB_FILE, "config.json", "metrics.json"):
        assert (out / name).is_file()
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config["model"]["d_model"] == 144 and config["train"]["ablation"] == "+copy"
    # the default model: the copy path, rare training words cut to <UNK>
    assert config["model"]["copy"] and config["train"]["min_word_count"] == 2
    assert (
        config["model"]["vocab_size"]
        < len(json.loads((out / VOCAB_FILE).read_text())["word2id"]) + 2
    )
    assert config["vocab_fingerprint"] and config["data"]["format"] == "demo"
    gen = report["generation"]
    assert gen["samples"] == 2 and 0 <= gen["non_empty"] <= 1
    # the curves: every step of both stages (2 each), and the dev MRR the checkpoint was chosen on
    rows = read_log(out / METRICS_CSV)
    steps = [(r["stage"], r["step"], r["global_step"]) for r in rows if r["loss"] is not None]
    assert steps == [("pretrain", 1, 1), ("pretrain", 2, 2), ("finetune", 1, 3), ("finetune", 2, 4)]
    (dev,) = [r["dev_mrr"] for r in rows if r["dev_mrr"] is not None]
    assert round(dev, 4) == config["dev"]["mrr"]
    assert report["train_samples"] == 4 * 8 and report["train_samples_per_s"] > 0


def test_running_again_only_re_evaluates_and_gives_the_same_numbers(env, trained, capsys):
    out, report, _ = trained
    before = (out / WEIGHTS).read_bytes()
    code, stdout, _ = call(train.main, train_args(env, out, "--max-steps", "2"), capsys)
    assert code == 0
    again = json.loads(stdout.strip().splitlines()[-1])
    assert {k: again[k] for k in METRICS} == {k: report[k] for k in METRICS}
    assert (out / WEIGHTS).read_bytes() == before


def test_evaluate_reproduces_the_training_metrics(env, trained, capsys):
    out, report, _ = trained
    argv = ["--checkpoint", str(out), "--no-progress", "--eval-samples", "24", "--json"]
    argv += ["--generation-samples", "0", "--embedder", "hashing:32"]
    argv += ["--corpus", str(env["corpus"]), "--format", "demo"]
    code, stdout, _ = call(evaluate.main, argv, capsys)
    assert code == 0
    again = json.loads(stdout.strip().splitlines()[-1])
    for key in METRICS:
        assert again[key] == pytest.approx(report[key])
        assert again["knowledge_subset"][key] == pytest.approx(report["knowledge_subset"][key])


def test_generate_prints_beam_comments_and_the_facts_used(env, trained, capsys):
    out, _, _ = trained
    from model.data.readers import read_corpus

    corpus = read_corpus("demo", env["corpus"])
    video = corpus.split("test")[0]
    t = video.comments[len(video.comments) // 2].second
    argv = ["--checkpoint", str(out), *env["common"], "--video", video.id, "--t", str(t)]
    code, stdout, _ = call(generate.main, [*argv, "--json"], capsys)
    assert code == 0
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["video"] == video.id and result["t"] == t
    assert 1 <= len(result["comments"]) <= 5
    assert all(c["text"].strip() for c in result["comments"])
    assert result["facts_by"] == "copy"  # the default model copies: facts by copy mass
    weights = [f["weight"] for f in result["facts"]]
    assert weights == sorted(weights, reverse=True) and sum(weights) <= 1 + 1e-3
    for c in result["comments"]:
        assert 0 <= c["copied"] <= 1 and len(c["words"]) >= 1
    code, _, err = call(generate.main, [*argv[:-4], "--video", "nope", "--t", "3"], capsys)
    assert code == 2 and "unknown video 'nope'" in err
    code, _, err = call(generate.main, [*argv[:-2], "--t", "99999"], capsys)
    assert code == 2 and "outside" in err


def test_an_interrupted_run_resumes_where_it_stopped(env, capsys, monkeypatch):
    """Ctrl-C in fine-tuning, then the same command: the run goes on from the step it was
    interrupted at and ends with the weights of an uninterrupted run."""
    args = ("--max-steps", "4", "--eval-every", "2", "--eval-samples", "4")
    straight, resumed = env["root"] / "straight", env["root"] / "resumed"
    assert call(train.main, train_args(env, straight, *args), capsys)[0] == 0

    real_loss = Trainer._loss

    def interrupt_at_step_3(self, stage, batch, gen):
        if stage == "finetune" and self.state.step == 3:
            raise KeyboardInterrupt
        return real_loss(self, stage, batch, gen)

    monkeypatch.setattr(Trainer, "_loss", interrupt_at_step_3)
    code, _, err = call(train.main, train_args(env, resumed, *args), capsys)
    assert code == 130 and "run the same command again" in err
    mid = torch.load(resumed / STATE, weights_only=True)
    assert (mid["stage"], mid["step"]) == ("finetune", 3)
    monkeypatch.setattr(Trainer, "_loss", real_loss)
    assert call(train.main, train_args(env, resumed, *args), capsys)[0] == 0

    a = torch.load(straight / STATE, weights_only=True)
    b = torch.load(resumed / STATE, weights_only=True)
    assert (b["stage"], b["step"]) == ("finetune", 4)

    def flat(state):
        return torch.cat([v.flatten().double() for v in state["model_state"].values()])

    # The last step moved the weights by `moved`; the resumed run lands on the same point up
    # to float rounding across processes (Adam magnifies last-bit differences of tiny
    # gradients). A wrong resume (a step skipped or repeated, a fresh optimiser or schedule)
    # lands as far away as a whole step.
    moved = (flat(a) - flat(mid)).norm()
    assert (flat(a) - flat(b)).norm() < 0.05 * moved


def test_bad_checkpoints_and_runs_are_refused_and_nothing_is_overwritten(env, trained, capsys):
    out, _, _ = trained
    eval_argv = ["--no-progress", "--embedder", "hashing:32", "--json"]
    eval_argv += ["--corpus", str(env["corpus"]), "--format", "demo"]

    broken = env["root"] / "broken"
    shutil.copytree(out, broken)
    data = (broken / WEIGHTS).read_bytes()
    (broken / WEIGHTS).write_bytes(data[: len(data) // 2])
    code, _, err = call(evaluate.main, ["--checkpoint", str(broken), *eval_argv], capsys)
    assert code == 2 and "corrupted" in err and "Traceback" not in err
    assert (broken / WEIGHTS).read_bytes() == data[: len(data) // 2]

    other_vocab = env["root"] / "other-vocab"
    shutil.copytree(out, other_vocab)
    doc = json.loads((other_vocab / VOCAB_FILE).read_text(encoding="utf-8"))
    words = sorted(doc["word2id"], key=doc["word2id"].get)
    words[10], words[11] = words[11], words[10]
    doc = {"word2id": {w: i for i, w in enumerate(words)}}
    (other_vocab / VOCAB_FILE).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    code, _, err = call(evaluate.main, ["--checkpoint", str(other_vocab), *eval_argv], capsys)
    assert code == 2 and "vocabulary" in err

    other_config = env["root"] / "other-config"
    shutil.copytree(out, other_config)
    config = json.loads((other_config / "config.json").read_text(encoding="utf-8"))
    config["model"]["d_model"] = 96  # weights of a d=144 model under a d=96 configuration
    (other_config / "config.json").write_text(json.dumps(config), encoding="utf-8")
    code, _, err = call(evaluate.main, ["--checkpoint", str(other_config), *eval_argv], capsys)
    assert code == 2 and "do not fit their configuration" in err

    other_corpus = ensure_demo(env["root"] / "corpus2", DemoConfig(films=4, seed=9))
    argv = ["--checkpoint", str(out), *eval_argv[:-4], "--corpus", str(other_corpus)]
    code, _, err = call(evaluate.main, [*argv, "--format", "demo"], capsys)
    assert code == 2 and "trained with vocabulary" in err

    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, _, err = call(train.main, train_args(env, out, "--ablation", "basic"), capsys)
    assert code == 2 and "nothing was overwritten" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before

    code, _, err = call(evaluate.main, ["--checkpoint", str(env["root"] / "none")], capsys)
    assert code == 2 and "no such checkpoint" in err


def test_tensorboard_curves_and_a_time_budget(env, tmp_path):
    out, tb = env["root"] / "budget", tmp_path / "tb"
    argv = ["--ablation", "basic", "--budget-minutes", "0.0001", "--tensorboard", str(tb)]
    report = json.loads(train_quietly(train_args(env, out, *argv)).strip().splitlines()[-1])
    # 6 ms of training: the one stage stops after its first step, evaluated there
    assert report["train_samples"] == 8 and report["dev_mrr"] is not None
    rows = read_log(out / METRICS_CSV)
    assert [r["step"] for r in rows if r["loss"] is not None] == [1]
    events = EventAccumulator(str(tb))
    events.Reload()
    assert {"finetune/loss", "finetune/lr", "dev/mrr"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("finetune/loss")] == [1]
    assert json.loads((out / "config.json").read_text())["train"]["time_budget_s"] == 0.006
