"""``model.generate --video-file``: comments on a video the trained corpus lacks.

The checkpoints are tiny untrained KLVCG models saved over a 4-film demo corpus (this checks
the plumbing, not the comments): one at the demo's 128-d frame features, one at the 1280-d of
the default frame encoder. The video is a 3.5 s clip encoded with PyAV.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from model import generate
from model.backbones import backbone_class, build_backbone
from model.checkpoint import load_checkpoint, save_checkpoint
from model.data.demo import DemoConfig, ensure_demo
from model.data.readers import read_corpus
from model.data.schema import Comment, DataError
from model.data.vocab import Vocab
from model.new_video import (
    FEATURES_RECORD,
    OverlayFeatures,
    VisualSettings,
    trained_visual_settings,
    video_from_file,
)
from tests.model.conftest import call
from tests.model.test_features import COLOURS
from tests.model.videos import encode_video

TINY = dict(
    d_model=24,
    modality_heads=2,
    knowledge_heads=2,
    cross_heads=4,
    decoder_heads=4,
    ffn_factor=2,
    max_step_len=8,
    max_knowledge_len=24,
    max_len=6,
)


def tiny_checkpoint(out: Path, corpus: Path, vocab: Vocab, frame_dim: int) -> Path:
    torch.manual_seed(0)
    cfg, train_cfg = backbone_class("klvcg").configure("cpu", None, len(vocab) + 2, frame_dim)
    cfg = replace(cfg, **TINY)
    data = {"format": "demo", "corpus": str(corpus)}
    save_checkpoint(out, build_backbone(cfg).eval(), cfg, train_cfg, vocab, data, {})
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate-file")
    mp = pytest.MonkeyPatch()
    mp.setenv("DANMAKU_DATA", str(root / "data"))
    corpus = ensure_demo(root / "corpus", DemoConfig(films=4))
    vocab = Vocab.build(list(c.text) for v in read_corpus("demo", corpus) for c in v.comments)
    yield {
        "root": root,
        "corpus": corpus,
        "demo_ckpt": tiny_checkpoint(root / "ckpt-128", corpus, vocab, 128),
        "lite_ckpt": tiny_checkpoint(root / "ckpt-1280", corpus, vocab, 1280),
        "clip": encode_video(root / "clip.mp4", COLOURS, seconds=3.5),
        "common": ["--embedder", "hashing:32", "--device", "cpu", "--no-progress", "--beam", "2"],
    }
    mp.undo()


def run_generate(env, ckpt: str, *argv: str, capsys) -> tuple[int, str, str]:
    return call(generate.main, ["--checkpoint", str(env[ckpt]), *env["common"], *argv], capsys)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_a_video_file_gets_comments_from_its_extracted_frames(env, capsys):
    code, out, err = run_generate(
        env, "lite_ckpt", "--video-file", str(env["clip"]), "--t", "2", "--json", capsys=capsys
    )
    assert code == 0, err
    result = last_json(out)  # the single-t JSON: Generation.as_dict(), as for --video
    assert set(result) == {"video", "t", "comments", "facts", "facts_by", "other_comments"}
    assert result["video"] == "clip" and result["t"] == 2
    assert 1 <= len(result["comments"]) <= 2 and all(c["text"] for c in result["comments"])
    cached = list((env["root"] / "data" / "features" / "efficientnet-lite0").glob("*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (4, 1280)
    code, out, _ = run_generate(
        env, "lite_ckpt", "--video-file", str(env["clip"]), "--t", "2", capsys=capsys
    )
    assert code == 0 and out.startswith("video clip t=2\n")


def test_every_n_seconds_and_the_json_of_several(env, capsys):
    argv = ["--video-file", str(env["clip"]), "--every", "2", "--no-frames", "--json"]
    code, out, err = run_generate(env, "demo_ckpt", *argv, capsys=capsys)
    assert code == 0, err
    result = last_json(out)
    assert set(result) == {"video", "duration_s", "items"}
    assert result["video"] == "clip" and result["duration_s"] == pytest.approx(3.5, abs=0.1)
    assert [item["t"] for item in result["items"]] == [0, 2]
    assert all(item["video"] == "clip" and item["comments"] for item in result["items"])
    code, out, _ = run_generate(env, "demo_ckpt", *argv[:-1], capsys=capsys)
    assert code == 0 and out.count("video clip t=") == 2


def test_frames_of_another_size_are_refused_before_decoding(env, capsys, monkeypatch):
    from model.data import features

    decoded = []
    monkeypatch.setattr(features, "iter_second_frames", lambda *a: decoded.append(a) or iter(()))
    code, _, err = run_generate(
        env, "demo_ckpt", "--video-file", str(env["clip"]), "--t", "1", capsys=capsys
    )
    assert code == 2 and not decoded
    (line,) = err.strip().splitlines()[-1:]
    assert line.startswith("error: ") and "128-d" in line and "1280-d" in line
    assert "--no-frames" in line and "--visual-backbone" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--video", "demo0000", "--video-file", "x.mp4", "--t", "1"], "not allowed with"),
        (["--t", "1"], "one of the arguments --video --video-file is required"),
        (["--video", "demo0000", "--t", "1", "--every", "2"], "not allowed with"),
    ],
)
def test_one_video_and_one_time_are_required(env, capsys, argv, message):
    code, _, err = run_generate(env, "demo_ckpt", *argv, capsys=capsys)
    assert code == 2 and message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "x.srt"], "--out x.srt: unknown extension '.srt'; use .ass or .xml"),
        (["--out", "x"], "unknown extension '(none)'"),
        (["--every", "0"], "--every 0: must be a whole number of seconds, at least 1"),
        (["--no-frames", "--visual-backbone", "resnet18"], "--no-frames extracts no frames"),
    ],
)
def test_bad_options_are_refused_before_any_work(env, capsys, argv, message):
    """The checkpoint does not even exist: the options are checked first."""
    argv = ["--checkpoint", "nope", "--video-file", str(env["clip"]), *argv]
    if "--every" not in argv:
        argv += ["--t", "1"]
    code, _, err = call(generate.main, argv, capsys)
    (line,) = err.strip().splitlines()
    assert code == 2 and line.startswith("error: ") and message in line


def test_file_options_need_a_video_file(env, capsys):
    code, _, err = run_generate(
        env, "demo_ckpt", "--video", "demo0000", "--t", "1", "--no-frames", capsys=capsys
    )
    assert code == 2 and "--no-frames: only with --video-file" in err


def test_a_corpus_video_still_works_and_every_covers_it(env, capsys):
    video = read_corpus("demo", env["corpus"]).split("test")[0]
    code, out, err = run_generate(
        env, "demo_ckpt", "--video", video.id, "--every", "300", "--json", capsys=capsys
    )
    assert code == 0, err
    result = last_json(out)
    assert result["video"] == video.id and result["duration_s"] == video.duration_s
    assert [i["t"] for i in result["items"]] == list(range(0, int(np.ceil(video.duration_s)), 300))


def test_the_library_adds_a_video_without_changing_the_generator(env):
    from common.settings import RunSettings
    from model.generator import Generator
    from retrieval.bootstrap import open_bootstrapped_store
    from retrieval.context import build_context

    ckpt = load_checkpoint(env["demo_ckpt"])
    settings = RunSettings(corpus=str(env["corpus"]), embedder="hashing:32", device="cpu")
    ctx = build_context(settings, open_bootstrapped_store(settings))
    try:
        gen = Generator.load(ckpt, ctx, "cpu")
        talk = [Comment(0.5, "阿甘正传真好看"), Comment(2.2, "汤姆·汉克斯演的阿甘")]
        clip = video_from_file(env["clip"], talk)
        assert clip.id == clip.title == "clip" and clip.duration_s == pytest.approx(3.5, abs=0.1)
        frames = np.ones((4, 128), np.float32)
        first = gen.for_video(clip, frames)
        encoded = first.encode("clip", 1)
        assert encoded.frame_mask[0].tolist() == [False] * 4 + [True] * 4 + [False] * 3  # 1-5..1+5
        assert first.ctx.keyword_set("clip") >= {"阿甘正传"}
        result = first.generate("clip", 1, beam=2)
        assert any("阿甘正传" in f.head for f in result.facts)  # linked from the comments
        assert "clip" not in gen.ctx.corpus.videos  # the shared generator is unchanged
        second = gen.for_video(replace(clip, comments=[]), None)
        assert not second.encode("clip", 1).frame_mask.any()  # no frames: all masked
        with pytest.raises(DataError, match="'demo0000' .* is a video of the corpus"):
            gen.for_video(replace(clip, id="demo0000"), None)
        with pytest.raises(Exception, match="128-d frame features, but the given frames"):
            gen.for_video(clip, np.ones((4, 64), np.float32))
    finally:
        ctx.store.close()


def test_the_trained_corpus_says_which_backbone(tmp_path):
    assert trained_visual_settings(None) == VisualSettings()
    assert trained_visual_settings(tmp_path) == VisualSettings()
    (tmp_path / "w.pth").write_bytes(b"")
    record = tmp_path / FEATURES_RECORD
    record.parent.mkdir()
    record.write_text(json.dumps({"backbone": "resnet18", "dim": 512, "weights": "w.pth"}))
    got = trained_visual_settings(tmp_path)
    assert got.backbone == "resnet18" and got.weights == tmp_path / "w.pth"
    assert str(record) in got.describe()
    record.write_text(json.dumps({"backbone": "vgg", "dim": 1, "weights": None}))
    with pytest.raises(DataError, match="field 'backbone': 'vgg'"):
        trained_visual_settings(tmp_path)


def test_overlay_features_read_the_new_video_over_the_corpus():
    class Base:
        dim = 3

        def get(self, video_id, second):
            return np.full(3, second, np.float32) if video_id == "old" else None

    overlay = OverlayFeatures(Base(), "new", np.arange(6, dtype=np.float32).reshape(2, 3), 3)
    assert overlay.get("new", 1).tolist() == [3, 4, 5] and overlay.get("new", 2) is None
    assert overlay.get("old", 7).tolist() == [7, 7, 7]
    assert OverlayFeatures(Base(), "new", None, 5).get("old", 1) is None  # another size


def test_the_options_choose_the_backbone_over_the_record(tmp_path):
    from argparse import Namespace

    from common.settings import RunSettings

    record = tmp_path / FEATURES_RECORD
    record.parent.mkdir()
    record.write_text(json.dumps({"backbone": "resnet101", "dim": 2048, "weights": "/w101.pth"}))
    settings = RunSettings(corpus=str(tmp_path))
    chosen = generate.visual_settings(
        Namespace(visual_backbone=None, visual_weights=None), settings
    )
    assert (chosen.backbone, chosen.weights) == ("resnet101", Path("/w101.pth"))
    args = Namespace(visual_backbone=None, visual_weights=Path("/other.pth"))
    chosen = generate.visual_settings(args, settings)
    assert (chosen.backbone, chosen.weights) == ("resnet101", Path("/other.pth"))
    args = Namespace(visual_backbone="resnet18", visual_weights=Path("/w18.pth"))
    chosen = generate.visual_settings(args, settings)
    assert (chosen.backbone, chosen.weights, chosen.source) == (
        "resnet18",
        Path("/w18.pth"),
        "--visual-backbone",
    )


# --- the comments given, and the comments written ----------------------------------------------


def test_the_comments_given_are_the_window_and_are_linked_to_the_kg(env, capsys, tmp_path):
    from model.data.comment_files import write_bilibili_xml

    talk = tmp_path / "talk.xml"
    write_bilibili_xml([Comment(0.5, "阿甘正传真好看"), Comment(2.2, "汤姆·汉克斯演的阿甘")], talk)
    argv = ["--video-file", str(env["clip"]), "--comments", str(talk), "--no-frames"]
    code, out, err = run_generate(env, "demo_ckpt", *argv, "--t", "1", "--json", capsys=capsys)
    assert code == 0, err
    result = last_json(out)
    assert any("阿甘正传" in f["head"] for f in result["facts"]), result["facts"]
    # without them the window is empty: nothing names the film
    code, out, _ = run_generate(
        env, "demo_ckpt", *argv[:2], "--no-frames", "--t", "1", "--json", capsys=capsys
    )
    assert code == 0 and not last_json(out)["facts"]
    broken = tmp_path / "broken.json"
    broken.write_text("{}", encoding="utf-8")
    code, _, err = run_generate(
        env,
        "demo_ckpt",
        *argv[:2],
        "--comments",
        str(broken),
        "--no-frames",
        "--t",
        "1",
        capsys=capsys,
    )
    (line,) = err.strip().splitlines()[-1:]
    assert code == 2 and line.startswith("error: ") and "broken.json" in line


@pytest.mark.parametrize("suffix", [".ass", ".xml"])
def test_out_writes_the_best_comment_of_each_second_at_that_second(env, capsys, tmp_path, suffix):
    from model.data.comment_files import read_comment_file

    out = tmp_path / "overlay" / f"clip{suffix}"
    argv = ["--video-file", str(env["clip"]), "--every", "1", "--no-frames", "--out", str(out)]
    code, stdout, err = run_generate(env, "demo_ckpt", *argv, "--json", capsys=capsys)
    assert code == 0, err
    best = [(float(i["t"]), i["comments"][0]["text"]) for i in last_json(stdout)["items"]]
    assert [t for t, _ in best] == [0, 1, 2, 3]
    if suffix == ".ass":
        import pysubs2

        events = pysubs2.load(str(out)).events
        assert [(e.start / 1000, e.plaintext) for e in events] == best
        assert all(e.end > e.start for e in events)
    else:
        read = read_comment_file(out)
        assert read.format == "bilibili-xml" and not read.skipped
        assert [(c.time_s, c.text) for c in read.comments] == best
