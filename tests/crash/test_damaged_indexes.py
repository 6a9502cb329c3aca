"""A damaged derived index costs one search path, never the process or the file."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from memvid_store import IndexConfig, Memory

from .conftest import parse_layout

PROC = Path(__file__).with_name("damaged_graph_proc.py")


def exact_hits(path: Path) -> list[list[str]]:
    """Top 5 ids by cosine for the process's queries, by brute force."""
    import numpy as np

    from .damaged_graph_proc import queries

    with Memory.open(path, readonly=True) as mem:
        frames = mem.select()
        ids = [f.id for f in frames]
        mat = np.array([f.embedding for f in frames], dtype=np.float64)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    out = []
    for q in queries(random.Random(3)):
        scores = mat @ (np.array(q) / np.linalg.norm(q))
        out.append([ids[i] for i in np.argsort(-scores, kind="stable")[:5]])
    return out


@pytest.mark.parametrize("backend", ["hnswlib", "usearch"])
def test_a_flipped_graph_byte_never_reaches_the_native_library(tmp_path, backend):
    pytest.importorskip(backend)
    path = tmp_path / "m.mv2"
    rng = random.Random(1)
    with Memory.create(path, dim=8, index=IndexConfig(ann_threshold=200, ann_backend=backend)
                       ) as mem:
        mem.put_many([{"text": f"n{i}", "id": f"n{i}",
                       "embedding": [rng.uniform(-1, 1) for _ in range(8)]} for i in range(600)])
    expected = exact_hits(path)
    data = bytearray(path.read_bytes())
    (graph,) = parse_layout(bytes(data)).segments("ann")
    for offset in (graph.offset, graph.offset + graph.length // 2, graph.offset + graph.length - 1):
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        path.write_bytes(damaged)
        run = subprocess.run([sys.executable, str(PROC), str(path)], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        report = json.loads(run.stdout)
        assert report["hits"] == expected  # the exact scan answers
        assert any("mv2 doctor --repair" in w for w in report["warnings"])
    path.write_bytes(data)
