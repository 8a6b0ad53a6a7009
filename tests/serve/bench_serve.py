#!/usr/bin/env python3
"""bench_serve.py [-m DIR] [-t N] [--weights TYPE] [--tokens N] [--history N]
                  [--repeat R] [--bench] [--deterministic]

The serving measurements of docs/performance.md, through HTTP on loopback:
  - one stream: decode tokens/s seen by the client (first token to last);
  - 4 concurrent streams (--parallel 4): aggregate tokens/s (all tokens over
    the wall time from the requests to the last token, prompts included) and
    the ratio to one stream;
  - with --bench: `gemfa bench` decode speed run just before and just after
    the one-stream measurement (same model, threads and weights), and the
    ratio of the HTTP stream to their mean;
  - a chat's second turn with a ~N-token history: time to first token with
    the first turn's cache (same slot) against a cold server.
Each phase also reports the scheduler's own split of its time (from
/metrics): batched decode, sampling + publishing, per step.  --repeat runs
everything R times and prints one JSON line per run.
Needs GEMFA_CLI (the gemfa program) and PYTHONPATH=tests/serve.  Greedy,
with the end-of-turn ids banned so every stream runs the full length."""
import argparse
import http.client
import json
import os
import re
import subprocess
import threading
import time

from serve_util import Server


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def stream(server, body, gaps=None):
    """(seconds to the first content token, seconds from first to last, tokens);
    appends the gaps between content events to `gaps`"""
    c = http.client.HTTPConnection(server.host, server.port, timeout=1200)
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
                if last is not None and gaps is not None:
                    gaps.append(now - last)
                first = first or now
                last = now
    c.close()
    return first - t0, last - first, usage["completion_tokens"]


