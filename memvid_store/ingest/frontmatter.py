"""Simple YAML-style front matter at the top of Markdown files.

Understood: ``key: value`` lines between ``---`` fences; values are strings (quotes
optional), numbers, ``true``/``false``/``null``, inline lists ``[a, b]``, and block lists
(``key:`` followed by ``- item`` lines). Nested mappings and multi-line strings are not:
such a line is reported as a problem instead of being guessed.
"""

from __future__ import annotations

import re
from typing import Any

_FENCE = "---"
_KEY = re.compile(r"^([A-Za-z_][\w.-]*)\s*:\s*(.*)$")


class FrontMatterError(ValueError):
    """A front-matter line that is not ``key: value``; ``line`` is 1-based in the file."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message, line)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message


def split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """``(fields, body, body_line)``: the parsed front matter, the text after it and the
    1-based line where the body starts. Text without front matter is returned unchanged."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != _FENCE:
        return {}, text, 1
    for end in range(1, len(lines)):
        if lines[end].strip() in (_FENCE, "..."):
            fields = parse_fields(lines[1:end], first_line=2)
            return fields, "\n".join(lines[end + 1:]), end + 2
    return {}, text, 1  # no closing fence: not front matter


def parse_fields(lines: list[str], first_line: int = 1) -> dict[str, Any]:
    """Parse ``key: value`` lines (see the module docstring)."""
    fields: dict[str, Any] = {}
    open_list: str | None = None
    for number, raw in enumerate(lines, start=first_line):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if open_list is not None and stripped.startswith("- "):
            fields[open_list].append(parse_scalar(stripped[2:].strip()))
            continue
        if line[:1].isspace():
            raise FrontMatterError(f"line {number}: nested front matter is not supported: "
                                   f"{stripped!r}", number)
        match = _KEY.match(stripped)
        if match is None:
            raise FrontMatterError(f"line {number}: expected 'key: value', got {stripped!r}",
                                   number)
        key, value = match[1], match[2].strip()
        if value:
            fields[key] = parse_value(value)
            open_list = None
        else:
            fields[key] = []
            open_list = key
    return {k: (None if v == [] else v) for k, v in fields.items()}


def parse_value(value: str) -> Any:
    """An inline list ``[a, "b, c", 3]`` or a scalar."""
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1].strip()
        return [parse_scalar(item) for item in _split_list(inner)] if inner else []
    return parse_scalar(value)


def parse_scalar(value: str) -> Any:
    value = _strip_comment(value)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    lowered = value.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if lowered in ("null", "~", ""):
        return None
    for convert in (int, float):
        try:
            number = convert(value)
        except ValueError:
            continue
        if convert is float and number != number:  # "nan" is not a number here
            break
        return number
    return value


def _strip_comment(value: str) -> str:
    if value[:1] in "\"'":
        return value.strip()
    cut = value.find(" #")
    return (value if cut < 0 else value[:cut]).strip()


def _split_list(inner: str) -> list[str]:
    """Split on commas outside quotes."""
    items, current, quote = [], [], ""
    for ch in inner:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current.append(ch)
        elif ch == ",":
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return [item for item in items if item]
