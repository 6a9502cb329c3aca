"""Page checks of run parts: a CRC-32 per 4 KiB of every part, so a lookup checks the
pages it reads instead of the whole column.

A run's ``pchk`` part lists the checks of every other part, page after page; the run
header's ``pages`` maps each part to the index of its first check. Reading one row of a
million-row run then checks 4 KiB of each column it touches, not megabytes: the first
answer of a fresh process reads what it needs, on disk or in object storage.

A part read at :data:`WHOLE_AFTER_PAGES` pages, or at a quarter of its pages when that is
more, is checked whole and kept (the CRC of the part in the header): a long-lived process
soon reads its hot columns without a per-page test, while one read of a slice of a large
part (a term's postings) checks the slice's pages, not the part. Runs written before page
checks check each part whole on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .format import crc32

PAGE_BYTES = 4096
WHOLE_AFTER_PAGES = 64


def page_checks(data: Any) -> list[int]:
    """The CRC-32 of every ``PAGE_BYTES`` of ``data`` (the last page may be shorter)."""
    view = memoryview(data).cast("B")
    return [crc32(view[at : at + PAGE_BYTES]) for at in range(0, len(view), PAGE_BYTES)]


def whole_after(pages: int) -> int:
    """Of a part of ``pages`` pages, the pages checked one by one after which it is
    checked whole."""
    return max(WHOLE_AFTER_PAGES, pages // 4)


@dataclass(slots=True)
class PagedPart:
    """A part read without checking it whole: its typed items, its bytes, where its
    checks start in ``pchk``, and which pages matched."""

    items: memoryview
    raw: memoryview
    first: int
    checked: bytearray
    count: int = 0

    @classmethod
    def of(cls, items: memoryview, raw: memoryview, first: int) -> PagedPart:
        return cls(items, raw, first, bytearray(-(-len(raw) // PAGE_BYTES)))

    @property
    def whole_after(self) -> int:
        """Pages checked one by one after which the part is checked whole."""
        return whole_after(len(self.checked))

    def item_checked(self, i: int) -> bool:
        """Whether item ``i`` lies in a page that matched its check."""
        return 0 <= i < len(self.items) and bool(
            self.checked[i * self.items.itemsize // PAGE_BYTES])

    def unchecked_pages(self, lo: int, hi: int) -> range:
        """The pages holding items ``[lo, hi)`` (clamped to the part)."""
        size = self.items.itemsize
        hi = min(hi, len(self.items))
        if hi <= lo:
            return range(0)
        return range(lo * size // PAGE_BYTES, ((hi * size) - 1) // PAGE_BYTES + 1)

    def page_matches(self, page: int, checks: memoryview) -> bool:
        """Whether unchecked ``page`` matches its check in ``checks`` (``pchk``); marks
        it."""
        data = self.raw[page * PAGE_BYTES : (page + 1) * PAGE_BYTES]
        if crc32(data) != checks[self.first + page]:
            return False
        self.checked[page] = 1
        self.count += 1
        return True
