"""LangGraph's checkpointer conformance suite (every capability) against MemvidSaver."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from memvid_integrations.langgraph import MemvidSaver


@checkpointer_test(name="MemvidSaver")
async def memvid_saver() -> AsyncIterator[MemvidSaver]:
    folder = tempfile.mkdtemp(prefix="memvid-lg-")
    saver = MemvidSaver(os.path.join(folder, "cp.mv2"), wal_size=1 << 20)
    try:
        yield saver
    finally:
        saver.close()
        shutil.rmtree(folder, ignore_errors=True)


async def test_conformance_all_capabilities() -> None:
    report = await validate(memvid_saver)
    failures = {cap: r.failures for cap, r in report.results.items() if not r.passed}
    assert not failures, failures
    assert all(r.tests_passed > 0 for r in report.results.values())
    assert {cap for cap, r in report.results.items() if r.detected} == {
        c.value for c in ALL_CAPABILITIES}
