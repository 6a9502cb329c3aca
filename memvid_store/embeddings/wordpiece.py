"""WordPieceTokenizer: BERT's tokenizer (basic normalisation + WordPiece) in pure Python.

Reads a ``tokenizer.json`` that describes a BERT WordPiece tokenizer (``BertNormalizer``,
``BertPreTokenizer``, ``WordPiece``, ``[CLS] $A [SEP]``) or a plain ``vocab.txt``, and gives
the ids the ``tokenizers`` package gives for the same file (the test suite compares the two on
a broad corpus when ``tokenizers`` is installed):

1. the special tokens (``[CLS]``, ``[SEP]``, ``[UNK]``, ...) are found in the raw text and kept
   whole; the text between them goes through the steps below;
2. clean: control, format and private-use characters and U+FFFD are dropped, white space
   becomes ``" "``; CJK ideographs get a space either side (character classes as in
   ``tokenizers``, from Unicode 8.0: ``_bert_chars``);
3. accents stripped (NFD, then non-spacing marks dropped) and lower-cased, one character at
   a time (so a final capital sigma becomes ``σ``, not ``ς``);
4. split at white space, every punctuation character a word of its own;
5. WordPiece: each word becomes the longest vocabulary entries that spell it, pieces after
   the first prefixed ``##``; a word that cannot be spelled, or longer than 100 characters,
   becomes ``[UNK]``;
6. ``[CLS]`` + ids + ``[SEP]``, the ids cut so that the whole is at most ``max_length``.
"""

from __future__ import annotations

import bisect
import functools
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ..errors import InvalidInputError

_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
# ASCII text after cleaning: runs of letters/digits, or one punctuation character.
_ASCII_WORDS = re.compile(r"[^ " + re.escape(_ASCII_PUNCTUATION) + r"]+|[^ ]")
# ASCII cleaning: controls dropped, tab/newline/CR become a space.
_ASCII_CLEAN = {**{c: None for c in range(32)}, 127: None, **{ord(c): " " for c in "\t\n\r"}}
_MAX_WORD_CHARS = 100
_CACHE_LIMIT = 1 << 16


@functools.cache
def _char_runs() -> tuple[list[int], str]:
    """The first code point of every run of ``_bert_chars.RUNS``, and each run's class."""
    from ._bert_chars import RUNS

    items = "".join(RUNS).split()
    return [int(item[1:], 16) for item in items], "".join(item[0] for item in items)


def char_class(char: str) -> str:
    """``L`` ordinary, ``S`` white space, ``D`` dropped, ``M`` non-spacing mark, ``P``
    punctuation (see ``_bert_chars``)."""
    starts, classes = _char_runs()
    return classes[bisect.bisect_right(starts, ord(char)) - 1]


def _clean_char(char: str) -> str:
    """Step 2 for one character: dropped, a space, padded with spaces, or itself."""
    kind = char_class(char)
    if kind == "D":
        return ""
    if kind == "S":
        return " "
    point = ord(char)
    if any(low <= point <= high for low, high in _CJK_RANGES):
        return f" {char} "
    return char


class UnsupportedTokenizerError(InvalidInputError):
    """The tokenizer file describes something other than a BERT WordPiece tokenizer."""

    code = "unsupported_tokenizer"


