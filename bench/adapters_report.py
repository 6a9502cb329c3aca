"""Targets and markdown tables of the adapter benchmarks (``bench/adapters.py``)."""

from __future__ import annotations

from typing import Any

from bench.machine import summary

TARGET_SAVER_GROWTH = 1.5
TARGET_CHAT_MS = 5.0
TARGET_DELETE_MS = 10.0

Value = float | int | str | None


def value(sec: dict[str, Any] | None, step: str, *path: str) -> Value:
    """A figure of a section, or why it is missing: "error", "timeout", "not run"."""
    if sec is None:
        return "not run"
    data = sec.get("steps", {}).get(step)
    if data is None:
        return "timeout" if str(sec.get("status", "")).startswith("timeout") else "not run"
    if "error" in data:
        return "error"
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _num(v: Value) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def fmt(v: Value) -> str:
    if v is None:
        return "n/a"
    if not _num(v):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the sections that ran, with the measured value and whether it holds."""
    secs = res["sections"]
    n = res["parameters"]["n"]
    turns = res["parameters"]["turns"]
    out = []

    def add(name: str, v: Value, limit: float, unit: str) -> None:
        out.append({"target": name, "value": v, "goal": f"<= {limit:g}", "unit": unit,
                    "met": _num(v) and v <= limit})

    if "saver" in secs:
        add(f"MemvidSaver overhead over InMemorySaver at turn {turns} / at turn "
            f"{min(10, turns)}", value(secs["saver"], "turns", "overhead_growth"),
            TARGET_SAVER_GROWTH, "x")
    if "chat" in secs:
        add(f"LangChain MemvidChatMessageHistory.messages p50, 20 of {n:,} messages",
            value(secs["chat"], "read_langchain", "memvid", "p50_ms"), TARGET_CHAT_MS, "ms")
        add(f"LlamaIndex MemvidChatStore.get_messages p50, 20 of {n:,} messages",
            value(secs["chat"], "read_llamaindex", "memvid", "p50_ms"), TARGET_CHAT_MS, "ms")
    if "llamaindex" in secs:
        add(f"LlamaIndex delete(ref_doc_id) p50, 4 of {n:,} nodes",
            value(secs["llamaindex"], "delete", "memvid", "p50_ms"), TARGET_DELETE_MS, "ms")
    return out


# ----------------------------------------------------------------------------- tables

Row = tuple[str, str, dict[str, Value], bool]  # figure, unit, value per peer, ratio column


def peer_table(rows: list[Row], peers: list[tuple[str, str]]) -> list[str]:
    """Rows of figures per peer (memvid first) with memvid / peer ratios."""
    others = [(k, t) for k, t in peers if k != "memvid"]
    head = ["figure", "unit", *[t for _, t in peers], *[f"memvid / {k}" for k, _ in others]]
    lines = ["| " + " | ".join(head) + " |",
             "| --- | --- |" + " ---: |" * (len(head) - 2)]
    for label, unit, vals, ratio in rows:
        cells = [fmt(vals.get(k)) for k, _ in peers]
        mv = vals.get("memvid")
        for k, _ in others:
            other = vals.get(k)
            ok = ratio and _num(mv) and _num(other) and other > 0
            cells.append(f"{mv / other:.2f}x" if ok else "")
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    return lines


def _peers(sec: dict[str, Any], step: str, *path: str, keys: tuple[str, ...]
           ) -> dict[str, Value]:
    return {k: value(sec, step, k, *path) for k in keys}


def _build_rows(sec: dict[str, Any], keys: tuple[str, ...], what: str) -> list[Row]:
    return [
        (f"{what}, per 1,000 (median batch)", "ms",
         {k: value(sec, "build", "add", k, "ms_per_1k") for k in keys}, True),
        (f"{what} throughput", "per s",
         {k: value(sec, "build", "add", k, "docs_per_s") for k in keys}, False),
        ("then close (memvid, engine) / save to JSON (reference)", "s",
         {k: value(sec, "build", "close_s", k) if k != "reference"
          else value(sec, "build", "persist_s", k) for k in keys}, True),
        ("file size", "MB", {k: value(sec, "build", "file_mb", k) for k in keys}, True),
    ]


def _fresh_rows(sec: dict[str, Any], keys: tuple[str, ...], query: str) -> list[Row]:
    def fresh(field: str) -> dict[str, Value]:
        return {k: value(sec, "fresh", k, field) for k in keys}

    return [
        ("fresh process: interpreter start", "ms", fresh("interpreter_ms"), False),
        ("fresh process: import numpy + hash embedding", "ms", fresh("kit_ms"), False),
        ("fresh process: import the framework", "ms", fresh("framework_ms"), True),
        ("fresh process: import the adapter (engine: memvid_store)", "ms",
         fresh("adapter_ms"), False),
        ("fresh process: open", "ms", fresh("open_ms"), True),
        (f"fresh process: first {query}", "ms", fresh("first_query_ms"), True),
        ("fresh process: total from spawn to the answer", "ms", fresh("total_ms"), True),
    ]


def _call_rows(sec: dict[str, Any], step: str, label: str, keys: tuple[str, ...]
               ) -> list[Row]:
    return [(f"{label} p50", "ms", _peers(sec, step, "p50_ms", keys=keys), True),
            (f"{label} p95", "ms", _peers(sec, step, "p95_ms", keys=keys), False),
            (f"{label} results (last call)", "",
             _peers(sec, step, "result_size", keys=keys), False)]


def _status(sec: dict[str, Any]) -> list[str]:
    lines = [f"Section status: {sec.get('status')} ({sec.get('seconds', 0):.0f} s)."]
    if sec.get("running"):
        lines[0] += f" It was in step `{sec['running']}`."
    if sec.get("error"):
        lines.append(f"The section failed outside its steps: `{sec['error']}`.")
    for step, data in sec.get("steps", {}).items():
        if isinstance(data, dict) and "error" in data:
            lines.append(f"Step `{step}` failed: `{data['error']}`.")
    return ["  \n".join(lines), ""]


def _langchain(sec: dict[str, Any], p: dict[str, Any]) -> list[str]:
    keys = ("memvid", "reference", "engine")
    peers = [("memvid", "MemvidVectorStore"), ("reference", "InMemoryVectorStore"),
             ("engine", "engine")]
    rows = (_build_rows(sec, keys, "add_texts")
            + _fresh_rows(sec, keys, "similarity_search (k=4)")
            + _call_rows(sec, "search", "warm similarity_search k=4", keys)
            + _call_rows(sec, "search_filtered",
                         "warm similarity_search k=4, filter topic & source (~0.4%)", keys))
    return [f"### 1. LangChain vector store ({p['n']:,} documents)", "",
            "Engine: `collection.put_many` into its own file for the add figures; "
            f"`Memory.open` + `collection({value(sec, 'build', 'collection')!r}).find` on the "
            "adapter's file for the rest. Reference fresh process: `InMemoryVectorStore.load` "
            "of its JSON dump.", "", *peer_table(rows, peers), "", *_status(sec)]


def _langgraph(sec: dict[str, Any], p: dict[str, Any]) -> list[str]:
    keys = ("memvid", "reference", "engine")
    peers = [("memvid", "MemvidStore"), ("reference", "InMemoryStore"), ("engine", "engine")]
    rows = (_build_rows(sec, keys, "batch(PutOp)")
            + _fresh_rows(sec, keys, "search(prefix, query, limit=10)")
            + [("reopen in process (MemvidStore(path, index=...))", "ms",
                {"memvid": value(sec, "reopen", "open_ms")}, False)]
            + _call_rows(sec, "search", "search(('users', u), query, limit=10)", keys)
            + _call_rows(sec, "get", "get(namespace, key)", keys)
            + _call_rows(sec, "list_namespaces", "list_namespaces(prefix=('users',))", keys))
    return [f"### 2. LangGraph store ({p['n']:,} items in 100 namespaces)", "",
            "Engine: its own file, one frame per item tagged with every namespace prefix; "
            "search is `find(vector=..., filter={'tags': 'ns:users.u7'})`, get is "
            "`collection.get(id)`. InMemoryStore has no file: no fresh-process figures.", "",
            *peer_table(rows, peers), "", *_status(sec)]


def _saver(sec: dict[str, Any], p: dict[str, Any]) -> list[str]:
    lines = [f"### 3. LangGraph checkpointer ({p['turns']} turns, one thread)", "",
             "One-node `StateGraph` with an `add_messages` channel; each turn invokes it with "
             "one user message and the node appends one reply. The two graphs take turns. "
             f"Turn times are medians over turns t-{5}..t+{5}; overhead is the median of the "
             "per-turn differences (memvid - InMemorySaver).", "",
             "| turn | InMemorySaver ms | MemvidSaver ms | overhead ms | memvid / reference |",
             "| ---: | ---: | ---: | ---: | ---: |"]
    for name in ("early", "late"):
        turn = value(sec, "turns", f"{name}_turn")
        mv, ref = value(sec, "turns", name, "memvid_ms"), value(sec, "turns", name, "reference_ms")
        over = value(sec, "turns", name, "overhead_ms")
        ratio = f"{mv / ref:.2f}x" if _num(mv) and _num(ref) and ref > 0 else ""
        lines.append(f"| {fmt(turn)} | {fmt(ref)} | {fmt(mv)} | {fmt(over)} | {ratio} |")
    growth = value(sec, "turns", "overhead_growth")
    lines += ["", f"Overhead at the last turn / at turn 10: **{fmt(growth)}x** "
              f"(target <= {TARGET_SAVER_GROWTH}). File: {fmt(value(sec, 'turns', 'file_mb'))} "
              "MB.", "", *_status(sec)]
    return lines


def _chat(sec: dict[str, Any], p: dict[str, Any]) -> list[str]:
    lines = [f"### 4. Chat history: 20 messages of one session among {p['n']:,} others", "",
             "Other sessions hold 250 messages each; the session read was written in the "
             "middle of the file. Open: the adapter's constructor on the path (in process).",
             "", "| adapter | build msgs/s | open ms | first read ms | read p50 ms | "
             "read p95 ms | messages | reference p50 ms | memvid / reference |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, build, read in (
            ("LangChain MemvidChatMessageHistory vs InMemoryChatMessageHistory",
             "build_langchain", "read_langchain"),
            ("LlamaIndex MemvidChatStore vs SimpleChatStore", "build_llamaindex",
             "read_llamaindex")):
        mv = value(sec, read, "memvid", "p50_ms")
        ref = value(sec, read, "reference", "p50_ms")
        ratio = f"{mv / ref:,.0f}x" if _num(mv) and _num(ref) and ref > 0 else ""
        lines.append(
            f"| {label} | {fmt(value(sec, build, 'messages_per_s'))} | "
            f"{fmt(value(sec, read, 'open_ms'))} | "
            f"{fmt(value(sec, read, 'memvid', 'first_ms'))} | {fmt(mv)} | "
            f"{fmt(value(sec, read, 'memvid', 'p95_ms'))} | "
            f"{fmt(value(sec, read, 'memvid', 'result_size'))} | {fmt(ref)} | {ratio} |")
    return [*lines, "", *_status(sec)]


def _llamaindex(sec: dict[str, Any], p: dict[str, Any]) -> list[str]:
    keys = ("memvid", "reference", "engine")
    peers = [("memvid", "MemvidVectorStore"), ("reference", "SimpleVectorStore"),
             ("engine", "engine")]
    rows = (_build_rows(sec, keys, "add(nodes)")
            + _fresh_rows(sec, keys, "query (default mode, k=4)")
            + _call_rows(sec, "query", "warm query (default mode, k=4)", keys)
            + [("delete(ref_doc_id), 4 nodes, p50", "ms",
                _peers(sec, "delete", "p50_ms", keys=keys), True),
               ("delete(ref_doc_id), first call", "ms",
                _peers(sec, "delete", "first_ms", keys=keys), False)])
    check = value(sec, "delete", "memvid", "check")
    return [f"### 5. LlamaIndex vector store ({p['n']:,} nodes, 4 per source document)", "",
            "Nodes carry their embeddings (computed before `add`, not timed). Engine: "
            "`collection.put_many` into its own file for the add figures; `Memory.open` + "
            f"`collection({value(sec, 'build', 'collection')!r})` on the adapter's file for "
            "the rest (delete: `select({'ref_doc_id': d})` + `delete_many`). Reference fresh "
            "process: `SimpleVectorStore.from_persist_path`.", "",
            *peer_table(rows, peers), "", f"After the deletes: {fmt(check)}.", "",
            *_status(sec)]


RENDER = {"langchain": _langchain, "langgraph": _langgraph, "saver": _saver, "chat": _chat,
          "llamaindex": _llamaindex}


def markdown(res: dict[str, Any]) -> str:
    """The result as markdown: targets, then one table per section."""
    p, cal = res["parameters"], res["calibration"]
    load = res["machine"].get("loadavg")
    end = res.get("loadavg_end")
    lines = [f"## Adapter benchmark ({res['timestamp']})", "",
             f"Machine: {summary(res['machine'])}  ",
             f"Calibration: 1M-iteration Python loop {cal['py_loop_1m_ms']:.0f} ms, fsync 4 KiB "
             f"{cal['fsync_4k_ms']:.2f} ms; load average at start / end "
             f"{load[0] if load else 'n/a'} / {f'{end[0]:.2f}' if end else 'n/a'}  ",
             f"Command: `{res['command']}`  ",
             f"n={p['n']:,}, {p['dim']}-d hash embeddings, batches of {p['batch']:,}; warm "
             f"figures: up to {p['calls']} calls after {p['warmup']} warm-up calls (fewer when "
             f"a call is slow), distinct queries; fresh-process figures: median of "
             f"{p['repeats']} processes after a discarded warm-up one. Ratios compare peers "
             "measured in the same run (lower is better for memvid).", "",
             "### Targets", "", "| target | goal | measured | met |",
             "| --- | ---: | ---: | :---: |"]
    for t in res["targets"]:
        lines.append(f"| {t['target']} | {t['goal']} {t['unit']} | {fmt(t['value'])} "
                     f"{t['unit'] if _num(t['value']) else ''} | "
                     f"{'yes' if t['met'] else '**no**'} |")
    lines.append("")
    for name, sec in res["sections"].items():
        lines += RENDER[name](sec, p)
    return "\n".join(lines)
