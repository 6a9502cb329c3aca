"""Deterministic synthetic corpus shared by the benchmarks.

Records are dicts ready for ``Memory.put_many``: English-like text of about 300 bytes,
metadata, tags, ``created_at`` spread over time and unit-normalized float32 embeddings
clustered around per-topic centroids. Everything derives from ``seed``:

* the corpus is generated in fixed blocks of ``BLOCK`` records, each from its own RNG
  stream, so the same seed gives the same records whatever the batch size, and the
  first ``n`` records of a larger corpus equal a corpus of ``n`` records;
* the vocabulary (general words plus distinctive words per topic) does not depend on the
  seed, so topic ``t`` has the same characteristic words in every corpus.

Word frequencies are Zipf-like; about a quarter of the words of a record come from its
topic's vocabulary, so a lexical query made of topic words finds that topic's records.

>>> recs = list(generate(3, dim=8))
>>> [sorted(r) for r in recs][0]
['created_at', 'embedding', 'id', 'metadata', 'tags', 'text']
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np

BLOCK = 1000  # records per RNG stream; fixed so output does not depend on batch_size
DEFAULT_START = datetime(2023, 1, 1, tzinfo=UTC)
DEFAULT_TOPICS = 32
TOPIC_WORDS = 24  # distinctive words per topic
TOPIC_SHARE = 0.25  # fraction of a record's words drawn from its topic vocabulary
TEXT_MEAN = 300  # target text length in bytes
TEXT_SD = 60
SPREAD = 1.0  # noise norm relative to the unit centroid: same-topic cosine ~ 1 / (1 + s^2)
INTERVAL_S = 60.0  # mean seconds between consecutive records
JITTER_S = 20.0  # standard deviation of the created_at jitter (some records swap order)
VOCAB_SEED = 20240601
SOURCES = ("email", "chat", "web", "notes", "calendar", "docs", "ticket", "meeting")
EXTRA_TAGS = ("todo", "important", "followup", "archive", "personal", "work", "idea", "draft")

_FUNCTION = (
    "the of and to a in is that it for was on are as with be by at this have from or an "
    "but not they which we you he she has had were will can all their there been if more "
    "when so no about out up into than them what some would then its only other new over "
    "also may after most these two any our could should first very just where how each"
).split()
_CONTENT = (
    "time year people way day man thing woman life child world school state family group "
    "country problem hand part place case week company system program question work "
    "government number night point home water room mother area money story fact month lot "
    "right study book eye job word business issue side kind head house service friend "
    "father power hour game line end member law car city community name president team "
    "minute idea kid body information back parent face others level office door health "
    "person art war history party result change morning reason research girl guy moment "
    "air teacher force education foot boy age policy process music market sense nation "
    "plan college interest death experience effect class control care field development "
    "role effort rate heart drug show leader light voice wife police mind price report "
    "decision son view relationship town road arm difference value building action model "
    "season society tax director position player record paper space ground form event "
    "official matter center couple site project activity star table need court oil "
    "situation cost industry figure street image phone data picture practice piece land "
    "product doctor wall patient worker news test movie north love support technology step "
    "baby computer type attention film tree source organization hair window evidence "
    "population site truth letter meeting budget review schedule deadline release update "
    "note list draft summary message call trip order account payment contract client "
    "feature design version server network memory file storage agent task goal answer "
    "say make go know take see come think look want give use find tell ask seem feel try "
    "leave put mean keep let begin help talk turn start show hear play run move like live "
    "believe hold bring happen write provide sit stand lose pay meet include continue set "
    "learn lead understand watch follow stop create speak read allow add spend grow open "
    "walk win offer remember consider appear buy wait serve die send expect build stay "
    "fall cut reach remain suggest raise pass sell require decide return explain hope "
    "good great long little own old big high different small large next early young "
    "important few public bad same able late hard major better economic strong possible "
    "whole free military true federal international full special easy clear recent "
    "certain personal open red difficult available likely short single medical current "
    "wrong private past foreign fine common poor natural significant similar hot dead "
    "central happy serious ready simple left physical general environmental financial "
    "blue democratic dark various entire close legal religious cold final main green nice"
).split()
_ONSETS = ("b", "br", "c", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "l", "m",
           "n", "p", "pl", "qu", "r", "s", "sh", "sk", "st", "t", "th", "tr", "v", "w", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y")
_CODAS = ("", "", "", "n", "r", "s", "l", "m", "nd", "st", "x", "ck", "th", "rn", "nt")


def general_vocabulary() -> list[str]:
    """General words, most frequent first (Zipf rank order)."""
    return list(dict.fromkeys(_FUNCTION + _CONTENT))


@lru_cache(maxsize=8)
def topic_vocabulary(n_topics: int = DEFAULT_TOPICS) -> tuple[tuple[str, ...], ...]:
    """``TOPIC_WORDS`` distinctive pseudo-words per topic, most frequent first.

    Words never repeat across topics or collide with the general vocabulary; topic ``t``
    gets the same words for any ``n_topics > t``.
    """
    rng = np.random.default_rng(VOCAB_SEED)
    seen = set(general_vocabulary())
    words: list[str] = []
    while len(words) < n_topics * TOPIC_WORDS:
        n_syl = int(rng.integers(2, 4))
        w = "".join(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                    for _ in range(n_syl)) + _CODAS[rng.integers(len(_CODAS))]
        if w not in seen and 4 <= len(w) <= 12:
            seen.add(w)
            words.append(w)
    return tuple(tuple(words[t * TOPIC_WORDS:(t + 1) * TOPIC_WORDS]) for t in range(n_topics))


LUT_BITS = 16


def _zipf_lut(n: int, a: float = 1.0, q: float = 2.7) -> np.ndarray:
    """Zipf-Mandelbrot ranks 0..n-1 as a lookup table: ``lut[uniform 16-bit int]`` samples it."""
    p = 1.0 / (np.arange(n) + 1.0 + q) ** a
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    grid = (np.arange(1 << LUT_BITS) + 0.5) / (1 << LUT_BITS)
    return np.searchsorted(cdf, grid, side="right").astype(np.int64)


class _Tables:
    """Word tables for vectorized text generation (four spellings per word)."""

    def __init__(self, n_topics: int) -> None:
        general = general_vocabulary()
        topical = [w for ws in topic_vocabulary(n_topics) for w in ws]
        base = general + topical
        self.n_general = len(general)
        self.size = len(base)
        # index = word + size * (2 * capitalized + ends_sentence)
        self.spellings = (base + [w + "." for w in base] + [w.capitalize() for w in base]
                          + [w.capitalize() + "." for w in base])
        self.lengths = np.array([len(w) for w in base], dtype=np.int64)
        self.general_lut = _zipf_lut(len(general))
        self.topic_lut = _zipf_lut(TOPIC_WORDS, a=0.8, q=1.0)


@lru_cache(maxsize=8)
def _tables(n_topics: int) -> _Tables:
    return _Tables(n_topics)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


@lru_cache(maxsize=16)
def centroids(dim: int = 384, seed: int = 0, n_topics: int = DEFAULT_TOPICS) -> np.ndarray:
    """Unit-norm topic centroids (n_topics x dim, float64), shared by records and queries."""
    c = _rng(seed, 1).standard_normal((n_topics, dim))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    c.setflags(write=False)
    return c


def _embed(rng: np.random.Generator, topics: np.ndarray, dim: int, seed: int,
           n_topics: int, spread: float) -> np.ndarray:
    """Unit float32 vectors: topic centroid plus isotropic noise of norm ~``spread``."""
    noise = rng.standard_normal((len(topics), dim), dtype=np.float32)
    noise *= np.float32(spread / np.sqrt(dim))
    noise += centroids(dim, seed, n_topics)[topics].astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return noise


def _texts(rng: np.random.Generator, topics: np.ndarray, n_topics: int) -> list[str]:
    """English-like texts of about ``TEXT_MEAN`` bytes with topic words mixed in."""
    tab = _tables(n_topics)
    n = len(topics)
    target = np.clip(rng.normal(TEXT_MEAN, TEXT_SD, n), 80, 3 * TEXT_MEAN).astype(np.int64)
    width = int(target.max()) // 2 + 8  # mean word + space is ~5 bytes: ample
    general = tab.general_lut[rng.integers(0, 1 << LUT_BITS, (n, width), dtype=np.uint16)]
    topical = tab.topic_lut[rng.integers(0, 1 << LUT_BITS, (n, width), dtype=np.uint16)]
    topical += tab.n_general + topics[:, None] * TOPIC_WORDS
    words = np.where(rng.random((n, width)) < TOPIC_SHARE, topical, general)
    total = np.cumsum(tab.lengths[words] + 1, axis=1)
    counts = np.maximum((total <= target[:, None] + 2).sum(axis=1), 1)
    ends = rng.random((n, width)) < 1.0 / 11.0  # mean sentence length ~11 words
    ends[np.arange(n), counts - 1] = True
    starts = np.zeros_like(ends)
    starts[:, 0] = True
    starts[:, 1:] = ends[:, :-1]
    used = int(counts.max())
    codes = (words + tab.size * (2 * starts + ends))[:, :used].tolist()
    spell = tab.spellings.__getitem__
    return [" ".join(map(spell, row[:k])) for row, k in zip(codes, counts.tolist(), strict=True)]


def _block(index: int, dim: int, seed: int, n_topics: int, start_us: int,
           spread: float, ids: bool, embeddings: bool) -> list[dict[str, Any]]:
    """Records ``index * BLOCK .. (index + 1) * BLOCK - 1`` of the corpus."""
    rng = _rng(seed, 2, index)
    first = index * BLOCK
    topics = rng.integers(0, n_topics, BLOCK)
    texts = _texts(rng, topics, n_topics)
    # created_at: a steady stream with jitter, so mostly increasing with some reordering
    offsets = (np.arange(first, first + BLOCK) * INTERVAL_S
               + rng.normal(0.0, JITTER_S, BLOCK)) * 1e6
    stamps = (start_us + np.maximum(offsets, 0.0)).astype(np.int64).tolist()
    sources = rng.integers(0, len(SOURCES), BLOCK).tolist()
    priority = rng.integers(0, 5, BLOCK).tolist()
    extra = rng.integers(-len(EXTRA_TAGS), len(EXTRA_TAGS), BLOCK).tolist()  # < 0: none
    vectors = _embed(rng, topics, dim, seed, n_topics, spread) if embeddings else None
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    out = []
    for i, t in enumerate(topics.tolist()):
        src = SOURCES[sources[i]]
        tags = [f"topic-{t}", src]
        if extra[i] >= 0:
            tags.append(EXTRA_TAGS[extra[i]])
        rec: dict[str, Any] = {
            "text": texts[i],
            "metadata": {"topic": t, "source": src, "priority": priority[i], "lang": "en"},
            "tags": tags,
            "created_at": epoch + timedelta(microseconds=stamps[i]),
        }
        if vectors is not None:
            rec["embedding"] = vectors[i]
        if ids:
            rec["id"] = record_id(first + i)
        out.append(rec)
    return out


def record_id(i: int) -> str:
    """Id of record ``i`` (when generated with ``ids=True``)."""
    return f"doc-{i:08d}"


def iter_batches(n: int, batch_size: int = 1000, *, dim: int = 384, seed: int = 0,
                 n_topics: int = DEFAULT_TOPICS, start: datetime = DEFAULT_START,
                 spread: float = SPREAD, ids: bool = True,
                 embeddings: bool = True) -> Iterator[list[dict[str, Any]]]:
    """Yield the first ``n`` records as lists of ``batch_size`` (the last may be shorter).

    Args:
        n: number of records.
        dim: embedding dimension.
        seed: corpus seed; same seed (and other arguments) gives the same records.
        n_topics: number of topics (clusters).
        start: aware datetime of the first record's ``created_at``.
        spread: embedding noise; same-topic cosine is about ``1 / (1 + spread**2)``.
        ids: include ``"id": record_id(i)`` in each record.
        embeddings: include ``"embedding"`` (a float32 numpy row, unit norm).
    """
    if n < 0 or batch_size <= 0:
        raise ValueError("n must be >= 0 and batch_size > 0")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    start_us = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    pending: list[dict[str, Any]] = []
    done = 0
    block = 0
    while done < n:
        while len(pending) < batch_size and done + len(pending) < n:
            pending.extend(_block(block, dim, seed, n_topics, start_us, spread, ids, embeddings))
            block += 1
        take = min(batch_size, n - done)
        batch, pending = pending[:take], pending[take:]
        done += take
        yield batch


def generate(n: int, dim: int = 384, seed: int = 0, n_topics: int = DEFAULT_TOPICS,
             start: datetime = DEFAULT_START, **options: Any) -> Iterator[dict[str, Any]]:
    """Yield ``n`` records one by one (see ``iter_batches`` for the options)."""
    for batch in iter_batches(n, BLOCK, dim=dim, seed=seed, n_topics=n_topics, start=start,
                              **options):
        yield from batch


def topic_of(record: dict[str, Any]) -> int:
    """The topic a record was generated from."""
    return int(record["metadata"]["topic"])


def query_vectors(n: int, dim: int = 384, seed: int = 0, n_topics: int = DEFAULT_TOPICS,
                  spread: float = SPREAD, draw: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit query vectors drawn like the corpus of ``seed`` (around its topic
    centroids, in a separate stream) and their topics; ``draw`` picks another set of
    queries of the same topics. (Another ``seed`` gives queries about topics the corpus
    of ``seed`` does not hold.)

    Returns ``(vectors float32 n x dim, topics int64 n)``.
    """
    rng = _rng(seed, 3, draw) if draw else _rng(seed, 3)
    topics = rng.integers(0, n_topics, n)
    return _embed(rng, topics, dim, seed, n_topics, spread), topics


