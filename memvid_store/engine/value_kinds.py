"""Kinds of value columns: a run's sorted numbers and string keys by metadata path.

Range filters (``$gt`` ``$gte`` ``$lt`` ``$lte``) compare numbers with numbers and
strings with strings. A run lists, for each metadata path, the values of each kind with
the rows that hold them, sorted by value (docs/format.md, "Value columns"); a lookup
bisects them for its bounds. The lists are candidate sets: readers recheck the
condition on the payload.

* :data:`NUMBERS` (parts ``nkey`` ``noff`` ``nval`` ``nrow``): numbers as float64. Ints
  beyond 2**53 are rounded, so a bound of that magnitude is taken inclusively.
* :data:`STRINGS` (parts ``skey`` ``soff`` ``sval`` ``srow``): each string's *key*, the
  first :data:`STRING_KEY_BYTES` bytes of its UTF-8 encoding, zero-padded. UTF-8 byte
  order is code point order, the order the filter language compares strings in, and
  cutting keeps it weakly (``s < t`` implies ``key(s) <= key(t)``), so both bounds are
  taken inclusively on keys: strings sharing a bound's key are candidates too. ISO 8601
  timestamps written in one format sort by time, and their keys reach past the second
  (``2026-12-02T12:54:47.1234``), so a window of datetimes selects what it names.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .terms import Walked, numbers_in, strings_in

STRING_KEY_BYTES = 24
EXACT_LIMIT = 2.0**53  # below it, a number equal to a float64 as stored is exactly it


@dataclass(frozen=True, slots=True)
class ValueKind:
    """One kind of value column: its parts, how values are stored and bounds compared."""

    name: str
    letter: str  # the term ``<letter> NUL <path>`` whose hash keys a path's values
    parts: tuple[str, str, str, str]  # path hashes, offsets, values, rows
    dtype: str  # numpy type of the values part
    stored_values: Callable[[Walked], list[tuple[str, Any]]]  # of ``terms.walk(metadata)``
    stored_bound: Callable[[Any, bool], tuple[Any, bool]]

    def term(self, path: str) -> str:
        """The term whose hash keys the values at ``path`` in a run."""
        return f"{self.letter}\x00{path}"

    def values_view(self, data: memoryview) -> Sequence[Any]:
        """The values part of a run as a sequence to bisect (its memoryview for numbers)."""
        return data if self is NUMBERS else StringKeys(data)


def string_key(value: str) -> bytes:
    """The stored key of a string: its UTF-8 bytes cut or zero-padded to the key width."""
    return value.encode()[:STRING_KEY_BYTES].ljust(STRING_KEY_BYTES, b"\x00")


def _stored_number(bound: Any, inclusive: bool) -> tuple[float, bool]:
    try:
        value = float(bound)
    except OverflowError:  # an int beyond the float range, as ``terms.numbers_of`` does
        value = math.inf if bound > 0 else -math.inf
    return value, inclusive or abs(value) >= EXACT_LIMIT


def _stored_string(bound: str, inclusive: bool) -> tuple[bytes, bool]:
    return string_key(bound), True


def _string_keys_in(walked: Walked) -> list[tuple[str, bytes]]:
    return [(path, string_key(value)) for path, value in strings_in(walked)]


NUMBERS = ValueKind("numbers", "r", ("nkey", "noff", "nval", "nrow"), "<f8", numbers_in,
                    _stored_number)
STRINGS = ValueKind("strings", "o", ("skey", "soff", "sval", "srow"),
                    f"S{STRING_KEY_BYTES}", _string_keys_in, _stored_string)
VALUE_KINDS = (NUMBERS, STRINGS)


class StringKeys(Sequence[bytes]):
    """The fixed-width keys of a ``sval`` part, indexed like a list (no copy)."""

    __slots__ = ("_data",)

    def __init__(self, data: memoryview) -> None:
        self._data = data

    def __len__(self) -> int:
        return len(self._data) // STRING_KEY_BYTES

    def __getitem__(self, i: Any) -> Any:  # an index: bisect reads no slices
        start = i * STRING_KEY_BYTES
        return bytes(self._data[start : start + STRING_KEY_BYTES])


def value_span(kind: ValueKind, values: Sequence[Any], start: int, end: int, lo: Any,
               hi: Any, lo_inclusive: bool, hi_inclusive: bool) -> tuple[int, int]:
    """Where the stored values of ``values[start:end]`` (ascending) within the bounds lie
    (``lo``/``hi`` None: unbounded; given as the filter states them, stored here as the
    kind stores its values); an empty span has ``first == last``."""
    first, last = start, end
    if lo is not None:
        lo, lo_inclusive = kind.stored_bound(lo, lo_inclusive)
        first = (bisect_left if lo_inclusive else bisect_right)(values, lo, start, end)
    if hi is not None:
        hi, hi_inclusive = kind.stored_bound(hi, hi_inclusive)
        last = (bisect_right if hi_inclusive else bisect_left)(values, hi, start, end)
    return first, max(first, last)
