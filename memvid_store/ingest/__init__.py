"""Turning files into memory frames: readers, chunking, resumable ingest.

>>> from memvid_store.ingest import chunk_text
>>> chunk_text("one two three four five six seven eight nine ten " * 3, size=60)[0]
'one two three four five six seven eight nine ten one two'
"""

from __future__ import annotations

from .chunking import chunk_text
from .pipeline import IngestOptions, IngestReport, ingest
from .readers import Document, Problem, ReadOptions, read_file

__all__ = ["Document", "IngestOptions", "IngestReport", "Problem", "ReadOptions", "chunk_text",
           "ingest", "read_file"]
