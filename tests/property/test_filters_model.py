"""Compiled filters against a plain reference interpreter that walks the spec on every call."""

from __future__ import annotations

import operator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store.errors import FilterError
from memvid_store.index.filters import compile_filter

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# --- reference interpreter ------------------------------------------------------------------

ABSENT = object()
COMPARE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "num"
    if isinstance(v, str):
        return "str"
    if v is None:
        return "null"
    if isinstance(v, list | tuple):
        return "list"
    if isinstance(v, dict):
        return "dict"
    return "other"


def canon(v: Any) -> Any:
    """A hashable form in which equal JSON values (1 and 1.0, not True and 1) are equal."""
    k = kind(v)
    if k == "list":
        return ("list", tuple(canon(x) for x in v))
    if k == "dict":
        return ("dict", tuple(sorted((key, canon(x)) for key, x in v.items())))
    if k == "other":
        return ("other", id(v))
    return (k, v)


def ref_lookup(key: str, meta: dict[str, Any], tags: list[str]) -> Any:
    if key in ("tags", "$tags"):
        return tags
    if key.startswith("metadata."):
        key = key[len("metadata."):]
    if key in meta:
        return meta[key]
    node: Any = meta
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return ABSENT
        node = node[part]
    return node


def candidates(value: Any) -> list[Any]:
    """The stored value itself and, for a list, each of its elements."""
    if value is ABSENT:
        return []
    if kind(value) == "list":
        return [value, *value]
    return [value]


def ref_eq(value: Any, x: Any) -> bool:
    return any(canon(c) == canon(x) for c in candidates(value))


def ref_op(op: str, arg: Any, value: Any) -> bool:
    if op == "$eq":
        return ref_eq(value, arg)
    if op == "$ne":
        return not ref_eq(value, arg)
    if op == "$in":
        return any(ref_eq(value, x) for x in arg)
    if op == "$nin":
        return not any(ref_eq(value, x) for x in arg)
    if op == "$all":
        return all(ref_eq(value, x) for x in arg)
    if op == "$exists":
        return (value is not ABSENT) is arg
    if op == "$not":
        return not ref_cond(arg, value)
    if op in ("$contains", "$icontains"):
        fold = op == "$icontains"
        needle = arg.lower() if fold else arg
        return any(isinstance(c, str) and needle in (c.lower() if fold else c)
                   for c in candidates(value))
    compare = COMPARE[op]
    return any(kind(c) == kind(arg) and compare(c, arg) for c in candidates(value)
               if kind(c) in ("num", "str"))


def ref_cond(cond: Any, value: Any) -> bool:
    if isinstance(cond, dict) and any(k.startswith("$") for k in cond):
        return all(ref_op(op, arg, value) for op, arg in cond.items())
    return ref_eq(value, cond)


def ref_match(spec: dict[str, Any], meta: dict[str, Any], tags: list[str]) -> bool:
    for key, cond in spec.items():
        if key == "$and":
            ok = all(ref_match(sub, meta, tags) for sub in cond)
        elif key == "$or":
            ok = any(ref_match(sub, meta, tags) for sub in cond)
        elif key == "$nor":
            ok = not any(ref_match(sub, meta, tags) for sub in cond)
        elif key == "$not":
            ok = not ref_match(cond, meta, tags)
        else:
            ok = ref_cond(cond, ref_lookup(key, meta, tags))
        if not ok:
            return False
    return True


def ref_keys(spec: dict[str, Any]) -> tuple[set[str], bool]:
    keys: set[str] = set()
    uses_tags = False
    for key, cond in spec.items():
        if key in ("$and", "$or", "$nor"):
            subs = cond
        elif key == "$not":
            subs = [cond]
        elif key in ("tags", "$tags"):
            uses_tags = True
            continue
        else:
            keys.add(key.removeprefix("metadata."))
            continue
        for sub in subs:
            k, t = ref_keys(sub)
            keys |= k
            uses_tags = uses_tags or t
    return keys, uses_tags


# --- strategies -----------------------------------------------------------------------------

# small pools, so that stored values and operands often coincide
COMMON = [None, True, False, 0, 1, 1.0, 2, 1.5, "", "a", "b"]
RARE = [-1, 2**53 + 1, 2.0**53, "B", "urgent"]
scalars = st.one_of(st.sampled_from(COMMON), st.sampled_from(COMMON), st.sampled_from(RARE))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["b", "c"]), inner, max_size=2),
    ),
    max_leaves=5,
)
META_KEYS = ["a", "b", "a.b", "tags"]
metadata = st.dictionaries(st.sampled_from(META_KEYS), values, max_size=4)
tags = st.lists(st.sampled_from(["a", "b", "urgent"]), max_size=3)
frames = st.lists(st.tuples(metadata, tags), min_size=1, max_size=10)


