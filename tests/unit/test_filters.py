"""The metadata filter language: every operator, key addressing, tags, and malformed specs."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest

from memvid_store.errors import FilterError, MemvidError
from memvid_store.index.filters import FrameFilter, compile_filter

META: dict[str, Any] = {
    "kind": "note",
    "score": 0.75,
    "n": 3,
    "flag": True,
    "none": None,
    "labels": ["red", "green", 7],
    "nums": [1, 5, 9],
    "loc": {"city": "Paris", "zip": 75001, "geo": {"lat": 48.8}},
    "dotted.key": "literal",
    "empty": [],
}
TAGS = ["urgent", "work"]


def match(spec: dict[str, Any], meta: dict[str, Any] | None = None,
          tags: list[str] | None = None) -> bool:
    flt = compile_filter(spec)
    assert flt is not None
    return flt(META if meta is None else meta, TAGS if tags is None else tags)


def error(spec: Any) -> str:
    with pytest.raises(FilterError) as info:
        compile_filter(spec)
    return str(info.value)


# --- compile_filter basics ------------------------------------------------------------------


def test_none_and_empty_match_all():
    assert compile_filter(None) is None
    assert compile_filter({}) is None


def test_compiled_filter_is_returned_as_is():
    flt = compile_filter({"kind": "note"})
    assert compile_filter(flt) is flt
    assert isinstance(flt, FrameFilter)
    assert "kind" in repr(flt)


def test_keys_and_uses_tags():
    flt = compile_filter({"kind": "note", "loc.city": "Paris",
                          "$or": [{"n": {"$gt": 1}}, {"$not": {"metadata.tags": 1}}]})
    assert flt.keys == frozenset({"kind", "loc.city", "n", "tags"})
    assert flt.uses_tags is False
    flt = compile_filter({"tags": "urgent"})
    assert flt.keys == frozenset() and flt.uses_tags is True
    flt = compile_filter({"$and": [{"$tags": {"$all": ["a"]}}, {"x": 1}]})
    assert flt.keys == frozenset({"x"}) and flt.uses_tags is True


def test_call_accepts_none_and_iterables():
    flt = compile_filter({"tags": "a"})
    assert flt(None, None) is False
    assert flt({}, ("a",)) is True
    assert flt({}, iter(["b", "a"])) is True
    assert compile_filter({"k": {"$exists": False}})(None) is True


def test_spec_mutation_after_compile_has_no_effect():
    spec: dict[str, Any] = {"kind": {"$in": ["note"]}, "loc": {"city": "Paris"}}
    flt = compile_filter(spec)
    spec["kind"]["$in"].append("other")
    spec["loc"]["city"] = "Rome"
    spec["extra"] = 1
    assert flt({"kind": "note", "loc": {"city": "Paris"}}, [])
    assert not flt({"kind": "other", "loc": {"city": "Paris"}}, [])


# --- equality -------------------------------------------------------------------------------


def test_implicit_and_explicit_eq():
    assert match({"kind": "note"})
    assert match({"kind": {"$eq": "note"}})
    assert not match({"kind": "memo"})
    assert not match({"kind": {"$eq": "memo"}})


def test_several_keys_are_anded():
    assert match({"kind": "note", "n": 3})
    assert not match({"kind": "note", "n": 4})


def test_number_equality_int_float():
    assert match({"n": 3.0})
    assert match({"score": {"$eq": 0.75}})
    assert match({"n": {"$in": [2.0, 3.0]}})
    assert match({"a": 2**53 + 1}, {"a": 2**53 + 1})
    assert not match({"a": float(2**53)}, {"a": 2**53 + 1})


def test_bool_is_not_a_number():
    assert match({"flag": True})
    assert not match({"flag": 1})
    assert not match({"n": True}, {"n": 1})
    assert not match({"n": {"$in": [True, False]}}, {"n": 0})
    assert match({"n": {"$in": [1]}}, {"n": 1})
    assert not match({"n": {"$in": [1]}}, {"n": True})
    assert not match({"labels": True}, {"labels": [1, 0]})
    assert match({"labels": 1}, {"labels": [True, 1.0]})


def test_none_equality_and_missing():
    assert match({"none": None})
    assert not match({"missing": None})  # a missing key equals nothing
    assert not match({"none": 0})
    assert not match({"n": None})


def test_dict_and_list_operands_compare_by_value():
    assert match({"loc": {"city": "Paris", "zip": 75001, "geo": {"lat": 48.8}}})
    assert match({"loc": {"$eq": {"geo": {"lat": 48.8}, "zip": 75001.0, "city": "Paris"}}})
    assert not match({"loc": {"city": "Paris"}})
    assert match({"nums": [1, 5, 9]})
    assert match({"nums": [1.0, 5, 9]})
    assert not match({"nums": [1, 9, 5]})
    assert not match({"nums": [1, 5]})
    assert not match({"flag": [True]}, {"flag": [1]})


def test_literal_dict_operand_may_hold_dollar_keys_under_eq():
    assert match({"q": {"$eq": {"$gt": 1}}}, {"q": {"$gt": 1}})
    assert not match({"q": {"$eq": {"$gt": 1}}}, {"q": 2})


def test_list_stored_scalar_operand_matches_any_element():
    assert match({"labels": "red"})
    assert match({"labels": 7})
    assert match({"labels": 7.0})
    assert not match({"labels": "blue"})
    assert not match({"empty": "x"})


def test_list_stored_list_operand_whole_or_element():
    meta = {"m": [[1, 2], [3]]}
    assert match({"m": [3]}, meta)
    assert match({"m": [[1, 2], [3]]}, meta)
    assert not match({"m": [2]}, meta)
    assert not match({"m": 1}, meta)  # only one level of list expansion


def test_ne():
    assert match({"kind": {"$ne": "memo"}})
    assert not match({"kind": {"$ne": "note"}})
    assert match({"missing": {"$ne": "x"}})
    assert match({"missing": {"$ne": None}})
    assert not match({"none": {"$ne": None}})
    assert not match({"labels": {"$ne": "red"}})
    assert match({"labels": {"$ne": "blue"}})
    assert match({"flag": {"$ne": 1}})


# --- comparisons ----------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "operand", "expected"), [
    ("$gt", 2, True), ("$gt", 3, False), ("$gte", 3, True), ("$gte", 3.5, False),
    ("$lt", 4, True), ("$lt", 3, False), ("$lte", 3, True), ("$lte", 2.9, False),
])
def test_number_comparisons(op, operand, expected):
    assert match({"n": {op: operand}}) is expected


def test_string_comparisons():
    assert match({"kind": {"$gt": "a"}})
    assert match({"kind": {"$gte": "note"}})
    assert not match({"kind": {"$lt": "note"}})
    assert match({"kind": {"$lt": "notf"}})
    assert match({"kind": {"$lte": "note"}})
    assert not match({"x": {"$gt": "B"}}, {"x": "A"})


def test_range_on_one_key():
    assert match({"score": {"$gt": 0.5, "$lte": 0.75}})
    assert not match({"score": {"$gt": 0.5, "$lt": 0.75}})


def test_comparisons_across_types_are_false():
    assert not match({"kind": {"$gt": 1}})
    assert not match({"n": {"$gt": "1"}})
    assert not match({"n": {"$lt": "1"}})
    assert not match({"flag": {"$gte": 0}})
    assert not match({"flag": {"$lte": 1}})
    assert not match({"none": {"$lt": 1}})
    assert not match({"loc": {"$gt": 0}})
    assert not match({"missing": {"$gt": 0}})
    assert not match({"missing": {"$lt": 0}})


def test_comparison_on_stored_list_matches_any_element():
    assert match({"nums": {"$gt": 8}})
    assert not match({"nums": {"$gt": 9}})
    assert match({"nums": {"$gt": 2, "$lt": 4}})  # each operator may use a different element
    assert match({"labels": {"$gte": "red"}})
    assert not match({"empty": {"$gt": 0}})


# --- $in / $nin / $all / $exists ------------------------------------------------------------


def test_in_and_nin():
    assert match({"kind": {"$in": ["memo", "note"]}})
    assert not match({"kind": {"$in": ["memo"]}})
    assert not match({"kind": {"$in": []}})
    assert match({"kind": {"$nin": ["memo"]}})
    assert not match({"kind": {"$nin": ["memo", "note"]}})
    assert match({"kind": {"$nin": []}})
    assert match({"missing": {"$nin": ["x"]}})
    assert not match({"missing": {"$in": ["x", None]}})
    assert match({"none": {"$in": ["x", None]}})
    assert match({"labels": {"$in": ["blue", "green"]}})
    assert not match({"labels": {"$nin": ["blue", "green"]}})
    assert match({"labels": {"$in": [[], ["red", "green", 7]]}})
    assert match({"loc": {"$in": [{"city": "Paris", "zip": 75001, "geo": {"lat": 48.8}}]}})
    assert match({"n": {"$in": ("x", 3)}})  # tuples are lists


def test_in_mixed_operand_types():
    spec = {"v": {"$in": ["a", 1, True, None, [1], {"k": 2}]}}
    for v in ["a", 1, 1.0, True, None, [1], {"k": 2}, [0, "a"], [[1]]]:
        assert match(spec, {"v": v}), v
    for v in ["b", 2, False, 0, [], {"k": 3}, [2, "b"], {}]:
        assert not match(spec, {"v": v}), v


def test_all():
    assert match({"labels": {"$all": ["red", 7]}})
    assert not match({"labels": {"$all": ["red", "blue"]}})
    assert match({"kind": {"$all": ["note"]}})
    assert not match({"kind": {"$all": ["note", "memo"]}})
    assert not match({"missing": {"$all": ["x"]}})
    assert match({"m": {"$all": [[1], 2]}}, {"m": [[1], 2, 3]})


def test_exists():
    assert match({"kind": {"$exists": True}})
    assert match({"none": {"$exists": True}})
    assert not match({"missing": {"$exists": True}})
    assert match({"missing": {"$exists": False}})
    assert not match({"kind": {"$exists": False}})
    assert match({"loc.geo.lat": {"$exists": True}})
    assert match({"loc.geo.lon": {"$exists": False}})


# --- keys: dotted, tags, metadata. prefix ---------------------------------------------------


def test_dotted_keys_reach_nested_dicts():
    assert match({"loc.city": "Paris"})
    assert match({"loc.geo.lat": {"$gt": 48}})
    assert not match({"loc.geo.lat.x": 1})
    assert not match({"loc.nope": {"$exists": True}})
    assert not match({"kind.x": {"$exists": True}})  # only dicts are walked
    assert not match({"labels.0": "red"})


def test_literal_dotted_key_wins():
    assert match({"dotted.key": "literal"})
    meta = {"a.b": 1, "a": {"b": 2}}
    assert match({"a.b": 1}, meta)
    assert not match({"a.b": 2}, meta)
    assert match({"a.b": 2}, {"a": {"b": 2}})
    assert match({"a.b.c": 3}, {"a": {"b": {"c": 3}}})


def test_tags_key_addresses_tags():
    assert match({"tags": "urgent"})
    assert match({"$tags": "work"})
    assert not match({"tags": "home"})
    assert match({"tags": {"$in": ["home", "work"]}})
    assert not match({"tags": {"$in": ["home"]}})
    assert match({"tags": {"$nin": ["home"]}})
    assert not match({"tags": {"$nin": ["home", "urgent"]}})
    assert match({"tags": {"$all": ["work", "urgent"]}})
    assert not match({"tags": {"$all": ["work", "home"]}})
    assert match({"tags": {"$ne": "home"}})
    assert not match({"tags": {"$ne": "urgent"}})
    assert match({"tags": ["urgent", "work"]})
    assert not match({"tags": ["work", "urgent"]})


def test_tags_key_ignores_metadata_tags():
    meta = {"tags": ["meta-tag"]}
    assert not match({"tags": "meta-tag"}, meta, ["urgent"])
    assert match({"metadata.tags": "meta-tag"}, meta, ["urgent"])
    assert not match({"metadata.tags": "urgent"}, meta, ["urgent"])
    assert match({"metadata.loc.city": "Paris"})
    assert match({"metadata.kind": "note"})


def test_untagged_frames():
    assert match({"tags": []}, {}, [])
    assert not match({"tags": []}, {}, ["a"])
    assert match({"tags": {"$exists": True}}, {}, [])
    assert not match({"tags": "a"}, {}, [])
    assert match({"tags": {"$nin": ["a"]}}, {}, [])


# --- logical operators ----------------------------------------------------------------------


def test_and_or_nor():
    assert match({"$and": [{"kind": "note"}, {"n": 3}]})
    assert not match({"$and": [{"kind": "note"}, {"n": 4}]})
    assert match({"$or": [{"kind": "memo"}, {"n": 3}]})
    assert not match({"$or": [{"kind": "memo"}, {"n": 4}]})
    assert match({"$nor": [{"kind": "memo"}, {"n": 4}]})
    assert not match({"$nor": [{"kind": "memo"}, {"n": 3}]})
    assert match({"$or": [{"kind": "memo"}, {"n": 4}, {"flag": True}]})
    assert not match({"$and": [{"kind": "note"}, {"n": 3}, {"flag": False}]})


def test_not_filter_and_field_forms():
    assert match({"$not": {"kind": "memo"}})
    assert not match({"$not": {"kind": "note", "n": 3}})
    assert match({"$not": {"kind": "note", "n": 4}})
    assert match({"n": {"$not": {"$gt": 3}}})
    assert not match({"n": {"$not": {"$gte": 3}}})
    assert match({"missing": {"$not": {"$gt": 3}}})
    assert match({"kind": {"$not": {"$in": ["memo"]}, "$exists": True}})


def test_empty_sub_filters():
    assert match({"$and": [{}]})
    assert match({"$or": [{}, {"kind": "memo"}]})
    assert not match({"$not": {}})


def test_deep_nesting_and_mixing():
    spec = {
        "kind": "note",
        "$or": [
            {"$and": [{"tags": "home"}, {"n": {"$gt": 1}}]},
            {"$not": {"$nor": [{"loc.city": {"$in": ["Paris", "Rome"]}}]}},
        ],
        "$nor": [{"score": {"$lt": 0.5}}],
    }
    assert match(spec)
    assert not match(spec, {**META, "loc": {"city": "Oslo"}})
    assert match(spec, {**META, "loc": {"city": "Oslo"}}, ["home"])
    assert not match(spec, {**META, "score": 0.1})


def test_logical_operators_accept_tuples():
    assert match({"$or": ({"n": 3},)})


# --- matching never raises ------------------------------------------------------------------


def test_odd_stored_values_never_raise():
    flt = compile_filter({"$or": [{"v": {"$gt": 1}}, {"v": {"$in": ["a", 1, [1], {"k": 1}]}},
                                  {"v.x": {"$lte": "z"}}, {"v": {"$all": [{"k": 1}]}}]})
    for v in [float("nan"), float("inf"), -float("inf"), b"x", object(), {1, 2}, (1, 2),
              [float("nan")], {"x": None}, {"x": [1]}, [[{}]], 10**400]:
        flt({"v": v}, ["t"])
    assert flt({"v": (1, 2)}, [])  # tuples are lists
    assert not flt({"v": float("nan")}, [])
    assert flt({"v": float("inf")}, [])


def test_non_dict_metadata_mapping():
    from types import MappingProxyType

    flt = compile_filter({"a": 1, "b.c": 2})
    assert flt(MappingProxyType({"a": 1, "b": {"c": 2}}), [])


# --- malformed specs ------------------------------------------------------------------------


def test_filter_error_is_value_error_and_memvid_error():
    assert issubclass(FilterError, ValueError)
    assert issubclass(FilterError, MemvidError)
    with pytest.raises(ValueError):
        compile_filter({"$foo": 1})
    with pytest.raises(FilterError) as info:
        compile_filter({"a": {"$bad": 1}})
    assert pickle.loads(pickle.dumps(info.value)).message == info.value.message


def test_not_a_dict():
    for spec in [[{"a": 1}], "a", 3, ("a", 1)]:
        assert "must be a dict" in error(spec)


def test_unknown_operator_names_it_and_lists_valid_ones():
    for spec in [{"$foo": 1}, {"a": {"$foo": 1}}, {"$and": [{"a": {"$regex": "x"}}]}]:
        msg = error(spec)
        assert "unknown operator" in msg
        assert "$foo" in msg or "$regex" in msg
        for op in ("$eq", "$in", "$exists", "$all", "$and", "$or", "$nor", "$not"):
            assert op in msg


def test_message_locates_the_problem():
    msg = error({"$and": [{"a": 1}, {"loc.city": {"$in": "Paris"}}]})
    assert "filter['$and'][1]['loc.city']['$in']" in msg
    assert "$in takes a list" in msg


@pytest.mark.parametrize("op", ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
                                "$all", "$exists"])
def test_field_operator_at_top_level(op):
    msg = error({op: 1})
    assert "applies to a field" in msg and op in msg
    assert "$and $or $nor $not" in msg


@pytest.mark.parametrize("op", ["$in", "$nin", "$all"])
@pytest.mark.parametrize("operand", ["abc", 3, None, {"a": 1}, {1, 2}])
def test_list_operators_need_a_list(op, operand):
    assert f"{op} takes a list" in error({"k": {op: operand}})


def test_all_needs_non_empty_list():
    assert "non-empty" in error({"k": {"$all": []}})


@pytest.mark.parametrize("op", ["$and", "$or", "$nor"])
@pytest.mark.parametrize("operand", [[], {"a": 1}, "a", None, 1])
def test_logical_lists(op, operand):
    assert f"{op} takes a non-empty list of filter dicts" in error({op: operand})


@pytest.mark.parametrize("op", ["$and", "$or", "$nor"])
def test_logical_list_items_must_be_dicts(op):
    msg = error({op: [{"a": 1}, "b"]})
    assert "expected a filter dict" in msg and f"['{op}'][1]" in msg


def test_top_level_not_needs_a_dict():
    assert "expected a filter dict" in error({"$not": [{"a": 1}]})
    assert "expected a filter dict" in error({"$not": "a"})


def test_logical_operator_inside_field():
    for op in ("$and", "$or", "$nor"):
        msg = error({"a": {op: [{"b": 1}]}})
        assert "logical operator" in msg and "top level" in msg


@pytest.mark.parametrize("operand", [1, 0, None, "yes", [True]])
def test_exists_needs_bool(operand):
    assert "$exists takes True or False" in error({"k": {"$exists": operand}})


@pytest.mark.parametrize("operand", [True, False, None, [1], {"a": 1}, float("nan"),
                                     float("inf")])
def test_comparison_operand_types(operand):
    msg = error({"k": {"$gt": operand}})
    assert "$gt" in msg
    assert "numbers or strings" in msg or "finite" in msg


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_operands(bad):
    for spec in [{"k": bad}, {"k": {"$eq": bad}}, {"k": {"$ne": [1, bad]}},
                 {"k": {"$in": [1, bad]}}, {"k": {"$nin": [{"x": bad}]}},
                 {"k": {"$all": [bad]}}, {"k": {"$lt": bad}}, {"k": {"x": [bad]}}]:
        assert "not a finite number" in error(spec)


@pytest.mark.parametrize("bad", [b"x", {1, 2}, object(), 1j, {1: "a"}])
def test_non_json_operands(bad):
    msg = error({"k": {"$eq": [bad]}})
    assert "JSON-compatible" in msg or "keys must be str" in msg


def test_non_str_keys():
    assert "keys must be str" in error({1: "a"})
    assert "keys must be str" in error({"$or": [{None: 1}]})


def test_mixed_operator_and_plain_keys():
    assert "cannot mix operators" in error({"k": {"$gt": 1, "x": 2}})


def test_field_not_needs_operator_dict():
    for operand in [3, {"x": 1}, {}, [{"$gt": 1}], {"$gt": 1, "x": 2}]:
        msg = error({"k": {"$not": operand}})
        assert "$not on a field takes an operator dict" in msg or "cannot mix" in msg


def test_errors_deep_inside_are_found_at_compile_time():
    # the bad branch would never be reached at match time; compile still rejects it
    assert "unknown operator" in error({"$or": [{}, {"$not": {"a": {"$not": {"$bogus": 1}}}}]})
    assert "finite" in error({"$or": [{}, {"a": {"$in": [math.nan]}}]})


def test_nesting_too_deep():
    spec: dict[str, Any] = {"a": 1}
    for _ in range(200):
        spec = {"$not": spec}
    assert "nested deeper" in error(spec)
    spec = {"a": 1}
    for _ in range(60):
        spec = {"$not": spec}
    assert compile_filter(spec)({"a": 1}, []) is True
    value: Any = 1
    for _ in range(200):
        value = [value]
    assert "nested deeper" in error({"a": value})
