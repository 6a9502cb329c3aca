"""Searching a usearch graph without the usearch package's Python layer, and without it."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from memvid_store import Memory
from memvid_store.index.vector import usearch_view

DIM = 8


def fill(path: str) -> list[float]:
    rng = random.Random(3)
    with Memory.create(path, dim=DIM, index={"ann_threshold": 200}) as m:
        m.put_many([{"id": f"f{i:04d}", "text": f"note {i}",
                     "embedding": [rng.gauss(0, 1) for _ in range(DIM)]} for i in range(400)])
    return [rng.gauss(0, 1) for _ in range(DIM)]


def hits(path: str, q: list[float]) -> list[tuple[str, float]]:
    with Memory.open(path, readonly=True) as m:
        assert m._snap().toc.find("ann") is not None
        return [(h.id, round(h.score, 5)) for h in m.find(vector=q, k=8, mode="vector")]


def test_the_package_layer_is_a_fallback(mem_path, monkeypatch):
    q = fill(mem_path)
    lean = hits(mem_path, q)
    monkeypatch.setattr(usearch_view, "compiled", lambda: None)
    assert hits(mem_path, q) == lean


CHILD = """
import json, sys
from memvid_store import Memory
with Memory.open(sys.argv[1], readonly=True) as m:
    found = [(h.id, round(h.score, 5)) for h in m.find(vector=json.loads(sys.argv[2]), k=8,
                                                       mode="vector")]
skipped = [name for name in ("urllib.request", "tqdm", "usearch.index") if name in sys.modules]
import numpy as np
import usearch.index  # the package still imports, reusing the loaded extension
index = usearch.index.Index(ndim=4)
index.add(1, np.array([1.0, 0.0, 0.0, 0.0], np.float32))
print(json.dumps({"hits": found, "imported": skipped, "len": len(index)}))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="the package layer is used there")
def test_a_fresh_process_skips_the_package_layer(mem_path):
    q = fill(mem_path)
    run = subprocess.run([sys.executable, "-c", CHILD, mem_path, json.dumps(q)],
                         capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(run.stdout)
    assert out["imported"] == [] and out["len"] == 1
    assert [tuple(h) for h in out["hits"]] == hits(mem_path, q)
