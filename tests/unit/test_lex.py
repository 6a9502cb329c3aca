"""BM25 lexical index: tokenizer, plain and query syntax, incremental builds, cache, delta."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store.errors import CorruptFileError, MemvidError, VersionMismatchError
from memvid_store.index.lexical.analyzer import TOKENIZER, analyzer, tokenize
from memvid_store.index.lexical.builder import LexBuilder
from memvid_store.index.lexical.delta import DeltaBM25
from memvid_store.index.lexical.manifest import LexManifest
from memvid_store.index.lexical.query import parse_plain, with_ties
from memvid_store.index.lexical.reader import LexSearcher
from memvid_store.index.lexical.schema import LexDoc
from memvid_store.index.lexical.unpack import prune_cache

NASTY = [
    "or", "not", "AND", "OR NOT AND", "a AND", "AND OR NOT", '"', '""', '"unbalanced',
    'two "quotes" and "one', "title:foo", "text:", ":", "::", "a:b:c", "(", ")", "(a OR b",
    "[", "]", "[1 TO 5]", "{a TO b}", "^", "a^2 b~", "~", "*", "a*", "?", "-", "-minus +plus",
    "+", "\\", "\\\\", "c:\\path\\x", "'single'", "a AND (b OR", "\x00", "\u200b", "<>", "\t\n",
    "中文\"未闭合", "机器学习 AND", "NOT 中文", "title:中文", "IN [a b]", "gid:5", "*:*",
]


FIXTURE_OK = [HealthCheck.function_scoped_fixture]


class FakeFile:
    """What the engine does with a LexBuilder: blobs appended to one file, a JSON manifest."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.raw: bytes | None = None
        self.reads = 0

    @property
    def manifest(self) -> LexManifest | None:
        return LexManifest.from_json(self.raw) if self.raw is not None else None

    def read_file(self, name: str) -> bytes:
        self.reads += 1
        off, length, _ = self.manifest.files[name]
        return bytes(self.data[off:off + length])

    def commit(self, builder: LexBuilder, docs: Sequence[LexDoc]) -> dict[str, bytes]:
        previous = self.manifest
        meta, new, names = builder.add(docs)
        files = {}
        for name in names:
            if name in new:
                data = b"".join(new[name].pieces())
                files[name] = [len(self.data), len(data), zlib.crc32(data)]
                self.data += data
            else:
                assert previous is not None and name in previous.files
                files[name] = previous.files[name]
        total = (previous.docs if previous else 0) + len(docs)
        self.raw = LexManifest(files=files, meta=meta, docs=total).to_json()
        return new

    def builder(self, workdir: str) -> LexBuilder:
        return LexBuilder(workdir, self.manifest, self.read_file)

    def searcher(self, cache_root: str, key: str = "k") -> LexSearcher:
        return LexSearcher.open(self.manifest, self.read_file, cache_root, key)


def index_of(docs: Sequence[LexDoc], tmp_path, batches: int = 1, key: str = "k") -> LexSearcher:
    fake = FakeFile()
    step = max(1, -(-len(docs) // batches))
    for i in range(0, len(docs), step):
        fake.commit(fake.builder(str(tmp_path / "work")), docs[i:i + step])
    return fake.searcher(str(tmp_path / "cache"), key)


def gids(hits: list[tuple[int, float]]) -> list[int]:
    return [g for g, _ in hits]


WORDS = ("apple banana cherry delta echo fox golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango").split()
HAN = "机器学习中文工单上海办公室数据库索引搜索时间记忆代理"


def random_docs(n: int, seed: int, long_every: int = 7) -> list[LexDoc]:
    rng = random.Random(seed)
    docs = []
    for g in range(n):
        size = rng.randint(1, 12) + (60 if g % long_every == 0 else 0)  # some past fieldnorm 40
        parts = []
        for _ in range(size):
            if rng.random() < 0.3:
                parts.append("".join(rng.choice(HAN) for _ in range(rng.randint(1, 4))))
            else:
                parts.append(rng.choice(WORDS))
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) \
            if rng.random() < 0.3 else ""
        docs.append(LexDoc(g * 3 + 1, " ".join(parts), title))
    rng.shuffle(docs)
    return docs


QUERIES = ["apple", "fox hotel", "apple apple banana", '"fox golf"', '"golf fox"', "机器",
           "机器学习", "上海 办公室", "学", "数据库索引", "mike 中文 papa", '"echo delta" lima',
           "sierra", "tango romeo quebec papa oscar november", "索引搜索时间", "不存在"]


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory):
    docs = random_docs(300, seed=11)
    s = index_of(docs, tmp_path_factory.mktemp("corpus"), batches=3)
    yield docs, s
    s.close()


