"""ByteLRU (byte-bounded LRU with hit counters) and CacheConfig."""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from dataclasses import asdict

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from memvid_store import ConfigError, InvalidInputError
from memvid_store.coldstart.cache import ByteLRU, CacheStats
from memvid_store.config import CacheConfig


def test_get_counts_hits_and_misses_and_peek_does_not():
    lru = ByteLRU(100, "frames")
    assert lru.get("a") is None and lru.get("a", 7) == 7
    lru.put("a", "A", 10)
    assert lru.get("a") == "A"
    assert lru.peek("a") == "A" and lru.peek("b", 0) == 0
    assert "a" in lru and "b" not in lru
    assert lru.stats() == CacheStats("frames", hits=1, misses=2, evictions=0, items=1, bytes=10,
                                     capacity=100)
    assert lru.stats().hit_rate == pytest.approx(1 / 3)


def test_hit_rate_is_none_before_any_lookup():
    lru = ByteLRU(10)
    lru.put("a", 1, 1)
    lru.peek("a")
    assert lru.stats().hit_rate is None


def test_evicts_least_recently_used_until_within_capacity():
    lru = ByteLRU(30)
    for key in "abc":
        lru.put(key, key.upper(), 10)
    lru.get("a")  # b is now the least recently used
    lru.put("d", "D", 15)  # needs 15 bytes: b and c go
    assert [k for k in "abcd" if k in lru] == ["a", "d"]
    stats = lru.stats()
    assert (stats.evictions, stats.items, stats.bytes) == (2, 2, 25)


def test_peek_does_not_refresh_but_touch_does():
    lru = ByteLRU(20)
    lru.put("a", 1, 10)
    lru.put("b", 2, 10)
    lru.peek("a")
    lru.put("c", 3, 10)
    assert "a" not in lru and "b" in lru
    assert lru.touch("b") and not lru.touch("zz")
    lru.put("d", 4, 10)
    assert "b" in lru and "c" not in lru
    assert lru.stats().hits == lru.stats().misses == 0


def test_replacing_a_key_updates_its_size():
    lru = ByteLRU(100)
    lru.put("a", 1, 60)
    lru.put("a", 2, 30)
    assert lru.get("a") == 2 and lru.nbytes == 30 and len(lru) == 1


def test_value_larger_than_capacity_is_not_stored_and_drops_the_old_one():
    lru = ByteLRU(50)
    lru.put("keep", 0, 40)
    lru.put("a", 1, 10)
    assert lru.put("a", 2, 51) is False
    assert "a" not in lru and "keep" in lru and lru.nbytes == 40
    assert lru.stats().evictions == 0


def test_zero_capacity_stores_nothing():
    lru = ByteLRU(0)
    assert lru.put("a", 1, 1) is False
    assert lru.put("empty", 1, 0) is True  # a zero-size value fits
    assert len(lru) == 1


def test_discard_and_clear_keep_the_counters():
    lru = ByteLRU(100)
    lru.put("a", 1, 10)
    lru.put("b", 2, 20)
    lru.get("a")
    assert lru.discard("a") and not lru.discard("a")
    assert lru.nbytes == 20
    lru.clear()
    assert len(lru) == 0 and lru.nbytes == 0 and lru.stats().hits == 1


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(InvalidInputError):
        ByteLRU(bad)
    with pytest.raises(InvalidInputError):
        ByteLRU(10).put("a", 1, bad)


