"""``python -m model.data.demo``: the demo film corpus, the main job's embedded default.

Design: docs/data-contracts.md, section "The demo corpus".

A deterministic film corpus in the MovieLC layout (:mod:`model.data.movielc`), generated
from the bundled FilmKG sample: films of 10-16 minutes split into scenes (scene types drive
pseudo-visual features, subtitles, transcripts and reactions), and comments that mix generic
chatter, scene reactions, replies to nearby comments, mentions of the film's people, and
knowledge-bearing comments stating a real fact of an entity named nearby (in the window
[t-5, t) about 60 % of the time, else earlier in the video, as in real film dialogues:
docs/architecture.md, section "Retrieval"). A person named a moment ago is referred to as
"ta" ("ta是韩国人"), a person named earlier by name, and the film itself is not named (its
title is the video's).
Knowledge-bearing comments are flagged so evaluation can report that subset; they can only be
ranked well by a model that knows the fact. Likes are heavy-tailed, higher for
knowledge-bearing and reply comments (the iQIYI paper's engaging comments). The dev and test
films are those whose facts the training films state too (:func:`_held_out_order`), so a
training vocabulary can write their knowledge comments.

All text comes from :mod:`model.data.demo_text` (the project's own templates) and the KG.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common.cli import print_json, run
from common.paths import data_dir
from kg.settings import BUNDLED_FILMKG
from kg.sources import read_filmkg
from kg.triples import Triple, bare_name
from model.data import demo_text as T
from model.data.movielc import read_movielc, write_movielc
from model.data.schema import Comment, Corpus, Segment, Video

log = logging.getLogger(__name__)
GENERATOR_VERSION = 3
MANIFEST = "demo.json"
# Values nearly every entity of its kind has: stating them shows no knowledge.
_TOO_COMMON = frozenset({"演员", "剧情", "中国", "美国"})


@dataclass(frozen=True)
class DemoConfig:
    films: int = 48
    min_duration_s: int = 600
    max_duration_s: int = 960
    comments_per_s: float = 0.9
    feature_dim: int = 128
    seed: int = 0


@dataclass
class _Entity:
    name: str  # as viewers write it (bracket-free)
    facts: list[tuple[str, str]]  # (template, value) of the facts a viewer could state


def _clean(value: str, kind: str) -> str:
    value = value.strip()
    if kind == "first":
        for sep in ("、", "，", ",", "；", ";", "》《", "/"):
            value = value.split(sep)[0]
    return value.strip(" 《》\"'“”").strip()


def _facts(rows: list[Triple], table: dict) -> list[tuple[str, str]]:
    out = []
    for t in rows:
        if t.relation in table:
            template, kind = table[t.relation]
            value = _clean(t.tail, kind)
            if 0 < len(value) <= 24 and value not in _TOO_COMMON:
                out.append((template, value))
    return out


def _load_kg() -> list[tuple[_Entity, list[_Entity]]]:
    """Films of the bundled sample with the people (directors, actors) that are heads too."""
    by_head: dict[str, list[Triple]] = {}
    for rec in read_filmkg(BUNDLED_FILMKG):
        if isinstance(rec, Triple):
            by_head.setdefault(rec.head, []).append(rec)
    by_name = {(bare_name(h) or h): h for h in by_head}
    films = []
    for head, rows in sorted(by_head.items()):
        people_heads = [
            by_name[t.tail] for t in rows if t.relation in ("导演", "主演") and t.tail in by_name
        ]
        people = [
            _Entity(bare_name(p) or p, _facts(by_head[p], T.PERSON_FACTS))
            for p in dict.fromkeys(people_heads)
        ]
        people = [p for p in people if p.facts]
        film = _Entity(bare_name(head) or head, _facts(rows, T.FILM_FACTS))
        if people and film.facts:
            films.append((film, people))
    return films


class _FilmWriter:
    """Generates one film's scenes, comments, subtitles, transcript and features."""

    def __init__(
        self,
        rng: np.random.Generator,
        cfg: DemoConfig,
        film: _Entity,
        people: list[_Entity],
        prototypes: np.ndarray,
    ) -> None:
        self.rng, self.cfg, self.film, self.people = rng, cfg, film, people
        self.prototypes = prototypes
        self.duration = int(rng.integers(cfg.min_duration_s, cfg.max_duration_s + 1))
        self.scenes = self._scenes()
        self.comments: list[Comment] = []
        self.mentioned: list[tuple[float, _Entity]] = []  # (time, entity) named so far

    def _scenes(self) -> list[tuple[int, int, str, _Entity]]:
        scenes, start = [], 0
        while start < self.duration:
            length = int(self.rng.integers(20, 91))
            end = min(self.duration, start + length)
            kind = T.SCENE_TYPES[int(self.rng.integers(len(T.SCENE_TYPES)))]
            focus = self.people[int(self.rng.integers(len(self.people)))]
            scenes.append((start, end, kind, focus))
            start = end
        return scenes

    def _pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def _add(self, t: float, text: str, base_likes: float, knowledge: bool = False) -> None:
        likes = int(self.rng.lognormal(np.log(base_likes), 1.0))
        self.comments.append(Comment(float(int(t)), text, likes, knowledge))

    def _knowledge(self, t: int, focus: _Entity) -> None:
        """A mention of an entity (nearby or earlier), then a fact about it at t."""
        r = self.rng.random()
        named_just_now = False
        if r < 0.25:
            entity = self.film  # the film itself: its title is the video's topic
        else:
            entity = focus if r < 0.7 else self._pick(self.people)
            if self.rng.random() < 0.6 or t < 30:
                when = max(t - int(self.rng.integers(1, 6)), 0)
                named_just_now = when < t
            else:
                when = max(t - int(self.rng.integers(20, min(t, 180) + 1)), 0)
            self._add(when, self._pick(T.MENTIONS).format(name=entity.name), 3.0)
        template, value = self._pick(entity.facts)
        # A person just named is referred to, not named again ("ta是韩国人" under "是葛素媛！"):
        # who "ta" is, and so which value is true, is known only from the window and the KG.
        name = T.PRONOUN if named_just_now else entity.name
        self._add(t, template.format(name=name, value=value), 12.0, knowledge=True)

    def _second(self, t: int, kind: str, focus: _Entity, intensity: float) -> None:
        n = self.rng.poisson(self.cfg.comments_per_s * intensity)
        for _ in range(n):
            r = self.rng.random()
            if r < 0.34:
                self._add(t, self._pick(T.GENERIC), 2.0)
            elif r < 0.62:
                self._add(t, self._pick(T.REACTIONS[kind]), 3.0)
            elif r < 0.72 and self.comments:
                self._add(t, self._pick(T.REPLIES), 5.0)
            elif r < 0.82:
                self._add(t, self._pick(T.MENTIONS).format(name=focus.name), 3.0)
            else:
                self._knowledge(t, focus)

    def write(self, video_id: str, title: str) -> tuple[Video, dict[int, np.ndarray]]:
        features: dict[int, np.ndarray] = {}
        subtitles: list[Segment] = []
        for start, end, kind, focus in self.scenes:
            proto = self.prototypes[T.SCENE_TYPES.index(kind)]
            scene_shift = self.rng.normal(0, 0.5, proto.shape)
            peak = self.rng.uniform(1.0, 2.5)  # highlight scenes draw more comments
            for t in range(start, end):
                noise = self.rng.normal(0, 0.1, proto.shape)
                features[t] = (proto + scene_shift + noise).astype(np.float32)
                self._second(t, kind, focus, peak if (t - start) > (end - start) / 2 else 1.0)
            for s in range(start, end - 3, int(self.rng.integers(6, 15))):
                line = f"{self._pick(T.CHARACTERS)}：{self._pick(T.SUBTITLE_LINES[kind])}"
                subtitles.append(Segment(float(s), float(s + 3), line))
        transcript = [
            Segment(
                float(s),
                float(min(s + 30, self.duration)),
                " ".join(x.text.split("：", 1)[1] for x in subtitles if s <= x.start_s < s + 30),
            )
            for s in range(0, self.duration, 30)
        ]
        self.comments.sort(key=lambda c: c.time_s)
        video = Video(
            video_id,
            title,
            float(self.duration),
            self.comments,
            subtitles,
            transcript,
            category="film",
        )
        return video, features


