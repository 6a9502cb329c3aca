"""Tiered warmup, environment overrides, mmap advice and the pread fallback."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memvid_store import ConfigError, Memory, StoreConfig
from memvid_store.coldstart.warmup import LOADABLE, Warmer
from memvid_store.config import WarmupConfig, parse_size
from memvid_store.engine.fileio import MmapConfig

DIM = 16


def _build(path, n=3000, ann=True):
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((n, DIM)).astype("f4")
    index = {"ann_threshold": 500, "ann_backend": "hnswlib"} if ann else {"ann_backend": "none"}
    with Memory.create(path, index=index, sync=False) as mem:
        mem.put_many([{"text": f"note {i} about topic{i % 7} and item{i % 13}",
                       "embedding": vecs[i], "metadata": {"n": i}} for i in range(n)])
    return vecs


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name == "memvid-warmup"}


def _answers(mem, vecs):
    return ([[h.id for h in mem.find(vector=v, mode="vector", k=5)] for v in vecs[:20]],
            [[h.id for h in mem.find(f"topic{i} item{i}", mode="lexical", k=5)]
             for i in range(7)])


def test_levels_decide_what_loads_at_open(tmp_path):
    path = tmp_path / "m.mv2"
    _build(path)
    with Memory.open(path, readonly=True, warmup="none") as mem:
        assert set(mem.stats().tiers.values()) == {"cold"}
    with Memory.open(path, readonly=True, warmup="aggressive") as mem:
        assert mem.stats().tiers == {t: "loaded" for t in LOADABLE}
    cfg = WarmupConfig(preload_threshold=10**9, background=False)
    with Memory.open(path, readonly=True, warmup=cfg) as mem:
        # small tiers load at open, except vectors: their cost is numpy's import, not size
        assert mem.stats().tiers == {"time_index": "loaded", "lex_index": "loaded",
                                     "vec_index": "cold"}
    with Memory.open(path, readonly=True, warmup=WarmupConfig(preload_threshold=0,
                                                              background=False)) as mem:
        assert set(mem.stats().tiers.values()) == {"cold"}
        assert mem.warmup(tiers=["lex_index"])["lex_index"] == "loaded"
        assert mem.stats().tiers["vec_index"] == "cold"
        assert mem.warmup()["vec_index"] == "loaded"


def test_background_follows_priority_order(tmp_path):
    path = tmp_path / "m.mv2"
    _build(path)
    with Memory.open(path, readonly=True, warmup="none") as mem:
        order: list[str] = []
        warmer = Warmer(mem._current_search, WarmupConfig(
            priority_order=("vec_index", "lex_index", "time_index"), preload_threshold=0))
        real = warmer.load

        def record(tier, **kw):
            order.append(tier)
            real(tier, **kw)

        warmer.load = record  # type: ignore[method-assign]
        warmer.start()
        warmer.join()
        assert order == ["vec_index", "lex_index", "time_index"]
        assert warmer.state == {t: "loaded" for t in LOADABLE}


def test_background_switch_over_keeps_results(tmp_path):
    path = tmp_path / "m.mv2"
    vecs = _build(path)
    with Memory.open(path, readonly=True, warmup="aggressive") as warm:
        expected = _answers(warm, vecs)
    for _ in range(3):
        with Memory.open(path, readonly=True, warmup="balanced") as mem:
            got = _answers(mem, vecs)  # some answered exactly, some by the graph
            mem._cold.warmer.join()
            assert mem.stats().tiers["vec_index"] == "loaded"
            after = _answers(mem, vecs)
        assert got[1] == expected[1] == after[1]
        for a, b in zip(got[0], expected[0], strict=True):
            assert len(set(a) & set(b)) >= 4  # exact vs HNSW differ only within recall
    assert not _threads()


def test_deferred_graph_means_exact_scan(tmp_path):
    path = tmp_path / "m.mv2"
    vecs = _build(path)
    with Memory.open(path, readonly=True, warmup="none") as mem:
        _, searcher = mem._current_search()
        searcher.defer_vectors = True  # as while a background load is running
        got = [h.id for h in mem.find(vector=vecs[5], mode="vector", k=5)]
        assert searcher.ann() == (None, 0)  # the graph was not opened: the answer is exact
        unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        best = np.argsort(-(unit @ unit[5]))[:5]
        ids = {f.metadata["n"]: f.id for f in mem.timeline()}
        assert got == [ids[int(i)] for i in best]


def test_close_joins_the_warmup_thread(tmp_path):
    path = tmp_path / "m.mv2"
    _build(path)
    for _ in range(5):
        mem = Memory.open(path, readonly=True, warmup="balanced")
        mem.close()
        assert not _threads()
    mem = Memory.open(path, readonly=True, warmup="none")
    mem.warmup(wait=False)
    mem.close()
    assert not _threads()


def test_failed_background_load_reports_at_query(tmp_path, monkeypatch):
    path = tmp_path / "m.mv2"
    vecs = _build(path)
    from memvid_store.index import searcher as searcher_mod

    def boom(self):
        raise OSError("disk went away")

    monkeypatch.setattr(searcher_mod.Searcher, "load_vectors", boom)
    with Memory.open(path, readonly=True, warmup="none") as mem:
        state = mem.warmup(tiers=["vec_index"], wait=False)
        mem._cold.warmer.join()
        assert mem.stats().tiers["vec_index"] == "failed"
        assert state is not None
        assert mem.find(vector=vecs[1], mode="vector", k=1)  # queries still work


@pytest.mark.parametrize("mmap", [True, False, MmapConfig(advice="sequential", prefetch=False),
                                  MmapConfig(advice="normal")])
def test_pread_and_mmap_variants_answer_alike(tmp_path, mmap):
    path = tmp_path / "m.mv2"
    vecs = _build(path, n=800, ann=False)
    with Memory.open(path, readonly=True, mmap=True, warmup="none") as ref:
        expected = _answers(ref, vecs), [f.text for f in ref.timeline()]
    with Memory.open(path, readonly=True, mmap=mmap, warmup="aggressive") as mem:
        assert mem.stats().mmap == (mmap is not False)
        assert (_answers(mem, vecs), [f.text for f in mem.timeline()]) == expected


def test_failing_mmap_falls_back_to_pread(tmp_path, monkeypatch):
    path = tmp_path / "m.mv2"
    vecs = _build(path, n=300, ann=False)
    import mmap as mmap_mod

    def no_mmap(*a, **k):
        raise OSError("mmap not supported here")

    with Memory.open(path, readonly=True) as ref:
        expected = _answers(ref, vecs)
    monkeypatch.setattr(mmap_mod, "mmap", no_mmap)
    with Memory.open(path, readonly=True) as mem:
        assert mem.stats().mmap is False
        assert _answers(mem, vecs) == expected


def test_environment_overrides():
    cfg = StoreConfig.from_env({"MEMVID_PRELOAD_LEVEL": "aggressive", "MEMVID_CACHE_SIZE": "512MB",
                                "MEMVID_MMAP_ENABLED": "false", "MEMVID_CACHE_DIR": "/x"})
    assert cfg.warmup == WarmupConfig.level("aggressive")
    assert cfg.cache.lru_size == 512 << 20 and cfg.mmap.enabled is False and cfg.cache_dir == "/x"
    assert StoreConfig.from_env({}, cache="1GiB").cache.lru_size == 1 << 30
    for var, value in [("MEMVID_PRELOAD_LEVEL", "turbo"), ("MEMVID_CACHE_SIZE", "lots"),
                       ("MEMVID_MMAP_ENABLED", "maybe")]:
        with pytest.raises(ConfigError, match=var):
            StoreConfig.from_env({var: value})


def test_environment_applies_to_open(tmp_path, monkeypatch):
    path = tmp_path / "m.mv2"
    _build(path, n=300, ann=False)
    monkeypatch.setenv("MEMVID_MMAP_ENABLED", "false")
    monkeypatch.setenv("MEMVID_PRELOAD_LEVEL", "aggressive")
    with Memory.open(path, readonly=True) as mem:
        assert mem.stats().mmap is False
        assert mem.stats().tiers["lex_index"] == "loaded"
    with Memory.open(path, readonly=True, mmap=True) as mem:  # arguments beat the environment
        assert mem.stats().mmap is True


@pytest.mark.parametrize(("text", "size"), [
    ("512MB", 512 << 20), ("1.5GiB", 3 << 29), ("100k", 100 << 10), ("4096", 4096),
    (" 2 mib ", 2 << 20)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_bad_warmup_configs():
    with pytest.raises(ConfigError):
        WarmupConfig(priority_order=("lex_index", "lex_index"))
    with pytest.raises(ConfigError):
        WarmupConfig(priority_order=("gpu",))
    with pytest.raises(ConfigError):
        WarmupConfig(preload_threshold=-1)
    with pytest.raises(ConfigError):
        MmapConfig(advice="sometimes")
    with pytest.raises(ConfigError):
        StoreConfig(warmup="fast")


def test_default_open_and_lexical_query_import_no_numpy(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "m.mv2"
    _build(path, n=300, ann=False)  # small: every tier is under the preload threshold
    code = ("import sys; from memvid_store import Memory; "
            "m = Memory.open(sys.argv[1], readonly=True); m.find('topic3', mode='lexical'); "
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False"
