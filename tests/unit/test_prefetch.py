"""AccessPatternAnalyzer: each signal, their combination, memory bounds and adaptivity."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memvid_store import InvalidInputError
from memvid_store.coldstart.analyzer import Access, AccessPatternAnalyzer

MIN = 60_000_000  # one minute in µs


def catalog(n: int) -> tuple[list[str], list[int]]:
    """Frames f000..f(n-1), one minute apart."""
    return [f"f{i:03d}" for i in range(n)], [i * MIN for i in range(n)]


def hit(*indexes: int, at: float = 0.0, vector=None) -> Access:
    return Access(tuple(f"f{i:03d}" for i in indexes), tuple(i * MIN for i in indexes),
                  vector, at)


def topic_vector(topic: int, noise: float = 0.3, seed: int = 0, dim: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.zeros(dim, dtype=np.float32)
    base[topic] = 1.0
    return base + rng.normal(0, noise / np.sqrt(dim), dim).astype(np.float32)


def test_temporal_predicts_catalog_neighbours_nearest_first():
    a = AccessPatternAnalyzer(semantic_based=False, frequency_based=False, radius=3)
    ids, times = catalog(100)
    a.set_catalog(list(reversed(ids)), list(reversed(times)))  # any order is accepted
    a.observe(hit(50))
    assert a.predict_next_access(7) == ["f050", "f049", "f051", "f048", "f052", "f047", "f053"]
    assert a.predict_next_access(100)[7:] == []  # nothing beyond the radius


def test_temporal_uses_times_for_frames_missing_from_the_catalog():
    a = AccessPatternAnalyzer(semantic_based=False, frequency_based=False, radius=1)
    a.set_catalog(*catalog(10))
    a.observe(Access(("new",), (int(4.2 * MIN),), at=0))
    assert set(a.predict_next_access(10)) == {"f004", "f005", "f006"}


def test_temporal_prefers_recent_accesses():
    a = AccessPatternAnalyzer(semantic_based=False, frequency_based=False, radius=0,
                              half_life=10)
    a.set_catalog(*catalog(100))
    a.observe(hit(10, at=0))
    a.observe(hit(90, at=30))
    assert a.predict_next_access(2) == ["f090", "f010"]


def test_temporal_without_catalog_predicts_nothing():
    a = AccessPatternAnalyzer(semantic_based=False, frequency_based=False)
    a.observe(hit(5))
    assert a.predict_next_access(10) == []


def test_semantic_recalls_the_frames_of_the_recent_topic():
    a = AccessPatternAnalyzer(time_based=False, frequency_based=False, half_life=300)
    for k in range(3):
        a.observe(hit(1 + k, at=k, vector=topic_vector(0, seed=k)))  # topic 0: f001..f003
    for k in range(3):
        a.observe(hit(11 + k, at=10 + k, vector=topic_vector(1, seed=k)))  # topic 1
    a.observe(hit(4, at=20, vector=topic_vector(0, seed=9)))
    ranked = a.predict_next_access(8)
    assert set(ranked[:4]) == {"f001", "f002", "f003", "f004"}
    assert set(ranked[4:7]) == {"f011", "f012", "f013"}  # older topic, lower
    assert a.stats().clusters == 2


def test_semantic_keeps_dissimilar_queries_in_separate_clusters():
    a = AccessPatternAnalyzer(time_based=False, frequency_based=False, similarity=0.5)
    for topic in range(5):
        a.observe(hit(topic, vector=topic_vector(topic)))
    assert a.stats().clusters == 5
    a.observe(hit(7, vector=topic_vector(2, seed=3)))
    assert a.stats().clusters == 5


def test_semantic_ignores_accesses_without_vector():
    a = AccessPatternAnalyzer(time_based=False, frequency_based=False)
    a.observe(hit(1, 2, 3))
    assert a.predict_next_access(5) == []


def test_semantic_query_vectors_must_keep_their_dimension():
    a = AccessPatternAnalyzer(time_based=False, frequency_based=False)
    a.observe(hit(1, vector=[1.0, 0.0, 0.0]))
    with pytest.raises(InvalidInputError, match="dimensions"):
        a.observe(hit(2, vector=[1.0, 0.0]))
    with pytest.raises(InvalidInputError, match="NaN"):
        a.observe(hit(2, vector=[float("nan"), 0.0, 0.0]))


def test_frequency_ranks_by_decayed_counts():
    a = AccessPatternAnalyzer(time_based=False, semantic_based=False, half_life=100)
    for _ in range(5):
        a.observe(hit(1, at=0))
    a.observe(hit(2, at=0))
    assert a.predict_next_access(2) == ["f001", "f002"]
    # 5 hits 1000 s (10 half-lives) ago weigh less than 1 hit now
    a.observe(hit(3, at=1000))
    assert a.predict_next_access(1) == ["f003"]


def test_frequency_survives_very_long_time_spans():
    a = AccessPatternAnalyzer(time_based=False, semantic_based=False, half_life=1)
    for step in range(2000):
        a.observe(hit(step % 3, at=step))
    a.observe(hit(7, at=2000))
    a.observe(hit(7, at=2000))
    assert a.predict_next_access(1) == ["f007"]


def test_memory_is_bounded():
    a = AccessPatternAnalyzer(window=8, max_clusters=4, cluster_hits=10, max_tracked=50)
    a.set_catalog(*catalog(500))
    rng = np.random.default_rng(1)
    for step in range(400):
        a.observe(hit(step, step + 1, at=step, vector=rng.normal(size=16)))
    stats = a.stats()
    assert stats.clusters <= 4 and stats.tracked_ids <= 100 and stats.observed == 400
    assert all(len(c.hits) <= 20 for c in a._clusters) and len(a._recent) == 8
    assert len(a.predict_next_access(1000)) <= 8 * 2 * 9 + 4 * 20 + 100


def test_combined_signals_and_weights():
    ids, times = catalog(100)
    only_temporal = AccessPatternAnalyzer(weights={"semantic": 0, "frequency": 0}, radius=1)
    both = AccessPatternAnalyzer(weights={"frequency": 2}, radius=1)
    for a in (only_temporal, both):
        a.set_catalog(ids, times)
        for _ in range(3):
            a.observe(hit(80, at=0))
        a.observe(hit(20, at=1))
    assert set(only_temporal.predict_next_access(10)) == {"f019", "f020", "f021", "f079",
                                                          "f080", "f081"}
    assert both.predict_next_access(1) == ["f080"]  # frequency outweighs recency


def test_ties_are_broken_by_id_and_n_is_respected():
    a = AccessPatternAnalyzer(time_based=False, semantic_based=False)
    a.observe(Access(("b", "c", "a"), at=0))
    assert a.predict_next_access(2) == ["a", "b"]
    assert a.predict_next_access(0) == []


def test_train_is_observing_in_order():
    history = [hit(i, at=i) for i in range(20)]
    trained, observed = AccessPatternAnalyzer(), AccessPatternAnalyzer()
    for a in (trained, observed):
        a.set_catalog(*catalog(30))
    trained.train(iter(history))
    for access in history:
        observed.observe(access)
    assert trained.predict_next_access(15) == observed.predict_next_access(15)


def test_coverage_and_prefetch_budget_follow_prediction_quality():
    a = AccessPatternAnalyzer(semantic_based=False, frequency_based=False, radius=2)
    a.set_catalog(*catalog(1000))
    assert a.prefetch_budget(160) == 160 and a.stats().coverage is None
    a.observe(hit(100, at=0))
    for step in range(1, 60):  # reads jump far away: predictions never match
        a.predict_next_access(20)
        a.observe(hit((step * 137) % 1000, at=step))
    assert a.stats().coverage < 0.05
    assert a.prefetch_budget(160) == 10  # window // 16
    for step in range(60, 120):  # reads walk forward one frame: always predicted
        a.predict_next_access(20)
        a.observe(hit(step, at=step))
    assert a.stats().coverage > 0.9 and a.prefetch_budget(160) == 160


def test_observe_without_prediction_does_not_change_coverage():
    a = AccessPatternAnalyzer()
    a.observe(hit(1))
    a.observe(hit(2))
    assert a.stats().coverage is None and a.stats().predictions == 0


def test_concurrent_observe_and_predict():
    a = AccessPatternAnalyzer()
    a.set_catalog(*catalog(300))
    errors: list[BaseException] = []

    def observer() -> None:
        rng = np.random.default_rng(2)
        try:
            for step in range(300):
                a.observe(hit(step, (step * 7) % 300, at=step, vector=rng.normal(size=8)))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=observer)
    thread.start()
    while thread.is_alive():
        assert len(a.predict_next_access(50)) <= 50
    thread.join()
    assert not errors and a.stats().observed == 300


@pytest.mark.parametrize("kwargs", [
    {"time_based": False, "semantic_based": False, "frequency_based": False},
    {"window": 0}, {"radius": -1}, {"half_life": 0}, {"similarity": 2},
    {"max_clusters": 0}, {"weights": {"spatial": 1}}, {"weights": {"temporal": -1}},
])
def test_invalid_arguments(kwargs):
    with pytest.raises(InvalidInputError):
        AccessPatternAnalyzer(**kwargs)


def test_invalid_inputs():
    a = AccessPatternAnalyzer()
    with pytest.raises(InvalidInputError):
        Access("abc")
    with pytest.raises(InvalidInputError):
        Access(("a", "b"), (1,))
    with pytest.raises(InvalidInputError):
        a.set_catalog(["a"], [1, 2])
    with pytest.raises(InvalidInputError):
        a.predict_next_access(-1)
