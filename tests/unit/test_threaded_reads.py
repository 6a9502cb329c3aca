"""Threads sharing one Memory decode payloads concurrently without false corruption."""

from __future__ import annotations

import sys
import threading

from memvid_store import Memory


def test_concurrent_decodes(tmp_path):
    path = tmp_path / "m.mv2"
    texts = {}
    with Memory.create(path, sync=False) as mem:  # enough frames to train a dictionary
        records = [{"id": f"f{i}", "text": f"note {i} about the harbour project and item {i % 17} "
                    + "lorem ipsum dolor " * (i % 5)} for i in range(2000)]
        mem.put_many(records)
        texts = {r["id"]: r["text"] for r in records}
    errors: list[BaseException] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with Memory.open(path, readonly=True, cache=0) as mem:  # every read decodes
            def reader(offset: int) -> None:
                try:
                    for _ in range(5):
                        for i in range(offset, 2000, 3):
                            assert mem.get(f"f{i}").text == texts[f"f{i}"]
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=reader, args=(k,)) for k in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
