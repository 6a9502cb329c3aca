"""Metadata filter language: MongoDB-like specs compiled once into nested closures.

A filter is a dict; :func:`compile_filter` validates the whole spec and returns a
:class:`FrameFilter` called as ``flt(metadata, tags) -> bool``. ``None`` and ``{}`` mean
"match everything" and compile to ``None``.

Shape
    ``{"key": value}`` means ``{"key": {"$eq": value}}``. Several entries in one dict are
    ANDed. A field condition is either a plain value (equality) or an operator dict whose
    keys all start with ``$``: ``{"price": {"$gte": 10, "$lt": 20}}`` (ANDed). A dict
    without ``$`` keys is a literal: ``{"loc": {"x": 1}}`` is equality with ``{"x": 1}``.
    At the top level (and inside ``$and``/``$or``/``$nor``/``$not``) only the logical
    operators may appear among the keys.

Keys
    A key addresses metadata. A dotted key ``"a.b"`` reads the top-level key ``"a.b"``
    when it exists, else walks nested dicts (``metadata["a"]["b"]``); only dicts are
    walked. ``"tags"`` and ``"$tags"`` address the frame's tags list instead. The prefix
    ``"metadata."`` always addresses metadata explicitly: ``"metadata.tags"`` is the
    metadata key ``"tags"``, ``"metadata.a.b"`` is the same as ``"a.b"``.

Operators
    ``$eq`` ``$ne`` ``$gt`` ``$gte`` ``$lt`` ``$lte`` ``$in`` ``$nin`` ``$all`` ``$exists``
    and ``$not`` on a field; ``$and`` ``$or`` ``$nor`` (non-empty lists of filter dicts)
    and ``$not`` (one filter dict) as logical operators.

Equality (``$eq``, ``$in``, ``$ne``, ``$nin``, ``$all``)
    By JSON value: ``1 == 1.0``, but ``True`` is not ``1`` (bools are not numbers);
    lists and dicts compare element by element. A stored list matches when it equals the
    operand or when any of its elements does (``{"tags": "urgent"}`` is "has tag
    urgent"; ``{"tags": ["a", "b"]}`` is "tags are exactly ["a", "b"]"). A missing key
    equals nothing, ``None`` included: ``{"k": None}`` matches only a stored ``None``;
    use ``$exists`` for missing keys. ``$ne``/``$nin`` are the negations of
    ``$eq``/``$in``, so they match frames where the key is missing. ``$all: [x, y]`` is
    ``$eq x`` AND ``$eq y`` (for a list: contains both); it needs a non-empty list.

Comparisons (``$gt`` ``$gte`` ``$lt`` ``$lte``)
    The operand is a number (int/float, not bool) or a string. Numbers compare with
    numbers, strings with strings (code point order); any other stored type or a missing
    key gives False. A stored list matches when any element does.

Substrings
    ``$contains: "text"`` matches a stored string that contains the operand, or a stored
    list with a string element that does; ``$icontains`` ignores case (both sides
    lowercased). Other types and a missing key give False. Substrings are checked on
    payloads; the postings narrow them only to the frames that have the key.

Others
    ``$exists: bool`` tests presence (a stored ``None`` exists; the tags list always
    exists, ``{"tags": []}`` matches untagged frames). Field ``$not`` takes an operator
    dict and negates it: ``{"n": {"$not": {"$gt": 3}}}`` also matches a missing ``n``.

Operands must be JSON-compatible (str keys, finite floats; tuples count as lists).
Malformed specs raise :class:`~memvid_store.errors.FilterError` at compile time;
matching never raises.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from ..errors import FilterError, InvalidInputError
from ..validate import plain_str

__all__ = ["FIELD_OPERATORS", "LOGICAL_OPERATORS", "FrameFilter", "compile_filter"]

FIELD_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all",
                   "$exists", "$contains", "$icontains", "$not")
LOGICAL_OPERATORS = ("$and", "$or", "$nor", "$not")
TAGS_KEYS = ("tags", "$tags")
METADATA_PREFIX = "metadata."
MAX_DEPTH = 64

Pred = Callable[[Mapping[str, Any], Any], bool]
Test = Callable[[Any], bool]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()

_SEQ = (list, tuple)
_NUM = (int, float)
_VALID = "valid field operators: " + " ".join(FIELD_OPERATORS) + \
    "; valid logical operators: " + " ".join(LOGICAL_OPERATORS)


def metadata_path(key: str) -> str:
    """The metadata path a filter key names (``metadata.x`` is ``x``)."""
    return key[len(METADATA_PREFIX):] if key.startswith(METADATA_PREFIX) else key


@lru_cache(maxsize=1024)
def metadata_getter(key: str) -> Callable[..., Any]:
    """The value of a metadata path in a frame's metadata (``get(metadata)``; a filter's
    predicates also pass the tags, ignored), MISSING when absent: a dotted path ``a.b``
    reads a top-level ``a.b`` first, then ``b`` inside ``a``. Made once per key (grouped
    searches read it for every hit)."""
    path = metadata_path(key)
    if "." not in path:
        return lambda m, _tags=None: m.get(path, MISSING)
    first, *rest = path.split(".")
    parts = tuple(rest)

    def get(m: Mapping[str, Any], _tags: Any = None) -> Any:
        value = m.get(path, MISSING)
        if value is not MISSING:
            return value
        value = m.get(first, MISSING)
        for part in parts:
            if not isinstance(value, dict):
                return MISSING
            value = value.get(part, MISSING)
        return value

    return get


class FrameFilter:
    """A compiled filter: ``flt(metadata, tags) -> bool``.

    ``keys`` holds the metadata paths the filter reads (without the ``metadata.``
    prefix); ``uses_tags`` says whether it reads the tags list.
    """

    __slots__ = ("_canonical", "_fn", "keys", "spec", "uses_tags")

    def __init__(self, fn: Pred, spec: dict[str, Any], keys: frozenset[str],
                 uses_tags: bool) -> None:
        self._fn = fn
        self.spec = spec
        self.keys = keys
        self.uses_tags = uses_tags
        self._canonical: str | None = None

    @property
    def canonical(self) -> str:
        """The spec as canonical JSON (sorted keys): what caches of a filter's results
        are keyed by."""
        if self._canonical is None:
            import json

            self._canonical = json.dumps(self.spec, sort_keys=True, default=str)
        return self._canonical

    def __call__(self, metadata: Mapping[str, Any] | None,
                 tags: Iterable[str] | None = None) -> bool:
        if tags is None:
            tags = ()
        elif not isinstance(tags, list | tuple):
            tags = list(tags)
        return self._fn(metadata if metadata is not None else {}, tags)

    def __repr__(self) -> str:
        return f"FrameFilter({self.spec!r})"


def compile_filter(spec: Mapping[str, Any] | FrameFilter | None) -> FrameFilter | None:
    """Validate ``spec`` and compile it; ``None`` or ``{}`` gives ``None`` (match all)."""
    if spec is None or isinstance(spec, FrameFilter):
        return spec
    if not isinstance(spec, Mapping):
        raise FilterError(f"a filter must be a dict, not {type(spec).__name__}; "
                          "e.g. {'kind': 'note', 'score': {'$gt': 0.5}}")
    if not spec:
        return None
    compiler = _Compiler()
    fn = compiler.doc(spec, "filter", 0)
    return FrameFilter(fn, copy.deepcopy(dict(spec)), frozenset(compiler.keys),
                       compiler.uses_tags)


class _Compiler:
    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.uses_tags = False

    def doc(self, spec: Any, where: str, depth: int) -> Pred:
        """A filter dict: field conditions and logical operators, ANDed."""
        if depth > MAX_DEPTH:
            raise FilterError(f"{where}: filter nested deeper than {MAX_DEPTH} levels")
        if not isinstance(spec, Mapping):
            raise FilterError(f"{where}: expected a filter dict, got {type(spec).__name__} "
                              f"{spec!r}")
        preds: list[Pred] = []
        for key, value in spec.items():
            if not isinstance(key, str):
                raise FilterError(f"{where}: keys must be str, got {key!r}")
            key = _text(key, where)
            if key.startswith("$") and key not in TAGS_KEYS:
                preds.append(self.logical(key, value, where, depth))
            else:
                preds.append(self.field(key, value, f"{where}[{key!r}]", depth))
        return _and_preds(preds)

    def logical(self, op: str, value: Any, where: str, depth: int) -> Pred:
        at = f"{where}[{op!r}]"
        if op == "$not":
            inner = self.doc(value, at, depth + 1)
            return lambda m, t: not inner(m, t)
        if op not in ("$and", "$or", "$nor"):
            if op in FIELD_OPERATORS:
                raise FilterError(f"{at}: {op} applies to a field, e.g. "
                                  f"{{'price': {{'{op}': ...}}}}; at this level only "
                                  f"{' '.join(LOGICAL_OPERATORS)} are allowed")
            raise FilterError(f"{at}: unknown operator {op!r}; {_VALID}")
        if not isinstance(value, _SEQ) or not value:
            raise FilterError(f"{at}: {op} takes a non-empty list of filter dicts, got "
                              f"{value!r}")
        preds = [self.doc(sub, f"{at}[{i}]", depth + 1) for i, sub in enumerate(value)]
        if op == "$and":
            return _and_preds(preds)
        anyp = _or_preds(preds)
        if op == "$or":
            return anyp
        return lambda m, t: not anyp(m, t)

    def field(self, key: str, cond: Any, where: str, depth: int) -> Pred:
        get = self.getter(key)
        test = self.condition(cond, where, depth)
        return lambda m, t: test(get(m, t))

    def getter(self, key: str) -> Callable[[Mapping[str, Any], Any], Any]:
        if key in TAGS_KEYS:
            self.uses_tags = True
            return _get_tags
        path = metadata_path(key)
        self.keys.add(path)
        return metadata_getter(key)

    def condition(self, cond: Any, where: str, depth: int) -> Test:
        """A field condition: an operator dict or a literal value (equality)."""
        if depth > MAX_DEPTH:
            raise FilterError(f"{where}: filter nested deeper than {MAX_DEPTH} levels")
        if isinstance(cond, Mapping) and any(isinstance(k, str) and k.startswith("$")
                                             for k in cond):
            return self.operators(cond, where, depth)
        return _eq_test([_json(cond, where, 0)])

    def operators(self, ops: Mapping[str, Any], where: str, depth: int) -> Test:
        tests: list[Test] = []
        for op, arg in ops.items():
            at = f"{where}[{op!r}]"
            if not isinstance(op, str) or not op.startswith("$"):
                raise FilterError(f"{where}: cannot mix operators and plain keys ({op!r}) in "
                                  "one condition; wrap a literal dict in {'$eq': ...}")
            tests.append(self.operator(op, arg, at, depth))
        return _and_tests(tests)

    def operator(self, op: str, arg: Any, at: str, depth: int) -> Test:
        if op == "$eq":
            return _eq_test([_json(arg, at, 0)])
        if op == "$ne":
            eq = _eq_test([_json(arg, at, 0)])
            return lambda v: not eq(v)
        if op in _COMPARE:
            return _cmp_test(_COMPARE[op], _comparable(arg, at, op))
        if op in ("$in", "$nin", "$all"):
            if not isinstance(arg, _SEQ):
                raise FilterError(f"{at}: {op} takes a list of values, got "
                                  f"{type(arg).__name__} {arg!r}")
            values = _json(list(arg), at, 0)
            if op == "$in":
                return _eq_test(values)
            if op == "$nin":
                eq = _eq_test(values)
                return lambda v: not eq(v)
            if not values:
                raise FilterError(f"{at}: $all takes a non-empty list of values")
            return _and_tests([_eq_test([x]) for x in values])
        if op == "$exists":
            if not isinstance(arg, bool):
                raise FilterError(f"{at}: $exists takes True or False, got {arg!r}")
            if arg:
                return lambda v: v is not MISSING
            return lambda v: v is MISSING
        if op in ("$contains", "$icontains"):
            return _substring_test(arg, at, op, fold=op == "$icontains")
        if op == "$not":
            if not isinstance(arg, Mapping) or not arg or not all(
                    isinstance(k, str) and k.startswith("$") for k in arg):
                raise FilterError(f"{at}: $not on a field takes an operator dict such as "
                                  f"{{'$gt': 3}}, got {arg!r}; use $ne to exclude a value")
            inner = self.operators(arg, at, depth + 1)
            return lambda v: not inner(v)
        if op in LOGICAL_OPERATORS:
            raise FilterError(f"{at}: {op} is a logical operator; use it at the top level, "
                              f"e.g. {{'{op}': [{{'a': 1}}, {{'b': 2}}]}}")
        raise FilterError(f"{at}: unknown operator {op!r}; {_VALID}")


_COMPARE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def _get_tags(m: Mapping[str, Any], t: Any) -> Any:
    return t


def _comparable(arg: Any, at: str, op: str) -> Any:
    if isinstance(arg, str):
        return arg
    if isinstance(arg, _NUM) and not isinstance(arg, bool):
        if isinstance(arg, float) and not math.isfinite(arg):
            raise FilterError(f"{at}: operand {arg!r} is not a finite number")
        return arg
    raise FilterError(f"{at}: {op} compares numbers or strings, got {type(arg).__name__} "
                      f"{arg!r}")


def _text(value: str, where: str) -> str:
    """A plain, UTF-8-encodable copy of a key or operand string; FilterError otherwise."""
    try:
        return plain_str(value, "a string")
    except InvalidInputError as exc:
        raise FilterError(f"{where}: {exc}") from None


def _json(value: Any, where: str, depth: int) -> Any:
    """A JSON-compatible copy of an operand (tuples become lists); FilterError otherwise."""
    if depth > MAX_DEPTH:
        raise FilterError(f"{where}: value nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return _text(value, where)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FilterError(f"{where}: operand {value!r} is not a finite number")
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise FilterError(f"{where}: dict keys must be str, got {key!r}")
            key = _text(key, where)
            out[key] = _json(item, f"{where}[{key!r}]", depth + 1)
        return out
    if isinstance(value, _SEQ):
        return [_json(item, f"{where}[{i}]", depth + 1)
                for i, item in enumerate(value)]
    raise FilterError(f"{where}: operand must be JSON-compatible (str, int, float, bool, None, "
                      f"list, dict), got {type(value).__name__}")


def _same(a: Any, b: Any) -> bool:
    """JSON value equality: 1 == 1.0, bools apart from numbers, containers by value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, _NUM):
        return isinstance(b, _NUM) and a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    if a is None:
        return b is None
    if isinstance(a, _SEQ):
        return (isinstance(b, _SEQ) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and len(a) == len(b)
                and all(k in b and _same(x, b[k]) for k, x in a.items()))
    return False


