"""The pure-Python BERT WordPiece tokenizer: its rules on a small vocabulary, and the same ids
as the ``tokenizers`` package for the MiniLM tokenizer file (when both are installed)."""

from __future__ import annotations

import json
import random

import pytest

from memvid_store import InvalidInputError
from memvid_store.embeddings import _bert_chars
from memvid_store.embeddings.minilm import _TOKENIZER, package_file
from memvid_store.embeddings.wordpiece import UnsupportedTokenizerError, WordPieceTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["un", "##aff", "##able", "the", "cafe", "σ", "##σ", "ο", "##δ", ",", "!", "中", "文",
         "a", "##b", "i", "##stanbul", "hello", "world", "##ο"]


@pytest.fixture(scope="module")
def small() -> WordPieceTokenizer:
    return WordPieceTokenizer({t: i for i, t in enumerate(SPECIALS + WORDS)})


def tokens(tok: WordPieceTokenizer, text: str, max_length: int | None = None) -> list[str]:
    names = {i: t for t, i in tok.vocab.items()}
    return [names[i] for i in tok.encode(text, max_length)]


def test_wordpiece_rules(small):
    assert tokens(small, "unaffable, THE Café!") == [
        "[CLS]", "un", "##aff", "##able", ",", "the", "cafe", "!", "[SEP]"]
    assert tokens(small, "") == ["[CLS]", "[SEP]"]
    assert tokens(small, "unaffablex zz") == ["[CLS]", "[UNK]", "[UNK]", "[SEP]"]  # all or none
    assert tokens(small, "a" + "b" * 99) == ["[CLS]", "a", *["##b"] * 99, "[SEP]"]
    assert tokens(small, "a" + "b" * 100) == ["[CLS]", "[UNK]", "[SEP]"]  # over 100 characters
    assert tokens(small, "中文") == ["[CLS]", "中", "文", "[SEP]"]  # CJK: one word each
    assert tokens(small, "ΟΔΟΣ Σ") == ["[CLS]", "ο", "##δ", "##ο", "##σ", "σ", "[SEP]"]
    assert tokens(small, "İstanbul") == ["[CLS]", "i", "##stanbul", "[SEP]"]  # accents stripped
    # format and control characters vanish (joining the words), others are white space
    assert tokens(small, "hello\u200b\x00\x0bworld") == ["[CLS]", "[UNK]", "[SEP]"]
    assert tokens(small, "hello\u00a0world\ta") == ["[CLS]", "hello", "world", "a", "[SEP]"]


def test_special_tokens_in_the_text_are_kept_whole(small):
    assert tokens(small, "hello[SEP]world [MASK]") == [
        "[CLS]", "hello", "[SEP]", "world", "[MASK]", "[SEP]"]
    assert tokens(small, "[sep]") == ["[CLS]", "[UNK]", "[UNK]", "[UNK]", "[SEP]"]  # exact case


def test_truncation_counts_cls_and_sep(small):
    assert tokens(small, "the the the the", 4) == ["[CLS]", "the", "the", "[SEP]"]
    assert tokens(small, "the the", 2) == ["[CLS]", "[SEP]"]
    assert small.encode_batch(["the", "the the"], 3) == [[2, 8, 3], [2, 8, 3]]
    with pytest.raises(InvalidInputError, match="at least 2"):
        small.encode("the", 1)


def test_files(tmp_path, small):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + WORDS) + "\n", encoding="utf-8")
    assert WordPieceTokenizer.from_file(vocab).encode("unaffable") == small.encode("unaffable")
    spec = {"model": {"type": "BPE", "vocab": {}}, "normalizer": None}
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(UnsupportedTokenizerError, match="not WordPiece"):
        WordPieceTokenizer.from_file(bad)
    with pytest.raises(UnsupportedTokenizerError, match="lacks"):
        WordPieceTokenizer({"[UNK]": 0})


# --- the same ids as the tokenizers package ---------------------------------------------------

def _reference():
    path = package_file(*_TOKENIZER)
    tokenizers = pytest.importorskip("tokenizers")
    if path is None:
        pytest.skip("the MiniLM tokenizer file is not installed (embed extra)")
    ref = tokenizers.Tokenizer.from_file(str(path))
    ref.no_padding()
    return ref, WordPieceTokenizer.from_file(path)


