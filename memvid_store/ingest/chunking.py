"""Splitting long texts into overlapping chunks of about ``size`` characters.

A chunk ends at the best boundary of its window: the last paragraph break, else line
break, in its last 60 %; else the last end of a sentence (Latin or CJK punctuation), else
space, in its last third; text with none of them (e.g. long CJK runs) is cut at
``size``. The next chunk repeats at most ``overlap`` characters of the previous one,
starting at a line, sentence or word boundary when there is one.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?;:](?=\s)|[。！？；]")
_MIN_SIZE = 20


def chunk_text(text: str, size: int, overlap: int = 0) -> list[str]:
    """Chunks of at most ``size`` characters covering ``text`` (stripped; none if empty).

    Raises:
        ValueError: ``size`` below 20, or ``overlap`` not in ``[0, size / 2]``.
    """
    check_chunking(size, overlap)
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    chunks: list[str] = []
    start = 0
    while start < len(text):
        if len(text) - start <= size:
            chunks.append(text[start:].strip())
            break
        end = _cut(text, start, start + size)
        chunks.append(text[start:end].strip())
        start = _next_start(text, start, end, overlap)
    return [c for c in chunks if c]


def check_chunking(size: int, overlap: int) -> None:
    """Raise ValueError unless ``size >= 20`` and ``0 <= overlap <= size / 2``."""
    if size < _MIN_SIZE:
        raise ValueError(f"chunk size must be at least {_MIN_SIZE} characters, got {size}")
    if not 0 <= overlap <= size // 2:
        raise ValueError(f"chunk overlap must be between 0 and half the chunk size "
                         f"({size // 2}), got {overlap}")


def _cut(text: str, start: int, limit: int) -> int:
    """The end of a chunk starting at ``start`` and ending at ``limit`` at the latest."""
    span = limit - start
    lines = text[start + span * 2 // 5:limit]
    for marker in ("\n\n", "\n"):
        at = lines.rfind(marker)
        if at >= 0:
            return limit - len(lines) + at + len(marker)
    lo = start + span * 2 // 3
    window = text[lo:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if ends:
        return lo + ends[-1]
    at = window.rfind(" ")
    return lo + at + 1 if at >= 0 else limit


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    """Where the chunk after ``text[start:end]`` begins: within the last ``overlap``
    characters, at the first line start, else sentence start, else word start; always
    after ``start``."""
    if overlap == 0:
        return end
    begin = max(end - overlap, start + 1)
    if text[begin - 1] in " \n":
        return begin
    tail = text[begin:end]
    line = tail.find("\n")
    if line >= 0 and begin + line + 1 < end:
        return begin + line + 1
    sentence = _SENTENCE_END.search(tail)
    if sentence is not None and begin + sentence.end() < end:
        return begin + sentence.end()
    space = tail.find(" ")
    return begin + space + 1 if space >= 0 else begin
