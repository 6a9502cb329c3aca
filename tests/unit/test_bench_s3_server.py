"""The benchmarks' S3 file server lists keys and counts what it serves (LanceDB's figures)."""

from __future__ import annotations

import json
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from bench.s3_file_server import file_server, summary

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture
def served(tmp_path):
    for key, size in (("data/a.lance/_versions/1.manifest", 10),
                      ("data/a.lance/_versions/2.manifest", 20),
                      ("data/a.lance/data/x.lance", 300), ("other.mv2", 5)):
        path = tmp_path / "bench" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    with file_server(str(tmp_path), latency=0.0) as env:
        yield env["AWS_ENDPOINT_URL"]


def listing(endpoint: str, query: str) -> tuple[list[tuple[str, int]], list[str]]:
    with urllib.request.urlopen(f"{endpoint}/bench?list-type=2&{query}") as reply:
        root = ET.fromstring(reply.read())
    keys = [(c.find(f"{NS}Key").text, int(c.find(f"{NS}Size").text))
            for c in root.iter(f"{NS}Contents")]
    prefixes = [p.find(f"{NS}Prefix").text for p in root.iter(f"{NS}CommonPrefixes")]
    return keys, prefixes


def test_lists_keys_under_a_prefix_with_and_without_a_delimiter(served):
    keys, prefixes = listing(served, "prefix=data/a.lance/&delimiter=/")
    assert keys == [] and prefixes == ["data/a.lance/_versions/", "data/a.lance/data/"]
    keys, _ = listing(served, "prefix=data/a.lance/_versions/")
    assert keys == [("data/a.lance/_versions/1.manifest", 10),
                    ("data/a.lance/_versions/2.manifest", 20)]
    keys, _ = listing(served, "prefix=data/&start-after=data/a.lance/_versions/1.manifest")
    assert [k for k, _ in keys] == ["data/a.lance/_versions/2.manifest",
                                    "data/a.lance/data/x.lance"]


def test_the_request_log_counts_requests_bytes_and_rounds(served):
    urllib.request.urlopen(f"{served}/__requests__").read()  # forget the start-up probes
    for _ in range(2):
        request = urllib.request.Request(f"{served}/bench/data/a.lance/data/x.lance",
                                          headers={"Range": "bytes=0-99"})
        with urllib.request.urlopen(request) as reply:
            assert len(reply.read()) == 100
    with urllib.request.urlopen(f"{served}/__requests__") as reply:
        rows = json.loads(reply.read())
    assert summary(rows) == {"requests": 2, "bytes": 200, "rounds": 2}  # one after the other
    with urllib.request.urlopen(f"{served}/__requests__") as reply:
        assert json.loads(reply.read()) == []  # taken
