"""Thread counts follow the CPUs this process may run on, not the machine's."""

from __future__ import annotations

import os

import pytest

from memvid_store.cpus import usable_cpus
from memvid_store.embeddings.minilm import default_threads
from memvid_store.index.vector import hnsw


@pytest.fixture
def one_cpu(monkeypatch):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no affinity masks here")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    monkeypatch.setattr(os, "cpu_count", lambda: 64)


def test_an_affinity_of_one_cpu_gives_one_thread_everywhere(one_cpu):
    assert usable_cpus() == 1
    assert default_threads() == 1
    assert hnsw._threads(hnsw.AnnParams()) == 1  # graph builds
    assert hnsw._search_threads(1000) == 1  # batches of queries


def test_without_affinity_masks_every_cpu_counts(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cpus() == 6 and default_threads() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cpus() == 1
