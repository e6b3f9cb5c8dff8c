"""Tokenizer time on hostile texts: the head of 77 tokens costs the same whatever the text.

    PYTHONPATH=src python benchmarks/hostile_text.py [--sizes 5000 50000 200000]

Prints seconds per text and the ratio to a 1 KB word (one run, one interpreter).
Before issue 17 a 5 KB random-letter word took 3 s and a 50 KB one 74 s (quadratic merges).
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time

from imagebind_sdk.preprocess.tokenizer import default_tokenizer


def _seconds(text: str, repeats: int = 3) -> float:
    tok = default_tokenizer()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tok([text])
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 5_000, 50_000, 200_000, 60_000_000])
    args = parser.parse_args()
    rng = random.Random(0)
    default_tokenizer()  # the vocabulary is read once, outside the timings
    rows = []
    for size in args.sizes:
        word = "".join(rng.choices(string.ascii_lowercase, k=size))
        rows.append({"chars": size, "one_word_s": _seconds(word), "words_s": _seconds(("dog " * size)[:size])})
    base = rows[0]["one_word_s"]
    for row in rows:
        row["one_word_vs_first"] = row["one_word_s"] / base
        print(f"{row['chars']:>11,} chars: one word {row['one_word_s']:.4f} s "
              f"(x{row['one_word_vs_first']:.1f}), words {row['words_s']:.4f} s")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
