"""Which shard a frame lives in: by a hash of its id, or of a metadata field (a key).

Routing by key keeps a tenant's or an agent's frames in one shard, so a query filtered on
that key reads one shard only. The hash is BLAKE2b (stable across processes and Python
versions, unlike ``hash()``), of the id's UTF-8 bytes or of the key value's canonical
JSON, modulo the shard count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInputError


def bucket(data: bytes, count: int) -> int:
    """A stable shard number in ``[0, count)`` for ``data``."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") % count


class Router:
    """Routes frames over ``count`` shards, by ``field`` of their metadata (a key) or, when
    ``field`` is None, by their id."""

    def __init__(self, count: int, field: str | None) -> None:
        self.count = count
        self.field = field

    @property
    def by_id(self) -> bool:
        return self.field is None

    def of_id(self, frame_id: str) -> int:
        """The shard of a frame id (routing by id only)."""
        return bucket(frame_id.encode("utf-8"), self.count)

    def of_key(self, value: Any) -> int:
        """The shard of a key value (routing by key): a string, number, bool or null.

        Raises:
            InvalidInputError: a list, a dict or another type.
        """
        if value is not None and not isinstance(value, str | int | float):
            raise InvalidInputError(f"the routing key {self.field!r} must hold a string, a "
                                    f"number, a bool or None, not {type(value).__name__}")
        return bucket(json.dumps(value).encode(), self.count)

    def of_record(self, frame_id: str, metadata: Mapping[str, Any] | None) -> int:
        """The shard a record goes to.

        Raises:
            InvalidInputError: routing by key and the record's metadata lacks the key.
        """
        if self.field is None:
            return self.of_id(frame_id)
        if not metadata or self.field not in metadata:
            raise InvalidInputError(
                f"frame {frame_id!r} has no metadata {self.field!r}: this sharded memory "
                f"routes frames by it, so every frame must carry it")
        return self.of_key(metadata[self.field])

    def of_filter(self, spec: Mapping[str, Any] | None) -> int | None:
        """The one shard a ``find``/``select`` filter confines to (``{field: "value"}`` or
        ``{field: {"$eq": "value"}}`` with a string value, at its top level or in a
        top-level ``$and``); None when it may match frames of several shards."""
        if self.field is None or not isinstance(spec, Mapping):
            return None
        clauses = [spec] + [c for c in spec.get("$and", ()) if isinstance(c, Mapping)]
        for clause in clauses:
            if self.field in clause:
                cond = clause[self.field]
                if isinstance(cond, Mapping):
                    if set(cond) != {"$eq"}:
                        continue
                    cond = cond["$eq"]
                if isinstance(cond, str):  # numbers: 1 == 1.0 to a filter, not to a hash
                    return self.of_key(cond)
        return None
