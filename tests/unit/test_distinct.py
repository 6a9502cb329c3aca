"""``engine.distinct.distinct`` equals ``np.unique`` on integer arrays of every shape."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memvid_store.engine.distinct import distinct


@given(hnp.arrays(st.sampled_from([np.int64, np.uint64, np.uint32]),
                  st.integers(0, 300), elements=st.integers(0, 50)))
def test_distinct_is_np_unique(values):
    got = distinct(values)
    assert got.dtype == values.dtype
    assert np.array_equal(got, np.unique(values))
