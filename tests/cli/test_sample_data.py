"""Acceptance: the CLI end to end on the bundled sample data.

ingest -> find -> update -> find --as-of -> export -> import into a new file -> identical
results, all through ``--json`` output.
"""

from __future__ import annotations

from pathlib import Path

from .support import DATA, EMBEDDER, as_json, ok, run

QUERIES = [
    ("launch date",),
    ("上海办公室",),
    ("成都 素食",),
    ("passport renewal", "--mode", "vector"),
    ("VAT rate", "--mode", "lexical"),
    ("standup time", "--filter", '{"project": "harbor"}'),
    ("评测", "--filter", '{"lang": "zh"}', "-k", "5"),
    ("budget", "--since", "2024-01-01T00:00:00Z", "--until", "2024-04-01T00:00:00Z"),
]


def find(path: Path, query: tuple[str, ...], *extra: str) -> list[dict]:
    return as_json(run("find", path, *query, "--json", *extra))


def ranking(hits: list[dict]) -> list[tuple[str, int, str]]:
    return [(h["id"], h["version"], h["text"]) for h in hits]


def test_sample_data_end_to_end(tmp_path: Path) -> None:
    mem = tmp_path / "agent.mv2"
    report = as_json(run("ingest", mem, DATA, "--embedder", EMBEDDER, "--json"))
    assert report["problems"] == [] and report["files"] == 9
    assert report["embedder"] == "hash-64" and report["added"] > 280

    hits = find(mem, ("when is the Atlas launch",))
    assert "note-020" in [h["id"] for h in hits[:3]]
    assert set(hits[0]) == {"id", "score", "text", "metadata", "tags", "created_at", "version",
                            "ranks", "scores"}
    assert all(h["metadata"]["lang"] == "zh" for h in find(mem, QUERIES[6]))
    assert all(h["metadata"]["project"] == "harbor" for h in find(mem, QUERIES[5]))

    ok(run("update", mem, "note-020", "--text",
           "The launch date for the Atlas agent is 13 May 2024 for the European customers."))
    versions = as_json(run("history", mem, "note-020", "--json"))
    assert [v["version"] for v in versions] == [1, 2]
    before = versions[0]["valid_from"]
    old = find(mem, ("Atlas launch date",), "--as-of", before)
    new = find(mem, ("Atlas launch date",))
    assert next(h for h in old if h["id"] == "note-020")["text"].endswith("6 May 2024 for the "
                                                                         "European customers.")
    assert "13 May" in next(h for h in new if h["id"] == "note-020")["text"]
    ok(run("delete", mem, "trip-001"))

    export = tmp_path / "agent.jsonl"
    summary = as_json(run("export", mem, export, "--json"))
    assert summary["deletes"] == 1 and summary["puts"] == report["added"] + 1
    copy = tmp_path / "copy.mv2"
    imported = as_json(run("import", export, copy, "--json"))
    assert imported["changes"] == summary["changes"]

    for query in QUERIES:
        assert ranking(find(copy, query)) == ranking(find(mem, query)), query
        assert ranking(find(copy, query, "--as-of", before)) == \
            ranking(find(mem, query, "--as-of", before)), query
    for args in (["timeline"], ["timeline", "--as-of", before], ["history", "note-020"],
                 ["history", "trip-001"], ["get", "trip-001", "--as-of", before]):
        assert as_json(run(args[0], copy, *args[1:], "--json")) == \
            as_json(run(args[0], mem, *args[1:], "--json")), args
    stats, copied = (as_json(run("stats", p, "--json")) for p in (mem, copy))
    assert (copied["frames"], copied["versions"], copied["deleted"], copied["dim"]) == \
        (stats["frames"], stats["versions"], stats["deleted"], stats["dim"])
    # the copy remembers its embedder: text queries are hybrid there too
    assert set(find(copy, ("ferry timetable",))[0]["ranks"]) == {"lexical", "vector"}
