#!/usr/bin/env python3
"""bench_serve.py [-m DIR] [-t N] [--weights TYPE] [--tokens N] [--history N]

The serving measurements of docs/performance.md, through HTTP on loopback:
  - one stream: decode tokens/s seen by the client (first token to last);
  - 4 concurrent streams (--parallel 4): aggregate tokens/s and the ratio;
  - a chat's second turn with a ~N-token history: time to first token with
    the first turn's cache (same slot) against a cold server.
Needs GEMFA_CLI (the gemfa program) and PYTHONPATH=tests/serve.  Greedy,
with the end-of-turn ids banned so every stream runs the full length."""
import argparse
import http.client
import json
import threading
import time

from serve_util import Server


def stream(server, body):
    """(seconds to the first content token, seconds from first to last, tokens)"""
    c = http.client.HTTPConnection(server.host, server.port, timeout=600)
    t0 = time.monotonic()
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    first = last = None
    usage = None
    while True:
        line = r.readline()
        if not line:
            break
        if line.startswith(b"data: {"):
            ev = json.loads(line[6:])
            if ev.get("usage"):
                usage = ev["usage"]
            if ev["choices"] and ev["choices"][0]["delta"].get("content"):
                now = time.monotonic()
                first = first or now
                last = now
    c.close()
    return first - t0, last - first, usage["completion_tokens"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model")
    ap.add_argument("-t", "--threads", default="0")
    ap.add_argument("--weights", default="auto")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--history", type=int, default=1000)
    a = ap.parse_args()
    common = ["-t", a.threads, "--weights", a.weights] + (["-m", a.model] if a.model else [])
    out = {}
    s = Server("--parallel", "4", "--ctx", "4096", *common)
    try:
        ban = {}
        for t in ("<end_of_turn>", "<eos>"):
            for i in s.post("/tokenize", {"text": t})[1]["ids"]:
                ban[str(i)] = -100

        def body(text, n=a.tokens, **kw):
            b = {"messages": [{"role": "user", "content": text}], "max_tokens": n, "temperature": 0,
                 "stream": True, "stream_options": {"include_usage": True}, "logit_bias": ban}
            b.update(kw)
            return b

        stream(s, body("warm up", 8))
        _, dt, n = stream(s, body("سلام! یک داستان بگو"))
        out["one_stream_tok_s"] = round((n - 1) / dt, 2)
        results = [None] * 4

        def one(i):
            results[i] = stream(s, body("داستان شماره %d" % i))

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        total = sum(r[2] for r in results)
        out["four_streams_tok_s"] = round(total / wall, 2)
        out["four_vs_one"] = round(out["four_streams_tok_s"] / out["one_stream_tok_s"], 2)
    finally:
        s.stop()

    # second turn: ~history tokens of conversation, then one more message
    words = " ".join("کلمه%d" % i for i in range(a.history // 3))
    s = Server("--parallel", "1", "--ctx", "4096", *common)
    try:
        msgs = [{"role": "user", "content": words}]
        first = {"messages": msgs, "max_tokens": 16, "temperature": 0, "stream": True,
                 "stream_options": {"include_usage": True}}
        stream(s, first)
        c = http.client.HTTPConnection(s.host, s.port, timeout=600)
        c.request("POST", "/v1/chat/completions",
                  json.dumps({"messages": msgs, "max_tokens": 16, "temperature": 0}),
                  {"Content-Type": "application/json"})
        answer = json.loads(c.getresponse().read())["choices"][0]["message"]["content"]
        c.close()
        second = dict(first, messages=msgs + [{"role": "assistant", "content": answer},
                                               {"role": "user", "content": "و بعد؟"}])
        warm_ttft, _, _ = stream(s, second)
        out["prefix_reuse"] = json.loads(s.get("/health")[2])["prefix_reuse"]
    finally:
        s.stop()
    cold = Server("--parallel", "1", "--ctx", "4096", *common)
    try:
        cold_ttft, _, _ = stream(cold, second)
    finally:
        cold.stop()
    out["second_turn_ttft_ms"] = round(warm_ttft * 1000, 1)
    out["cold_ttft_ms"] = round(cold_ttft * 1000, 1)
    out["cold_vs_second_turn"] = round(cold_ttft / warm_ttft, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
