"""Atomic writes (:mod:`common.atomic`): the old file or the new one, never half of one, and
two processes writing one file at once never trip over each other's temporary file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from common.atomic import atomic_open, atomic_path, write_json
from model.encoded_split import Encoded

WRITES = 150


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "a.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(path, "w") as f:
        f.write('{"v": 2, "half')
        raise RuntimeError("interrupted")
    assert json.loads(path.read_text(encoding="utf-8")) == {"v": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_temporary_names_are_per_call_and_beside_the_target(tmp_path):
    target = tmp_path / "x.npz"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b and a.parent == b.parent == tmp_path
        a.write_bytes(b"a")
        b.write_bytes(b"b")
    assert target.read_bytes() == b"a"  # the outer block ends last
    with atomic_open(target) as f:  # a file object: np.savez appends nothing to the name
        np.savez(f, x=np.arange(3))
    assert np.load(target)["x"].tolist() == [0, 1, 2] and len(list(tmp_path.iterdir())) == 1


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import numpy as np

    from model.encoded_split import Encoded
    from common.atomic import write_json

    out, n = Path(sys.argv[1]), int(sys.argv[2])
    doc = {"rows": [[i, "值" * 20] for i in range(3000)]}
    z = np.zeros
    enc = Encoded(
        ["v"], z(1, np.int32), z((1, 3, 4), np.float32), z((1, 3), bool), z((1, 3, 5), np.int32),
        z((1, 6), np.int32), z((1, 6), np.int16), z((1, 6), np.int8), z(1, np.int64),
        z(1, bool), z((2, 7), np.int32), z(2, np.int32), [[]], [[]], 10,
    )
    for _ in range(n):
        write_json(out / "train-key.json", doc)
        enc.save(out / "test-key.npz")
    """
)


def test_two_processes_writing_the_same_cache_files_both_succeed(tmp_path):
    """Two cold-cache trainings on one data directory write the same JSON and encoded-split
    files at the same moment: each must rename its own temporary file."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    out = tmp_path / "cache"
    out.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(out), str(WRITES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "test-key.json",
        "test-key.npz",
        "train-key.json",
    ]
    assert len(json.loads((out / "train-key.json").read_text(encoding="utf-8"))["rows"]) == 3000
    assert len(Encoded.load(out / "test-key.npz")) == 1
