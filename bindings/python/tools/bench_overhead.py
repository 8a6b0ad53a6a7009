#!/usr/bin/python3
"""Measures what the Python binding adds on top of the C library.

    PYTHONPATH=bindings/python GEMFA_LIBRARY=build/lib/libgemfa.so.0 \
      nice /usr/bin/python3 bindings/python/tools/bench_overhead.py [MODEL_DIR]

Prints (one thread):
- what Session.decode adds to a raw ctypes gemfa_decode of one token
  (argument conversion, locking, the logits copy): median over interleaved pairs;
- the per-token time Session.generate spends outside gemfa_decode (sampling,
  end check, streaming detokenizer, bookkeeping): best of 5 runs of 500 tokens;
- one-token Session.decode calls with and without another Python thread
  spinning (it holds the GIL whenever it can)."""
import ctypes
import os
import statistics
import sys
import threading
import time

import gemfa
from gemfa import _session

HERE = os.path.dirname(os.path.abspath(__file__))
model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    HERE, "..", "..", "..", "tests", "data", "tiny-gemma3n")
m = gemfa.Model(model_dir, weights="f32")
s = m.session(context=4096, threads=1)
lib = gemfa.lib()


def paired_overhead(n=1000):
    """Median of (Session.decode - raw gemfa_decode) over interleaved pairs, so
    that load from other processes hits both sides alike."""
    ids = (ctypes.c_int32 * 1)(8)
    diffs, raws = [], []
    with s._use() as p:
        for i in range(n):
            if i % 200 == 0:
                s.reset()
            t0 = time.perf_counter()
            lib.gemfa_decode(p, ids, 1, None)
            t1 = time.perf_counter()
            s.decode(8)
            t2 = time.perf_counter()
            raws.append(t1 - t0)
            diffs.append((t2 - t1) - (t1 - t0))
    return statistics.median(raws), statistics.median(diffs)


raw, extra = paired_overhead()
print(f"decode of one token: raw ctypes {raw * 1e6:.1f} us (median); Session.decode adds "
      f"{extra * 1e6:.1f} us (median of interleaved pairs)")

orig = _session.Session._decode_quiet
spent = [0.0]


def timed(self, token_ids):
    t = time.perf_counter()
    orig(self, token_ids)
    spent[0] += time.perf_counter() - t


_session.Session._decode_quiet = timed
no_end = {t: float("-inf") for t in m.eog_ids}
smp = gemfa.Sampler(m, temperature=0, logit_bias=no_end)
best = float("inf")
for _ in range(5):
    s.reset()
    spent[0] = 0.0
    t = time.perf_counter()
    g = s.generate([m.bos_id], chat=False, max_new_tokens=500, sampler=smp)
    for _ in g:
        pass
    best = min(best, (time.perf_counter() - t - spent[0]) / len(g.ids))
print(f"generate: {best * 1e6:.1f} us per token outside gemfa_decode "
      f"(vocabulary {m.vocab_size})")


def per_token(n=100):
    s.reset()
    t = time.perf_counter()
    for _ in range(n):
        s.decode(8)
    return (time.perf_counter() - t) / n


_session.Session._decode_quiet = orig
idle = min(per_token() for _ in range(3))
stop = []


def spin():
    x = 0
    while not stop:
        x += 1


spinner = threading.Thread(target=spin)
spinner.start()
busy = min(per_token() for _ in range(3))
stop.append(1)
spinner.join()
print(f"Session.decode: {idle * 1e3:.2f} ms per token idle, {busy * 1e3:.2f} ms with another "
      "Python thread spinning (the GIL is released during the C call)")
