"""The user's path end to end, on files in the downloaders' layouts: a folder of videos with
their Bilibili XML danmaku and SRT subtitles -> ``model.data.ingest`` -> ``model.train`` ->
``model.generate --video-file`` on a video the corpus never saw, with an ASS overlay out.

Usage: ``python bench/own_videos.py [--films 8] [--budget-minutes 3] [--work DIR] [--every 30]``

The raw files are made from the demo corpus (its films' comments and subtitles, videos whose
frames change colour with the demo's scene features), so they prove the formats and the
plumbing, not that the model learns from real footage. The last test film is held out of the
ingest and commented on as a new video. Prints each step's wall time, throughputs and the
train and generation figures; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.data.comment_files import read_comment_file, write_bilibili_xml  # noqa: E402
from model.data.demo import ensure_demo  # noqa: E402
from model.data.movielc import read_movielc  # noqa: E402


def write_video(path: Path, colours: np.ndarray) -> None:
    """A 64x48 clip at 1 fps whose second s shows ``colours[s]`` (uint8 RGB)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for rgb in colours:
            image = np.broadcast_to(rgb, (48, 64, 3)).copy()
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def write_srt(path: Path, segments) -> None:
    import pysubs2

    subs = pysubs2.SSAFile()
    for s in segments:
        subs.append(
            pysubs2.SSAEvent(start=int(s.start_s * 1000), end=int(s.end_s * 1000), text=s.text)
        )
    subs.save(str(path), format_="srt")


def raw_files(demo, films: int, folder: Path) -> tuple[list[str], str]:
    """The first ``films`` films of the demo (train films first, the test films last) as raw
    files in ``folder/videos``, and one more test film in ``folder/new``."""
    order = sorted(demo, key=lambda v: ({"train": 0, "dev": 1, "test": 2}[v.split], v.id))
    test = [v for v in order if v.split == "test"]
    chosen = [v for v in order if v.split != "test"][: films - 2] + test[:2]
    new = test[-1]
    for video, where in [*((v, "videos") for v in chosen), (new, "new")]:
        out = folder / where
        out.mkdir(parents=True, exist_ok=True)
        seconds = int(np.ceil(video.duration_s))
        feats = np.stack(
            [
                demo.features.get(video.id, s)
                if demo.features.get(video.id, s) is not None
                else np.zeros(demo.features.dim, np.float32)
                for s in range(seconds)
            ]
        )
        colours = (255 / (1 + np.exp(-feats[:, :3] * 3))).astype(np.uint8)
        write_video(out / f"{video.id}.mp4", colours)
        write_bilibili_xml(video.comments, out / f"{video.id}.xml")
        if video.subtitles:
            write_srt(out / f"{video.id}.srt", video.subtitles)
    return [v.id for v in chosen], new.id


def step(name: str, argv: list[str]) -> tuple[dict, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--films", type=int, default=8)
    p.add_argument("--budget-minutes", type=float, default=3.0)
    p.add_argument("--every", type=int, default=30)
    p.add_argument("--work", type=Path, default=Path("own-videos"))
    args = p.parse_args()
    demo = read_movielc(ensure_demo())
    ids, new = raw_files(demo, args.films, args.work / "raw")
    out = args.work / "corpus"
    ingested, t_ingest = step(
        "ingest",
        [
            "model.data.ingest",
            "--videos",
            str(args.work / "raw" / "videos"),
            "--out",
            str(out),
            "--no-progress",
            "--json",
        ],
    )
    trained, t_train = step(
        "train",
        [
            "model.train",
            "--kg",
            "filmkg",
            "--corpus",
            str(out),
            "--format",
            "movielc",
            "--budget-minutes",
            str(args.budget_minutes),
            "--out",
            str(args.work / "ckpt"),
            "--overwrite",
            "--no-progress",
            "--json",
        ],
    )
    overlay = args.work / f"{new}.ass"
    generated, t_gen = step(
        "generate",
        [
            "model.generate",
            "--checkpoint",
            str(args.work / "ckpt"),
            "--video-file",
            str(args.work / "raw" / "new" / f"{new}.mp4"),
            "--comments",
            str(args.work / "raw" / "new" / f"{new}.xml"),
            "--every",
            str(args.every),
            "--out",
            str(overlay),
            "--no-progress",
            "--json",
        ],
    )
    items = generated["items"]
    copied = [c.get("copied", 0.0) for it in items for c in it["comments"][:1]]
    with_facts = sum(1 for it in items if it["facts"] and it["facts"][0]["weight"] > 0)
    back = read_comment_file(overlay)
    result = {
        "films": len(ids),
        "new_video": new,
        "ingest_s": round(t_ingest, 1),
        "ingest_video_s_per_s": round(ingested["seconds"] / t_ingest, 1),
        "ingested": {k: ingested[k] for k in ("videos", "comments", "seconds", "splits")},
        "skipped": len(ingested["skipped"]),
        "train_s": round(t_train, 1),
        "test_mrr": trained.get("mrr"),
        "test_random_mrr": trained.get("random", {}).get("mrr"),
        "value_swap_r1": trained.get("value_swap", {}).get("r1"),
        "generate_s": round(t_gen, 1),
        "generated_seconds": len(items),
        "overlay_comments": len(back.comments),
        "best_comment_copied_mean": round(float(np.mean(copied)), 3) if copied else None,
        "windows_with_a_copied_fact": with_facts,
        "examples": [[it["t"], it["comments"][0]["text"]] for it in items[:5] if it["comments"]],
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
