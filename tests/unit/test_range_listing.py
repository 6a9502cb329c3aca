"""select/count with numeric comparisons read the sorted number columns when selective:
same answers as the ordered scan, at the bounds, for lists, large ints, bools and floats."""

from __future__ import annotations

from unittest.mock import patch

import pytest

from memvid_store import Memory
from memvid_store.index import listing
from memvid_store.index.filters import compile_filter

VALUES = [0, 1, 1.0, 1.5, 2, 3, -1, 2**53, 2**53 + 1, 2.0**53, 2**60, True, False, "2",
          [1, 5], [0.5, 10], [], {"n": 2}, None]
FILTERS = [{"n": {op: x}} for op in ("$gt", "$gte", "$lt", "$lte")
           for x in (0, 1, 1.5, 2, 3, -1, 2**53, 2**53 + 1, 2.0**53, 10**400)]
FILTERS += [{"n": {"$gt": 1, "$lt": 5}}, {"n": {"$gte": 2, "$lte": 2}},
            {"n": {"$gt": 7, "$lt": 2.5}}, {"m.n": {"$gte": 2}},
            {"$or": [{"n": {"$lt": 0}}, {"n": {"$gt": 2}}]},
            {"n": {"$gte": 1}, "tags": "t"}]


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
