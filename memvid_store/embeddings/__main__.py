"""Check an embedder on this machine: load time, encode throughput, similarity sanity.

Run: python -m memvid_store.embeddings [--spec default|hash|hash:<dim>] [--texts 512]
         [--words 16] [--batch-size 32] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import random
import time

from . import MiniLMEmbedder, get_embedder

PAIRS = [  # (a, paraphrase of a, unrelated to a)
    ("A man is eating food.", "A man is eating a piece of bread.", "A woman is playing violin."),
    ("The launch moved to 13 May.", "Release postponed to May 13th.", "The cat is asleep."),
    ("上海办公室下周搬家。", "上海的办公室下个星期要搬走。", "今天天气很好。"),
]

_WORDS = ("agent memory launch budget ticket customer office report meeting decision team "
          "release search vector index time travel file cache latency answer question note "
          "week month product router data review status update support language model").split()


def sample_texts(n: int, words: int = 16, seed: int = 7) -> list[str]:
    """``n`` pseudo-sentences of ``words / 2`` to ``3 * words / 2`` words, the same every run."""
    rng = random.Random(seed)
    low, high = max(1, words // 2), max(1, 3 * words // 2)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high))).capitalize()
            + "." for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="default")
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--words", type=int, default=16, help="average words per text")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    started = time.perf_counter()
    if args.spec in ("default", "minilm"):
        embedder = MiniLMEmbedder(batch_size=args.batch_size, threads=args.threads)
    else:
        embedder = get_embedder(args.spec)
    embedder.embed_query("load")
    loaded = time.perf_counter() - started
    texts = sample_texts(args.texts, args.words)
    started = time.perf_counter()
    embedder.embed_documents(texts)
    encode = time.perf_counter() - started
    words = sum(len(t.split()) for t in texts) / len(texts)

    threads = getattr(embedder, "threads", None)
    print(f"embedder   {embedder.name} ({embedder.dim}-d)"
          + (f", {threads} threads of {os.cpu_count()} CPUs" if threads else ""))
    print(f"load       {loaded:.2f} s (construct + first embed)")
    print(f"encode     {len(texts)} texts of ~{words:.0f} words in batches of "
          f"{args.batch_size}: {encode:.2f} s = {len(texts) / encode:.0f} docs/s")
    for a, same, other in PAIRS:
        va, vs, vo = embedder.embed_documents([a, same, other])
        print(f"similarity paraphrase {float(va @ vs):.3f}  unrelated {float(va @ vo):.3f}  {a}")


if __name__ == "__main__":
    main()
