"""LangGraph store filters as engine filters, through typed projections of each value.

LangGraph filters (``InMemoryStore``'s ``_compare_values``/``_apply_operator``) differ from
the engine's filter language: a nested dict filter matches a *subset* of keys, a list
filter matches positionally and exactly (a scalar never matches a stored list), a missing
key compares as ``None`` (so ``$ne`` matches it), ``$gt``/``$gte``/``$lt``/``$lte``
compare ``float(value)`` with ``float(operand)`` (``"5"`` is 5; a value or operand
``float()`` refuses never matches) and equality is Python's ``==`` (``1 == 1.0 == True``).

So each item stores, next to its value, flat metadata *projections* of every node of the
value, keyed ``<kind>/<path>`` (path steps joined by ``/``; dict keys escape ``% / . [``,
list positions are ``[i]``):

* ``t/P`` the node's type: ``d`` dict, ``l`` list, ``n`` None, ``b`` bool, ``i`` number,
  ``s`` str; ``z/P`` the length of a dict or list;
* ``e/P`` the scalar as Python equality sees it (bools as ints; strings up to
  ``SHORT`` characters), ``h/P`` a digest of a longer string;
* ``n/P`` ``float(node)`` when finite, ``i/P`` +1/-1 when it is infinite.

:func:`translate` turns a LangGraph filter into an engine filter over these keys that
matches exactly the items LangGraph's comparison accepts; every clause is an equality,
a numeric comparison or ``$exists`` on a top-level key, which the engine answers from its
posting lists and number columns.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

from memvid_store.errors import InvalidInputError, InvalidTypeError

__all__ = ["NEVER", "OPERATORS", "check_filter", "conjunction", "project", "translate"]

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
SHORT = 64  # longer strings are compared by digest
NEVER: dict[str, Any] = {"kind": {"$in": []}}  # matches no frame, answered without reading
Step = str | int


def _escape(key: str) -> str:
    return (key.replace("%", "%25").replace("/", "%2F").replace(".", "%2E")
            .replace("[", "%5B"))


def _path(steps: tuple[Step, ...]) -> str:
    return "/".join(f"[{s}]" if isinstance(s, int) else _escape(s) for s in steps)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _number(value: Any) -> float | None:
    """``float(value)`` as LangGraph's comparisons compute it; None when it fails or is NaN."""
    if isinstance(value, list | tuple | dict) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return None if math.isnan(number) else number


# ------------------------------------------------------------------ projections


