"""Terms of the posting lists: what a version can be found by without decoding it.

Every content version (tombstones have none) is posted under:

* ``c NUL <collection>``: its collection (``keys.DEFAULT`` for bare ids);
* ``t NUL <tag>``: each of its tags;
* ``e NUL <path>``: each metadata path it has (top-level keys, and ``a.b`` for nested
  dicts, as the filter language reads them);
* ``v NUL <path> NUL <value>``: each scalar value at a path, and each scalar element of
  a list there (a stored list matches when any element does);
* ``m NUL <path>``: each path holding two or more numbers or strings (list elements, or a
  top-level ``a.b`` beside a nested one): a window ``lo <= x <= hi`` looked up in the
  value columns misses only such versions, whose elements may meet each bound apart.

Numbers and strings are also kept apart, sorted, for range filters: :func:`numbers_of`
and :func:`strings_of` list them by path (``engine/value_kinds.py`` stores them).

Values are canonical by the filter language's equality: numbers by value (``1`` and
``1.0`` are one term, as ``1 == 1.0``), bools apart from numbers (``True`` is not ``1``),
``None``, strings. Dicts and lists inside lists get no value term: equality on them is
checked on the payload. A term is stored as the 64-bit blake2b hash of its UTF-8 bytes;
two terms sharing a hash only widen a candidate set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .keys import DEFAULT, SEP
from .records import blake2b

MAX_DEPTH = 8  # nested dicts posted down to this depth; deeper paths are verified only


def collection_term(name: str) -> str:
    return f"c\x00{name}"


def tag_term(tag: str) -> str:
    return f"t\x00{tag}"


def exists_term(path: str) -> str:
    return f"e\x00{path}"


def value_term(path: str, value: Any) -> str | None:
    """The term of ``path == value`` for a scalar ``value``; None for lists and dicts."""
    canon = canonical(value)
    return None if canon is None else f"v\x00{path}\x00{canon}"


def canonical(value: Any) -> str | None:
    """A scalar as its equality class under the filter language (None: not a scalar)."""
    kind = type(value)
    if kind is str:  # the common types first, exactly: metadata is mostly these
        return f"s{value}"
    if kind is int:
        return f"n{value}"
    if value is None:
        return "z"
    if isinstance(value, bool):
        return "b1" if value else "b0"
    if isinstance(value, int):
        return f"n{value}"
    if isinstance(value, float):
        return f"n{int(value)}" if value.is_integer() else f"n{value!r}"
    if isinstance(value, str):
        return f"s{value}"
    return None


def multi_term(path: str) -> str:
    """The term of versions holding two or more numbers or strings at ``path``."""
    return f"m\x00{path}"


Walked = list[tuple[str, Sequence[Any]]]
"""A metadata dict's paths with the values a filter compares there (:func:`walk`)."""


def walk(metadata: Mapping[str, Any] | None) -> Walked:
    """Every path of ``metadata`` with its values, as the posting lists and the value
    columns read them: walked once per version by a commit, for all of them."""
    return list(_paths(metadata, "", 0)) if metadata else []


def terms_of(key: str, metadata: Mapping[str, Any] | None,
             tags: Iterable[str] | None, walked: Walked | None = None) -> set[str]:
    """Every term a content version with this key, metadata and tags is posted under
    (``walked``: ``walk(metadata)``, when made already)."""
    collection, sep, _ = key.partition(SEP)
    out = {f"c\x00{collection if sep else DEFAULT}"}
    if tags:
        out.update([f"t\x00{t}" for t in tags])
    if metadata:
        ordered: dict[str, int] = {}  # how many numbers and strings each path holds
        for path, values in walk(metadata) if walked is None else walked:
            out.add(f"e\x00{path}")
            for value in values:
                canon = canonical(value)
                if canon is not None:
                    out.add(f"v\x00{path}\x00{canon}")
                    if canon[0] in "ns":
                        ordered[path] = ordered.get(path, 0) + 1
        out.update([f"m\x00{path}" for path, count in ordered.items() if count > 1])
    return out


def numbers_of(metadata: Mapping[str, Any] | None) -> list[tuple[str, float]]:
    """Every number at a metadata path (scalars and list elements; bools are not numbers,
    NaN compares with nothing) as ``(path, float)``, paths as :func:`terms_of` walks them.

    Ints become float64, rounded beyond 2**53: a candidate set, rechecked on the payload.
    """
    return numbers_in(walk(metadata))


def numbers_in(walked: Walked) -> list[tuple[str, float]]:
    """:func:`numbers_of` of a walked metadata dict."""
    out: list[tuple[str, float]] = []
    for path, values in walked:
        for value in values:
            kind = type(value)
            if kind is str or value is None:
                continue
            if kind is int or kind is float or (
                    isinstance(value, int | float) and not isinstance(value, bool)):
                try:
                    number = float(value)
                except OverflowError:  # an int beyond the float range
                    number = math.inf if value > 0 else -math.inf
                if number == number:
                    out.append((path, number))
    return out


def strings_of(metadata: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Every string at a metadata path (scalars and list elements) as ``(path, str)``,
    paths as :func:`terms_of` walks them."""
    return strings_in(walk(metadata))


def strings_in(walked: Walked) -> list[tuple[str, str]]:
    """:func:`strings_of` of a walked metadata dict."""
    return [(path, value) for path, values in walked for value in values
            if isinstance(value, str)]


def _paths(metadata: Mapping[str, Any], prefix: str, depth: int
           ) -> Iterator[tuple[str, Sequence[Any]]]:
    """Every path of ``metadata`` (under ``prefix``) with the values a filter compares
    there: the value itself, the elements of a list, nothing for a nested dict (whose
    own paths follow, down to ``MAX_DEPTH``)."""
    for name, value in metadata.items():
        path = f"{prefix}{name}"
        if isinstance(value, list):
            yield path, value
        elif isinstance(value, dict):
            yield path, ()
            if depth < MAX_DEPTH:
                yield from _paths(value, f"{path}.", depth + 1)
        else:
            yield path, (value,)


def term_hash(term: str) -> int:
    """The 64-bit hash a term is stored as."""
    return int.from_bytes(blake2b(term.encode(), digest_size=8).digest(), "little")
