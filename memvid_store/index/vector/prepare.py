"""Query vectors as float32, checked and prepared for the metric, without numpy.

A query vector becomes an ``array('f')`` of ``dim`` values, unit length for cosine, bit
for bit the same whether it came as a list or a numpy array (numpy is only looked at when
the caller has it loaded). Every vector path scores these prepared vectors.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

from ...errors import DimensionMismatchError, InvalidInputError
from ...lazy import loaded

_FLOAT32_MAX = 3.4028234663852886e38
_TINY = 2.0**-960  # below this a norm can fall among the subnormals and lose its digits


def prepare_vector(vector: Any, dim: int | None, metric: str) -> array:
    """One query vector as float32 (``array('f')``), unit length for cosine.

    Raises DimensionMismatchError for a wrong length (``dim`` None: any length) and
    InvalidInputError for an empty vector, non-numbers, NaN/infinity, an all-zero cosine
    query or values beyond float32.
    """
    fast = _from_numpy(vector, dim, metric)
    if fast is not None:
        return fast
    values = _floats(vector)
    if not values:
        raise InvalidInputError("the query is empty: pass at least one non-empty vector")
    if dim is not None and len(values) != dim:
        raise DimensionMismatchError(
            f"query vector has {len(values)} dimensions but the stored embeddings have {dim}",
            dim, len(values))
    if not all(map(math.isfinite, values)):
        raise InvalidInputError("query vectors must not contain NaN or infinity")
    if metric == "cosine":
        values = _out_of_subnormals(values)
        norm = math.hypot(*values)  # scales internally: no overflow or underflow
        if norm == 0:
            raise InvalidInputError(
                "a cosine query vector is all zeros and has no direction: pass a non-zero vector")
        return array("f", map(norm.__rtruediv__, values))
    if max(map(abs, values)) > _FLOAT32_MAX:
        raise InvalidInputError("query vector values overflow float32: scale the vector down")
    return array("f", values)


def _from_numpy(vector: Any, dim: int | None, metric: str) -> array | None:
    """``prepare_vector`` for a numeric numpy vector, bit for bit, with numpy's loops
    (None: not one; numpy is only looked at when the caller has it loaded)."""
    np = loaded("numpy")
    if np is None or not isinstance(vector, np.ndarray) or vector.dtype.kind not in "biuf":
        return None
    if vector.ndim == 2 and vector.shape[0] == 1:
        vector = vector[0]  # a batch of one vector
    if vector.ndim != 1 or not vector.size or (dim is not None and vector.size != dim):
        return None  # the general path names the problem
    values = vector.astype(np.float64)
    if metric == "cosine":
        norm = math.hypot(*values.tolist())
        # a norm this large proves every value finite and none below _TINY's scaling
        # (the largest is at least norm / sqrt(dim)): the common case, one pass
        if not (math.isfinite(norm) and norm >= _TINY * math.sqrt(len(values))):
            if not np.isfinite(values).all():
                return None
            top = float(np.abs(values).max())
            if 0 < top < _TINY:
                values = np.ldexp(values, -math.frexp(top)[1])
            norm = math.hypot(*values.tolist())
            if norm == 0:
                return None
        values = values / norm
    elif not float(np.abs(values).max()) <= _FLOAT32_MAX:  # NaN and infinity fail it too
        return None
    return array("f", values.astype("<f4").tobytes())


def _out_of_subnormals(values: list[float]) -> list[float]:
    """A tiny vector scaled by a power of two (exact) so that its norm keeps every digit;
    its direction, all a cosine query keeps, is the same (5e-324 twice is 45 degrees)."""
    top = max(map(abs, values))
    if not 0 < top < _TINY:
        return values
    exp = math.frexp(top)[1]
    return [math.ldexp(v, -exp) for v in values]


def _floats(vector: Any) -> list[float]:
    if hasattr(vector, "tolist"):  # numpy arrays and friends
        vector = vector.tolist()
    if isinstance(vector, str | bytes) or not hasattr(vector, "__iter__"):
        raise InvalidInputError(
            f"a query vector must be a sequence of numbers, not {type(vector).__name__}")
    items = list(vector)
    if len(items) == 1 and hasattr(items[0], "__iter__") and not isinstance(items[0], str):
        items = list(items[0])  # a batch of one vector
    try:
        return list(map(float, items))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"a query vector must be a sequence of numbers ({exc})") from None
