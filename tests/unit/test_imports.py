"""Cold-start guards: importing and reading text/time paths must not load heavy modules."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("numpy", "zstandard", "tantivy", "hnswlib", "usearch", "langchain_core", "llama_index",
         "boto3", "obstore")


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, check=True, timeout=60)
    return out.stdout.strip()


def test_import_loads_no_heavy_module():
    loaded = run(f"""
        import sys, memvid_store
        memvid_store.Memory, memvid_store.StoreConfig, memvid_store.Frame
        print(",".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert loaded == ""


def test_guard_detects_a_heavy_import():
    # the check above would see a heavy module if one were imported
    assert run("import sys, numpy; print('numpy' in sys.modules)") == "True"


def test_reading_text_and_time_does_not_import_numpy(tmp_path):
    path = tmp_path / "m.mv2"
    run(f"""
        from memvid_store import Memory
        with Memory.create({str(path)!r}) as m:
            m.put_many([{{"text": "frame %d" % i, "id": str(i)}} for i in range(500)])
            m.put("in the wal", id="wal")
    """)
    loaded = run(f"""
        import sys
        from memvid_store import Memory
        with Memory.open({str(path)!r}, readonly=True) as m:
            assert m.get("42").text == "frame 42"
            assert len(m.timeline(limit=10)) == 10
            assert m.history("wal")[0].text == "in the wal"
        print(",".join(m for m in ("numpy",) if m in sys.modules))
    """)
    assert loaded == ""


def test_open_and_find_leave_reports_and_openssl_unloaded(tmp_path):
    """What only a report needs (metrics, stats, verification) stays out of a cold start."""
    path = tmp_path / "m.mv2"
    run(f"""
        from memvid_store import Memory
        with Memory.create({str(path)!r}, dim=3, wal_size=1 << 20) as m:
            m.put_many([{{"text": "frame %d" % i, "embedding": [1, i, 2]}} for i in range(50)])
    """)
    loaded = run(f"""
        import os, sys
        os.environ["MEMVID_PRELOAD_LEVEL"] = "none"  # a big file's BM25 tier: not at open
        from memvid_store import Memory
        with Memory.open({str(path)!r}, readonly=True) as m:
            assert len(m.find(vector=[1, 2, 3], k=3)) == 3
        print(",".join(m for m in ("memvid_store.coldstart.metrics", "memvid_store.reports",
                                   "memvid_store.index.lexical.analyzer", "_hashlib",
                                   "tempfile")
                       if m in sys.modules))
    """)
    assert loaded == ""


def test_a_selective_filtered_vector_search_answers_without_numpy(tmp_path):
    """One user's memories in a file with a graph: scored over the versions the filter
    admits, with numkong, in a process that never imports numpy."""
    path = tmp_path / "m.mv2"
    run(f"""
        import random
        from memvid_store import IndexConfig, Memory
        rng = random.Random(1)
        with Memory.create({str(path)!r}, dim=16, index=IndexConfig(ann_threshold=500)) as m:
            m.put_many([{{"text": "t", "id": str(i), "metadata": {{"user": i % 50}},
                         "embedding": [rng.uniform(-1, 1) for _ in range(16)]}}
                        for i in range(3000)])
    """)
    query = "[0.5] * 8 + [-0.5] * 8"
    code = f"""
        import sys
        from memvid_store import Memory
        with Memory.open({str(path)!r}, readonly=True) as m:
            hits = m.find(vector={query}, k=5, mode="vector", filter={{"user": 7}})
        print(" ".join(h.id for h in hits), "numpy" in sys.modules)
    """
    ids, numpy_loaded = run(code).rsplit(" ", 1)
    assert numpy_loaded == "False"
    assert all(int(i) % 50 == 7 for i in ids.split()) and len(ids.split()) == 5
    with_numpy = run("import numpy\n" + textwrap.dedent(code)).rsplit(" ", 1)[0]
    assert ids == with_numpy


def test_a_remote_open_imports_the_search_code_meanwhile_and_a_local_one_does_not(tmp_path):
    """The first query's modules (``remote.preload``) are imported by a thread the remote
    open starts, numpy kept out; a local open imports only what it uses itself."""
    path = tmp_path / "m.mv2"
    run(f"""
        from memvid_store import Memory
        with Memory.create({str(path)!r}, dim=4) as m:
            m.put_many([{{"text": "frame %d" % i, "embedding": [i, 1, 0, 0]}} for i in range(50)])
    """)
    check = """
        import sys, threading
        from memvid_store.remote.preload import QUERY_MODULES
        for t in threading.enumerate():
            if t.name == "memvid-preload":
                t.join(30)
        print(sum(m in sys.modules for m in QUERY_MODULES), len(QUERY_MODULES),
              "numkong" in sys.modules, "numpy" in sys.modules)
    """
    remote = run(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from bench.s3_trace import LocalObject
        from memvid_store import Memory
        mem = Memory.open("s3://b/m.mv2", readonly=True, remote={{
            "cache_dir": {str(tmp_path / "cache")!r},
            "wrap_client": lambda client: LocalObject({str(path)!r}, client.url)}})
    """ + check).split()
    assert remote[0] == remote[1] and remote[2:] == ["True", "False"]
    local = run(f"""
        from memvid_store import Memory
        mem = Memory.open({str(path)!r}, readonly=True)
    """ + check).split()
    assert int(local[0]) < int(local[1]) and local[2:] == ["False", "False"]