def query_texts(n: int, seed: int = 0, n_topics: int = DEFAULT_TOPICS,
                words: int = 3) -> list[tuple[str, int]]:
    """``n`` keyword queries ``(text, topic)``: ``words`` topic words plus one general word."""
    rng = _rng(seed, 4)
    vocab = topic_vocabulary(n_topics)
    general = general_vocabulary()[len(_FUNCTION):]  # content words only
    tab = _tables(n_topics)
    out = []
    for _ in range(n):
        t = int(rng.integers(n_topics))
        picks = np.unique(tab.topic_lut[rng.integers(0, 1 << LUT_BITS, words)])
        terms = [vocab[t][int(k)] for k in picks]
        terms.append(general[int(rng.integers(len(general)))])
        out.append((" ".join(terms), t))
    return out


def raw_sizes(records: list[dict[str, Any]]) -> tuple[int, int]:
    """``(text bytes, embedding bytes)`` of a list of records."""
    text = sum(len(r["text"].encode()) for r in records)
    vec = sum(r["embedding"].nbytes for r in records if r.get("embedding") is not None)
    return text, vec


__all__ = [
    "BLOCK", "DEFAULT_START", "DEFAULT_TOPICS", "centroids", "general_vocabulary", "generate",
    "iter_batches", "query_texts", "query_vectors", "raw_sizes", "record_id", "topic_of",
    "topic_vocabulary",
]
