"""Per-second frame features from video files: ``python -m model.features VIDEO... --out FILE``.

Formats: docs/data-contracts.md, section "Frame features".

The corpora ship one visual vector per second of video, from an ImageNet CNN run on frames
sampled at 1 fps (LiveBot: ResNet-18, 512-d, ``res18.pkl``;
VideoIC and KLVCG/MovieLC: ResNet-101, 2048-d, ``image.pkl`` / ``*101.pkl``). This module makes
the same kind of file from the user's own videos: decoding with PyAV, a backbone from
:mod:`model.data.frame_encoders` (EfficientNet-Lite0 with its bundled weights by default; ResNet-18
/ -101 given torchvision-format ``--weights``), written in VideoIC's ``image.pkl`` layout
``{video_id: {second (int): np.ndarray float32 (dim,)}}`` with ``torch.save`` (read it back
with ``torch.load(..., weights_only=False)``).

Frame-sampling rule (1 fps, variable frame rates included): timestamps are taken relative to
the first decoded frame. Second ``s`` gets the first frame whose timestamp is at or after
``s`` and before ``s + 1``; a second with no frame of its own (a gap in a variable-frame-rate
stream) gets the frame still on screen, the last one before it. The video has
``N = max(floor(t_last) + 1, ceil(duration))`` seconds, ``t_last`` being the last frame's
timestamp and ``duration`` the container's (when it reports one), so a 3.5 s clip gives seconds
0..3, a clip shorter than one second gives second 0, and a last frame held on screen until
the end covers the seconds it is shown. Each frame is resized (shorter side to the backbone's
``resize``), centre-cropped to ``crop`` x ``crop`` and normalised as its weights expect.

Cache (generated state under ``$DANMAKU_DATA``: docs/architecture.md, section "Data flow"):
one ``(N, dim)`` float32 array per video at ``$DANMAKU_DATA/features/<backbone>/<key>.npy``,
with a ``<key>.json`` saying what it was built from. ``key`` = sha256 of the extraction
settings (cache format version, backbone, the weights file's fingerprint, crop, resize, mean,
std) and the video's fingerprint (its size and its first and last MiB), so a renamed, copied
or touched video is still found, and changing the video, the weights or the preprocessing
makes a new entry. ``--no-cache`` disables it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.atomic import atomic_open, write_json
from common.cli import print_json, run
from common.device import resolve_device
from common.paths import data_dir
from model.data.frame_encoders import (
    VISUAL_BACKBONES,
    FeatureError,
    VisualSpec,
    build_visual_backbone,
)

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "efficientnet-lite0"
CACHE_VERSION = 1
FINGERPRINT_BYTES = 1 << 20
SAMPLING_RULE = "first frame in [s, s+1) relative to the first frame; gaps hold the last frame"

VideoFeatures = dict[str, dict[int, np.ndarray]]  # VideoIC image.pkl: {video: {second: (dim,)}}


@dataclass
class FeatureConfig:
    """How to extract: which backbone and weights, batch size, device, whether to cache."""

    backbone: str = DEFAULT_BACKBONE
    weights: Path | None = None  # None: the backbone's bundled weights (ResNets have none)
    batch_size: int = 32
    device: str = "auto"  # auto = CUDA when available
    cache: bool = True
    progress: bool | None = None  # None: tqdm's default, a bar only when stderr is a terminal


def file_fingerprint(path: Path, nbytes: int = FINGERPRINT_BYTES) -> str:
    """sha256 of a file's size, first ``nbytes`` and last ``nbytes`` (not its name or mtime)."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(nbytes))
        if size > nbytes:
            f.seek(max(nbytes, size - nbytes))
            h.update(f.read(nbytes))
    return h.hexdigest()


# --- decoding ----------------------------------------------------------------------------------


def frame_to_rgb(frame, spec: VisualSpec) -> np.ndarray:
    """Shorter side to ``spec.resize`` (swscale, area filter), centre crop: (S, S, 3) uint8."""
    w, h, crop = frame.width, frame.height, spec.crop
    scale = spec.resize / min(w, h)
    nw, nh = max(crop, round(w * scale)), max(crop, round(h * scale))
    img = frame.reformat(width=nw, height=nh, format="rgb24", interpolation="AREA").to_ndarray()
    top, left = (nh - crop) // 2, (nw - crop) // 2
    return np.ascontiguousarray(img[top : top + crop, left : left + crop])


def _frame_times(frames: Iterable, rate: float) -> Iterator[tuple[float, object]]:
    """(seconds since the first frame, frame); a frame without a timestamp follows the last."""
    t0: float | None = None
    t = -1.0 / rate
    for frame in frames:
        t = frame.time if frame.time is not None else t + 1.0 / rate
        if t0 is None:
            t0 = t
        yield t - t0, frame