# ---------------------------------------------------------------------------- tokenizer


def test_tokenize_scripts():
    assert tokenize("Hello, World! naïve café x_y o'neil 123abc") == [
        "hello", "world", "naïve", "café", "x", "y", "o", "neil", "123abc"]
    assert tokenize("使用Python编程") == ["使", "用", "python", "编", "程"]
    assert tokenize("コーヒーを飲みます") == ["コ", "ー", "ヒ", "ー", "を", "飲", "み", "ま", "す"]
    assert tokenize("한국어 텍스트") == ["한", "국", "어", "텍", "스", "트"]
    assert tokenize("ＡＢＣ１２３ ｶﾀｶﾅ") == ["abc123", "カ", "タ", "カ", "ナ"]  # NFKC
    assert tokenize("、。！？ -- ") == []
    assert tokenize("") == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_shortcut_tokenizes_as_the_analyzer(text):
    assert tokenize(text) == (analyzer().analyze(text) if text else [])


def test_tokenize_matches_the_index(tmp_path):
    texts = ["The Quick brown FOX, the end.", "上海办公室每周收到九百张中文工单",
             "混合文本 mixed ZX-4410", "ＦＵＬＬ width ｶﾀｶﾅ", "word " * 50 + "tail",
             "Ǆemal İstanbul ΣΊΣΥΦΟΣ"]
    docs = [LexDoc(i, t) for i, t in enumerate(texts)]
    s = index_of(docs, tmp_path)
    total = 0
    for d in docs:
        toks = tokenize(d.text)
        total += len(toks)
        for t in set(toks):
            assert s.doc_freq(t) >= 1, t
        quoted = '"' + " ".join(toks) + '"'  # the whole token sequence as one phrase
        assert d.gid in gids(s.search(quoted, 10)), d.text
    assert s.total_tokens() == pytest.approx(total, rel=1e-6)  # same token counts as tantivy


# ---------------------------------------------------------------------- finding things


def test_english_chinese_and_mixed_are_findable(tmp_path):
    docs = [LexDoc(1, "The quarterly budget review moved to Friday"),
            LexDoc(2, "上海办公室每周收到九百张中文工单"),
            LexDoc(3, "混合文本 mixed text with ZX-4410 router"),
            LexDoc(4, "東京のコーヒーショップは朝早く開きます"),
            LexDoc(5, "서울에서 회의가 있습니다")]
    s = index_of(docs, tmp_path)
    delta = DeltaBM25(docs)
    for searcher in (s.search, delta.search):
        assert gids(searcher("budget", 10)) == [1]
        assert gids(searcher("BUDGET Review", 10)) == [1]
        assert gids(searcher("上海办公室", 10))[0] == 2
        assert gids(searcher("中文工单", 10))[0] == 2
        assert gids(searcher("zx-4410 router", 10))[0] == 3
        assert gids(searcher("混合", 10))[0] == 3
        assert gids(searcher("コーヒー", 10))[0] == 4
        assert gids(searcher("회의", 10))[0] == 5
        assert searcher("nothing matches", 10) == []


def test_quoted_phrases_match_adjacent_words_only(tmp_path):
    docs = [LexDoc(1, "red apple and green pear"), LexDoc(2, "green apple and red pear")]
    s = index_of(docs, tmp_path)
    for searcher in (s.search, DeltaBM25(docs).search):
        assert gids(searcher('"red apple"', 10)) == [1]
        assert gids(searcher('"apple red"', 10)) == []
        assert sorted(gids(searcher("red apple", 10))) == [1, 2]
        assert gids(searcher('"red apple" "red pear"', 10)) == [1, 2]
        assert gids(searcher('"  red  "', 10)) == [1, 2]  # a one-word phrase is a term


