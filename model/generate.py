"""Comments for any second of any video, with the facts the model used (KLVCG §V-A: beam 5).

The command line of :mod:`model.generator`: it opens the checkpoint over the corpus it was
trained on (unless ``--corpus``/``--format`` say otherwise) and prints the beam's comments and
the facts used, or one JSON object.

    python -m model.generate --checkpoint DIR --video ID --t SECONDS [--beam 5] [--json]
"""

from __future__ import annotations

import argparse

from common.cli import print_json, run
from common.settings import RunSettings
from model.checkpoint import add_checkpoint_args, load_checkpoint, with_trained_corpus
from model.generator import Generation, Generator
from retrieval.bootstrap import open_bootstrapped_store
from retrieval.context import build_context


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.generate", description=__doc__.split("\n")[0])
    add_checkpoint_args(p)
    p.add_argument("--video", required=True, help="video id")
    p.add_argument("--t", required=True, type=float, help="second of the video")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    return p.parse_args(argv)


def format_generation(result: Generation) -> str:
    """The comments with their scores (and copied shares), then the facts used."""
    lines = [f"video {result.video} t={result.t}"]
    for c in result.comments:
        copied = f", {c.copy.copied:.0%} copied" if c.copy is not None else ""
        lines.append(f"  {c.text}   ({c.score:.3f}{copied})")
    if result.facts:
        by = "copy mass in the best comment" if result.facts_by == "copy" else "attention"
        lines.append(f"facts, by the {by}:")
        for f in result.facts:
            lines.append(f"  {f.weight:.3f}  {f.head} | {f.relation} | {f.tail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)  # fails before anything is built
    settings = with_trained_corpus(RunSettings.from_args(args), ckpt)
    ctx = build_context(settings, open_bootstrapped_store(settings))
    try:
        gen = Generator.load(ckpt, ctx, settings.device)
        result = gen.generate(args.video, int(args.t), beam=args.beam)
    finally:
        ctx.store.close()
    if args.json:
        print_json(result.as_dict())
    else:
        print(format_generation(result))
    return 0


if __name__ == "__main__":
    run(main)
