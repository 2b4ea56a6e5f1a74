"""A video file that is not in the corpus, made ready for generation (``model.generate
--video-file``; design: docs/architecture.md, section "Model").

KLVCG (§IV) comments on a window of a video: its frames, the viewers' comments around t and
the facts recalled for them. A checkpoint is trained on one corpus, so a new video joins that
corpus's retrieval context (:meth:`retrieval.context.RetrievalContext.with_video`): a
:class:`~model.data.schema.Video` with the file's stem as id and title (a title that names a
film links it, as a corpus video's does), the container's duration and the comments given for
it (none: the model comments from the frames and the video's topic only); its keyword set
scored against the corpus; and its per-second features overlaid on the corpus's
(:class:`OverlayFeatures`). Nothing of the shared context changes, so one loaded
:class:`~model.generator.Generator` serves any number of videos.

The frames must be what the checkpoint was trained on: the same visual backbone and weights,
hence the same dimension. The corpus records them in ``extras/features.json``
(``{"backbone", "dim", "weights"}``, written by ``model.data.ingest``); without that record
the default backbone of :mod:`model.data.features` is assumed. Features whose dimension differs
from the checkpoint's are refused before any frame is decoded; without frames
(``use_frames=False``) every second is a missing feature, zero and masked, as in a training
sample whose features are missing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.checkpoint import Checkpoint, CheckpointError
from model.data.features import (
    DEFAULT_BACKBONE,
    FeatureConfig,
    FrameFeatureExtractor,
    video_duration,
)
from model.data.frame_encoders import VISUAL_BACKBONES
from model.data.schema import Comment, DataError, FrameFeatures, Video
from retrieval.context import RetrievalContext

log = logging.getLogger(__name__)

FEATURES_RECORD = Path("extras") / "features.json"


@dataclass(frozen=True)
class VisualSettings:
    """Which frame encoder to extract with: a backbone of :mod:`model.data.frame_encoders` and its
    weights file (None: the bundled ones); ``source`` says where the choice came from."""

    backbone: str = DEFAULT_BACKBONE
    weights: Path | None = None
    source: str = "the default backbone"  # or the option or file that chose it

    def describe(self) -> str:
        return f"the {self.backbone} features ({self.source})"


def trained_visual_settings(corpus_dir: str | Path | None) -> VisualSettings:
    """The backbone the corpus's features were extracted with (``extras/features.json``), or
    the default one when the corpus records none."""
    if corpus_dir is None or not (Path(corpus_dir) / FEATURES_RECORD).is_file():
        return VisualSettings()
    path = Path(corpus_dir) / FEATURES_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: not readable JSON ({e})") from None
    backbone = record.get("backbone") if isinstance(record, dict) else None
    if backbone not in VISUAL_BACKBONES:
        raise DataError(
            f"{path}: field 'backbone': {backbone!r} is not one of {', '.join(VISUAL_BACKBONES)}"
        )
    weights = record.get("weights")
    if weights is not None and not isinstance(weights, str):
        raise DataError(f"{path}: field 'weights': expected a path or null, got {weights!r}")
    if weights is not None and not Path(weights).is_absolute():
        beside = Path(corpus_dir) / weights  # a path relative to the corpus, else to here
        weights = str(beside) if beside.exists() else weights
    return VisualSettings(backbone, Path(weights) if weights else None, f"as {path} records")


class OverlayFeatures:
    """The frame features of a corpus with one more video's on top: ``frames`` (N, dim), row =
    second, or None for a video without frames (every second missing). ``dim`` is the new
    video's; a corpus video whose features have another size reads as missing."""

    def __init__(
        self, base: FrameFeatures | None, video_id: str, frames: np.ndarray | None, dim: int
    ) -> None:
        if frames is not None and (frames.ndim != 2 or frames.shape[1] != dim):
            raise ValueError(f"frames of shape {frames.shape}, not (seconds, {dim})")
        self.base, self.video_id, self.frames, self.dim = base, video_id, frames, dim

    def get(self, video_id: str, second: int) -> np.ndarray | None:
        if video_id == self.video_id:
            if self.frames is None or not 0 <= second < len(self.frames):
                return None
            return self.frames[second]
        if self.base is None or self.base.dim != self.dim:
            return None
        return self.base.get(video_id, second)


def video_from_file(path: Path, comments: list[Comment] | None = None) -> Video:
    """The :class:`Video` of a file: id and title its stem, the container's duration, the
    comments given for it (sorted by time)."""
    duration = video_duration(path)
    comments = sorted(comments or [], key=lambda c: c.time_s)
    late = sum(c.time_s > duration for c in comments)
    if late:
        log.warning("%s: %d of the comments come after its end (%.1f s)", path, late, duration)
    return Video(id=path.stem, title=path.stem, duration_s=duration, comments=comments)


def check_frame_dim(ckpt: Checkpoint, dim: int, what: str) -> None:
    """Refuse frames of another size than the checkpoint's, saying both and what to do."""
    want = ckpt.model_config.frame_dim
    if dim != want:
        raise CheckpointError(
            f"{ckpt.directory}: trained on {want}-d frame features, but {what} are {dim}-d: "
            "extract with the backbone and weights of its corpus (--visual-backbone, "
            "--visual-weights), or pass --no-frames to generate without frames"
        )


def extract_frames(
    path: Path,
    ckpt: Checkpoint,
    visual: VisualSettings,
    device: str = "auto",
    progress: bool | None = None,
) -> np.ndarray:
    """The file's per-second features ``(N, dim)`` with ``visual`` (cached under
    ``$DANMAKU_DATA/features``), refused before decoding when ``dim`` is not the checkpoint's."""
    from tqdm import tqdm

    config = FeatureConfig(visual.backbone, visual.weights, device=device, progress=progress)
    extractor = FrameFeatureExtractor(config)
    check_frame_dim(ckpt, extractor.dim, visual.describe())
    disable = None if progress is None else not progress
    with tqdm(unit="s", desc=f"frames of {path.name}", disable=disable) as bar:
        frames, _ = extractor.video(path, bar)
    return frames


def context_with_video(
    ctx: RetrievalContext, video: Video, frames: np.ndarray | None, ckpt: Checkpoint
) -> RetrievalContext:
    """A copy of ``ctx`` (the trained corpus's) with ``video`` and its ``frames`` (None: all
    missing) added, for a model of ``ckpt``; ``ctx`` itself is left as it was."""
    if video.id in ctx.corpus.videos:
        raise DataError(
            f"video id {video.id!r} (the file's name) is a video of the corpus "
            f"{ctx.corpus.path}: generate for that one with --video {video.id}, or rename the file"
        )
    if frames is not None:
        check_frame_dim(ckpt, frames.shape[1], "the given frames")
    features = OverlayFeatures(ctx.corpus.features, video.id, frames, ckpt.model_config.frame_dim)
    return ctx.with_video(video, features)