def _ref_ids(ref, texts: list[str], max_length: int) -> list[list[int]]:
    ref.enable_truncation(max_length)
    return [enc.ids for enc in ref.encode_batch(texts, add_special_tokens=True)]


def corpus(n: int = 700, seed: int = 3) -> list[str]:
    """Texts that exercise every step: accents, cases, punctuation, CJK and other scripts,
    emoji, controls and odd white space, special tokens, long words and long texts."""
    rnd = random.Random(seed)
    fixed = [
        "A man is eating food.", "Café crème, naïve résumé — déjà vu!", "ΟΔΟΣ ΣΟΦΟΚΛΕΟΥΣ Σ.",
        "İstanbul'da güzel bir gün", "Привет, как дела? Всё хорошо.",
        "上海办公室每周收到九百张工单", "東京タワー ソウル 서울은 크다", "I love it 🧠🥰😀 x",
        "hello [SEP] world[CLS]x [unk] [MASK]", "[CLS][SEP][PAD][UNK][MASK]",
        "tab\there\nline\r\n\x0bvt\x0cff\x85nel\u00a0nbsp\u3000ideo",
        "zero\u200bwidth\ufeffbom\u2028", "mail: someone@example.com https://x.y/z?q=1&r=2#f",
        "C++ & C# ≠; 3.14159 ≈ π ½ ²", "ﬁancé Ⅻ ß ǅ ﬀ Å Ω K", "x" * 150, "",
        "عربى: مرحبا بالعالم!", "हिन्दी पाठ", "ไทย ภาษา", "a\u0301e\u0300i\u0302o\u0308u\u0327",
        "\x00\ufffd\x7f\x1c\x1f", "\u061d\u166d\u1734\u2e55", "𠀀𪜀𫝀𫠠𬺰丽 CJK extension B-F",
        "  leading and trailing  ",
    ]
    pool = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()[]{}"
                 "-_/\\@#$%^&*+=<>|~`") + list("éèêëàâäôöûüçñßøåæœÉÀÇÑİıΣσς")
            + list("中文字符日本語한국어") + list("—–…«»“”‘’•°€£¥§¶†‡")
            + ["🧠", "\u0301", "\u200d", "\t"])
    words = " ".join(fixed).split()
    out = list(fixed)
    while len(out) < n:
        kind = rnd.random()
        if kind < 0.4:
            out.append(" ".join(rnd.choice(words) for _ in range(rnd.randint(1, 40))))
        elif kind < 0.75:
            out.append("".join(rnd.choice(pool) for _ in range(rnd.randint(0, 200))))
        elif kind < 0.85:  # longer than any max_length below
            out.append(" ".join(rnd.choice(words) for _ in range(rnd.randint(300, 700))))
        else:  # any code point of the first three planes (no surrogates)
            points = (rnd.randint(0x20, 0x2FFFF) for _ in range(rnd.randint(1, 80)))
            out.append("".join(chr(p) for p in points if not 0xD800 <= p <= 0xDFFF))
    return out


def test_same_ids_as_tokenizers_on_a_broad_corpus():
    ref, mine = _reference()
    texts = corpus()
    for max_length in (256, 512, 16, 3, 2):
        expected = _ref_ids(ref, texts, max_length)
        got = mine.encode_batch(texts, max_length)
        diff = [t for t, a, b in zip(texts, expected, got, strict=True) if a != b]
        assert not diff, (max_length, diff[:3])


def test_same_ids_as_tokenizers_across_unicode():
    """Both sides of every boundary of the character table, and every 13th code point (all
    code points agree too; checking them takes a minute)."""
    ref, mine = _reference()
    starts = [int(item[1:], 16) for item in "".join(_bert_chars.RUNS).split()]
    edges = {p + d for p in starts for d in (-1, 0, 1)}
    points = sorted(p for p in edges | set(range(0, 0x110000, 13))
                    if 0 <= p < 0x110000 and not 0xD800 <= p <= 0xDFFF)
    # each character alone, inside a word, doubled, and after a letter it may combine with
    texts = ["".join(f" {c} x{c}y {c}{c} e{c} " for c in map(chr, points[i:i + 4000]))
             for i in range(0, len(points), 4000)]
    expected = _ref_ids(ref, texts, 1 << 20)
    got = mine.encode_batch(texts)
    assert [i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b] == []
