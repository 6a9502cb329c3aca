"""Recall as a promise: a graph's search width is chosen when the graph is built.

The queries are held out of the graph: a seeded sample of the vectors being added
(:func:`holdout`) is left out until the rest are in, searched the way queries search the
graph (candidates at the first round's depth, ``graph_depth``) with growing widths
(:data:`EF_STEPS`), and compared with its exact top ``k`` over every other vector the
graph holds; then the sample is added too. They are queries from the data's own
distribution that the graph has never seen, as a user's are. A quantized graph's
candidates are rescored exactly before the top ``k`` is taken, so its recall is the share
of the exact top ``k`` among the candidates; a float32 graph's is that of its own top
``k``. The smallest width whose recall reaches the target plus :data:`MARGIN` (for the
sample's noise) is recorded in the graph's TOC entry with the recall measured there;
searches use it unless ``ann_ef_search`` is set. When recall stops growing below that goal
(exact ties, or data no width separates), the narrowest width within :data:`PLATEAU` of
the best recall measured is recorded instead of the widest, which every later query
would pay for without finding more.

Sampled vectors searched while they are in the graph overstate recall (the graph finds
the vector, then its linked neighbours): on 30k x 64 isotropic vectors they chose ef 16 for
an independent recall of 0.52. Vectors moved off the data by a multiple of their
neighbour distance match independent queries on isotropic data only for one multiple, and
overstate or understate recall elsewhere (1.5 neighbour distances chose ef 2048 at 1M x 128
on the bench corpus, where ef 640 reaches 0.96).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import scoring
from .hnsw_format import QUANTIZED, graph_depth

SAMPLE = 256  # queries held out of the vectors being added
MIN_SAMPLE = 32  # fewer new vectors: the graph keeps the width it had
K = 10  # recall@K is the promise
MARGIN = 0.01  # above the target, for the sample's noise
EF_STEPS = (16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 384, 512, 768, 1024, 1536, 2048,
            3072, 4096)
PLATEAU = 0.005  # recall gained over PLATEAU_STEPS wider steps below which widening stops
PLATEAU_STEPS = 4  # (about a 2.7x to 4x wider search)
SEED = 1234
SLICE_ROWS = 8_192  # rows scored at a time against the sample: 8 MiB of scores


@dataclass(frozen=True, slots=True)
class Calibration:
    """The width chosen for a graph and the recall@K the sample measured with it."""

    ef_search: int
    recall: float
    sample: int

    def meta(self) -> dict[str, Any]:
        """The TOC entry's fields."""
        return {"ef_search": self.ef_search, "recall": round(self.recall, 4),
                "recall_sample": self.sample}


def holdout(count: int) -> np.ndarray:
    """Positions (ascending) among ``count`` new vectors to hold out as queries; none when
    there are too few to measure with."""
    if count < 4 * MIN_SAMPLE:
        return np.zeros(0, "<i8")
    take = min(SAMPLE, count // 4)
    return np.sort(np.random.default_rng(SEED).choice(count, take, replace=False))


def calibrate(index: Any, blocks: Sequence[tuple[np.ndarray, np.ndarray]],
              queries: np.ndarray, labels: np.ndarray, *, metric: str, dtype: str,
              target: float, done: Callable[[np.ndarray], None] | None = None
              ) -> Calibration | None:
    """The width ``index`` needs for recall@K >= ``target``: ``queries`` (labelled
    ``labels``, not yet in the graph) against every other vector of ``blocks``
    (``(matrix, gids)`` pairs: every vector the graph will hold; ``done(matrix)`` after
    each is scored). None without enough queries or vectors to measure."""
    total = sum(len(gids) for _, gids in blocks)
    if len(queries) < MIN_SAMPLE or total - len(queries) <= 2 * K:
        return None
    queries = np.ascontiguousarray(queries, "<f4")
    prepared = scoring.prepare_queries(queries, queries.shape[1], metric)
    truth = _exact_top(blocks, prepared, np.asarray(labels, "<i8"), metric, done)
    depth = graph_depth(K, dtype)
    goal = min(1.0, target + MARGIN)
    measured: list[tuple[int, float]] = []
    for ef in EF_STEPS:
        found, _ = index.search(queries, depth, ef=max(ef, depth))
        recall = _recall(found, truth, dtype)
        if recall >= goal:
            return Calibration(ef, recall, len(queries))
        measured.append((ef, recall))
        if len(measured) > PLATEAU_STEPS and recall - measured[-1 - PLATEAU_STEPS][1] < PLATEAU:
            break  # wider searches stopped finding more: the goal is out of reach
    # below the goal at every width (ties, or the data's own limit): the narrowest width
    # within PLATEAU of the best recall measured, not the widest
    best = max(r for _, r in measured)
    ef, recall = next((e, r) for e, r in measured if r >= best - PLATEAU)
    return Calibration(ef, recall, len(queries))


def _exact_top(blocks: Sequence[tuple[np.ndarray, np.ndarray]], prepared: np.ndarray,
               held_out: np.ndarray, metric: str,
               done: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
    """Labels (nq, K) of each query's exact top K among the vectors not held out; a slice
    of :data:`SLICE_ROWS` rows at a time, so memory stays at one slice's scores whatever
    the blocks' sizes (a compaction's blocks hold tens of thousands of rows)."""
    nq = len(prepared)
    best_scores = np.full((nq, K), -np.inf, "<f4")
    best_labels = np.full((nq, K), -1, "<i8")
    for matrix, gids in blocks:
        gids = np.asarray(gids, "<i8")
        held = np.isin(gids, held_out)
        for start in range(0, len(gids), SLICE_ROWS):
            rows = slice(start, start + SLICE_ROWS)
            scores = scoring.score_block(np.asarray(matrix[rows], "<f4"), prepared, metric)
            scores[:, held[rows]] = -np.inf
            best_scores, best_labels = _best_of(best_scores, best_labels, scores, gids[rows])
        if done is not None:
            done(matrix)
    return best_labels


def _best_of(best_scores: np.ndarray, best_labels: np.ndarray, scores: np.ndarray,
             labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The K best of each row among ``best_*`` (nq, K) and a slice's ``scores`` (nq, n)
    of the columns ``labels``."""
    keep = min(K, scores.shape[1])
    top = np.argpartition(scores, scores.shape[1] - keep, axis=1)[:, -keep:]
    scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
    labels = np.concatenate([best_labels, labels[top]], axis=1)
    top = np.argpartition(scores, scores.shape[1] - K, axis=1)[:, -K:]
    return np.take_along_axis(scores, top, axis=1), np.take_along_axis(labels, top, axis=1)


def _recall(labels: np.ndarray, truth: np.ndarray, dtype: str) -> float:
    """recall@K of the graph's candidates: all of them for a quantized graph (rescored
    exactly, the true top K among them come first), else its own first K."""
    found = 0
    for row, want in zip(labels, truth, strict=True):
        got = [label for label in row.tolist() if label >= 0]
        if dtype not in QUANTIZED:
            got = got[:K]
        found += len(set(got) & set(want.tolist()))
    return found / (K * len(truth))