def near(x: Any) -> list[Any]:
    """``x`` and values that are equal to it under other types, or just beside it."""
    if isinstance(x, bool):
        return [x, not x, int(x), float(x)]
    if isinstance(x, int | float):
        out = [x, x + 1, x - 1, float(x), str(x)]
        if float(x).is_integer():
            out.append(int(x))
        if x in (0, 1):
            out.append(bool(x))
        return out
    if isinstance(x, str):
        return [x, x + "a", x[:-1], x.upper()]
    if isinstance(x, list):
        return [x, x[::-1], [*x, None], x[:1]]
    if isinstance(x, dict):
        return [x, {**x, "c": 1}, dict(list(x.items())[:1])]
    return [x, 0, False, ""]


def operands(spec: Any) -> list[Any]:
    """Every value that appears in a spec (whole lists and dicts, and what they hold)."""
    if isinstance(spec, dict):
        return [spec, *[x for v in spec.values() for x in operands(v)]]
    if isinstance(spec, list):
        return [spec, *[x for v in spec for x in operands(v)]]
    return [spec]


def frames_for(spec: dict[str, Any]) -> st.SearchStrategy[list[tuple[dict[str, Any], Any]]]:
    """Frames whose stored values are mostly drawn from the spec's operands and their kin."""
    pool = [y for v in spec.values() for x in operands(v) if plain_literal(x) for y in near(x)]
    leaf = st.one_of(st.sampled_from(pool), st.sampled_from(pool), scalars) if pool else scalars
    nested = st.one_of(leaf, st.lists(leaf, max_size=2))
    stored = st.one_of(leaf, leaf, st.lists(nested, max_size=3),
                       st.dictionaries(st.sampled_from(["b", "c"]), nested, max_size=2))
    meta = st.fixed_dictionaries({}, optional={key: stored for key in META_KEYS})
    names = sorted({"a", "b", "urgent", *(x for x in pool if isinstance(x, str) and x)})
    frame_tags = st.lists(st.sampled_from(names), max_size=3)
    return st.lists(st.tuples(meta, frame_tags), min_size=1, max_size=10)


FIELDS = ["a", "a", "b", "b", "a.b", "a.b", "a.c", "a.b.c", "tags", "$tags", "metadata.tags",
          "metadata.a.b", "missing"]
comparable = st.one_of(st.sampled_from([0, 1, 2, -1, 0.5, 1.0, 2**53 + 1, 2.0**53]),
                       st.sampled_from(["", "a", "b", "B", "urgent"]))
operand_lists = st.lists(values, max_size=3)


