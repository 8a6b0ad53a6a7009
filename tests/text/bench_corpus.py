#!/usr/bin/python3
"""Writes a large Persian text for the tokenizer benchmark: lines of 6-30
words drawn (with a fixed seed) from the words of tests/data/tokenizer's
Persian corpus, so that almost every line is unique (no tokenizer cache can
help) while the vocabulary stays natural: ZWNJ compounds, punctuation,
digits, some English.
usage: bench_corpus.py PERSIAN_JSONL MEGABYTES OUT.txt"""
import json
import random
import sys

src, megabytes, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
words = []
with open(src, encoding="utf-8") as f:
    for line in f:
        rec = json.loads(line)
        if rec.get("category") in ("special", "rare", "whitespace"):
            continue
        words += rec["text"].split()
rng = random.Random(1403)
target = int(megabytes * 1024 * 1024)
size = 0
with open(out, "w", encoding="utf-8") as f:
    while size < target:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(6, 30))) + "\n"
        f.write(line)
        size += len(line.encode())