def sample_seconds(frames: Iterable, spec: VisualSpec, rate: float, duration: float | None):
    """Yield ``(second, image)`` for seconds 0..N-1 by the module's sampling rule."""
    next_s, last, held = 0, None, None  # held: `last` converted, for repeated gap fills
    for t, frame in _frame_times(frames, rate):
        s = math.floor(t + 1e-6)
        if s >= next_s:
            for gap in range(next_s, s):  # no frame of their own: the picture still shown
                held = held if held is not None else frame_to_rgb(last, spec)
                yield gap, held
            yield s, frame_to_rgb(frame, spec)
            next_s = s + 1
        last, held = frame, None
    if last is None:
        return
    end = math.ceil(duration - 1e-3) if duration else 0
    for s in range(next_s, end):  # the last frame stays on screen to the container's end
        held = held if held is not None else frame_to_rgb(last, spec)
        yield s, held


def _stream_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _open_video(path: Path):
    """``(container, its first video stream)``; an unreadable file or one without video is a
    :class:`FeatureError`. The caller closes the container."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise FeatureError(f"{path}: not a readable video ({_reason(e)})") from e
    if not container.streams.video:
        container.close()
        raise FeatureError(f"{path}: no video stream")
    return container, container.streams.video[0]


def video_duration(path: Path) -> float:
    """The seconds a video file lasts: its video stream's or container's duration, else the end
    of its last video packet (read without decoding)."""
    if not path.is_file():
        raise FeatureError(f"{path}: {'not a file' if path.exists() else 'video file not found'}")
    container, stream = _open_video(path)
    with container:
        duration = _stream_duration(container, stream)
        if duration is None and stream.time_base is not None:
            ends = [
                float((p.pts + (p.duration or 0)) * stream.time_base)
                for p in container.demux(stream)
                if p.pts is not None
            ]
            duration = max(ends, default=None)
    if not duration or duration <= 0:
        raise FeatureError(f"{path}: the container gives no duration")
    return duration


def iter_second_frames(path: Path, spec: VisualSpec) -> Iterator[tuple[int, np.ndarray]]:
    """Decode ``path`` and yield one preprocessed RGB frame per second (see module docstring)."""
    import av

    container, stream = _open_video(path)
    with container:
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        duration = _stream_duration(container, stream)
        n = 0
        try:
            for item in sample_seconds(container.decode(stream), spec, rate, duration):
                n += 1
                yield item
        except av.FFmpegError as e:
            raise FeatureError(f"{path}: decoding failed after {n} s ({_reason(e)})") from e
        if n == 0:
            raise FeatureError(f"{path}: no decodable video frames")


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:200] or type(e).__name__


# --- extraction --------------------------------------------------------------------------------


class FrameFeatureExtractor:
    """A loaded backbone on a device, turning one video file into an ``(N, dim)`` array."""

    def __init__(self, config: FeatureConfig) -> None:
        if config.batch_size < 1:
            raise FeatureError(f"--batch-size {config.batch_size}: must be at least 1")
        self.config = config
        self.device = resolve_device(config.device)
        self.encoder = build_visual_backbone(config.backbone, config.weights).to(self.device)
        self.spec: VisualSpec = self.encoder.spec
        shape = (1, 3, 1, 1)
        self.mean = torch.tensor(self.spec.mean, device=self.device).view(shape)
        self.std = torch.tensor(self.spec.std, device=self.device).view(shape)
        weights = file_fingerprint(config.weights) if config.weights else "bundled"
        self.settings = {
            "cache_version": CACHE_VERSION,
            "backbone": self.spec.name,
            "weights": weights,
            "crop": self.spec.crop,
            "resize": self.spec.resize,
            "mean": list(self.spec.mean),
            "std": list(self.spec.std),
            "sampling": SAMPLING_RULE,
        }

    @property
    def dim(self) -> int:
        return self.spec.dim

    def cache_path(self, video: Path) -> Path:
        h = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode())
        h.update(file_fingerprint(video).encode())
        return data_dir() / "features" / self.spec.name / f"{h.hexdigest()}.npy"

    def video(self, path: Path, bar=None) -> tuple[np.ndarray, bool]:
        """Features of every second of ``path`` (row = second) and whether the cache had them."""
        if not path.is_file():
            reason = "not a file" if path.exists() else "video file not found"
            raise FeatureError(f"{path}: {reason}")
        cache = self.cache_path(path) if self.config.cache else None
        if cache is not None and (cached := self._load_cached(cache)) is not None:
            if bar is not None:
                bar.update(len(cached))
            return cached, True
        feats = self._compute(path, bar)
        if cache is not None:
            meta = {**self.settings, "video": str(path), "seconds": len(feats), "dim": self.dim}
            with atomic_open(cache) as f:
                np.save(f, feats)
            write_json(cache.with_suffix(".json"), meta)
        return feats, False

    def _load_cached(self, cache: Path) -> np.ndarray | None:
        if not cache.is_file():
            return None
        try:
            arr = np.load(cache, allow_pickle=False)
        except (OSError, ValueError) as e:
            log.warning("%s: unreadable cache entry, extracting again (%s)", cache, e)
            return None
        if arr.ndim != 2 or arr.shape[1] != self.dim or arr.dtype != np.float32:
            log.warning("%s: cache entry has shape %s, extracting again", cache, arr.shape)
            return None
        return arr

    def _compute(self, path: Path, bar=None) -> np.ndarray:
        out: list[np.ndarray] = []
        batch: list[np.ndarray] = []
        for second, image in iter_second_frames(path, self.spec):
            assert second == len(out) * self.config.batch_size + len(batch)  # contiguous
            batch.append(image)
            if len(batch) == self.config.batch_size:
                out.append(self.encode(batch))
                batch = []
                if bar is not None:
                    bar.update(self.config.batch_size)
        if batch:
            out.append(self.encode(batch))
            if bar is not None:
                bar.update(len(batch))
        return np.concatenate(out).astype(np.float32, copy=False)

    @torch.inference_mode()
    def encode(self, images: list[np.ndarray]) -> np.ndarray:
        """(B, crop, crop, 3) uint8 RGB frames -> (B, dim) float32 features."""
        x = torch.from_numpy(np.stack(images)).to(self.device)  # (B, S, S, 3) uint8
        x = x.permute(0, 3, 1, 2).float().div_(255)  # (B, 3, S, S) in 0..1
        x = (x - self.mean) / self.std
        return self.encoder(x).float().cpu().numpy()  # (B, dim)


def video_ids(paths: list[Path], ids: list[str] | None = None) -> list[str]:
    """File stems (or the given ids); two videos with one id are a user error."""
    names = ids if ids is not None else [p.stem for p in paths]
    seen: dict[str, Path] = {}
    for name, path in zip(names, paths, strict=True):
        if name in seen:
            raise FeatureError(f"{path}: video id {name!r} also used by {seen[name]} (use --id)")
        seen[name] = path
    return names


def extract(
    paths: list[Path], config: FeatureConfig, ids: list[str] | None = None
) -> tuple[VideoFeatures, dict]:
    """Features of every video in the ``image.pkl`` layout, and a summary of the run."""
    from tqdm import tqdm

    names = video_ids(paths, ids)
    extractor = FrameFeatureExtractor(config)
    result: VideoFeatures = {}
    cached, start = 0, time.perf_counter()
    with tqdm(
        unit="s", desc="frames", disable=None if config.progress is None else not config.progress
    ) as bar:
        for i, (name, path) in enumerate(zip(names, paths, strict=True), 1):
            bar.set_postfix_str(f"[{i}/{len(paths)}] {path.name}")
            feats, hit = extractor.video(path, bar)
            cached += hit
            result[name] = {s: np.array(row, dtype=np.float32) for s, row in enumerate(feats)}
    elapsed = time.perf_counter() - start
    seconds = sum(len(v) for v in result.values())
    summary = {
        "videos": len(result),
        "seconds": seconds,
        "dim": extractor.dim,
        "backbone": extractor.spec.name,
        "device": str(extractor.device),
        "cached": cached,
        "elapsed_s": round(elapsed, 3),
        "seconds_per_s": round(seconds / elapsed, 2) if elapsed > 0 else None,
    }
    return result, summary


def save_features(features: VideoFeatures, out: Path) -> None:
    """``torch.save`` the ``image.pkl`` dict to ``out`` atomically (old ``out`` kept on failure)."""
    with atomic_open(out) as f:
        torch.save(features, f)


# --- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m model.features",
        description="Per-second (1 fps) frame features of video files, VideoIC image.pkl layout.",
    )
    p.add_argument("videos", nargs="+", type=Path, help="video files (mp4, flv, mkv, ...)")
    p.add_argument("--out", type=Path, required=True, help="output file ({video: {second: vec}})")
    p.add_argument("--backbone", choices=sorted(VISUAL_BACKBONES), default=DEFAULT_BACKBONE)
    p.add_argument("--weights", type=Path, help="torchvision-format state dict (ResNets: required)")
    p.add_argument("--batch-size", type=int, default=32, help="frames per forward pass")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda[:N]")
    p.add_argument("--id", help="video id when extracting one video (default: the file stem)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    p.add_argument("--json", action="store_true", help="last line: one JSON object of figures")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.id is not None and len(args.videos) != 1:
        raise FeatureError(f"--id {args.id!r}: only with one video ({len(args.videos)} given)")
    config = FeatureConfig(
        backbone=args.backbone,
        weights=args.weights,
        batch_size=args.batch_size,
        device=args.device,
        cache=not args.no_cache,
    )
    ids = [args.id] if args.id is not None else None
    features, summary = extract(args.videos, config, ids)
    save_features(features, args.out)
    summary["out"] = str(args.out)
    if args.json:
        print_json(summary)
    else:
        print(
            f"wrote {summary['videos']} videos, {summary['seconds']} s, "
            f"{summary['dim']}-d {summary['backbone']} features to {args.out} "
            f"({summary['cached']} from cache, {summary['seconds_per_s']} video-s/s)"
        )
    return 0


if __name__ == "__main__":
    run(main)
