"""HashEmbedder: deterministic feature-hashing vectors, no model, for tests and quick runs.

Features of a text: its lower-cased words (letters and digits), character trigrams of each
word (so ``launch`` and ``launched`` share most of them), and for Chinese, Japanese and
Korean runs every character and every adjacent pair of characters. Each feature goes to one
of ``dim`` slots with a sign, both taken from its BLAKE2b digest, so vectors are identical
across processes, platforms and Python versions (``hash()`` is salted per process and is
never used). Word counts are damped (``1 + log(count)``), a short list of English and
Chinese function words (``the``, ``of``, ``的``...) counts a fifth, and vectors are L2-normalised:
texts that share words have a high cosine similarity, unrelated ones stay near zero.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from hashlib import blake2b
from typing import TYPE_CHECKING

from ..errors import InvalidInputError
from ..validate import MAX_DIM
from .base import check_texts, normalise_rows

if TYPE_CHECKING:
    import numpy

# Han (with extensions and compatibility ideographs), Hiragana, Katakana, Hangul.
_CJK = ("\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
        "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f")
_TOKENS = re.compile(rf"([{_CJK}]+)|((?:(?![{_CJK}])[^\W_])+)")
# Very common function words carry little meaning: they count a fifth of other words.
_FUNCTION_WORDS = frozenset(
    "a an and are as at be but by for from has have he her his i if in is it its me my no not "
    "of on or our she so that the their them then there they this to was we were what when "
    "which who will with you your 的 了 是 在 和 也 就 都 而 及 与 着 或 一 个 我 你 他 她 它 们 "
    "这 那 有 不 吗 呢 吧".split())
_FUNCTION_WEIGHT = 0.2
_EMPTY_FEATURE = "\x00empty"  # texts without any feature still get a unit vector


@lru_cache(maxsize=1 << 16)
def _slot(feature: str, dim: int) -> tuple[int, float]:
    digest = blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest[:6], "little") % dim, (1.0 if digest[7] & 1 else -1.0)


def features(text: str) -> Counter[str]:
    """The weighted features of ``text`` (before hashing)."""
    counts: Counter[str] = Counter()
    for cjk, word in _TOKENS.findall(text.lower()):
        if cjk:
            counts.update("c:" + ch for ch in cjk)
            counts.update("b:" + cjk[i:i + 2] for i in range(len(cjk) - 1))
        else:
            counts["w:" + word] += 1
    out: Counter[str] = Counter()
    for feat, n in counts.items():
        weight = 1.0 + math.log(n)
        if feat[2:] in _FUNCTION_WORDS:
            weight *= _FUNCTION_WEIGHT
        out[feat] += weight
        if feat.startswith("w:") and len(feat) > 4:  # words of 3+ characters
            padded = f"<{feat[2:]}>"
            grams = [padded[i:i + 3] for i in range(len(padded) - 2)]
            for gram in grams:  # together as heavy (in L2 norm) as the word itself
                out["g:" + gram] += weight / math.sqrt(len(grams))
    return out or Counter({_EMPTY_FEATURE: 1.0})


class HashEmbedder:
    """Deterministic, model-free embedder. Name ``hash-<dim>``.

    Args:
        dim: vector dimension (any positive int; 384 matches the default real model).
    """

    def __init__(self, dim: int = 384) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 8 <= dim <= MAX_DIM:
            raise InvalidInputError(
                f"HashEmbedder dim must be an int from 8 to {MAX_DIM}, got {dim!r}")
        self.dim = dim
        self.name = f"hash-{dim}"

    def __repr__(self) -> str:
        return f"HashEmbedder(dim={self.dim})"

    def embed_documents(self, texts: Sequence[str]) -> numpy.ndarray:
        """One L2-normalised row per text, ``(len(texts), dim)`` float32."""
        import numpy as np

        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in enumerate(texts):
            for feat, weight in features(text).items():
                slot, sign = _slot(feat, self.dim)
                out[row, slot] += sign * weight
        normalise_rows(out)
        empty = ~out.any(axis=1)  # features that cancelled out exactly: fall back
        if empty.any():
            slot, sign = _slot(_EMPTY_FEATURE, self.dim)
            out[empty, slot] = sign
        return np.ascontiguousarray(out, dtype=np.float32)

    def embed_query(self, text: str) -> numpy.ndarray:
        """The vector of one text, ``(dim,)`` float32 (same as a document)."""
        if not isinstance(text, str):
            raise InvalidInputError(f"embed_query takes a str, got {type(text).__name__}")
        return self.embed_documents([text])[0]
