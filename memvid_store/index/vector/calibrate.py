"""Recall as a promise: a graph's search width is chosen when the graph is built.

Queries like a user's are made from the graph's own vectors: a seeded sample, each moved
by :data:`STRIDE` times its distance to its nearest neighbour in a random direction (a
new point among the data, not a copy of one, which the graph would find at once). On
isotropic Gaussian data, the hardest case for a graph, recall measured so matched that of
independent queries (0.963-0.986 against 0.977-0.986 at 4k-30k rows of 32-128 dims);
moved by one distance, it overstated it by up to 0.03. Each is searched the
way queries search the graph (candidates at the first round's depth, ``graph_depth``) with
growing widths (:data:`EF_STEPS`) and compared with its exact top ``k`` over every
vector the graph holds. A quantized graph's candidates are rescored exactly before the
top ``k`` is taken, so its recall is the share of the exact top ``k`` among the
candidates; a float32 graph's is that of its own top ``k``. The smallest width whose
recall reaches the target plus :data:`MARGIN` (for the sample's noise) is recorded in the
graph's TOC entry with the recall measured there; searches use it unless
``ann_ef_search`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import scoring
from .hnsw_format import QUANTIZED, graph_depth

SAMPLE = 256  # queries drawn from the graph's vectors
K = 10  # recall@K is the promise
MARGIN = 0.01  # above the target, for the sample's noise
EF_STEPS = (16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 384, 512, 768, 1024, 1536, 2048,
            3072, 4096)
SEED = 1234
STRIDE = 1.5  # how far a query moves from its sampled vector, in nearest-neighbour distances


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


def calibrate(index: Any, blocks: Sequence[tuple[np.ndarray, np.ndarray]], *, metric: str,
              dtype: str, target: float) -> Calibration | None:
    """The width ``index`` needs for recall@K >= ``target`` over the vectors of
    ``blocks`` (``(matrix, gids)`` pairs: every vector the graph holds, labelled as in
    the graph). None when the graph holds too few vectors to measure."""
    total = sum(len(gids) for _, gids in blocks)
    if total <= 2 * K:
        return None
    queries = _queries(index, blocks, total, metric)
    truth = _exact_top(blocks, scoring.prepare_queries(queries, queries.shape[1], metric),
                       metric)
    depth = graph_depth(K, dtype)
    goal = min(1.0, target + MARGIN)
    recall = 0.0
    for ef in EF_STEPS:
        labels, _ = index.search(queries, depth, ef=max(ef, depth))
        recall = _recall(labels, truth, dtype)
        if recall >= goal:
            return Calibration(ef, recall, len(queries))
    return Calibration(EF_STEPS[-1], recall, len(queries))


def _queries(index: Any, blocks: Sequence[tuple[np.ndarray, np.ndarray]], total: int,
             metric: str) -> np.ndarray:
    """Sampled vectors, each moved by STRIDE times its distance to its nearest neighbour
    (as the graph finds it) in a random direction."""
    rng = np.random.default_rng(SEED)
    picks = np.sort(rng.choice(total, min(SAMPLE, total), replace=False))
    rows, own = _rows(blocks, picks)
    if metric == "cosine":
        rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-30)
    labels, _ = index.search(rows, 2, ef=max(EF_STEPS[4], 2))
    nearest = np.where(labels[:, 0] == own, labels[:, 1], labels[:, 0])
    found = nearest >= 0
    radius = np.zeros(len(rows), "<f4")
    if found.any():
        neighbours = _by_label(blocks, nearest[found])
        if metric == "cosine":
            neighbours /= np.maximum(np.linalg.norm(neighbours, axis=1, keepdims=True), 1e-30)
        radius[found] = np.linalg.norm(neighbours - rows[found], axis=1)
    direction = rng.standard_normal(rows.shape).astype("<f4")
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-30)
    return np.ascontiguousarray(rows + STRIDE * radius[:, None] * direction, "<f4")


def _rows(blocks: Sequence[tuple[np.ndarray, np.ndarray]], picks: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """The rows at positions ``picks`` (ascending) of the blocks laid end to end, as
    float32, and their labels."""
    rows, labels, start = [], [], 0
    for matrix, gids in blocks:
        inside = picks[(picks >= start) & (picks < start + len(gids))] - start
        if len(inside):
            rows.append(np.asarray(matrix[inside], "<f4"))
            labels.append(np.asarray(gids[inside], "<i8"))
        start += len(gids)
    return np.concatenate(rows), np.concatenate(labels)


def _by_label(blocks: Sequence[tuple[np.ndarray, np.ndarray]], labels: np.ndarray
              ) -> np.ndarray:
    """The float32 rows labelled ``labels``, in that order."""
    out = np.zeros((len(labels), blocks[0][0].shape[1]), "<f4")
    for matrix, gids in blocks:
        at = np.flatnonzero(np.isin(labels, gids))
        if len(at):
            order = np.argsort(gids, kind="stable")
            pos = order[np.searchsorted(gids, labels[at], sorter=order)]
            out[at] = matrix[pos]
    return out


def _exact_top(blocks: Sequence[tuple[np.ndarray, np.ndarray]], prepared: np.ndarray,
               metric: str) -> np.ndarray:
    """Labels (nq, K) of each query's exact top K; block by block, so memory stays at one
    block's scores."""
    nq = len(prepared)
    best_scores = np.full((nq, 0), -np.inf, "<f4")
    best_labels = np.empty((nq, 0), "<i8")
    for matrix, gids in blocks:
        scores = scoring.score_block(np.asarray(matrix, "<f4"), prepared, metric)
        labels = np.broadcast_to(np.asarray(gids, "<i8"), scores.shape)
        scores = np.concatenate([best_scores, scores], axis=1)
        labels = np.concatenate([best_labels, labels], axis=1)
        keep = min(K, scores.shape[1])
        top = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_labels = np.take_along_axis(labels, top, axis=1)
    return best_labels


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