def _values(film: _Entity, people: list[_Entity]) -> list[str]:
    """What the film's knowledge comments can state: its facts' values and its people."""
    return [v for e in (film, *people) for _, v in e.facts] + [p.name for p in people]


def _held_out_order(
    films: list[tuple[_Entity, list[_Entity]]], shuffled: np.ndarray, n_held: int
) -> list[int]:
    """The films in the order they are held out (test first, then dev), then the training ones.

    A closed-vocabulary model (LiveBot's 30k training words) writes a word it never saw in
    training as <UNK>. The films of a real corpus share their stars, countries and years; 40
    random films of a small KG sample often do not, and a held-out film whose knowledge
    comments are mostly <UNK> measures the vocabulary, not the knowledge. So the next film held
    out is the one that leaves the held-out films' stated values (their own facts' values and
    people) best covered by the films still in training (ties: the seeded shuffle)."""
    values = [set(_values(f, p)) for f, p in films]
    training = [int(i) for i in shuffled]
    held: list[int] = []

    def covered(candidate: int) -> float:
        known = set().union(*(values[j] for j in training if j != candidate))
        return sum(len(values[h] & known) / max(len(values[h]), 1) for h in [*held, candidate])

    for _ in range(min(n_held, len(training))):
        best = max(training, key=lambda i: (covered(i), -training.index(i)))
        training.remove(best)
        held.append(best)
    return held + training


