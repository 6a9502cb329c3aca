"""Queries answered while a background warmup runs (importing numpy, loading the indexes)
are the answers given once it is done: nothing raises, nothing differs."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from memvid_store import Memory

PROC = Path(__file__).with_name("warmup_race_proc.py")


@pytest.fixture(scope="module")
def memory_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("warm") / "m.mv2"
    rng = random.Random(1)
    with Memory.create(path, dim=16) as mem:
        mem.put_many([{"text": f"note {i} about topic {i % 13}", "id": f"n{i}",
                       "embedding": [rng.uniform(-1, 1) for _ in range(16)]}
                      for i in range(3000)])
    return path


@pytest.mark.parametrize("level", ["lazy", "balanced", "aggressive", "env-balanced",
                                   "env-aggressive"])
def test_queries_during_a_background_warmup_answer_correctly(memory_file, level):
    env = dict(os.environ)
    arg = level
    if level.startswith("env-"):
        env["MEMVID_PRELOAD_LEVEL"] = level.removeprefix("env-")
        arg = "env"
    out = subprocess.run([sys.executable, str(PROC), str(memory_file), arg], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout)
    errors = [a for a in report["during"] + report["after"] if isinstance(a, str)]
    assert not errors, errors[:3]
    for during, after in zip(report["during"], report["after"], strict=True):
        assert [i for i, _ in during] == [i for i, _ in after]
        assert [s for _, s in during] == pytest.approx([s for _, s in after], abs=1e-5)