def _member_test(values: list[Any]) -> Test:
    """``v`` equals one of ``values`` (no list expansion)."""
    strs: set[str] = set()
    nums: set[int | float] = set()
    bools: set[bool] = set()
    has_none = False
    nested: list[Any] = []
    for x in values:
        if isinstance(x, bool):
            bools.add(x)
        elif isinstance(x, _NUM):
            nums.add(x)
        elif isinstance(x, str):
            strs.add(x)
        elif x is None:
            has_none = True
        else:
            nested.append(x)
    if len(values) == 1 and strs:
        (s,) = strs
        return lambda v: isinstance(v, str) and v == s
    if not (nums or bools or has_none or nested):
        return lambda v: isinstance(v, str) and v in strs

    def member(v: Any) -> bool:
        if isinstance(v, str):
            return v in strs
        if isinstance(v, bool):
            return v in bools
        if isinstance(v, _NUM):
            return v in nums
        if v is None:
            return has_none
        if nested and isinstance(v, (list, tuple, dict)):
            return any(_same(v, x) for x in nested)
        return False

    return member


def _eq_test(values: list[Any]) -> Test:
    """``v`` or, for a stored list, any of its elements equals one of ``values``."""
    member = _member_test(values)
    if len(values) == 1 and isinstance(values[0], str):
        s = values[0]

        def eq_str(v: Any) -> bool:
            if isinstance(v, str):
                return v == s
            # a str equals only an equal str, so list containment is exact here
            return isinstance(v, _SEQ) and s in v

        return eq_str

    def eq(v: Any) -> bool:
        if member(v):
            return True
        return isinstance(v, _SEQ) and any(member(e) for e in v)

    return eq


