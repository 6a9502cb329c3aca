"""`mv2 ingest`: formats, metadata, chunking, resumability and bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from memvid_store import Memory
from memvid_store.cli import ExitCode

from .support import DATA, EMBEDDER, as_json, fails, ok, run


def ingest(path: Path, *inputs: Path | str, args: tuple[str, ...] = ()) -> dict:
    return as_json(run("ingest", path, *inputs, "--embedder", "none", "--json", *args))


def frames(path: Path) -> dict[str, dict]:
    return {f["id"]: f for f in as_json(run("timeline", path, "--json"))}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(DATA / "docs", root)
    return root


def test_every_format_and_its_metadata(tmp_path: Path, corpus: Path) -> None:
    mem = tmp_path / "m.mv2"
    report = ingest(mem, corpus)
    assert report["problems"] == [] and report["files"] == 6
    got = frames(mem)
    log = [f for f in got.values() if f["metadata"]["path"] == "corpus/harbor/decision-log.md"]
    assert len(log) == 2  # longer than one chunk
    assert {f["metadata"]["chunk"] for f in log} == {0, 1}
    first = got["corpus/harbor/decision-log.md#0"]
    assert first["metadata"]["title"] == "Harbor decision log"  # from the front matter
    assert first["metadata"]["ext"] == "md" and first["metadata"]["folders"] == ["corpus",
                                                                               "harbor"]
    assert first["tags"] == ["harbor", "decisions"]
    assert first["created_at"].startswith("2024-12-16T00:00:00")
    assert not first["text"].startswith("---")  # front matter is not text
    runbook = got["corpus/harbor/oncall-runbook.md#0"]
    assert runbook["tags"] == ["ops", "runbook"] and runbook["metadata"]["owner"] == "Jonas"
    html = got["corpus/research/reading-list.html#0"]
    assert html["metadata"]["title"].startswith("Reading list")
    assert "console.log" not in html["text"] and "font-family" not in html["text"]
    assert "Last updated & checked" in html["text"]
    row = got["exp-003"]  # CSV: the id column names the frame, other columns are metadata
    assert row["text"].startswith("Character-level matching")
    assert row["metadata"]["metric"] == "recall@10" and row["tags"] == ["eval", "chinese"]
    assert row["created_at"].startswith("2024-03-21")
    zh = got["corpus/travel/chengdu-guide.md#0"]
    assert zh["metadata"]["lang"] == "zh" and "大熊猫" in zh["text"]


def test_jsonl_records_keep_their_ids_and_fields(tmp_path: Path) -> None:
    mem = tmp_path / "m.mv2"
    report = ingest(mem, DATA / "notes.jsonl", args=("--tag", "demo"))
    assert report["added"] == 34 and report["problems"] == []
    note = as_json(run("get", mem, "note-020", "--json"))
    source = json.loads((DATA / "notes.jsonl").read_text().splitlines()[19])
    assert note["text"] == source["text"]
    assert note["metadata"]["kind"] == "fact" and note["metadata"]["path"] == "notes.jsonl"
    assert note["tags"] == [*source["tags"], "demo"]
    assert note["created_at"] == source["created_at"]


def test_second_ingest_adds_nothing(tmp_path: Path) -> None:
    mem = tmp_path / "m.mv2"
    first = ingest(mem, DATA)
    assert first["added"] > 250 and first["problems"] == []
    before = as_json(run("stats", mem, "--json"))
    second = ingest(mem, DATA)
    assert (second["added"], second["updated"], second["deleted"]) == (0, 0, 0)
    assert second["unchanged"] == first["added"]
    after = as_json(run("stats", mem, "--json"))
    assert (after["versions"], after["generation"]) == (before["versions"], before["generation"])


def test_changed_files_update_and_delete_their_chunks(tmp_path: Path, corpus: Path) -> None:
    mem = tmp_path / "m.mv2"
    ingest(mem, corpus)
    log = corpus / "harbor" / "decision-log.md"
    log.write_text(log.read_text().split("## Money")[0] + "## Money\n\nAll amounts in cents.\n")
    (corpus / "travel" / "packing-list.txt").write_text("Only a toothbrush now.\n")
    report = ingest(mem, corpus)
    assert (report["added"], report["updated"], report["deleted"]) == (0, 2, 1)
    got = frames(mem)
    assert "corpus/harbor/decision-log.md#1" not in got
    assert got["corpus/travel/packing-list.txt#0"]["text"] == "Only a toothbrush now."
    history = as_json(run("history", mem, "corpus/harbor/decision-log.md#1", "--json"))
    assert history[-1]["valid_to"] is not None  # deleted, its text still readable
    (corpus / "travel" / "packing-list.txt").unlink()
    assert ingest(mem, corpus)["deleted"] == 0  # a vanished file is kept unless --prune
    assert ingest(mem, corpus, args=("--prune",))["deleted"] == 1
    assert "corpus/travel/packing-list.txt#0" not in frames(mem)


def test_glob_chunking_options_and_tags(tmp_path: Path, corpus: Path) -> None:
    mem = tmp_path / "m.mv2"
    report = ingest(mem, corpus, args=("--glob", "*.md", "--chunk-size", "300",
                                       "--chunk-overlap", "50", "--tag", "docs"))
    got = frames(mem)
    assert {f["metadata"]["ext"] for f in got.values()} == {"md"}
    assert report["added"] == len(got) > 6
    assert all(len(f["text"]) <= 300 and "docs" in f["tags"] for f in got.values())
    fails(run("ingest", mem, corpus, "--chunk-overlap", "200", "--chunk-size", "300",
              "--embedder", "none"), ExitCode.ERROR, "overlap")
    fails(run("ingest", tmp_path / "new.mv2", corpus, "--chunk-overlap", "200",
              "--chunk-size", "300", "--embedder", "none"), ExitCode.ERROR, "overlap")
    assert not (tmp_path / "new.mv2").exists()


def test_vectors_make_text_search_hybrid(tmp_path: Path) -> None:
    mem = tmp_path / "m.mv2"
    ok(run("ingest", mem, DATA / "notes.jsonl", "--embedder", EMBEDDER, "--json"))
    with Memory.open(mem, readonly=True) as m:
        assert m.embedder_info == {"name": "hash-64", "dim": 64}
        assert m.get("note-001").embedding is not None
    hits = as_json(run("find", mem, "launch date", "--json"))
    assert set(hits[0]["ranks"]) == {"lexical", "vector"}
    lexical = as_json(run("find", mem, "launch date", "--embedder", "none", "--json"))
    assert set(lexical[0]["ranks"]) == {"lexical"}
    # later ingests use the file's embedder; another one is refused
    assert as_json(run("ingest", mem, DATA / "notes.jsonl", "--json"))["unchanged"] == 34
    fails(run("ingest", mem, DATA / "notes.jsonl", "--embedder", "hash:32"), ExitCode.ERROR,
          "64-d")
    fails(run("ingest", mem, DATA / "notes.jsonl", "--embedder", "none"), ExitCode.ERROR,
          "vectors come from 'hash-64'")


def test_bad_input_is_reported_skipped_and_the_file_stays_valid(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "good.txt").write_text("a good note about ferries")
    (root / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (root / "latin1.md").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "gone.txt").symlink_to(root / "missing-target.txt")  # unreadable
    (root / "bad.jsonl").write_text('{"id": "r1", "text": "first"}\n{"text": broken\n'
                                    '{"id": "r3"}\n[1, 2]\n{"id": "r5", "text": "fifth"}\n')
    (root / "table.csv").write_text("body,kind\nhello,fact\n")
    (root / "front.md").write_text("---\ntitle: x\n  nested: y\n---\nbody\n")
    (root / "image.png").write_bytes(b"\x00")  # not a supported type: reported
    mem = tmp_path / "m.mv2"
    result = run("ingest", mem, root, tmp_path / "nope", "--embedder", "none", "--json")
    fails(result, ExitCode.PARTIAL)
    report = json.loads(result.stdout)
    problems = {(p["path"].split("/")[-1], p["line"]): p["reason"] for p in report["problems"]}
    assert "binary" in problems[("binary.txt", None)]
    assert "not UTF-8" in problems[("latin1.md", 1)]
    assert "cannot read" in problems[("gone.txt", None)]
    assert "malformed JSON" in problems[("bad.jsonl", 2)]
    assert "no 'text'" in problems[("bad.jsonl", 3)]
    assert "expected a JSON object" in problems[("bad.jsonl", 4)]
    assert "--text-column" in problems[("table.csv", 1)]
    assert "nested" in problems[("front.md", 3)]
    assert "no such file" in problems[("nope", None)]
    assert "unsupported file type '.png'" in problems[("image.png", None)]
    assert len(problems) == 10
    assert set(frames(mem)) == {"in/good.txt#0", "r1", "r5"}
    assert as_json(run("verify", mem, "--json"))["ok"] is True
    plain = run("ingest", mem, root, "--embedder", "none")
    assert plain.exit_code == ExitCode.PARTIAL and "bad.jsonl:2: malformed JSON" in plain.output
    assert "Traceback" not in plain.output


def test_a_problem_keeps_the_frames_a_file_had(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"id": "a", "text": "alpha"}\n{"id": "b", "text": "beta"}\n')
    mem = tmp_path / "m.mv2"
    ingest(mem, notes)
    notes.write_text('{"id": "a", "text": "alpha"}\n{"id": "b", "text": \n')
    fails(run("ingest", mem, notes, "--embedder", "none"), ExitCode.PARTIAL)
    assert set(frames(mem)) == {"a", "b"}  # b is not deleted because its line is broken


def test_duplicate_ids_are_reported(tmp_path: Path) -> None:
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"id": "a", "text": "alpha"}\n{"id": "a", "text": "again"}\n')
    result = run("ingest", tmp_path / "m.mv2", notes, "--embedder", "none", "--json")
    fails(result, ExitCode.PARTIAL)
    assert "duplicate frame id 'a'" in json.loads(result.stdout)["problems"][0]["reason"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without permission")
def test_unreadable_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hidden")
    secret.chmod(0)
    result = run("ingest", tmp_path / "m.mv2", secret, "--embedder", "none", "--json")
    fails(result, ExitCode.PARTIAL)
    assert "Permission denied" in json.loads(result.stdout)["problems"][0]["reason"]


def test_not_a_memory_file(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("plain text, not a memory\n" * 100)
    fails(run("ingest", target, DATA / "notes.jsonl", "--embedder", "none"),
          ExitCode.DAMAGED, "not a .mv2")


def test_an_interrupted_ingest_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mem = tmp_path / "m.mv2"
    real_put_many = Memory.put_many
    calls = []

    def crash_on_third(self, records, **kwargs):
        calls.append(len(records))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C in the middle of a batch
        return real_put_many(self, records, **kwargs)

    monkeypatch.setattr(Memory, "put_many", crash_on_third)
    result = run("ingest", mem, DATA / "notes.jsonl", "--embedder", "none", "--batch-size", "10")
    assert result.exit_code != 0 and "Traceback" not in result.output
    monkeypatch.undo()
    assert len(frames(mem)) == 20  # two whole batches, nothing of the third
    assert as_json(run("verify", mem, "--json"))["ok"] is True
    report = ingest(mem, DATA / "notes.jsonl")
    assert (report["added"], report["unchanged"]) == (14, 20)
