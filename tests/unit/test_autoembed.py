"""A memory bound to an embedder embeds texts and text queries, and refuses other models."""

from __future__ import annotations

import hashlib

import pytest

from memvid_store import DimensionMismatchError, EmbedderMismatchError, InvalidTypeError, Memory


class WordEmbedder:
    """Deterministic bag-of-words embedder (texts sharing words are close)."""

    def __init__(self, name: str = "words-16", dim: int = 16) -> None:
        self.name, self.dim, self.calls = name, dim, 0

    def _one(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        for w in text.lower().split():
            v[hashlib.blake2b(w.encode(), digest_size=2).digest()[0] % self.dim] += 1.0
        v[0] += 1e-3
        return v

    def embed_documents(self, texts):
        self.calls += 1
        return [self._one(t) for t in texts]

    def embed_query(self, text):
        self.calls += 1
        return self._one(text)


def test_put_and_find_embed_automatically(tmp_path):
    emb = WordEmbedder()
    with Memory.create(tmp_path / "m.mv2", embedder=emb) as mem:
        assert mem.dim == 16 and mem.embedder_info == {"name": "words-16", "dim": 16}
        ids = mem.put_many([{"text": "red apples and pears"}, {"text": "blue ocean waves"},
                            {"text": "explicit", "embedding": [1.0] * 16}])
        assert emb.calls == 1  # one batch for the two records without an embedding
        assert mem.get(ids[0]).embedding == pytest.approx(emb._one("red apples and pears"))
        assert mem.get(ids[2]).embedding == [1.0] * 16
        hits = mem.find("ocean waves", mode="vector", k=1)
        assert hits[0].id == ids[1]
        mem.update(ids[1], text="green forest trees")
        assert mem.get(ids[1]).embedding == pytest.approx(emb._one("green forest trees"))
        assert mem.find("forest", mode="vector", k=1)[0].id == ids[1]
        # the view of the past embeds with the owner's embedder and sees the old vector
        past = mem.as_of(mem.history(ids[1])[0].valid_from)
        assert past.find("ocean waves", mode="vector", k=1)[0].id == ids[1]
        lexical_calls = emb.calls
        mem.find("ocean", mode="lexical")
        assert emb.calls == lexical_calls


def test_open_checks_the_embedder(tmp_path):
    path = tmp_path / "m.mv2"
    Memory.create(path, embedder=WordEmbedder()).close()
    with Memory.open(path, readonly=True) as mem:  # no embedder: vectors are the caller's job
        assert mem.embedder is None and mem.embedder_info["name"] == "words-16"
    with pytest.raises(EmbedderMismatchError, match="words-16"):
        Memory.open(path, embedder=WordEmbedder(name="other-16"))
    with Memory.open(path, embedder=WordEmbedder(name="other-16"),
                     allow_embedder_mismatch=True) as mem:
        assert mem.embedder.name == "other-16"
    with pytest.raises(DimensionMismatchError):
        Memory.open(path, embedder=WordEmbedder(name="words-16", dim=8),
                    allow_embedder_mismatch=True)
    with Memory.open(path, embedder=WordEmbedder()) as mem:
        mem.put("still writable")
        assert len(mem) == 1


def test_bad_embedders_are_refused(tmp_path):
    with pytest.raises(InvalidTypeError, match="embed_documents"):
        Memory.create(tmp_path / "a.mv2", embedder=object())
    assert not (tmp_path / "a.mv2").exists()
    with pytest.raises(DimensionMismatchError):
        Memory.create(tmp_path / "b.mv2", dim=8, embedder=WordEmbedder())
    with Memory.create(tmp_path / "c.mv2", dim=8) as mem:
        mem.put("x", embedding=[1.0] * 8)
    with pytest.raises(DimensionMismatchError):
        Memory.open(tmp_path / "c.mv2", embedder=WordEmbedder())


def test_create_with_a_recorded_identity(tmp_path):
    path = tmp_path / "copy.mv2"
    with Memory.create(path, embedder={"name": "words-16", "dim": 16}) as mem:
        assert mem.embedder is None and mem.embedder_info == {"name": "words-16", "dim": 16}
        mem.put("explicit vector", embedding=[1.0] * 16)
    with pytest.raises(EmbedderMismatchError):
        Memory.open(path, embedder=WordEmbedder(name="other"))
    with pytest.raises(InvalidTypeError):
        Memory.create(tmp_path / "bad.mv2", embedder={"name": "x"})
