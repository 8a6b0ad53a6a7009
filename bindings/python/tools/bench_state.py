#!/usr/bin/python3
"""Times session state calls on the tiny model (docs/performance.md, "Session state").

    PYTHONPATH=bindings/python GEMFA_LIBRARY=build/lib/libgemfa.so.0 \
      nice /usr/bin/python3 bindings/python/tools/bench_state.py [MODEL_DIR]

A session of 4,001 tokens (one thread, f32 weights): save to bytes and to a file,
load from both (on a context that has computed the fingerprint already, and on a
new one), an O(1) truncate of 100 tokens and a truncate of 2,000 tokens that
re-decodes the 2,000 kept tokens.  Best of 5 runs each."""
import os
import random
import sys
import tempfile
import time

import gemfa

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "tests",
                                                           "data", "tiny-gemma3n")


def best(fn, runs=5):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out) * 1e3


def main():
    m = gemfa.Model(MODEL, weights="f32")
    r = random.Random(1)
    ids = [2] + [r.randrange(1, min(m.vocab_size, 1000)) for _ in range(4000)]
    s = m.session(context=4096, threads=1)
    s.decode(ids)
    data = s.save()
    ctx = m.context(threads=1)
    ctx.load_session(data)  # computes the fingerprint once
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "state")
        print(f"state of {len(ids)} tokens: {len(data) / 1e6:.1f} MB")
        print(f"save to bytes      {best(lambda: s.save()):8.1f} ms")
        print(f"save to a file     {best(lambda: s.save(path)):8.1f} ms")
        print(f"load from bytes    {best(lambda: ctx.load_session(data)):8.1f} ms")
        print(f"load from a file   {best(lambda: ctx.load_session(path)):8.1f} ms")
        print(f"load, new context  {best(lambda: m.context(threads=1).load_session(data)):8.1f} ms"
              " (fingerprint included)")

    def cut(n):
        t = s.fork()
        t0 = time.perf_counter()
        t.truncate(n)
        return time.perf_counter() - t0
    print(f"truncate -100      {min(cut(len(ids) - 100) for _ in range(5)) * 1e6:8.0f} us")
    print(f"truncate to 2000   {min(cut(2000) for _ in range(3)) * 1e3:8.1f} ms (re-decode)")


if __name__ == "__main__":
    main()