def generate(cfg: DemoConfig) -> tuple[Corpus, dict[str, dict[int, np.ndarray]]]:
    """The demo corpus and its per-second features (deterministic for ``cfg``)."""
    rng = np.random.default_rng(cfg.seed)
    films = _load_kg()
    if len(films) < cfg.films:
        raise ValueError(f"the FilmKG sample has {len(films)} usable films, {cfg.films} asked")
    chosen = [films[i] for i in sorted(rng.choice(len(films), cfg.films, replace=False))]
    prototypes = rng.normal(0, 1, (len(T.SCENE_TYPES), cfg.feature_dim))
    n_test = n_dev = max(1, cfg.films // 10)
    order = _held_out_order(chosen, rng.permutation(cfg.films), n_test + n_dev)
    videos, features = {}, {}
    for i, (film, people) in enumerate(chosen):
        vid = f"demo{i:04d}"
        video, feats = _FilmWriter(rng, cfg, film, people, prototypes).write(vid, film.name)
        rank = order.index(i)
        video.split = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "train"
        videos[vid], features[vid] = video, feats
    return Corpus("movielc", "", videos), features


def demo_dir() -> Path:
    """Where the demo corpus is generated unless told otherwise."""
    return data_dir() / "corpus" / "demo"


def ensure_demo(out: Path | None = None, cfg: DemoConfig | None = None) -> Path:
    """Generate the demo corpus under ``out`` unless it is there with the same settings."""
    cfg = cfg or DemoConfig()
    out = Path(out) if out is not None else demo_dir()
    wanted = {
        "generator_version": GENERATOR_VERSION,
        "config": asdict(cfg),
        "kg_sample": BUNDLED_FILMKG.name,
    }
    manifest = out / MANIFEST
    if manifest.exists() and json.loads(manifest.read_text(encoding="utf-8")) == wanted:
        return out
    log.info("generating the demo corpus into %s", out)
    corpus, features = generate(cfg)
    write_movielc(corpus, out, features)
    manifest.write_text(json.dumps(wanted, ensure_ascii=False, indent=1), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m model.data.demo", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", help="output directory (default: $DANMAKU_DATA/corpus/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--films", type=int, default=DemoConfig.films)
    p.add_argument("--json", action="store_true", help="last line: one JSON summary")
    args = p.parse_args(argv)
    started = time.perf_counter()
    out = ensure_demo(
        Path(args.out) if args.out else None, DemoConfig(films=args.films, seed=args.seed)
    )
    corpus = read_movielc(out)
    summary = {
        "out": str(out),
        "videos": len(corpus.videos),
        "comments": corpus.n_comments,
        "knowledge_comments": sum(c.knowledge for v in corpus for c in v.comments),
        "seconds": corpus.seconds,
        "splits": {s: len(corpus.split(s)) for s in ("train", "dev", "test")},
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    for k, v in summary.items():
        print(f"{k:<20} {v}")
    if args.json:
        print_json(summary)
    return 0


if __name__ == "__main__":
    run(main)