def test_concurrent_use_keeps_the_byte_count_exact():
    lru = ByteLRU(1000)

    def work(offset: int) -> None:
        for i in range(2000):
            key = (offset + i) % 300
            if lru.get(key) is None:
                lru.put(key, i, 1 + key % 17)
            if i % 7 == 0:
                lru.discard(key)

    threads = [threading.Thread(target=work, args=(n * 37,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = lru.stats()
    assert stats.bytes == sum(1 + k % 17 for k in range(300) if k in lru) <= 1000
    assert stats.hits + stats.misses == 4 * 2000


class LruModel(RuleBasedStateMachine):
    """ByteLRU behaves like a plain list-based LRU (most recent last)."""

    CAPACITY = 50

    def __init__(self) -> None:
        super().__init__()
        self.lru = ByteLRU(self.CAPACITY)
        self.model: OrderedDict[int, tuple[int, int]] = OrderedDict()
        self.hits = self.misses = self.evictions = 0

    keys = st.integers(0, 12)

    @rule(key=keys, value=st.integers(), size=st.integers(0, 60))
    def put(self, key, value, size):
        stored = self.lru.put(key, value, size)
        self.model.pop(key, None)
        assert stored == (size <= self.CAPACITY)
        if stored:
            self.model[key] = (value, size)
            while sum(s for _, s in self.model.values()) > self.CAPACITY:
                oldest = next(iter(self.model))
                del self.model[oldest]
                self.evictions += 1

    @rule(key=keys)
    def get(self, key):
        expected = self.model.get(key)
        got = self.lru.get(key, "missing")
        if expected is None:
            self.misses += 1
            assert got == "missing"
        else:
            self.hits += 1
            self.model.move_to_end(key)
            assert got == expected[0]

    @rule(key=keys)
    def peek(self, key):
        expected = self.model.get(key)
        assert self.lru.peek(key, "missing") == ("missing" if expected is None else expected[0])

    @rule(key=keys)
    def touch(self, key):
        assert self.lru.touch(key) == (key in self.model)
        if key in self.model:
            self.model.move_to_end(key)

    @rule(key=keys)
    def discard(self, key):
        assert self.lru.discard(key) == (self.model.pop(key, None) is not None)

    @rule()
    def clear(self):
        self.lru.clear()
        self.model.clear()

    @invariant()
    def same_contents_and_counters(self):
        assert list(self.lru._entries) == list(self.model)
        stats = self.lru.stats()
        assert (stats.items, stats.bytes) == (len(self.model),
                                               sum(s for _, s in self.model.values()))
        assert (stats.hits, stats.misses, stats.evictions) == (self.hits, self.misses,
                                                               self.evictions)


TestLruModel = LruModel.TestCase
TestLruModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


# ----------------------------------------------------------------------- CacheConfig


def test_cache_config_defaults():
    assert asdict(CacheConfig()) == {"lru_size": 100 << 20, "prefetch_window": 1000,
                                     "adaptive_prefetch": True}


@pytest.mark.parametrize(("raw", "expected"), [
    ("512MB", 512 << 20), ("1.5GiB", 3 << 29), ("100k", 100 << 10), ("4096", 4096),
    ("64 MiB", 64 << 20), ("2gb", 2 << 30), ("0", 0),
])
def test_from_env_parses_sizes_in_units_of_1024(raw, expected):
    assert CacheConfig.from_env({"MEMVID_CACHE_SIZE": raw}).lru_size == expected


def test_from_env_without_the_variable_keeps_defaults_and_applies_overrides():
    assert CacheConfig.from_env({}) == CacheConfig()
    cfg = CacheConfig.from_env({"MEMVID_CACHE_SIZE": "1MB"}, prefetch_window=5)
    assert (cfg.lru_size, cfg.prefetch_window) == (1 << 20, 5)


@pytest.mark.parametrize("raw", ["lots", "12 parsecs", "-5MB", "1e9", "MB"])
def test_from_env_invalid_size_names_the_variable_and_an_example(raw):
    with pytest.raises(ConfigError) as err:
        CacheConfig.from_env({"MEMVID_CACHE_SIZE": raw})
    assert "MEMVID_CACHE_SIZE" in str(err.value) and "512MB" in str(err.value)


def test_lru_size_accepts_a_size_string():
    assert CacheConfig(lru_size="2MiB").lru_size == 2 << 20


@pytest.mark.parametrize("kwargs", [
    {"lru_size": -1}, {"lru_size": 1.5}, {"prefetch_window": -1}, {"prefetch_window": True},
    {"adaptive_prefetch": "yes"},
])
def test_invalid_fields_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        CacheConfig(**kwargs)


def test_config_error_survives_pickling():
    with pytest.raises(ConfigError) as err:
        CacheConfig.from_env({"MEMVID_CACHE_SIZE": "lots"})
    again = pickle.loads(pickle.dumps(err.value))
    assert type(again) is ConfigError and str(again) == str(err.value)