def project(value: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata projections of every node of an item's value (see the module doc)."""
    out: dict[str, Any] = {}
    for steps, node in _nodes(value, ()):
        path = _path(steps)
        if isinstance(node, dict):
            out[f"t/{path}"], out[f"z/{path}"] = "d", len(node)
            continue
        if isinstance(node, list | tuple):
            out[f"t/{path}"], out[f"z/{path}"] = "l", len(node)
            continue
        if node is None:
            out[f"t/{path}"] = "n"
        elif isinstance(node, bool):
            out[f"t/{path}"], out[f"e/{path}"] = "b", int(node)
        elif isinstance(node, int | float):
            out[f"t/{path}"] = "i"
            if math.isfinite(node):
                out[f"e/{path}"] = node
        elif isinstance(node, str):
            out[f"t/{path}"] = "s"
            if len(node) <= SHORT:
                out[f"e/{path}"] = node
            else:
                out[f"h/{path}"] = _digest(node)
        number = _number(node)
        if number is not None:
            if math.isfinite(number):
                out[f"n/{path}"] = number
            else:
                out[f"i/{path}"] = 1 if number > 0 else -1
    return out


def _nodes(node: Any, steps: tuple[Step, ...]) -> Iterator[tuple[tuple[Step, ...], Any]]:
    if steps:
        yield steps, node
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _nodes(child, (*steps, str(key)))
    elif isinstance(node, list | tuple) and steps:
        for i, child in enumerate(node):
            yield from _nodes(child, (*steps, i))


# ------------------------------------------------------------------ translation


def check_filter(value: Any) -> None:
    """Raise InvalidInputError for an operator LangGraph does not define, anywhere."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and k.startswith("$") and k not in OPERATORS:
                raise InvalidInputError(f"unsupported filter operator {k!r}; "
                                        f"use one of {', '.join(OPERATORS)}")
            check_filter(v)
    elif isinstance(value, list | tuple):
        for v in value:
            check_filter(v)


def translate(filter: Mapping[str, Any] | None) -> dict[str, Any]:
    """The engine filter matching exactly the items LangGraph's ``filter`` accepts."""
    if not filter:
        return {}
    return conjunction([_condition((_key(k),), v) for k, v in filter.items()])


def conjunction(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    """AND of engine filters (``{}`` means always)."""
    kept = [c for c in clauses if c]
    if any(c is NEVER for c in kept):
        return NEVER
    if not kept:
        return {}
    return kept[0] if len(kept) == 1 else {"$and": kept}


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidTypeError(f"filter keys must be str, got {key!r}")
    return key


def _condition(steps: tuple[Step, ...], expected: Any) -> dict[str, Any]:
    """``_compare_values(node at steps, expected)`` (a missing node compares as None)."""
    path = _path(steps)
    if isinstance(expected, dict):
        ops = [k for k in expected if isinstance(k, str) and k.startswith("$")]
        if ops:
            if len(ops) != len(expected):
                raise InvalidInputError(f"a filter condition cannot mix operators and keys: "
                                        f"{expected!r}")
            return conjunction([_operator(steps, op, arg) for op, arg in expected.items()])
        return conjunction([{f"t/{path}": "d"}] + [_condition((*steps, _key(k)), v)
                                                  for k, v in expected.items()])
    if isinstance(expected, list | tuple):
        return conjunction([{f"t/{path}": "l"}, {f"z/{path}": len(expected)}]
                           + [_condition((*steps, i), v) for i, v in enumerate(expected)])
    return _equal(steps, expected, may_be_missing=True)


def _equal(steps: tuple[Step, ...], expected: Any, *, may_be_missing: bool) -> dict[str, Any]:
    """Python's ``node == expected`` (a missing node is None when ``may_be_missing``)."""
    path = _path(steps)
    if expected is None:
        is_none = {f"t/{path}": "n"}
        if not may_be_missing:
            return is_none
        return {"$or": [is_none, {f"t/{path}": {"$exists": False}}]}
    if isinstance(expected, bool):
        return {f"e/{path}": int(expected)}
    if isinstance(expected, int):
        return {f"e/{path}": expected}
    if isinstance(expected, float):
        if math.isnan(expected):
            return NEVER
        if math.isinf(expected):
            return {f"t/{path}": "i", f"i/{path}": 1 if expected > 0 else -1}
        return {f"e/{path}": expected}
    if isinstance(expected, str):
        if len(expected) <= SHORT:
            return {f"e/{path}": expected}
        return {f"h/{path}": _digest(expected)}
    if isinstance(expected, list):  # a stored list never equals a tuple
        return conjunction([{f"t/{path}": "l"}, {f"z/{path}": len(expected)}]
                           + [_equal((*steps, i), v, may_be_missing=False)
                              for i, v in enumerate(expected)])
    if isinstance(expected, dict) and all(isinstance(k, str) for k in expected):
        return conjunction([{f"t/{path}": "d"}, {f"z/{path}": len(expected)}]
                           + [_equal((*steps, k), v, may_be_missing=False)
                              for k, v in expected.items()])
    return NEVER  # stored values are JSON: nothing else equals them


def _operator(steps: tuple[Step, ...], op: str, arg: Any) -> dict[str, Any]:
    if op == "$eq":
        return _equal(steps, arg, may_be_missing=True)
    if op == "$ne":
        equal = _equal(steps, arg, may_be_missing=True)
        return {} if equal is NEVER else {"$not": equal}
    if op not in OPERATORS:
        raise InvalidInputError(f"unsupported filter operator {op!r}; "
                                f"use one of {', '.join(OPERATORS)}")
    bound = _number(arg)
    if bound is None:
        return NEVER  # float(operand) fails or is NaN: no value compares
    path = _path(steps)
    number, infinite = f"n/{path}", f"i/{path}"
    finite = {number: {"$exists": True}}
    if math.isfinite(bound):
        above = op in ("$gt", "$gte")
        return {"$or": [{number: {op: bound}}, {infinite: 1 if above else -1}]}
    if bound > 0:  # +inf
        return {"$gt": NEVER, "$gte": {infinite: 1}, "$lt": {"$or": [finite, {infinite: -1}]},
                "$lte": {"$or": [finite, {infinite: {"$exists": True}}]}}[op]
    return {"$gt": {"$or": [finite, {infinite: 1}]},
            "$gte": {"$or": [finite, {infinite: {"$exists": True}}]},
            "$lt": NEVER, "$lte": {infinite: -1}}[op]
