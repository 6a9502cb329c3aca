"""The exact vector path: one product over the joined vector blocks, top-k by partition,
small products on one BLAS thread (restored afterwards)."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import pytest

from memvid_store import ChecksumError, Memory
from memvid_store.index.searcher import existing_searcher
from memvid_store.index.vector import blas_threads
from memvid_store.index.vector.exact import best
from memvid_store.index.vector.stored import Block, _join

DIM = 16


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype("<f4")


def _fill(path, batches: list[np.ndarray]) -> Memory:
    """One commit per batch: one vector block each, with payloads between them."""
    mem = Memory.create(path, dim=DIM)
    start = 0
    for batch in batches:
        mem.put_many([{"id": f"f{start + i:04d}", "text": f"frame {start + i}",
                       "embedding": row.tolist()} for i, row in enumerate(batch)])
        mem.seal()
        start += len(batch)
    return mem


def _reference(x: np.ndarray, q: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    """Cosine top-k by numpy in float64, ties by id."""
    s = (x.astype("f8") @ q) / np.linalg.norm(x.astype("f8"), axis=1) / np.linalg.norm(q)
    order = np.lexsort((np.arange(len(x)), -s))[:k]
    return [f"f{i:04d}" for i in order], s[order]


def _table(mem: Memory):
    return existing_searcher(mem._snap()).vectors.exact.table()


def test_blocks_apart_in_the_file_are_copied_once_into_one_array(tmp_path):
    batches = [_vectors(50, 1), _vectors(70, 2), _vectors(30, 3)]
    x = np.concatenate(batches)
    with _fill(tmp_path / "m.mv2", batches) as mem:
        for seed in range(5):
            q = _vectors(1, 100 + seed)[0]
            hits = mem.find(vector=q.tolist(), k=12, mode="vector")
            ids, scores = _reference(x, q, 12)
            assert [h.id for h in hits] == ids
            assert np.allclose([h.score for h in hits], scores, atol=1e-5)
        table = _table(mem)
        (joined,) = table.joined("cosine")
        assert table.copied_bytes == x.nbytes == joined.matrix.nbytes
        assert len(table.blocks) == 3
        for block in table.blocks:  # the blocks are views of the joined arrays now
            assert np.shares_memory(block.matrix, joined.matrix)
            assert np.shares_memory(block.valid_to, joined.valid_to)
        assert np.array_equal(joined.matrix, x)


def test_a_file_with_a_graph_scans_its_blocks_without_joining_them(tmp_path):
    with Memory.create(tmp_path / "m.mv2", dim=DIM, index={"ann_threshold": 50}) as mem:
        x = _vectors(120, 11)
        mem.put_many([{"id": f"f{i:04d}", "text": "t", "embedding": row.tolist()}
                      for i, row in enumerate(x)])
        mem.seal()
        mem.find(vector=x[0].tolist(), k=3, mode="vector")
        exact = existing_searcher(mem._snap()).vectors.exact
        assert not exact.joins and exact.load()  # the exact scan only stands in here
        assert exact.table().copied_bytes == 0
    with Memory.create(tmp_path / "n.mv2", dim=DIM) as mem:
        mem.put_many([{"text": "t", "embedding": row.tolist()} for row in x[:20]])
        mem.seal()
        mem.put_many([{"text": "t", "embedding": row.tolist()} for row in x[20:]])
        mem.seal()
        mem.find(vector=x[0].tolist(), k=3, mode="vector")
        exact = existing_searcher(mem._snap()).vectors.exact
        assert exact.joins and exact.table().copied_bytes == x.nbytes


def _fake_blocks(x: np.ndarray, sizes: list[int], gap: int) -> tuple[SimpleNamespace, list]:
    """A mapped file holding ``x``'s rows in blocks of ``sizes``, ``gap`` bytes apart."""
    width = DIM * 4
    data, blocks, offset, start = bytearray(), [], 0, 0
    for size in sizes:
        rows = x[start:start + size]
        data += rows.tobytes() + bytes(gap)
        gids = np.arange(start, start + size, dtype="<i8")
        blocks.append(Block(rows.copy(), gids, np.zeros(size, "<i8"),
                            np.full(size, 2**62, "<i8"), np.zeros(size, "<i8"),
                            span=(offset, size * width)))
        offset += size * width + gap
        start += size
    buffer = memoryview(bytes(data))
    view = SimpleNamespace(mmapped=True, prefetch=lambda *a: None,
                           read=lambda off, size, region="": buffer[off:off + size])
    return SimpleNamespace(view=view, buffer=buffer), blocks