def _cmp_test(op: Callable[[Any, Any], bool], x: Any) -> Test:
    if isinstance(x, str):
        def scalar(v: Any) -> bool:
            return isinstance(v, str) and op(v, x)
    else:
        def scalar(v: Any) -> bool:
            return isinstance(v, _NUM) and not isinstance(v, bool) and op(v, x)

    def test(v: Any) -> bool:
        if isinstance(v, _SEQ):
            return any(scalar(e) for e in v)
        return scalar(v)

    return test


def _substring_test(arg: Any, at: str, op: str, *, fold: bool) -> Test:
    """A stored string, or a string element of a stored list, contains ``arg`` (both
    lowercased when ``fold``)."""
    if not isinstance(arg, str):
        raise FilterError(f"{at}: {op} takes a str, got {type(arg).__name__} {arg!r}")
    needle = arg.lower() if fold else arg

    def found(v: Any) -> bool:
        return isinstance(v, str) and needle in (v.lower() if fold else v)

    def test(v: Any) -> bool:
        if isinstance(v, _SEQ):
            return any(found(e) for e in v)
        return found(v)

    return test


def _and_preds(preds: list[Pred]) -> Pred:
    if not preds:
        return lambda m, t: True
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda m, t: a(m, t) and b(m, t)
    items = tuple(preds)

    def all_of(m: Mapping[str, Any], t: Any) -> bool:
        for p in items:  # noqa: SIM110 (a loop avoids a generator per call)
            if not p(m, t):
                return False
        return True

    return all_of


def _or_preds(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda m, t: a(m, t) or b(m, t)
    items = tuple(preds)

    def any_of(m: Mapping[str, Any], t: Any) -> bool:
        for p in items:  # noqa: SIM110 (a loop avoids a generator per call)
            if p(m, t):
                return True
        return False

    return any_of


def _and_tests(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda v: a(v) and b(v)
    items = tuple(tests)

    def all_of(v: Any) -> bool:
        for t in items:  # noqa: SIM110 (a loop avoids a generator per call)
            if not t(v):
                return False
        return True

    return all_of