def test_cjk_runs_are_phrases(tmp_path):
    docs = [LexDoc(1, "他在学习机器人"), LexDoc(2, "机器学习很有趣"), LexDoc(3, "学 习 机 器"),
            LexDoc(4, "机器 学习")]
    s = index_of(docs, tmp_path)
    for searcher in (s.search, DeltaBM25(docs).search):
        # every doc holds the four characters; only 2 and 4 hold them adjacent in order
        ranked = gids(searcher("机器学习", 10))
        assert set(ranked) == {1, 2, 3, 4}
        assert set(ranked[:2]) == {2, 4}
        assert sorted(gids(searcher('"机器学习"', 10))) == [2, 4]
        assert gids(searcher('"习学"', 10)) == []
    pq = parse_plain("机器学习 中文 x 猫")
    assert ((0, "机"), (1, "器"), (2, "学"), (3, "习")) in pq.phrases
    assert ((0, "器"), (1, "学")) in pq.phrases  # adjacent pairs of a longer run
    assert ((0, "中"), (1, "文")) in pq.phrases
    assert {"机", "器", "学", "习", "中", "文", "x", "猫"} <= set(pq.terms)
    assert parse_plain("机器 学习").phrases == (((0, "机"), (1, "器")), ((0, "学"), (1, "习")))


@pytest.mark.parametrize("query", NASTY)
def test_plain_queries_never_raise(corpus_index, query):
    docs, s = corpus_index
    hits = s.search(query, 10)
    assert DeltaBM25(docs[:20]).search(query, 10) is not None
    if not tokenize(query.replace('"', " ")):
        assert hits == []


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.text(max_size=40) | st.text(alphabet='abc机器 "():[]^~*-+\\ANDORNOT', max_size=30))
def test_plain_queries_never_raise_property(corpus_index, query):
    docs, s = corpus_index
    hits = s.search(query, 5)
    assert hits == sorted(hits, key=lambda gs: (-gs[1], gs[0]))
    DeltaBM25(docs[:10]).search(query, 5)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.text(alphabet='abcfox机器 "():[]{}^~*-+/\\ANDORNOTtextilgd12', max_size=25))
def test_query_syntax_fails_only_with_value_error(corpus_index, query):
    docs, s = corpus_index
    for search in (s.search, DeltaBM25(docs[:10]).search):
        try:
            search(query, 5, syntax="query")
        except ValueError as exc:
            assert "syntax='plain'" in str(exc)


def test_empty_queries_and_bad_arguments(corpus_index):
    docs, s = corpus_index
    delta = DeltaBM25(docs)
    for search in (s.search, delta.search):
        assert search("", 10) == []
        assert search("   \n\t", 10) == []
        assert search("apple", 0) == []
        assert search("", 10, syntax="query") == []
        with pytest.raises(ValueError, match="syntax"):
            search("apple", 10, syntax="lucene")


def test_query_syntax(tmp_path):
    docs = [LexDoc(1, "tomato basil soup"), LexDoc(2, "tomato salad"),
            LexDoc(3, "basil pesto", "Tomato"), LexDoc(4, "机器学习")]
    s = index_of(docs, tmp_path)
    delta = DeltaBM25(docs)
    for search in (s.search, delta.search):
        assert gids(search("tomato AND basil", 10, syntax="query")) == [3, 1]  # title x2
        assert gids(search("tomato -basil", 10, syntax="query")) == [2]
        assert gids(search("tomato NOT basil", 10, syntax="query")) == [2]
        assert gids(search("title:tomato", 10, syntax="query")) == [3]
        assert gids(search('"tomato basil"', 10, syntax="query")) == [1]
        assert gids(search("机器", 10, syntax="query")) == [4]
        for bad in ("tomato AND (", "nofield:x", '"open', "[1 TO", "text:*", "gid:3", "/t.*/"):
            with pytest.raises(ValueError, match="invalid lexical query"):
                search(bad, 10, syntax="query")


def test_title_is_boosted(tmp_path):
    # both fields have the same statistics, so a title match scores exactly twice as much
    docs = [LexDoc(1, "alpha beta", "gamma delta"), LexDoc(2, "gamma delta", "alpha beta")]
    s = index_of(docs, tmp_path)
    for search in (s.search, DeltaBM25(docs).search):
        hits = search("alpha", 10)
        assert gids(hits) == [2, 1]
        assert hits[0][1] == pytest.approx(2 * hits[1][1], rel=1e-5)