class WordPieceTokenizer:
    """BERT WordPiece tokenizer over ``vocab`` (token -> id).

    Args:
        vocab: every token and its id; must hold the special tokens.
        lowercase: lower-case the text (uncased models).
        strip_accents: drop accents; ``None`` follows ``lowercase``.
        special_tokens: tokens kept whole when they appear in the text.
        unk, cls, sep: the unknown, start and end tokens.
    """

    def __init__(self, vocab: dict[str, int], *, lowercase: bool = True,
                 strip_accents: bool | None = None,
                 special_tokens: Iterable[str] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"),
                 unk: str = "[UNK]", cls: str = "[CLS]", sep: str = "[SEP]") -> None:
        specials = sorted(set(special_tokens) | {unk, cls, sep}, key=len, reverse=True)
        missing = [t for t in specials if t not in vocab]
        if missing:
            raise UnsupportedTokenizerError(f"the vocabulary lacks the tokens {missing}")
        self.vocab = vocab
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self._specials = {t: vocab[t] for t in specials}
        self._special_re = re.compile("|".join(map(re.escape, specials)))
        self._unk, self._cls, self._sep = vocab[unk], vocab[cls], vocab[sep]
        self._chars: dict[str, str] = {}  # step 2, per non-ASCII character
        self._marks: dict[str, str] = {}  # step 3's mark filter, per non-ASCII character
        self._words: dict[str, tuple[int, ...]] = {}  # step 5, per word

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WordPieceTokenizer:
        """From a ``tokenizer.json`` (BERT WordPiece) or a ``vocab.txt`` (one token a line).

        Raises:
            UnsupportedTokenizerError: the file describes another kind of tokenizer.
        """
        path = Path(path)
        if path.suffix != ".json":
            lines = path.read_text(encoding="utf-8").split("\n")  # not at U+2028 etc.
            if lines and not lines[-1]:
                lines.pop()
            return cls({token.removesuffix("\r"): i for i, token in enumerate(lines)})
        spec = json.loads(path.read_text(encoding="utf-8"))
        return cls.from_spec(spec, str(path))

    @classmethod
    def from_spec(cls, spec: dict, source: str = "tokenizer.json") -> WordPieceTokenizer:
        """From a parsed ``tokenizer.json``; refuses anything this class would not reproduce."""
        model = spec.get("model") or {}
        norm = spec.get("normalizer") or {}
        post = spec.get("post_processor") or {}
        single = [next(iter(item.values())).get("id") for item in post.get("single", [])]
        problems = [
            label for label, ok in (
                ("model is not WordPiece", model.get("type") == "WordPiece"
                 and model.get("continuing_subword_prefix", "##") == "##"
                 and model.get("max_input_chars_per_word", _MAX_WORD_CHARS) == _MAX_WORD_CHARS),
                ("normalizer is not BertNormalizer with clean_text and handle_chinese_chars",
                 norm.get("type") == "BertNormalizer" and norm.get("clean_text") is True
                 and norm.get("handle_chinese_chars") is True),
                ("pre-tokenizer is not BertPreTokenizer",
                 (spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"),
                ("post-processor is not [CLS] $A [SEP]",
                 (post.get("type") == "BertProcessing" and post.get("cls", [""])[0] == "[CLS]"
                  and post.get("sep", [""])[0] == "[SEP]")
                 or (post.get("type") == "TemplateProcessing"
                     and single == ["[CLS]", "A", "[SEP]"])),
                ("added tokens are not all special, whole and unnormalised",
                 all(t.get("special") and not t.get("normalized") and not t.get("lstrip")
                     and not t.get("rstrip") and not t.get("single_word")
                     for t in spec.get("added_tokens", []))),
            ) if not ok]
        if problems:
            raise UnsupportedTokenizerError(f"{source} is not a BERT WordPiece tokenizer this "
                                            f"module reproduces: {'; '.join(problems)}")
        vocab = model.get("vocab")
        if not isinstance(vocab, dict):
            raise UnsupportedTokenizerError(f"{source} has no WordPiece vocabulary")
        return cls(vocab, lowercase=bool(norm.get("lowercase")),
                   strip_accents=norm.get("strip_accents"),
                   special_tokens=[t["content"] for t in spec.get("added_tokens", [])],
                   unk=model.get("unk_token", "[UNK]"))

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """The ids of ``text``: ``[CLS]``, its tokens, ``[SEP]``; at most ``max_length`` ids
        (at least 2), the text's tokens cut at the end."""
        ids: list[int] = []
        start = 0
        for match in self._special_re.finditer(text):
            self._encode_plain(text[start:match.start()], ids)
            ids.append(self._specials[match.group()])
            start = match.end()
        self._encode_plain(text[start:], ids)
        if max_length is not None:
            if max_length < 2:
                raise InvalidInputError(f"max_length must be at least 2 ([CLS] and [SEP]), "
                                        f"got {max_length}")
            del ids[max_length - 2:]
        return [self._cls, *ids, self._sep]

    def encode_batch(self, texts: Iterable[str], max_length: int | None = None
                     ) -> list[list[int]]:
        """``encode`` of each text."""
        return [self.encode(text, max_length) for text in texts]

    def normalise(self, text: str) -> str:
        """Steps 2 and 3: the cleaned, accent-stripped, lower-cased text."""
        if text.isascii():
            text = text.translate(_ASCII_CLEAN)
            return text.lower() if self.lowercase else text
        chars = self._chars
        if len(chars) > _CACHE_LIMIT:
            chars.clear()
        for char in set(text):
            if char not in chars:
                chars[char] = _clean_char(char)
        text = "".join([chars[c] for c in text])
        if self.strip_accents and not text.isascii():
            text = unicodedata.normalize("NFD", text)
            marks = self._marks
            if len(marks) > _CACHE_LIMIT:
                marks.clear()
            for char in set(text):
                if char not in marks:
                    marks[char] = "" if char_class(char) == "M" else char
            text = "".join([marks[c] for c in text])
        if self.lowercase:  # per character: no final-sigma rule
            text = text.replace("\u03a3", "\u03c3").lower()
        return text

    def words(self, text: str) -> list[str]:
        """Steps 2 to 4: the words of ``text`` (no special tokens)."""
        out: list[str] = []
        for chunk in self.normalise(text).split(" "):
            if not chunk:
                continue
            if chunk.isascii():
                out.extend(_ASCII_WORDS.findall(chunk))
                continue
            word_start = 0
            for i, char in enumerate(chunk):
                if char_class(char) == "P":
                    if word_start < i:
                        out.append(chunk[word_start:i])
                    out.append(char)
                    word_start = i + 1
            if word_start < len(chunk):
                out.append(chunk[word_start:])
        return out

    def _encode_plain(self, text: str, ids: list[int]) -> None:
        if not text:
            return
        cache = self._words
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        for word in self.words(text):
            pieces = cache.get(word)
            if pieces is None:
                pieces = cache[word] = self._wordpiece(word)
            ids.extend(pieces)

    def _wordpiece(self, word: str) -> tuple[int, ...]:
        """Step 5: greedy longest-match-first pieces of one word."""
        if len(word) > _MAX_WORD_CHARS:
            return (self._unk,)
        vocab = self.vocab
        pieces: list[int] = []
        start = 0
        while start < len(word):
            prefix = "##" if start else ""
            for end in range(len(word), start, -1):
                piece = vocab.get(prefix + word[start:end])
                if piece is not None:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return (self._unk,)
        return tuple(pieces)
