"""The numpy-free vector path: same hits as the numpy path, and no numpy imported."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memvid_store import DimensionMismatchError, InvalidInputError, Memory
from memvid_store.index.vector import kernels, prepare
from memvid_store.index.vector.scoring import prepare_queries
from tests.conftest import day

DIM = 6


def records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        vec = [rng.gauss(0, 1) for _ in range(DIM)]
        if i % 17 == 0:
            vec = [0.0] * DIM  # zero vectors score 0 under cosine
        if i % 23 == 0:
            vec = list(out[-1]["embedding"]) if out else vec  # exact ties
        out.append({"id": f"f{i:04d}", "text": f"note {i}", "embedding": vec,
                    "metadata": {"n": i, "even": i % 2 == 0}, "created_at": day(i % 200)})
    return out


@pytest.fixture(params=["cosine", "ip", "l2"])
def mem(request, mem_path, opened) -> Memory:
    m = Memory.create(mem_path, dim=DIM, index={"distance": request.param,
                                                "ann_backend": "none"})
    opened.append(m)
    m.put_many(records(300, seed=1))
    m.seal()
    m.put_many(records(40, seed=2)[::3])  # updates of sealed frames
    m.delete("f0005")
    m.seal()
    m.put_many([{**r, "id": f"wal-{i}"} for i, r in enumerate(records(20, seed=3))])  # WAL only
    return m


def both_paths(monkeypatch, mem: Memory, **query) -> tuple[list, list]:
    """(numpy-free hits, numpy hits) for one query, each on a fresh searcher."""
    out = []
    for use_light in (True, False):
        monkeypatch.setattr(kernels, "numpy_loaded", lambda on=use_light: not on)
        mem._snap().extras.clear()  # a new searcher: no cached results
        out.append([(h.id, h.score) for h in mem.find(**query)])
    return out[0], out[1]


def test_same_hits_as_the_numpy_path(monkeypatch, mem):
    rng = random.Random(9)
    commits = mem.commits()
    as_of = commits[len(commits) // 2][1]
    for _ in range(12):
        q = [rng.gauss(0, 1) for _ in range(DIM)]
        for query in ({"k": 10}, {"k": 7, "filter": {"even": True}},
                      {"k": 5, "time_range": (day(10), day(60))}, {"k": 400}):
            lite, full = both_paths(monkeypatch, mem, vector=q, mode="vector", **query)
            assert [i for i, _ in lite] == [i for i, _ in full]
            assert all(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
                       for (_, a), (_, b) in zip(lite, full, strict=True))
            if query["k"] == 400:
                assert "f0005" not in {i for i, _ in lite}
    lite, full = both_paths(monkeypatch, mem, vector=q, mode="vector", k=20, as_of=as_of)
    assert [i for i, _ in lite] == [i for i, _ in full]


def test_ties_across_the_candidate_cut_are_broken_by_frame_id(monkeypatch, mem_path, opened):
    """100 equal vectors, written so that gid order is the reverse of frame-id order."""
    m = Memory.create(mem_path, dim=DIM, index={"ann_backend": "none"})
    opened.append(m)
    m.put_many([{"id": f"t{99 - i:03d}", "text": "tie", "embedding": [1.0] + [0.0] * (DIM - 1)}
                for i in range(100)])
    lite, full = both_paths(monkeypatch, m, vector=[1.0] + [0.0] * (DIM - 1), mode="vector", k=5)
    assert [i for i, _ in full] == ["t000", "t001", "t002", "t003", "t004"]
    assert lite == full


def test_hybrid_uses_it_too(monkeypatch, mem):
    lite, full = both_paths(monkeypatch, mem, text="note", vector=[1.0] * DIM, k=8)
    assert [i for i, _ in lite] == [i for i, _ in full]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e30, 1e30, allow_nan=False), min_size=1, max_size=40)
       .filter(lambda v: any(v)), st.sampled_from(["cosine", "ip", "l2"]))
@example([5e-324, 5e-324], "cosine")  # a norm among the subnormals keeps its digits
@example([-2.5e-320, 1e-310, 0.0], "cosine")
def test_prepare_vector_matches_a_numpy_reference(values, metric):
    got = np.frombuffer(prepare.prepare_vector(values, len(values), metric), "<f4")
    x = np.array(values, np.float64)
    if metric == "cosine":
        x = x / np.abs(x).max()  # scaled first: tiny or huge values keep their direction
        x = x / np.linalg.norm(x)
    want = x.astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=0)
    np.testing.assert_array_equal(prepare_queries([values], len(values), metric)[0], got)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-3e38, 3e38) | st.sampled_from([0.0, math.nan, math.inf, 1e-45]),
                min_size=1, max_size=40),
       st.sampled_from(["float64", "float32", "int32"]), st.sampled_from(["cosine", "ip", "l2"]),
       st.booleans())
def test_numpy_vectors_are_prepared_bit_for_bit_like_lists(values, dtype, metric, batch):
    """numpy arrays take a vectorized path: same bytes, same errors as the list they hold."""
    with np.errstate(all="ignore"):
        arr = np.array(values, np.float64).astype(dtype) if dtype != "int32" else \
            np.nan_to_num(np.clip(np.array(values), -1e6, 1e6)).astype(dtype)
    if batch:
        arr = arr[None, :]

    def outcome(vector):
        try:
            return prepare.prepare_vector(vector, arr.shape[-1], metric).tobytes()
        except InvalidInputError as exc:
            return type(exc), str(exc)

    assert outcome(arr) == outcome(arr.tolist())


@pytest.mark.parametrize(("vector", "error", "match"), [
    ([1.0, 2.0], DimensionMismatchError, "dimensions"),
    ([], InvalidInputError, "empty"),
    ([1.0, math.nan, 0, 0], InvalidInputError, "NaN"),
    ([0.0] * 4, InvalidInputError, "all zeros"),
    (["a", 1, 2, 3], InvalidInputError, "numbers"),
    ("abcd", InvalidInputError, "sequence"),
    (3.0, InvalidInputError, "sequence"),
])
def test_bad_vectors(vector, error, match):
    with pytest.raises(error, match=match):
        prepare.prepare_vector(vector, 4, "cosine")
    with pytest.raises(InvalidInputError, match="overflow"):
        prepare.prepare_vector([1e39, 0, 0, 0], 4, "ip")


def test_accepts_numpy_arrays_and_a_batch_of_one():
    want = prepare.prepare_vector([3.0, 4.0], 2, "cosine")
    assert prepare.prepare_vector(np.array([3.0, 4.0]), 2, "cosine") == want
    assert prepare.prepare_vector([[3.0, 4.0]], 2, "cosine") == want
    assert list(want) == pytest.approx([0.6, 0.8])


def test_numpy_is_hidden_from_the_importing_thread_only():
    hide = kernels._HideNumpy()
    with pytest.raises(ImportError):
        hide.find_spec("numpy._core")
    seen = []
    t = threading.Thread(target=lambda: seen.append(hide.find_spec("numpy")))
    t.start()
    t.join()
    assert seen == [None]
    assert hide.find_spec("numkong") is None


CHILD = """
import json, sys
from memvid_store import Memory
with Memory.open(sys.argv[1], readonly=True) as m:
    hits = m.find(vector=json.loads(sys.argv[2]), k=5, mode="vector")
    print(json.dumps({"ids": [h.id for h in hits], "numpy": "numpy" in sys.modules}))
"""


def test_a_fresh_process_answers_without_importing_numpy(mem_path):
    with Memory.create(mem_path, dim=DIM) as m:
        m.put_many(records(200, seed=4))
    q = [0.3, -1.0, 0.5, 0.0, 2.0, 1.0]
    with Memory.open(mem_path, readonly=True) as m:
        want = [h.id for h in m.find(vector=q, k=5, mode="vector")]
    run = subprocess.run([sys.executable, "-c", CHILD, mem_path, json.dumps(q)],
                         capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(run.stdout) == {"ids": want, "numpy": False}


def test_wal_vectors_written_after_a_query_are_found(monkeypatch, mem_path, opened):
    m = Memory.create(mem_path, dim=DIM, index={"ann_backend": "none"})
    opened.append(m)
    m.put_many(records(50, seed=5))
    monkeypatch.setattr(kernels, "numpy_loaded", lambda: False)
    m.find(vector=[1.0] * DIM, k=3, mode="vector")
    late = [0.0] * DIM
    late[2] = 1.0
    m.put_many([{"id": "late", "text": "late", "embedding": late}])
    assert m.find(vector=late, k=1, mode="vector")[0].id == "late"
