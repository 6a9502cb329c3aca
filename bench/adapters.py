"""Adapter benchmarks: each memvid adapter against its framework's in-memory store and the engine.

``python bench/adapters.py --n 100000 [--only langchain,langgraph,saver,chat,llamaindex]
[--turns 200]`` measures, with a 64-d hash embedding (``adapters_kit.hash_vectors``) so that
embedding costs next to nothing:

1. ``langchain``: ``MemvidVectorStore`` vs ``InMemoryVectorStore`` vs the engine
   (``Memory.open`` + ``collection(<its collection>).find``): ``add_texts`` throughput,
   fresh-process open + first ``similarity_search`` (import of the framework reported on its
   own), warm ``similarity_search`` p50 (k=4), with a selective metadata filter too.
2. ``langgraph``: ``MemvidStore`` vs ``InMemoryStore`` (same ``index``) vs the engine:
   ``batch`` put throughput over 100 user namespaces, fresh-process open + first search,
   search with a namespace prefix, ``get`` and ``list_namespaces`` p50.
3. ``saver``: ``MemvidSaver`` vs ``InMemorySaver`` under a one-node ``add_messages`` graph:
   turn time around turn 10 and around the last turn; target: memvid's overhead at the last
   turn <= 1.5x its overhead at turn 10.
4. ``chat``: a 20-message session in a file of ``n`` other messages, LangChain
   ``MemvidChatMessageHistory.messages`` and LlamaIndex ``MemvidChatStore.get_messages``
   vs ``InMemoryChatMessageHistory`` / ``SimpleChatStore``; target p50 <= 5 ms.
5. ``llamaindex``: ``MemvidVectorStore`` vs ``SimpleVectorStore`` vs the engine: add
   throughput, fresh-process open + first query, query p50, ``delete(ref_doc_id)`` of a
   4-node document; target delete p50 <= 10 ms.

Each section runs in its own process with a timeout (``--section-timeout``) and records every
step as it ends, so a slow or failing adapter costs its own figures only ("error" /
"timeout" in the report). Timings on the shared machine are noisy: compare the ratios to
peers measured in the same run (peers take turns batch by batch and call by call). Results:
``bench/results/adapters-<stamp>.json`` and ``.md``, and the adapters section of
``latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import adapters_kit as kit  # noqa: E402
from bench.adapters_report import markdown, targets  # noqa: E402
from bench.engine_bench import PYCACHE, RESULTS, calibrate, progress  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.report import drop_workdir, finish, report_exit, update_latest  # noqa: E402

SECTIONS = ("langchain", "langgraph", "saver", "chat", "llamaindex")
DEFAULT_N = 100_000
DEFAULT_TURNS = 200
CALLS = 200
WARMUP = 20
REPEATS = 3
SECTION_TIMEOUT = 3600.0
CHILD_TIMEOUT = 600.0


def section_function(name: str) -> Callable[..., None]:
    from bench import adapters_agents, adapters_vectors

    return {"langchain": adapters_vectors.langchain, "llamaindex": adapters_vectors.llamaindex,
            "langgraph": adapters_agents.langgraph, "saver": adapters_agents.saver,
            "chat": adapters_agents.chat}[name]


def run_section(name: str, work: Path, params: dict[str, Any], timeout: float
                ) -> dict[str, Any]:
    """Run one section in a child process; what it recorded, with ``status`` and seconds."""
    state = work / f"{name}.json"
    section_dir = work / name
    section_dir.mkdir()
    cmd = [sys.executable, str(HERE / "adapters.py"), "--section-child", name,
           "--state", str(state), "--workdir", str(section_dir), "--params", json.dumps(params)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=kit.child_env(), start_new_session=True)
    try:
        status = "ok" if proc.wait(timeout) == 0 else f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the section and the processes it started
        proc.wait()
        status = f"timeout after {timeout:.0f} s"
    data = json.loads(state.read_text()) if state.exists() else {"steps": {}}
    data.update(status=status, seconds=time.perf_counter() - started)
    if not params.get("keep"):
        shutil.rmtree(section_dir, ignore_errors=True)
    return data


def section_child(name: str, state: Path, workdir: Path, params: dict[str, Any]) -> int:
    """Inside a section's process: run it, recording each step in ``state``."""
    rec = kit.Recorder(state, name, params)
    try:
        section_function(name)(rec, workdir, params)
    except BaseException as exc:  # outside any step: say so in the report, then fail
        rec.note("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        raise
    return 0


def run(*, n: int = DEFAULT_N, turns: int = DEFAULT_TURNS, only: list[str] | None = None,
        calls: int = CALLS, warmup: int = WARMUP, repeats: int = REPEATS, seed: int = 0,
        workdir: str | None = None, keep: bool = False, out_dir: Path = RESULTS,
        section_timeout: float = SECTION_TIMEOUT, child_timeout: float = CHILD_TIMEOUT,
        command: str | None = None, full: bool = False) -> dict[str, Any]:
    """Run the chosen sections; returns the result dict (also written to ``out_dir``).

    ``full`` is accepted for ``run_all.py`` and changes nothing.
    """
    del full
    names = [s for s in SECTIONS if s in (only or SECTIONS)]
    base = Path(workdir or os.environ.get("MEMVID_BENCH_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="memvid-adapters-bench-", dir=base))
    params = {"n": n, "turns": turns, "calls": calls, "warmup": warmup, "repeats": repeats,
              "seed": seed, "child_timeout": child_timeout, "keep": keep, "dim": kit.DIM,
              "batch": kit.BATCH}
    res: dict[str, Any] = {
        "bench": "adapters",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command or f"python bench/adapters.py --n {n} --turns {turns}",
        "parameters": {**params, "sections": names, "section_timeout": section_timeout},
        "machine": machine_info(work),
        "calibration": calibrate(work),
        "sections": {},
    }
    PYCACHE["prefix"] = work / "pycache"  # children's bytecode, as an installed package
    try:
        for name in names:
            progress(f"[adapters] {name}...")
            res["sections"][name] = run_section(name, work, params, section_timeout)
            sec = res["sections"][name]
            progress(f"[adapters] {name}: {sec['status']} in {sec['seconds']:.0f} s")
    finally:
        PYCACHE.pop("prefix", None)
        drop_workdir(work, keep)
    return finish(res, out_dir, "adapters", targets, markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N,
                        help="documents / items / other chat messages per file")
    parser.add_argument("--turns", type=int, default=DEFAULT_TURNS, help="saver turns")
    parser.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--calls", type=int, default=CALLS, help="timed calls per figure")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="calls before timing")
    parser.add_argument("--repeats", type=int, default=REPEATS,
                        help="fresh processes per cold-open figure (after one warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="where the files go (default: $MEMVID_BENCH_DIR or "
                                          "the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--section-timeout", type=float, default=SECTION_TIMEOUT)
    parser.add_argument("--child-timeout", type=float, default=CHILD_TIMEOUT)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--section-child", help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.section_child:
        return section_child(args.section_child, args.state, Path(args.workdir),
                             json.loads(args.params))
    unknown = set(args.only or ()) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.n < 10 or args.turns < 1 or args.calls < 1 or args.warmup < 0 or args.repeats < 1:
        parser.error("need --n >= 10, --turns >= 1, --calls >= 1, --warmup >= 0, --repeats >= 1")
    command = "python bench/adapters.py " + " ".join(sys.argv[1:] if argv is None else argv)
    res = run(n=args.n, turns=args.turns, only=args.only, calls=args.calls, warmup=args.warmup,
              repeats=args.repeats, seed=args.seed, workdir=args.workdir, keep=args.keep,
              out_dir=args.out, section_timeout=args.section_timeout,
              child_timeout=args.child_timeout, command=command.strip())
    report = markdown(res)
    update_latest(args.out, report)
    return report_exit(res, report, args.strict)


if __name__ == "__main__":
    sys.exit(main())
