"""The one text analyzer of the BM25 index, and tantivy, imported on first use.

Text goes through one analyzer everywhere (:func:`tokenize`): NFKC, then words of letters,
digits and marks, with every Han, kana and hangul character as a token of its own, then
lowercase. Analyzers are built once per thread (tantivy's are not shareable).

This module must not import numpy; tantivy is imported on first use.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

from ...errors import MissingDependencyError

TOKENIZER = "mv_text"

# Han / kana / hangul characters (script extensions, so the prolonged sound mark and the
# iteration marks count) are single-character tokens; other letters, digits and marks form
# words. Rust regex syntax: ``&&`` intersects and ``--`` subtracts character classes.
_CJK_CLASS = (r"[[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Hangul}]"
              r"&&[\p{L}\p{N}\p{M}]]")
TOKEN_PATTERN = _CJK_CLASS + r"|[[\p{L}\p{N}\p{M}]--" + _CJK_CLASS + "]+"
_ASCII_WORD = re.compile(r"[a-z0-9]+")  # TOKEN_PATTERN on lowercased ASCII text


def load_tantivy() -> Any:
    try:
        import tantivy
    except ImportError as exc:
        raise MissingDependencyError(
            "tantivy is required for lexical search: pip install tantivy") from exc
    return tantivy


class _Analyzers(threading.local):
    main: Any = None
    cjk: Any = None


_analyzers = _Analyzers()


def build_analyzer(pattern: str, lowercase: bool = True) -> Any:
    tv = load_tantivy()
    builder = tv.TextAnalyzerBuilder(tv.Tokenizer.regex(pattern))
    if lowercase:
        builder = builder.filter(tv.Filter.lowercase())
    return builder.build()


def analyzer() -> Any:
    """This thread's instance of the index analyzer (registered as :data:`TOKENIZER`)."""
    if _analyzers.main is None:
        _analyzers.main = build_analyzer(TOKEN_PATTERN)
    return _analyzers.main


def cjk_analyzer() -> Any:
    if _analyzers.cjk is None:
        _analyzers.cjk = build_analyzer(_CJK_CLASS, lowercase=False)
    return _analyzers.cjk


def normalize(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def tokenize(text: str) -> list[str]:
    """The tokens the index makes of ``text`` (positions = list index).

    ASCII text takes a shortcut with the same result: its letters and digits are
    ``[A-Za-z0-9]``, no character of it is CJK, and lowercasing it is ASCII's.
    """
    if not text:
        return []
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    return analyzer().analyze(normalize(text))