def test_ties_are_ordered_by_gid_and_kept_at_the_cut(tmp_path):
    gid_list = list(range(100, 160))
    random.Random(3).shuffle(gid_list)
    docs = [LexDoc(g, "same words here") for g in gid_list] + [LexDoc(5, "other text"),
                                                                 LexDoc(6, "words words")]
    s = index_of(docs, tmp_path, batches=4)  # ties spread over segments
    delta = DeltaBM25(docs)
    for search in (s.search, delta.search):
        assert gids(search("words", 1)) == [6]
        # every version tied with the last kept goes along: callers choose among them
        assert gids(search("words", 7)) == [6, *range(100, 160)]
        assert gids(search("words", 100)) == [6, *range(100, 160)]
        assert len({sc for _, sc in search("words", 100)[1:]}) == 1


# ----------------------------------------------------------------- builds and the cache


def test_incremental_adds_round_trip_through_the_manifest(tmp_path):
    fake = FakeFile()
    work = str(tmp_path / "work")
    docs = random_docs(400, seed=5)
    seen_files: set[str] = set()
    for i in range(10):  # enough commits for tantivy to merge segments
        batch = docs[i * 40:(i + 1) * 40]
        builder = fake.builder(work)
        assert builder.rebuilt == (i == 0)  # in sync with the manifest: no rebuild
        new = fake.commit(builder, batch)
        assert new and not set(new) & seen_files  # files are immutable, stored once
        seen_files |= set(new)
        s = fake.searcher(str(tmp_path / "cache"), key=f"gen{i}")
        assert s.num_docs == 40 * (i + 1)
        s.close()
    manifest = fake.manifest
    assert len(json.loads(manifest.meta)["segments"]) < 10  # merged
    assert manifest.docs == 400
    fresh = LexSearcher.open(manifest, fake.read_file, str(tmp_path / "cache2"), "final")
    reference = index_of(docs, tmp_path / "ref")
    for q in QUERIES:
        got, want = fresh.search(q, 20), reference.search(q, 20)
        assert gids(got) == gids(want), q
        assert [sc for _, sc in got] == pytest.approx([sc for _, sc in want], rel=1e-5)


def test_builder_rebuilds_a_workdir_that_ran_ahead(tmp_path):
    fake = FakeFile()
    work = str(tmp_path / "work")
    fake.commit(fake.builder(work), [LexDoc(1, "first commit")])
    fake.builder(work).add([LexDoc(2, "lost commit")])  # the engine never stored these files
    builder = fake.builder(work)
    assert builder.rebuilt
    fake.commit(builder, [LexDoc(3, "third commit")])
    s = fake.searcher(str(tmp_path / "cache"))
    assert sorted(gids(s.search("commit", 10))) == [1, 3]
    assert s.num_docs == 2
    # a workdir cleaned away under a builder: in_sync() says so, add() refuses, and a new
    # builder made from the manifest rebuilds it
    assert builder.in_sync()
    for name in os.listdir(work):
        os.unlink(os.path.join(work, name))
    assert not builder.in_sync()
    with pytest.raises(MemvidError, match="new LexBuilder"):
        builder.add([LexDoc(9, "x")])
    builder = fake.builder(work)
    assert builder.rebuilt and builder.in_sync()
    assert builder.add([]) == (fake.manifest.meta, {}, sorted(fake.manifest.files))


def test_cache_is_reused(tmp_path):
    fake = FakeFile()
    fake.commit(fake.builder(str(tmp_path / "work")), [LexDoc(1, "cached words")])
    cache = str(tmp_path / "cache")
    first = fake.searcher(cache)
    reads = fake.reads
    assert first.unpacked and reads == len(fake.manifest.files)
    second = fake.searcher(cache)
    assert not second.unpacked and fake.reads == reads  # nothing read, nothing written
    assert gids(second.search("cached", 5)) == [1]
    assert sorted(os.listdir(cache)) == ["k"]  # no temp dirs left behind
    assert set(first.timings) == {"unpack_s", "open_s"}
    # an incomplete copy (no marker) is replaced
    os.unlink(os.path.join(cache, "k", ".memvid-lex.json"))
    third = fake.searcher(cache)
    assert third.unpacked and gids(third.search("cached", 5)) == [1]


