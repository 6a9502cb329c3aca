"""select/count with comparisons read the sorted value columns when selective: same
answers as the ordered scan, at the bounds, for lists, large ints, bools, floats, and
strings (cut to 24-byte keys: long strings sharing a key, ISO datetimes)."""

from __future__ import annotations

from unittest.mock import patch

import pytest

from memvid_store import Memory
from memvid_store.index import listing
from memvid_store.index.filters import compile_filter

VALUES = [0, 1, 1.0, 1.5, 2, 3, -1, 2**53, 2**53 + 1, 2.0**53, 2**60, True, False, "2",
          [1, 5], [0.5, 10], [], {"n": 2}, None, "", "a", "ab", "é", "x" * 30 + "a",
          "x" * 30 + "b", "2026-12-02T10:00:00.000001Z", "2026-12-02T10:00:00.000002Z",
          "2026-12-02T11:00:00Z", ["b", "2026-12-01"], ["a", 3]]
FILTERS = [{"n": {op: x}} for op in ("$gt", "$gte", "$lt", "$lte")
           for x in (0, 1, 1.5, 2, 3, -1, 2**53, 2**53 + 1, 2.0**53, 10**400)]
FILTERS += [{"n": {"$gt": 1, "$lt": 5}}, {"n": {"$gte": 2, "$lte": 2}},
            {"n": {"$gt": 7, "$lt": 2.5}}, {"m.n": {"$gte": 2}},
            {"$or": [{"n": {"$lt": 0}}, {"n": {"$gt": 2}}]},
            {"n": {"$gte": 1}, "tags": "t"}]
FILTERS += [{"n": {op: x}} for op in ("$gt", "$gte", "$lt", "$lte")
            for x in ("", "a", "ab", "b", "é", "x" * 30, "x" * 30 + "a", "x" * 31,
                      "2026-12-02T10:00:00.000001Z", "2026-12-02T10", "2026-12-02")]
FILTERS += [{"n": {"$gte": "2026-12-02T10:00:00", "$lt": "2026-12-02T11"}},
            {"n": {"$gt": 1, "$lt": "b"}}, {"m.n": {"$lt": "b"}},
            {"$or": [{"n": {"$lt": "a"}}, {"n": {"$gt": 2}}]}]
# negations: counted as the current count less the count of the range
FILTERS += [{"$not": {"n": {"$gt": 1.5}}}, {"$not": {"n": {"$lte": "ab"}}},
            {"$nor": [{"n": {"$gte": 2, "$lt": 2**53}}]}, {"n": {"$not": {"$gt": 2}}}]


@pytest.fixture(scope="module")
def mem(tmp_path_factory):
    m = Memory.create(str(tmp_path_factory.mktemp("ranges") / "m.mv2"))
    rows = [{"id": f"f{i:02d}", "text": "x", "metadata": {"n": v, "m": {"n": v}},
             "tags": ["t"] if i % 2 else []} for i, v in enumerate(VALUES)]
    m.put_many(rows[:10])
    m.seal()
    m.put_many(rows[10:])  # WAL
    m.delete("f03")
    yield m
    m.close()


@pytest.mark.parametrize("spec", FILTERS, ids=repr)
def test_range_plans_answer_as_the_scan(mem, spec):
    flt = compile_filter(spec)
    expected = [f.id for f in mem.timeline() if flt(f.metadata, f.tags)]
    for share in (0.0, 2.0):  # the ordered scan, then the number columns whenever possible
        with patch.object(listing, "SELECTIVE", share), \
                patch.object(listing, "COUNT_SELECTIVE", share):
            assert [f.id for f in mem.select(spec)] == expected, share
            assert mem.count(spec) == len(expected), share


@pytest.mark.parametrize("spec", FILTERS, ids=repr)
def test_window_counts_from_the_columns_equal_the_scan(mem, spec):
    """A window on one key is counted from the columns (values strictly inside) plus the
    versions checked one by one (values at a bound, several values, the WAL tail)."""
    flt = compile_filter(spec)
    expected = sum(1 for f in mem.timeline() if flt(f.metadata, f.tags))
    with patch.object(listing, "BULK_COUNT", 0), patch.object(listing, "BULK_COUNT_LOADED", 0):
        assert mem.count(spec) == expected
        assert mem.collection("default").count(spec) == expected


def test_window_counts_use_the_split(mem):
    answers = []
    real = listing._count_window

    def spy(*args):
        answers.append(real(*args))
        return answers[-1]

    with patch.object(listing, "BULK_COUNT", 0), patch.object(listing, "BULK_COUNT_LOADED", 0), \
            patch.object(listing, "_count_window", spy):
        for spec in ({"n": {"$gte": "a", "$lt": "b"}}, {"n": {"$gt": 1, "$lte": 5}},
                     {"n": {"$gt": 1}}, {"n": {"$lte": "b"}}, {"$not": {"n": {"$lt": 2}}}):
            mem.count(spec)
    assert len(answers) == 5 and None not in answers


def test_a_fresh_process_answers_a_broad_range_without_numpy(tmp_path):
    """A range admitting more versions than a subset scan takes is left to the search:
    reading its one group to intersect it with nothing would import numpy first."""
    import json
    import subprocess
    import sys

    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        mem.put_many([{"id": f"f{i}", "text": f"budget note {i}", "metadata": {"n": i % 5}}
                      for i in range(12_000)])
        mem.seal()
    code = ("import json, sys; from memvid_store import Memory; "
            "m = Memory.open(sys.argv[1], readonly=True); "
            "h = m.find('budget', k=3, mode='lexical', filter={'n': {'$gt': 1}}); "
            "print(json.dumps([[x.metadata['n'] > 1 for x in h], 'numpy' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) == [[True, True, True], False]
