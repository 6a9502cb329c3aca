"""Visible text of an HTML page (standard library parser): no scripts, styles or markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_HIDDEN = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe",
                     "object"})
_BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article",
                    "header", "footer", "nav", "aside", "main", "h1", "h2", "h3", "h4", "h5",
                    "h6", "pre", "blockquote", "hr", "dd", "dt", "dl", "figure", "figcaption",
                    "form", "address", "summary", "details"})
_LINE = frozenset({"br", "li", "tr", "dt", "dd"})  # one line break, not a paragraph
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed",
                   "source", "track", "wbr"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n+")


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self._hidden = 0
        self._in_title = False
        self._pending = 0  # line breaks owed before the next text: 1 line, 2 paragraph

    def _break(self, tag: str) -> None:
        if tag in _BLOCK:
            self._pending = max(self._pending, 1 if tag in _LINE else 2)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _HIDDEN and tag not in _VOID:
            self._hidden += 1
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _HIDDEN and self._hidden:
            self._hidden -= 1
        self._break(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._hidden and data.strip():
            if self._pending and self.parts:
                self.parts.append("\n" * self._pending)
            self._pending = 0
            self.parts.append(data)
        elif not self._hidden and self.parts and not self._pending:
            self.parts.append(data)  # spaces between inline elements


def html_to_text(markup: str) -> tuple[str, str | None]:
    """``(visible text, title)``; paragraphs are separated by blank lines."""
    parser = _VisibleText()
    parser.feed(markup)
    parser.close()
    text = _SPACES.sub(" ", "".join(parser.parts))
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANKS.sub("\n\n", text).strip()
    title = " ".join("".join(parser.title_parts).split()) or None
    return text, title