def test_prune_cache_keeps_workdirs_and_the_current_copy(tmp_path):
    fake = FakeFile()
    cache = str(tmp_path / "cache")
    work = os.path.join(cache, "u1-writer")
    builder = fake.builder(work)
    opened = []
    for i in range(3):
        fake.commit(builder, [LexDoc(i, f"doc {i}")])
        opened.append(fake.searcher(cache, key=f"u1-{i}"))
    os.makedirs(os.path.join(cache, ".u1-9.abc.tmp"))  # abandoned by a killed process
    fake.searcher(cache, key="u2-0")  # another file's copy
    assert prune_cache(cache, "u1-", keep="u1-2") == []  # all too fresh
    removed = prune_cache(cache, "u1-", keep="u1-2", min_age_s=0)
    assert sorted(removed) == [".u1-9.abc.tmp", "u1-0", "u1-1"]
    assert sorted(os.listdir(cache)) == ["u1-2", "u1-writer", "u2-0"]
    assert builder.in_sync()
    assert gids(opened[0].search("doc", 10)) == [0]  # an open searcher keeps working
    assert sorted(gids(fake.searcher(cache, key="u1-2").search("doc", 10))) == [0, 1, 2]


def test_concurrent_unpack_threads(tmp_path):
    fake = FakeFile()
    fake.commit(fake.builder(str(tmp_path / "work")), random_docs(200, seed=2))
    cache = str(tmp_path / "cache")
    manifest = fake.manifest
    barrier = threading.Barrier(6)
    results: list[object] = []

    def worker() -> None:
        barrier.wait()
        try:
            s = LexSearcher.open(manifest, fake.read_file, cache, "race")
            results.append(gids(s.search("apple fox", 10)))
        except BaseException as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6 and all(r == results[0] for r in results), results
    assert sorted(os.listdir(cache)) == ["race"]


RACER = textwrap.dedent("""
    import json, sys
    from memvid_store.index.lexical.manifest import LexManifest
    from memvid_store.index.lexical.reader import LexSearcher
    manifest = LexManifest.from_json(open(sys.argv[1], "rb").read())
    data = open(sys.argv[2], "rb").read()
    def read_file(name):
        off, length, _ = manifest.files[name]
        return memoryview(data)[off:off + length]
    s = LexSearcher.open(manifest, read_file, sys.argv[3], "race")
    print(json.dumps({"hits": s.search("apple fox", 10), "numpy": "numpy" in sys.modules}))
""")


def test_concurrent_unpack_processes(tmp_path):
    fake = FakeFile()
    fake.commit(fake.builder(str(tmp_path / "work")), random_docs(200, seed=4))
    (tmp_path / "m.json").write_bytes(fake.raw)
    (tmp_path / "blobs").write_bytes(bytes(fake.data))
    cache = str(tmp_path / "cache")
    args = [sys.executable, "-c", RACER, str(tmp_path / "m.json"), str(tmp_path / "blobs"), cache]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    assert all(o == outs[0] for o in outs) and outs[0]["hits"]
    assert not outs[0]["numpy"]  # lexical search does not import numpy
    assert sorted(os.listdir(cache)) == ["race"]


def test_damaged_blobs_and_manifests_are_reported(tmp_path):
    fake = FakeFile()
    fake.commit(fake.builder(str(tmp_path / "work")), [LexDoc(1, "some text")])
    name, (off, _, _) = next(iter(fake.manifest.files.items()))
    fake.data[off] ^= 0xFF
    with pytest.raises(CorruptFileError, match=name):
        fake.searcher(str(tmp_path / "cache"))
    with pytest.raises(CorruptFileError):
        LexBuilder(str(tmp_path / "work2"), fake.manifest, fake.read_file)
    with pytest.raises(CorruptFileError):
        LexManifest.from_json(b"{not json")
    with pytest.raises(CorruptFileError):
        LexManifest.from_json(b'{"version": 1, "files": {"a": [1]}, "meta": "", "docs": 0}')
    with pytest.raises(VersionMismatchError):
        LexManifest.from_json(b'{"version": 99, "files": {}, "meta": "", "docs": 0}')
    with pytest.raises(ValueError, match="cache key"):
        LexSearcher.open(fake.manifest, fake.read_file, str(tmp_path / "c"), "../escape")
    builder = LexBuilder(str(tmp_path / "w3"), None, fake.read_file)
    with pytest.raises(ValueError, match="gid"):
        builder.add([LexDoc(-1, "x")])
    with pytest.raises(TypeError, match="str"):
        builder.add([LexDoc(1, None)])  # type: ignore[arg-type]
    assert builder.in_sync()  # bad input is refused before the workdir is touched
    with pytest.raises(ValueError, match="gid"):
        DeltaBM25([LexDoc(2**64, "x")])


