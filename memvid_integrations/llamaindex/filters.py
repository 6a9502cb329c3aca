"""LlamaIndex ``MetadataFilters`` as a filter of the engine's language.

The translation only renames; the engine validates the result (a wrong kind of value
raises ``FilterError``) and answers it through its indexes. Every key addresses the node's
metadata (``metadata.<key>``, so a metadata key named ``tags`` is not the frame's tags).
Semantics, per key:

* ``==`` ``!=`` ``in`` ``nin``: JSON equality (``1 == 1.0``); a stored list matches when it
  equals the value or one of its elements does. ``!=`` and ``nin`` match a missing key.
* ``>`` ``>=`` ``<`` ``<=``: numbers with numbers, strings with strings; otherwise no match.
* ``any`` / ``all``: the stored value (or list) contains any / all of the given values;
  ``contains``: it contains the given value.
* ``text_match`` / ``text_match_insensitive``: a stored string (or a string element of a
  stored list) contains the value as a substring (the engine's ``$contains`` /
  ``$icontains``).
* ``is_empty``: the key is missing or holds ``None``, ``""`` or ``[]``.
* Conditions ``and`` / ``or`` / ``not`` (none of the filters match) nest freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from memvid_store.errors import InvalidInputError, InvalidTypeError

__all__ = ["and_filters", "metadata_key", "to_memvid_filter"]

_OPERATORS = {
    FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte", FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in", FilterOperator.ANY: "$in", FilterOperator.NIN: "$nin",
    FilterOperator.ALL: "$all", FilterOperator.CONTAINS: "$eq",
    FilterOperator.TEXT_MATCH: "$contains", FilterOperator.TEXT_MATCH_INSENSITIVE: "$icontains",
}


def metadata_key(key: str) -> str:
    """The engine key of a node metadata key."""
    return f"metadata.{key}"


def _filter(f: MetadataFilter) -> dict[str, Any]:
    op, key = f.operator, metadata_key(f.key)
    if op in _OPERATORS:
        return {key: {_OPERATORS[op]: f.value}}
    if op == FilterOperator.IS_EMPTY:
        return {"$or": [{key: {"$exists": False}}, {key: {"$eq": None}},
                        {key: {"$eq": ""}}, {key: {"$eq": []}}]}
    raise InvalidInputError(f"unsupported filter operator {op!r}")


def _filters(filters: MetadataFilters) -> dict[str, Any]:
    if not isinstance(filters, MetadataFilters):
        raise InvalidTypeError(f"filters must be MetadataFilters, not {type(filters).__name__}")
    if not filters.filters:
        raise InvalidInputError("a nested MetadataFilters needs at least one filter")
    parts = [_filters(f) if isinstance(f, MetadataFilters) else _filter(f)
             for f in filters.filters]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        return {"$nor": parts}
    if condition not in (FilterCondition.AND, FilterCondition.OR):
        raise InvalidInputError(f"unsupported filter condition {condition!r}")
    if len(parts) == 1:
        return parts[0]
    return {"$and" if condition == FilterCondition.AND else "$or": parts}


def to_memvid_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """Translate LlamaIndex ``MetadataFilters`` (nested) into an engine filter.

    Args:
        filters: the filters; ``None`` or an empty top-level list means no filter.

    Returns:
        An engine filter dict, or ``None`` for "match everything".

    Raises:
        InvalidTypeError: ``filters`` is not ``MetadataFilters``.
        InvalidInputError: an empty nested filter list, an unknown operator or condition.
    """
    if filters is None:
        return None
    if isinstance(filters, MetadataFilters) and not filters.filters:
        return None
    return _filters(filters)


def and_filters(*specs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The AND of engine filters (``None`` ones skipped; ``None`` when none is left)."""
    parts = [dict(s) for s in specs if s]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}
