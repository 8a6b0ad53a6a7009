"""A bounded load run: 200 streamed chat requests from 16 concurrent clients
against --parallel 4 on the tiny model; nothing fails.  Prints throughput
and p50/p99 time to first token (docs/performance.md) and writes them to
BUILD/test-artifacts/serve_load.json."""
import http.client
import json
import os
import threading
import time
import unittest

from serve_util import Server, chat

N_REQUESTS, N_CLIENTS, MAX_TOKENS = 200, 16, 32


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class LoadTest(unittest.TestCase):
    def test_load(self):
        s = Server("--parallel", "4")
        ttft, tokens, failures = [], [0], []
        lock = threading.Lock()
        counter = iter(range(N_REQUESTS))

        def client():
            c = http.client.HTTPConnection(s.host, s.port, timeout=120)
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                body = chat("پیام شماره %d" % i, max_tokens=MAX_TOKENS, stream=True, temperature=0.8,
                            seed=i, stream_options={"include_usage": True})
                t0 = time.monotonic()
                c.request("POST", "/v1/chat/completions", json.dumps(body),
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                first, usage, buf = None, None, b""
                while True:
                    line = r.readline()
                    if not line:
                        break
                    if line.startswith(b"data: {") and first is None and b'"content":"' in line \
                            and b'"content":""' not in line:
                        first = time.monotonic() - t0
                    if line.startswith(b"data: {") and b'"usage":{' in line:
                        usage = json.loads(line[6:])["usage"]
                    if line.strip():
                        buf = line
                with lock:
                    if r.status != 200 or usage is None or buf.strip() != b"data: [DONE]":
                        failures.append((i, r.status))
                    else:
                        tokens[0] += usage["completion_tokens"]
                        ttft.append(first if first is not None else time.monotonic() - t0)
            c.close()

        t0 = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(N_CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        self.assertEqual(s.stop()[0], 0)
        self.assertEqual(failures, [])
        self.assertEqual(len(ttft), N_REQUESTS)
        result = {"requests": N_REQUESTS, "clients": N_CLIENTS, "parallel": 4, "max_tokens": MAX_TOKENS,
                  "seconds": round(wall, 3), "requests_per_s": round(N_REQUESTS / wall, 2),
                  "tokens_per_s": round(tokens[0] / wall, 1),
                  "ttft_p50_ms": round(percentile(ttft, 50) * 1000, 1),
                  "ttft_p99_ms": round(percentile(ttft, 99) * 1000, 1)}
        print("# load: " + json.dumps(result))
        out = os.path.join(os.environ["GEMFA_BUILD_ROOT"], "test-artifacts", "serve_load.json")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    unittest.main()