def operator_dicts(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    ops: dict[str, st.SearchStrategy[Any]] = {
        "$eq": values, "$ne": values, "$gt": comparable, "$gte": comparable,
        "$lt": comparable, "$lte": comparable, "$in": operand_lists, "$nin": operand_lists,
        "$all": st.lists(values, min_size=1, max_size=3), "$exists": st.booleans(),
    }
    if depth > 0:
        ops["$not"] = st.deferred(lambda: operator_dicts(depth - 1))
    names = st.lists(st.sampled_from(sorted(ops)), min_size=1, max_size=3, unique=True)
    return names.flatmap(lambda chosen: st.fixed_dictionaries({n: ops[n] for n in chosen}))


def plain_literal(v: Any) -> bool:
    return not (isinstance(v, dict) and any(k.startswith("$") for k in v))


conditions = st.one_of(values.filter(plain_literal), operator_dicts(2))


def filters(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    fields = st.dictionaries(st.sampled_from(FIELDS), conditions, max_size=3)
    if depth == 0:
        return fields
    sub = st.deferred(lambda: filters(depth - 1))
    logical = st.one_of(
        st.tuples(st.sampled_from(["$and", "$or", "$nor"]), st.lists(sub, min_size=1,
                                                                     max_size=3)),
        st.tuples(st.just("$not"), sub),
    )
    return st.tuples(fields, st.lists(logical, max_size=2)).map(
        lambda pair: {**pair[0], **dict(pair[1])})


specs = filters(2)


# --- properties -----------------------------------------------------------------------------


@SETTINGS
@given(spec=specs, data=st.data())
def test_compiled_filter_agrees_with_reference(spec, data):
    frames = data.draw(frames_for(spec))
    flt = compile_filter(spec)
    for meta, frame_tags in frames:
        expected = ref_match(spec, meta, frame_tags)
        got = True if flt is None else flt(meta, frame_tags)
        assert got is expected, (spec, meta, frame_tags)


@SETTINGS
@given(field=st.sampled_from(FIELDS), cond=conditions, data=st.data())
def test_single_condition_agrees_with_reference(field, cond, data):
    spec = {field: cond}
    frames = data.draw(frames_for(spec))
    flt = compile_filter(spec)
    for meta, frame_tags in frames:
        assert flt(meta, frame_tags) is ref_match(spec, meta, frame_tags), (spec, meta,
                                                                           frame_tags)


@SETTINGS
@given(spec=specs, data=st.data())
def test_negations_and_keys(spec, data):
    frames = data.draw(frames_for(spec))
    flt = compile_filter(spec)
    negated = compile_filter({"$not": spec})
    nor = compile_filter({"$nor": [spec, {"missing": {"$exists": True}}]})
    for meta, frame_tags in frames:
        result = True if flt is None else flt(meta, frame_tags)
        assert negated(meta, frame_tags) is not result
        assert nor(meta, frame_tags) is not result
    if flt is not None:
        keys, uses_tags = ref_keys(spec)
        assert flt.keys == frozenset(keys)
        assert flt.uses_tags is uses_tags


# --- every operator on every stored value ---------------------------------------------------

GRID_STORED = [None, True, False, 0, 1, 1.0, 1.5, 2, -1, 2**53 + 1, 2.0**53, "", "a", "b", "B",
               [], [1], [1.0, "a"], [True], [None], [[1]], [1, 2], [2, 1], ["a", "b"], {},
               {"b": 1}, {"b": 1.0, "c": [1]}, {"c": [1], "b": 1}, ABSENT]
GRID_OPERANDS = [None, True, False, 0, 1, 1.0, 1.5, 2, 2**53 + 1, 2.0**53, "", "a", "B",
                 [], [1], [1, 2], [True], [[1]], {"b": 1}, {"c": [1], "b": 1.0}]


def grid_specs() -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for x in GRID_OPERANDS:
        specs += [{"k": x}, {"k": {"$ne": x}}, {"k": {"$in": [x]}}, {"k": {"$nin": [x, "zz"]}},
                  {"k": {"$all": [x]}}, {"k": {"$all": [x, 1]}}, {"k": {"$in": [x, "a", 2]}}]
        if kind(x) in ("num", "str"):
            specs += [{"k": {op: x}} for op in COMPARE]
            specs.append({"k": {"$not": {"$gte": x}}})
    specs += [{"k": {"$exists": True}}, {"k": {"$exists": False}}]
    return specs


def test_every_operator_on_every_stored_value():
    compiled = [(spec, compile_filter(spec)) for spec in grid_specs()]
    checked = 0
    for stored in GRID_STORED:
        meta = {} if stored is ABSENT else {"k": stored}
        for spec, flt in compiled:
            assert flt(meta, []) is ref_match(spec, meta, []), (spec, meta)
            checked += 1
    assert checked > 5000


# --- fuzzed specs: FilterError or a filter that never raises ---------------------------------

junk = st.one_of(
    values, st.sampled_from([float("nan"), float("inf"), b"x", 1j, frozenset([1]), (1, "a")]),
)
any_keys = st.sampled_from(["a", "tags", "$tags", "a.b", "$eq", "$ne", "$gt", "$lte", "$in",
                            "$nin", "$all", "$exists", "$not", "$and", "$or", "$nor", "$foo",
                            1, None])
fuzz = st.recursive(
    junk,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(any_keys, inner, max_size=3)),
    max_leaves=8,
)


@SETTINGS
@given(spec=fuzz, frames=frames)
def test_fuzzed_specs_fail_cleanly_or_never_raise(spec, frames):
    try:
        flt = compile_filter(spec)
    except FilterError as exc:
        assert str(exc)
        return
    if spec is None:
        assert flt is None
        return
    assert isinstance(spec, dict)
    for meta, frame_tags in frames:
        result = True if flt is None else flt(meta, frame_tags)
        assert result is ref_match(spec, meta, frame_tags)
