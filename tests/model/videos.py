"""Tiny video files for the tests, encoded with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def encode_video(path: Path, colours: list, seconds: float, fps: int = 10) -> Path:
    """A 64x48 clip at ``fps`` whose frames show ``colours[second]`` (RGB tuples)."""
    codec = "mpeg4" if "mpeg4" in av.codecs_available else "libx264"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(round(seconds * fps)):
            image = np.zeros((48, 64, 3), np.uint8)
            image[:] = colours[min(i // fps, len(colours) - 1)]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