def test_blocks_end_to_end_in_a_mapped_file_are_viewed_without_copying():
    x = _vectors(60, 4)
    snap, blocks = _fake_blocks(x, [20, 25, 15], gap=0)
    joined, copied = _join(snap, blocks, DIM)
    assert not copied
    assert np.shares_memory(joined.matrix, np.frombuffer(snap.buffer, "<f4"))
    assert np.array_equal(joined.matrix, x) and list(joined.gids) == list(range(60))
    apart, blocks = _fake_blocks(x, [20, 25, 15], gap=64)
    joined, copied = _join(apart, blocks, DIM)
    assert copied and np.array_equal(joined.matrix, x)


def test_a_damaged_later_block_is_reported_by_the_exact_scan(tmp_path):
    path = tmp_path / "m.mv2"
    batches = [_vectors(40, 5), _vectors(40, 6)]
    with _fill(path, batches) as mem:
        vblocks = [b for run in mem._snap().runs for b in run.header["vblocks"]]
        offset = vblocks[1][0]
    data = bytearray(path.read_bytes())
    data[offset + 3 * DIM * 4 + 2] ^= 0x20
    path.write_bytes(data)
    with Memory.open(path, readonly=True) as mem:
        with pytest.raises(ChecksumError):
            mem.find(vector=batches[0][0].tolist(), k=5, mode="vector")
        assert mem.get("f0043").text == "frame 43"


def test_a_replaced_version_leaves_the_joined_scan(tmp_path):
    batches = [_vectors(30, 7), _vectors(30, 8)]
    with _fill(tmp_path / "m.mv2", batches) as mem:
        target = batches[1][5]
        assert mem.find(vector=target.tolist(), k=1, mode="vector")[0].id == "f0035"
        assert _table(mem).copied_bytes  # joined before the replacement
        far = (-target).tolist()
        mem.put("moved", id="f0035", embedding=far)  # in the WAL delta, not committed
        hits = mem.find(vector=target.tolist(), k=60, mode="vector")
        assert [h.id for h in hits].count("f0035") == 1
        assert hits[-1].id == "f0035" and hits[-1].text == "moved"


def _ranked(scores: np.ndarray, gids: np.ndarray, m: int) -> list[tuple[int, float]]:
    """Reference of best(): finite pairs sorted, cut after the m-th keeping its ties."""
    pairs = sorted((-float(s), int(g)) for s, g in zip(scores, gids, strict=True)
                   if np.isfinite(s))
    if len(pairs) > m:
        cutoff = pairs[m - 1][0]
        pairs = [p for p in pairs if p[0] <= cutoff]
    return [(g, -s) for s, g in pairs]


@pytest.mark.parametrize("seed", range(30))
def test_best_equals_a_full_sort_with_ties_and_masked_scores(seed):
    rng = np.random.default_rng(seed)
    # small rows partition whole; from POOL_MIN_ROWS a sampled cutoff narrows them first
    n = int(rng.integers(1, 500)) if seed % 2 else int(rng.integers(512, 6_000))
    scores = rng.integers(0, 12, n).astype("<f4") / 4  # many ties
    if seed % 3 == 0:
        scores[rng.random(n) < 0.5] = -np.inf  # masked rows
    if seed % 5 == 0:
        scores[rng.random(n) < 0.05] = np.nan
    if seed % 7 == 0:
        scores[rng.random(n) < 0.01] = np.inf
    gids = rng.permutation(10 * n)[:n].astype("<i8")
    for m in (1, 3, 10, n, n + 5):
        assert best(scores, gids, m) == _ranked(scores, gids, m)


openblas = pytest.mark.skipif(blas_threads.openblas() is None, reason="needs OpenBLAS")


@openblas
def test_small_products_run_on_one_thread_and_the_count_is_restored(tmp_path, monkeypatch):
    monkeypatch.setattr(blas_threads, "ADAPTIVE", False)  # no trial of every thread
    lib = blas_threads.openblas()
    before = lib.get()
    lib.set(2)
    try:
        small = blas_threads.UNSPLIT_MACS
        with blas_threads.bounded(small):
            assert lib.get() == 1
            with blas_threads.bounded(small + 10):
                assert lib.get() == 1
            assert lib.get() == 1  # the outer product still runs
        assert lib.get() == 2
        with blas_threads.bounded(small - 1):
            assert lib.get() == 2  # OpenBLAS runs it on one thread anyway: left alone
        with blas_threads.bounded(blas_threads.THREAD_BOUND_MACS):
            assert lib.get() == 2  # large products keep every thread
        with _fill(tmp_path / "m.mv2", [_vectors(50, 9)]) as mem:
            assert mem.find(vector=_vectors(1, 10)[0].tolist(), k=3, mode="vector")
        assert lib.get() == 2
    finally:
        lib.set(before)


