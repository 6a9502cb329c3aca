"""Merging runs' grouped parts (posting lists, value columns) a batch of keys at a time
gives what grouping every entry at once gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvid_store.engine.runs import group_postings, group_values, merge_grouped
from memvid_store.engine.value_kinds import NUMBERS, STRINGS
from memvid_store.errors import CorruptFileError

# one run: its row count and its (key, value, row) entries
entries = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 4), st.integers(0, 30)),
                   max_size=60)
runs = st.lists(st.tuples(st.integers(1, 31), entries), min_size=1, max_size=4)


def _values(kind, numbers):
    if kind is NUMBERS:
        return np.array(numbers, "<f8")
    # strings longer than a key: values equal once cut, which the rows then order
    return np.array([b"k" * 24 + bytes([48 + n]) for n in numbers], kind.dtype)


@settings(max_examples=150, deadline=None)
@given(runs=runs, batch=st.sampled_from([1, 2, 5, 1 << 18]))
def test_values_merged_by_batches_match_one_grouping(runs, batch) -> None:
    for kind in (NUMBERS, STRINGS):
        parts, everything, offset = [], [], 0
        for n, found in runs:
            found = [(k, v, r % n) for k, v, r in found]
            keys = np.array([k for k, _, _ in found], "<u8")
            rows = np.array([r for _, _, r in found], "<u8")
            grouped = group_values(kind, keys, _values(kind, [v for _, v, _ in found]), rows)
            parts.append((*(grouped[name] for name in kind.parts), offset))
            everything += [(k, v, r + offset) for k, v, r in found]
            offset += n
        want = group_values(kind, np.array([k for k, _, _ in everything], "<u8"),
                            _values(kind, [v for _, v, _ in everything]),
                            np.array([r for _, _, r in everything], "<u8"))
        got = merge_grouped(parts, batch=batch)
        for mine, theirs in zip(got, (want[name] for name in kind.parts), strict=True):
            assert mine.dtype == theirs.dtype
            assert mine.tolist() == theirs.tolist()


@settings(max_examples=150, deadline=None)
@given(runs=runs, batch=st.sampled_from([1, 3, 1 << 18]))
def test_postings_merged_by_batches_match_one_grouping(runs, batch) -> None:
    parts, keys, rows, offset = [], [], [], 0
    for n, found in runs:
        found = [(k, r % n) for k, _, r in found]
        grouped = group_postings(np.array([k for k, _ in found], "<u8"),
                                 np.array([r for _, r in found], "<u8"))
        parts.append((grouped["tkey"], grouped["toff"], None, grouped["trows"], offset))
        keys += [k for k, _ in found]
        rows += [r + offset for _, r in found]
        offset += n
    want = group_postings(np.array(keys, "<u8"), np.array(rows, "<u8"))
    got_keys, got_offsets, got_values, got_rows = merge_grouped(parts, batch=batch)
    assert got_values is None
    assert got_keys.tolist() == want["tkey"].tolist()
    assert got_offsets.tolist() == want["toff"].tolist()
    assert got_rows.tolist() == want["trows"].tolist()
    assert (got_keys.dtype, got_offsets.dtype, got_rows.dtype) == ("<u8", "<u4", "<u4")


@pytest.mark.parametrize("keys, offsets, rows", [
    ([5, 3], [0, 1, 2], [0, 1]),  # keys out of order
    ([3, 3], [0, 1, 2], [0, 1]),  # a key twice
    ([3], [0, 2], [0]),  # offsets beyond the rows
    ([3, 5], [0, 1], [0]),  # too few offsets
])
def test_inconsistent_parts_are_corrupt(keys, offsets, rows) -> None:
    part = (np.array(keys, "<u8"), np.array(offsets, "<u4"), None, np.array(rows, "<u4"), 0)
    with pytest.raises(CorruptFileError, match="inconsistent"):
        merge_grouped([part])


def test_an_entry_given_twice_is_kept_once() -> None:
    # a run's postings computed from its payloads list a row twice when two of its
    # terms share a hash
    legacy = (np.array([7], "<u8"), np.array([0, 3], "<u4"), None,
              np.array([1, 1, 2], "<u4"), 0)
    later = (np.array([7, 9], "<u8"), np.array([0, 1, 2], "<u4"), None,
             np.array([0, 0], "<u4"), 3)
    keys, offsets, _, rows = merge_grouped([legacy, later], batch=1)
    assert keys.tolist() == [7, 9]
    assert offsets.tolist() == [0, 3, 4]
    assert rows.tolist() == [1, 2, 3, 3]