def test_an_unusable_cache_root_falls_back_to_a_private_directory(tmp_path):
    fake = FakeFile()
    fake.commit(fake.builder(str(tmp_path / "work")), [LexDoc(1, "x")])
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    searcher = fake.searcher(str(blocker))
    assert searcher.num_docs == 1
    assert blocker.is_file()


def test_the_default_cache_root_is_per_user():
    from memvid_store import StoreConfig

    root = StoreConfig().cache_root
    assert os.path.basename(root).startswith("memvid-cache-")
    if hasattr(os, "getuid"):
        assert root.endswith(f"-{os.getuid()}")
    assert TOKENIZER == "mv_text"


# ------------------------------------------------------------------------------ delta


def assert_same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]],
                        q: str) -> None:
    assert len(got) == len(want), q
    assert dict(got).keys() == dict(want).keys(), q
    for gid, score in want:
        assert dict(got)[gid] == pytest.approx(score, abs=1e-3), (q, gid)
    for (g1, s1), (g2, s2) in zip(got, want, strict=True):  # same order up to float noise
        assert g1 == g2 or abs(s1 - s2) < 1e-4, q


def test_delta_scores_like_tantivy(corpus_index):
    docs, s = corpus_index
    delta = DeltaBM25(docs)
    for q in QUERIES:
        want = s.search(q, 1000)
        got = delta.search(q, 1000)
        assert_same_ranking(got, want, q)
        assert gids(delta.search(q, 10)) == gids(with_ties(got, 10))


def test_delta_with_index_statistics(tmp_path):
    docs = random_docs(240, seed=21)
    indexed, fresh = docs[:200], docs[200:]
    s = index_of(indexed, tmp_path / "a")
    union = index_of(docs, tmp_path / "b")
    delta = DeltaBM25(fresh)
    fresh_gids = {d.gid for d in fresh}
    for q in QUERIES:
        want = [(g, sc) for g, sc in union.search(q, 1000) if g in fresh_gids]
        got = delta.search(q, 1000, index=s)
        assert_same_ranking(got, want, q)
    # without the index the statistics differ (sanity check that they are used)
    alone = dict(delta.search("apple", 1000))
    combined = dict(delta.search("apple", 1000, index=s))
    assert alone and alone.keys() == combined.keys() and alone != combined


def test_stats_accessors(tmp_path):
    docs = [LexDoc(1, "a b c", "t"), LexDoc(2, "a b"), LexDoc(3, "a")]
    s = index_of(docs, tmp_path)
    assert s.num_docs == 3
    assert s.doc_freq("a") == 3 and s.doc_freq("c") == 1 and s.doc_freq("zzz") == 0
    assert s.doc_freq("t", "title") == 1
    assert s.avg_field_len() == pytest.approx(2.0)
    assert s.avg_field_len("title") == pytest.approx(1 / 3)
    assert s.total_tokens("text", hints=["b"]) == pytest.approx(6)
    assert len(DeltaBM25(docs)) == 3


def test_lexical_module_does_not_import_numpy():
    code = ("import sys; from memvid_store.index.lexical import analyzer, delta, schema;"
            "analyzer.tokenize('x y'); delta.DeltaBM25([schema.LexDoc(1, 'x')]).search('x', 3);"
            "print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_new_index_files_are_read_a_piece_at_a_time(tmp_path, monkeypatch):
    """A commit writes the builder's new files from the workdir in pieces, never whole."""
    from memvid_store.index.lexical import builder as builder_module

    monkeypatch.setattr(builder_module, "PIECE_BYTES", 512)
    fake = FakeFile()
    work = str(tmp_path / "work")
    _, new, _ = fake.builder(work).add(random_docs(300, seed=9))
    assert new
    for name, data in new.items():
        pieces = list(data.pieces())
        with open(os.path.join(work, name), "rb") as fh:
            whole = fh.read()
        assert b"".join(pieces) == whole and len(data) == len(whole)
        assert all(len(p) <= 512 for p in pieces)
        assert data.crc32() == zlib.crc32(whole)
