"""``put_many(..., delete=ids)`` (a replace in one atomic write) and the ``$contains`` /
``$icontains`` filter operators."""

from __future__ import annotations

import io
import os

import pytest

from memvid_store import Memory
from memvid_store.errors import FilterError, InvalidInputError, InvalidTypeError
from memvid_store.index.filters import compile_filter
from memvid_store.index.term_plan import Substring, plan_terms
from memvid_store.transfer import export_jsonl, import_jsonl

# ------------------------------------------------------------------ put_many(delete=)


def test_put_many_with_delete_is_one_write(mem) -> None:
    chat = mem.collection("chat")
    chat.put_many([{"id": "a", "text": "old a"}, {"id": "b", "text": "old b"}])
    mem.put("outside", id="a")
    before = mem.generation
    ids = chat.put_many([{"id": "c", "text": "new c"}], delete=["a", "b", "missing"])
    assert ids == ["c"]
    assert mem.generation == before + 1
    assert [f.id for f in chat.select()] == ["c"]
    assert mem.get("a").text == "outside"  # another collection's frame of the same id
    past = chat.as_of(before)
    assert [f.id for f in past.select()] == ["a", "b"]
    assert [f.text for f in chat.history("a")] == ["old a"]


def test_put_many_delete_only_and_refusals(mem) -> None:
    mem.put_many([{"id": "a", "text": "a"}, {"id": "b", "text": "b"}])
    gen = mem.generation
    assert mem.put_many([], delete=["a"]) == []
    assert mem.generation == gen + 1 and mem.ids() == ["b"]
    assert mem.put_many([], delete=["nope"]) == [] and mem.generation == gen + 1
    with pytest.raises(InvalidInputError, match="both stored and deleted"):
        mem.put_many([{"id": "b", "text": "again"}], delete=["b"])
    with pytest.raises(InvalidTypeError, match="iterable"):
        mem.put_many([{"text": "x"}], delete="b")
    assert mem.ids() == ["b"] and mem.get("b").version == 1


def test_put_many_delete_survives_reopen_and_export(mem_path, tmp_path) -> None:
    with Memory.create(mem_path, wal_size=1 << 20) as m:
        m.put_many([{"id": "a", "text": "a"}, {"id": "b", "text": "b"}])
        m.put_many([{"id": "c", "text": "c"}], delete=["a"])
        gen = m.generation
    with Memory.open(mem_path) as m:
        assert m.ids() == ["b", "c"]
        assert [f.id for f in m.as_of(gen - 1).select()] == ["a", "b"]
        out = io.StringIO()
        export_jsonl(m, out)
    path = os.path.join(tmp_path, "export.jsonl")
    with open(path, "w") as f:
        f.write(out.getvalue())
    copy = os.path.join(tmp_path, "copy.mv2")
    import_jsonl(path, copy)
    with Memory.open(copy) as m:
        assert m.ids() == ["b", "c"]
        assert [f.text for f in m.history("a")] == ["a"]


# ---------------------------------------------------------------- $contains $icontains


@pytest.mark.parametrize(("spec", "meta", "want"), [
    ({"name": {"$contains": "ob"}}, {"name": "bob"}, True),
    ({"name": {"$contains": "BO"}}, {"name": "bob"}, False),
    ({"name": {"$icontains": "BO"}}, {"name": "bob"}, True),
    ({"name": {"$contains": "o.b"}}, {"name": "bob"}, False),  # no pattern syntax
    ({"name": {"$contains": "b"}}, {"name": ["x", "abc"]}, True),
    ({"name": {"$contains": "1"}}, {"name": 1}, False),
    ({"name": {"$contains": ""}}, {}, False),
    ({"name": {"$contains": ""}}, {"name": ""}, True),
    ({"name": {"$not": {"$contains": "z"}}}, {}, True),
    ({"a.b": {"$icontains": "X"}}, {"a": {"b": "xy"}}, True),
    ({"tags": {"$contains": "urg"}}, {}, True),
])
def test_substring_matches(spec, meta, want) -> None:
    flt = compile_filter(spec)
    assert flt(meta, ["urgent"]) is want


@pytest.mark.parametrize("op", ["$contains", "$icontains"])
def test_substring_needs_a_str(op) -> None:
    with pytest.raises(FilterError, match=f"\\{op} takes a str"):
        compile_filter({"k": {op: 3}})


def test_substring_is_narrowed_by_the_value_columns(mem) -> None:
    assert plan_terms({"k": {"$contains": "x"}}).groups == ((Substring("k", "x"),),)
    assert not plan_terms({"k": {"$icontains": "x"}}).exact
    mem.put_many([{"text": str(i), "metadata": {"n": i}} for i in range(40)]
                 + [{"text": "k", "metadata": {"k": v}} for v in ("axb", "ab", ["q", "xx"])])
    got = mem.select({"k": {"$contains": "x"}})
    assert [f.metadata["k"] for f in got] == ["axb", ["q", "xx"]]
    assert mem.count({"k": {"$icontains": "A"}}) == 2
    assert [h.text for h in mem.find("k", filter={"k": {"$contains": "a"}}, mode="lexical")] \
        == ["k", "k"]
