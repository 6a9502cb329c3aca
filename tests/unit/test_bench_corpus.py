"""The benchmark corpus generator is deterministic, sized and clustered as documented."""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, datetime

import numpy as np
import pytest

from bench import corpus


def fingerprint(records: list[dict]) -> bytes:
    """Every field of every record, embeddings as raw float32 bytes."""
    return pickle.dumps([{**r, "embedding": r["embedding"].tobytes()} for r in records])


@pytest.fixture(scope="module")
def sample() -> list[dict]:
    return list(corpus.generate(3000, seed=7))


def test_same_seed_same_corpus_byte_for_byte(sample):
    again = list(corpus.generate(3000, seed=7))
    assert fingerprint(again) == fingerprint(sample)


def test_other_seed_other_corpus(sample):
    other = list(corpus.generate(50, seed=8))
    assert [r["text"] for r in other] != [r["text"] for r in sample[:50]]


def test_independent_of_batch_size_and_prefix_stable(sample):
    batches = list(corpus.iter_batches(2500, batch_size=333, seed=7))
    assert [len(b) for b in batches] == [333] * 7 + [169]
    flat = [r for b in batches for r in b]
    assert fingerprint(flat) == fingerprint(sample[:2500])


def test_sizes_and_fields():
    recs = list(corpus.generate(1234, dim=64, seed=1))
    assert len(recs) == 1234
    assert list(corpus.generate(0)) == []
    for i, r in enumerate(recs):
        assert set(r) == {"text", "embedding", "metadata", "tags", "created_at", "id"}
        assert r["id"] == corpus.record_id(i)
        assert r["embedding"].shape == (64,) and r["embedding"].dtype == np.float32
        assert r["metadata"]["lang"] == "en"
        assert 0 <= r["metadata"]["topic"] < corpus.DEFAULT_TOPICS
        assert r["tags"][0] == f"topic-{r['metadata']['topic']}"
        assert r["created_at"].tzinfo is not None
    bare = next(corpus.iter_batches(10, ids=False, embeddings=False))
    assert all("id" not in r and "embedding" not in r for r in bare)


def test_text_length_about_300_bytes(sample):
    lengths = np.array([len(r["text"].encode()) for r in sample])
    assert 280 <= lengths.mean() <= 320
    assert lengths.min() >= 40 and lengths.max() <= 1000
    text, vec = corpus.raw_sizes(sample)
    assert text == lengths.sum() and vec == len(sample) * 384 * 4


def test_embeddings_unit_norm(sample):
    emb = np.stack([r["embedding"] for r in sample])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    vecs, topics = corpus.query_vectors(100, seed=7)
    assert vecs.shape == (100, 384) and vecs.dtype == np.float32 and topics.shape == (100,)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_embeddings_cluster_by_topic(sample):
    emb = np.stack([r["embedding"] for r in sample[:1500]])
    topic = np.array([corpus.topic_of(r) for r in sample[:1500]])
    sim = emb @ emb.T
    same = topic[:, None] == topic[None, :]
    np.fill_diagonal(same, False)
    cross = topic[:, None] != topic[None, :]
    assert sim[same].mean() > 0.4 and abs(sim[cross].mean()) < 0.05
    assert sim[same].mean() > sim[cross].mean() + 0.3
    # a query vector is nearest to its own topic's centroid
    vecs, topics = corpus.query_vectors(200, seed=7)
    nearest = (vecs @ corpus.centroids(384, 7).T).argmax(axis=1)
    assert (nearest == topics).mean() > 0.95


def test_another_draw_asks_about_the_same_topics_another_seed_about_others():
    cents = corpus.centroids(384, 7)
    first, topics = corpus.query_vectors(200, seed=7)
    again, again_topics = corpus.query_vectors(200, seed=7, draw=3)
    other, _ = corpus.query_vectors(200, seed=8)
    assert not np.array_equal(first, again)
    for vecs, tops in ((first, topics), (again, again_topics)):
        assert (np.argmax(vecs @ cents.T, axis=1) == tops).mean() > 0.95
        assert np.median((vecs @ cents.T).max(axis=1)) > 0.5
    assert np.median((other @ cents.T).max(axis=1)) < 0.3  # no centroid of seed 7 near


def test_topic_words_make_lexical_search_meaningful(sample):
    for text, topic in corpus.query_texts(10, seed=7):
        word = text.split()[0]
        assert word in corpus.topic_vocabulary()[topic]
        hits = [corpus.topic_of(r) for r in sample if word in r["text"].lower().split()]
        assert hits and all(t == topic for t in hits)


def test_created_at_spread_monotonic_ish(sample):
    stamps = [r["created_at"] for r in sample]
    assert stamps[0] >= corpus.DEFAULT_START
    inversions = sum(a > b for a, b in itertools.pairwise(stamps))
    assert 0 < inversions < len(stamps) * 0.1
    span = (stamps[-1] - stamps[0]).total_seconds()
    assert span == pytest.approx(len(stamps) * corpus.INTERVAL_S, rel=0.05)
    start = datetime(2020, 6, 1, tzinfo=UTC)
    assert next(corpus.generate(1, start=start))["created_at"] >= start


def test_rejects_naive_start():
    with pytest.raises(ValueError):
        list(corpus.generate(1, start=datetime(2020, 1, 1)))