@openblas
def test_overlapping_bounds_in_threads_restore_the_count_once_all_end(monkeypatch):
    monkeypatch.setattr(blas_threads, "ADAPTIVE", False)
    lib = blas_threads.openblas()
    before = lib.get()
    lib.set(2)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with blas_threads.bounded(blas_threads.UNSPLIT_MACS):
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    try:
        worker.start()
        assert inside.wait(5)
        with blas_threads.bounded(blas_threads.UNSPLIT_MACS):
            assert lib.get() == 1
        assert lib.get() == 1  # the other thread's product is still bounded
        release.set()
        worker.join(5)
        assert lib.get() == 2
    finally:
        release.set()
        worker.join(5)
        lib.set(before)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_one_query_is_scored_like_a_batch_and_as_closely_as_float64(metric):
    """One query runs numpy's row-by-row dot products (no BLAS call), a batch one matrix
    product: the same scores within float32 rounding, and no further from float64's."""
    from memvid_store.index.vector.scoring import score_block

    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((5000, 96)).astype(np.float32)
    queries = rng.standard_normal((3, 96)).astype(np.float32)
    batch = score_block(matrix, queries, metric)
    wide = queries.astype(np.float64) @ matrix.astype(np.float64).T
    for i in range(len(queries)):
        one = score_block(matrix, queries[i:i + 1], metric)
        assert one.shape == (1, len(matrix)) and one.dtype == np.float32
        np.testing.assert_allclose(one[0], batch[i], rtol=1e-4, atol=1e-3)
        if metric == "ip":
            assert np.abs(one[0] - wide[i]).max() <= np.abs(batch[i] - wide[i]).max() * 2


def test_one_query_leaves_the_blas_thread_count_alone(monkeypatch):
    from memvid_store.index.vector import scoring

    calls = []
    monkeypatch.setattr(scoring, "bounded", lambda macs: calls.append(macs) or nullcontext())
    matrix = np.ones((20_000, 64), np.float32)
    scoring.score_block(matrix, np.ones((1, 64), np.float32), "ip")
    assert calls == []
    scoring.score_block(matrix, np.ones((2, 64), np.float32), "ip")
    assert calls == [2 * 20_000 * 64]


def test_a_row_scores_alike_in_every_single_query_product():
    """One query's score of a row is the same bit for bit whether the row is scored in a
    whole table, a block of it, a gathered subset or alone (candidates rescored, a
    filter's versions scanned, the exact scan: every path's scores agree)."""
    from memvid_store.index.vector import scoring

    rng = np.random.default_rng(3)
    table = rng.standard_normal((120_000, 384)).astype(np.float32)  # past any size bound
    query = scoring.prepare_queries(rng.standard_normal((1, 384)), 384, "cosine")
    whole = scoring.score_block(table, query, "ip")[0]
    picked = rng.choice(len(table), 40, replace=False)
    assert np.array_equal(scoring.score_block(table[picked], query, "ip")[0], whole[picked])
    assert np.array_equal(scoring.score_block(table[1000:2000], query, "ip")[0],
                          whole[1000:2000])
    assert scoring.score_block(table[7:8], query, "ip")[0, 0] == whole[7]


def test_a_version_replaced_after_a_query_leaves_the_kept_mask(tmp_path):
    """The mask of current versions is kept between queries; a write replacing a
    committed version (in the WAL, not sealed) takes that version out of it."""
    batches = [_vectors(40, 1), _vectors(40, 2)]
    x = np.concatenate(batches)
    with _fill(tmp_path / "m.mv2", batches) as mem:
        for target in (3, 55):  # a row of each run block
            q = x[target]
            assert mem.find(vector=q.tolist(), k=1, mode="vector")[0].id == f"f{target:04d}"
            mem.put("moved", id=f"f{target:04d}", embedding=(-q).tolist())
            hits = mem.find(vector=q.tolist(), k=80, mode="vector")
            moved = [h for h in hits if h.id == f"f{target:04d}"]
            assert len(moved) == 1 and moved[0].text == "moved"
            assert hits[0].id != f"f{target:04d}"


def test_a_mask_computed_before_a_change_is_not_kept_after_it():
    """A query computing the mask while a write updates ``valid_to`` may store it after
    the write's ``changed()``: it is tagged with the changes it saw and not used again."""
    from memvid_store.engine.format import TIME_MAX

    n = 6
    block = Block(np.zeros((n, DIM), "<f4"), np.arange(n, dtype="<i8"),
                  np.zeros(n, "<i8"), np.full(n, TIME_MAX, "<i8"), np.zeros(n, "<i8"))
    assert block.mask(None, None) is None  # every row current, kept
    seen = block.changes
    block.valid_to[2] = 5  # a write replaces row 2 ...
    block.changed()
    block.current = (seen, None)  # ... and a slower query stores what it computed before
    keep = block.mask(None, None)
    assert keep is not None and keep.tolist() == [True, True, False, True, True, True]
