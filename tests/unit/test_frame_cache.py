"""The frame cache of a Memory: hits counted, prefetch, bounded size, reset by compaction."""

from __future__ import annotations

from memvid_store import Memory


def _frames(mem):
    return next(s for s in mem.cache_stats() if s.name == "frames")


def _make(path, n=200):
    with Memory.create(path, sync=False) as mem:
        ids = mem.put_many([{"text": f"frame {i} " + "z" * 300} for i in range(n)])
    return ids


def test_repeated_reads_hit_the_cache(tmp_path):
    ids = _make(tmp_path / "m.mv2")
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        for fid in ids[:50]:
            mem.get(fid)
        first = _frames(mem)
        assert first.misses == 50 and first.hits == 0
        for fid in ids[:50]:
            assert mem.get(fid).text.startswith("frame")
        again = _frames(mem)
        assert again.hits == 50 and again.misses == 50 and again.hit_rate == 0.5


def test_prefetch_loads_without_counting(tmp_path):
    ids = _make(tmp_path / "m.mv2")
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        assert mem.prefetch([*ids[10:20], "no-such-id"]) == 10
        assert _frames(mem).hits == _frames(mem).misses == 0 and _frames(mem).items == 10
        for fid in ids[10:20]:
            mem.get(fid)
        assert _frames(mem).hits == 10 and _frames(mem).misses == 0


def test_cache_stays_within_budget_and_can_be_off(tmp_path):
    ids = _make(tmp_path / "m.mv2")
    with Memory.open(tmp_path / "m.mv2", readonly=True, cache="8KB") as mem:
        texts = [mem.get(fid).text for fid in ids]
        stats = _frames(mem)
        assert stats.bytes <= 8000 and stats.evictions > 0
    with Memory.open(tmp_path / "m.mv2", readonly=True, cache=0) as mem:
        assert [mem.get(fid).text for fid in ids] == texts
        assert all(s.name != "frames" for s in mem.cache_stats())
        assert mem.prefetch(ids[:3]) == 3


def test_compaction_resets_the_cache(tmp_path):
    ids = _make(tmp_path / "m.mv2", n=50)
    with Memory.open(tmp_path / "m.mv2") as mem:
        mem.delete_many(ids[:25])
        mem.get(ids[30])
        mem.compact()
        assert _frames(mem).items == 0
        assert mem.get(ids[30]).text.startswith("frame 30")
        assert len(mem) == 25