def metrics(server):
    """The scheduler's counters of /metrics as {name{labels}: value}."""
    out = {}
    for line in server.get("/metrics")[2].decode().splitlines():
        m = re.match(r"^(\w+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def split(before, after):
    """Per generate step: decode ms, sample+publish ms, mean rows."""
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    steps = d.get("gemfa_decode_steps_total", 0)
    if not steps:
        return {}
    dec = d['gemfa_step_seconds_total{part="decode"}']
    smp = d['gemfa_step_seconds_total{part="sample"}']
    return {"decode_ms_per_step": round(1000 * dec / steps, 2),
            "sample_ms_per_step": round(1000 * smp / steps, 3),
            "rows_per_step": round(d["gemfa_decode_rows_total"] / steps, 2),
            "steps": int(steps)}


def gemfa_bench(a, n):
    """`gemfa bench` decode tok/s, one session (no batch), n decoded tokens."""
    cmd = [os.environ["GEMFA_CLI"], "bench", "-t", a.threads, "--weights", a.weights, "-p", "16",
           "-n", str(n), "--batch", "0", "--bw-mb", "16", "--json"] + (["-m", a.model] if a.model else [])
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return out["decode_tok_s"], 1000 / out["decode_step_ms_median"]


def streams(a, common, ban):
    out = {}
    s = Server("--parallel", "4", "--ctx", "4096", *common)
    try:
        def body(text, n=a.tokens, **kw):
            b = {"messages": [{"role": "user", "content": text}], "max_tokens": n, "temperature": 0,
                 "stream": True, "stream_options": {"include_usage": True}, "logit_bias": ban}
            b.update(kw)
            return b

        stream(s, body("warm up", 4))
        if a.bench:
            b0 = gemfa_bench(a, a.tokens)
        m0 = metrics(s)
        gaps = []
        _, dt, n = stream(s, body("سلام! یک داستان بگو"), gaps)
        m1 = metrics(s)
        out["one_stream_tok_s"] = round((n - 1) / dt, 3)
        out["one_stream_median_tok_s"] = round(1 / median(gaps), 3)
        out["one_stream_server"] = split(m0, m1)
        if a.bench:
            b1 = gemfa_bench(a, a.tokens)
            out["bench_decode_tok_s"] = [round(b0[0], 3), round(b1[0], 3)]
            out["bench_median_tok_s"] = [round(b0[1], 3), round(b1[1], 3)]
            out["one_vs_bench"] = round(out["one_stream_tok_s"] / ((b0[0] + b1[0]) / 2), 3)
            out["one_vs_bench_median"] = round(out["one_stream_median_tok_s"] / ((b0[1] + b1[1]) / 2), 3)
        results = [None] * 4
        gaps4 = [[] for _ in range(4)]

        def one(i):
            results[i] = stream(s, body("داستان شماره %d" % i), gaps4[i])

        m0 = metrics(s)
        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        m1 = metrics(s)
        total = sum(r[2] for r in results)
        out["four_streams_tok_s"] = round(total / wall, 3)
        out["four_vs_one"] = round(out["four_streams_tok_s"] / out["one_stream_tok_s"], 3)
        # steady state: 4 tokens per step, the step time from each client's median gap
        step4 = median([median(g) for g in gaps4])
        out["four_streams_median_tok_s"] = round(4 / step4, 3)
        out["four_vs_one_median"] = round(out["four_streams_median_tok_s"] / out["one_stream_median_tok_s"], 3)
        out["four_streams_server"] = split(m0, m1)
    finally:
        s.stop()
    return out


def pairs(a, common, ban):
    """Paired runs for the noisy shared machine: K times (alternating the order)
    `gemfa bench` against one HTTP stream, and one stream against 4 streams,
    each pair within a minute or two; the ratios per pair."""
    out = {"one_vs_bench": [], "four_vs_one": [], "bench_tok_s": [], "one_tok_s": [], "four_tok_s": []}
    s = Server("--parallel", "4", "--ctx", "4096", *common)
    try:
        def body(text, n=a.tokens):
            return {"messages": [{"role": "user", "content": text}], "max_tokens": n, "temperature": 0,
                    "stream": True, "stream_options": {"include_usage": True}, "logit_bias": ban}

        def steps_rate(m0, m1):
            """tokens per second of generate steps (decode + sample), from /metrics"""
            d = split(m0, m1)
            return d["rows_per_step"] * 1000 / (d["decode_ms_per_step"] + d["sample_ms_per_step"])

        def one():
            _, dt, n = stream(s, body("سلام! یک داستان بگو"))
            return (n - 1) / dt

        def four():
            res = [None] * 4

            def run(i):
                res[i] = stream(s, body("داستان شماره %d" % i))

            t0 = time.monotonic()
            threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(r[2] for r in res) / (time.monotonic() - t0)

        stream(s, body("warm up", 4))
        out["four_vs_one_steps"] = []
        for k in range(a.pairs):
            m0 = metrics(s)
            if k % 2 == 0:
                b, o = gemfa_bench(a, a.tokens)[0], one()
            else:
                o, b = one(), gemfa_bench(a, a.tokens)[0]
            m1 = metrics(s)
            f = four()
            m2 = metrics(s)
            o2 = one()  # 4 streams sit between two single streams
            m3 = metrics(s)
            # the same ratio from the scheduler's steps alone (prompts' prefill left out)
            r1 = (steps_rate(m0, m1) + steps_rate(m2, m3)) / 2
            out["four_vs_one_steps"].append(round(steps_rate(m1, m2) / r1, 3))
            out["bench_tok_s"].append(round(b, 3))
            out["one_tok_s"].append(round(o, 3))
            out["four_tok_s"].append(round(f, 3))
            out["one_vs_bench"].append(round(o / b, 3))
            out["four_vs_one"].append(round(f / ((o + o2) / 2), 3))
            print(json.dumps({"pair": k + 1, "utc": time.strftime("%H:%M:%S", time.gmtime()),
                              "loadavg": round(os.getloadavg()[0], 1), "bench": round(b, 3),
                              "one": round(o, 3), "four": round(f, 3), "one_again": round(o2, 3)}),
                  flush=True)
    finally:
        s.stop()
    for key in ("one_vs_bench", "four_vs_one", "four_vs_one_steps"):
        v = out[key]
        out[key + "_median"] = round(median(v), 3)
        out[key + "_range"] = [min(v), max(v)]
    return out


def second_turn(a, common, rep):
    out = {}
    # ~history tokens of conversation (distinct words per run), then one more message
    words = " ".join("کلمه%d" % (i + 100000 * rep) for i in range(a.history // 3))
    s = Server("--parallel", "1", "--ctx", "4096", *common)
    try:
        msgs = [{"role": "user", "content": words}]
        first = {"messages": msgs, "max_tokens": 16, "temperature": 0, "stream": True,
                 "stream_options": {"include_usage": True}}
        c = http.client.HTTPConnection(s.host, s.port, timeout=1200)
        c.request("POST", "/v1/chat/completions",
                  json.dumps({"messages": msgs, "max_tokens": 16, "temperature": 0}),
                  {"Content-Type": "application/json"})
        resp = json.loads(c.getresponse().read())
        c.close()
        answer = resp["choices"][0]["message"]["content"]
        out["history_tokens"] = resp["usage"]["total_tokens"]
        second = dict(first, messages=msgs + [{"role": "assistant", "content": answer},
                                               {"role": "user", "content": "و بعد؟"}])
        m0 = metrics(s)
        warm_ttft, _, _ = stream(s, second)
        m1 = metrics(s)
        out["second_turn_prompt_decoded"] = int(m1["gemfa_prefill_tokens_total"] -
                                                m0["gemfa_prefill_tokens_total"])
        out["prefix_reuse"] = json.loads(s.get("/health")[2])["prefix_reuse"]
    finally:
        s.stop()
    cold = Server("--parallel", "1", "--ctx", "4096", *common)
    try:
        m0 = metrics(cold)
        cold_ttft, _, _ = stream(cold, second)
        m1 = metrics(cold)
        out["cold_prompt_decoded"] = int(m1["gemfa_prefill_tokens_total"] - m0["gemfa_prefill_tokens_total"])
    finally:
        cold.stop()
    out["second_turn_ttft_ms"] = round(warm_ttft * 1000, 1)
    out["cold_ttft_ms"] = round(cold_ttft * 1000, 1)
    out["cold_vs_second_turn"] = round(cold_ttft / warm_ttft, 2)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model")
    ap.add_argument("-t", "--threads", default="0")
    ap.add_argument("--weights", default="auto")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--history", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--bench", action="store_true", help="compare one stream with `gemfa bench`")
    ap.add_argument("--deterministic", action="store_true", help="serve with --deterministic")
    ap.add_argument("--skip-history", action="store_true", help="only the stream measurements")
    ap.add_argument("--pairs", type=int, default=0,
                    help="instead: K paired runs (bench vs one stream, one vs 4 streams)")
    ap.add_argument("--history-only", action="store_true", help="only the second-turn measurement")
    a = ap.parse_args()
    common = ["-t", a.threads, "--weights", a.weights] + (["-m", a.model] if a.model else [])
    if a.deterministic:
        common.append("--deterministic")
    s = Server("--parallel", "1", *common)
    try:
        ban = {}
        for t in ("<end_of_turn>", "<eos>"):
            for i in s.post("/tokenize", {"text": t})[1]["ids"]:
                ban[str(i)] = -100
    finally:
        s.stop()
    if a.pairs:
        print(json.dumps(pairs(a, common, ban)))
        return
    for rep in range(a.repeat):
        if a.history_only:
            out = {"run": rep + 1, "utc": time.strftime("%H:%M:%S", time.gmtime()),
                   "loadavg": os.getloadavg()[0]}
            out.update(second_turn(a, common, rep))
            print(json.dumps(out, ensure_ascii=False), flush=True)
            continue
        out = {"run": rep + 1, "utc": time.strftime("%H:%M:%S", time.gmtime()),
               "loadavg": os.getloadavg()[0]}
        out.update(streams(a, common, ban))
        if not a.skip_history:
            out.update(second_turn(a, common, rep))
        print(json.dumps(out, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
