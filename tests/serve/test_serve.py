"""gemfa serve on the tiny model: endpoints, OpenAI shapes, SSE framing,
greedy answers equal to `gemfa generate --chat`, stop strings, logit bias,
logprobs, the API key."""
import json
import os
import subprocess
import unittest

from serve_util import CLI, Server, chat, sse_events


class ServeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server("--parallel", "2")

    @classmethod
    def tearDownClass(cls):
        rc, err = cls.s.stop()
        assert rc == 0, err

    def test_health_models_metrics_page(self):
        st, _, body = self.s.get("/health")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["status"], "ok")
        st, _, body = self.s.get("/v1/models")
        self.assertEqual(json.loads(body)["data"][0]["id"], "tiny-gemma3n")
        st, headers, body = self.s.get("/")
        self.assertEqual(st, 200)
        self.assertIn("text/html", headers["Content-Type"])
        self.assertIn(b'dir="auto"', body)
        self.assertNotIn(b".innerHTML =", body)
        self.assertNotIn(b"http", body.replace(b"http-equiv", b""))  # no CDN
        self.s.post("/v1/chat/completions", chat("hi", max_tokens=3))
        st, headers, body = self.s.get("/metrics")
        text = body.decode()
        for name in ("gemfa_requests_total{code=\"200\"}", "gemfa_prompt_tokens_total",
                     "gemfa_generated_tokens_total", "gemfa_queue_depth", "gemfa_slots_busy",
                     "gemfa_generation_tokens_per_second"):
            self.assertIn(name, text)
        # the scheduler's time split: a 3-token answer took 2 generate steps
        # (each advancing at least one session) after its prompt's chunk
        vals = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
        self.assertGreaterEqual(int(vals["gemfa_decode_steps_total"]), 2)
        self.assertGreaterEqual(int(vals["gemfa_decode_rows_total"]), int(vals["gemfa_decode_steps_total"]))
        self.assertGreater(int(vals["gemfa_prefill_tokens_total"]), 0)
        for part in ("decode", "sample", "prefill"):
            self.assertGreater(float(vals['gemfa_step_seconds_total{part="%s"}' % part]), 0)

    def test_tokenize_roundtrip(self):
        st, out = self.s.post("/tokenize", {"text": "سلام دنیا", "add_bos": True})
        self.assertEqual(st, 200)
        self.assertEqual(out["ids"][0], 2)
        st, back = self.s.post("/detokenize", {"ids": out["ids"][1:]})
        self.assertEqual(back["text"], "سلام دنیا")

    def generate(self, prompt, n):
        p = subprocess.run([CLI, "generate", "--chat", "-p", prompt, "--temp", "0", "-n", str(n),
                            "--json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_greedy_equals_generate(self):
        for prompt in ("سلام! حالت چطوره؟", "Hello there"):
            ref = self.generate(prompt, 24)
            st, out = self.s.post("/v1/chat/completions", chat(prompt, max_tokens=24))
            self.assertEqual(st, 200, out)
            self.assertEqual(out["object"], "chat.completion")
            self.assertEqual(out["choices"][0]["message"]["content"], ref["text"])
            self.assertEqual(out["choices"][0]["finish_reason"],
                             "stop" if ref["stop"] == "eog" else "length")
            self.assertEqual(out["usage"]["prompt_tokens"], len(ref["prompt_ids"]))
            self.assertEqual(out["usage"]["completion_tokens"], len(ref["ids"]))

    def test_stream_framing(self):
        body = chat("سلام", max_tokens=20, stream=True, stream_options={"include_usage": True})
        st, headers, raw = self.s.request("POST", "/v1/chat/completions", body)
        self.assertEqual(st, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/event-stream"))
        events = sse_events(raw)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], 20)
        self.assertIn(chunks[-2]["choices"][0]["finish_reason"], ("stop", "length"))
        st, full = self.s.post("/v1/chat/completions", chat("سلام", max_tokens=20))
        self.assertEqual(text, full["choices"][0]["message"]["content"])
        # the same through curl, as a shell client sees it
        p = subprocess.run(["curl", "-sN", "-H", "Content-Type: application/json", "-d",
                            json.dumps(chat("سلام", max_tokens=20, stream=True)),
                            self.s.url + "/v1/chat/completions"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0)
        curl_events = sse_events(p.stdout)
        self.assertEqual(curl_events[-1], "[DONE]")
        curl_text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                            for e in curl_events[:-1])
        self.assertEqual(curl_text, text)

    def test_completions(self):
        st, out = self.s.post("/v1/completions", {"prompt": "Hello", "max_tokens": 8, "temperature": 0,
                                                  "logprobs": 2})
        self.assertEqual(st, 200, out)
        self.assertEqual(out["object"], "text_completion")
        lp = out["choices"][0]["logprobs"]
        self.assertEqual(len(lp["tokens"]), 8)
        self.assertEqual(len(lp["top_logprobs"][0]), 2)
        p = subprocess.run([CLI, "generate", "-p", "Hello", "--temp", "0", "-n", "8", "--json"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(out["choices"][0]["text"], json.loads(p.stdout)["text"])

    def test_stop_string(self):
        st, full = self.s.post("/v1/chat/completions", chat("Hello there", max_tokens=24))
        text = full["choices"][0]["message"]["content"]
        self.assertGreater(len(text), 6)
        stop = text[3:6]
        st, out = self.s.post("/v1/chat/completions", chat("Hello there", max_tokens=24, stop=[stop]))
        self.assertEqual(out["choices"][0]["message"]["content"], text[:text.index(stop)])
        self.assertEqual(out["choices"][0]["finish_reason"], "stop")
        st, raw = self.s.request("POST", "/v1/chat/completions",
                                 chat("Hello there", max_tokens=24, stop=stop, stream=True))[::2]
        streamed = "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                           for e in sse_events(raw)[:-1])
        self.assertEqual(streamed, text[:text.index(stop)])

    def test_logit_bias_and_logprobs(self):
        st, ids = self.s.post("/tokenize", {"text": "سلام"})
        forced = ids["ids"][0]
        st, out = self.s.post("/v1/chat/completions",
                              chat("Hello", max_tokens=3, logit_bias={str(forced): 100},
                                   logprobs=True, top_logprobs=3))
        self.assertEqual(st, 200, out)
        content = out["choices"][0]["logprobs"]["content"]
        self.assertEqual(len(content), 3)
        self.assertTrue(out["choices"][0]["message"]["content"].startswith("سلام"))
        for entry in content:
            if "\ufffd" not in entry["token"]:
                self.assertEqual(entry["bytes"], list(entry["token"].encode()))
            self.assertEqual(len(entry["top_logprobs"]), 3)
            self.assertLessEqual(entry["logprob"], 0)
            tops = [t["logprob"] for t in entry["top_logprobs"]]
            self.assertEqual(tops, sorted(tops, reverse=True))

    def test_response_format_json(self):
        finished = 0
        for seed in range(4):  # JSON mode has no bound on length: some samples run out
            st, out = self.s.post("/v1/chat/completions",
                                  chat("JSON please", max_tokens=200, temperature=0.9, seed=seed,
                                       response_format={"type": "json_object"}))
            self.assertEqual(st, 200, out)
            text = out["choices"][0]["message"]["content"]
            self.assertTrue(text.lstrip().startswith("{"), text)
            if out["choices"][0]["finish_reason"] == "stop":
                self.assertIsInstance(json.loads(text), dict)
                finished += 1
        self.assertGreater(finished, 0)
        schema = {"type": "object", "required": ["name", "age"],
                  "properties": {"name": {"type": "string", "maxLength": 10},
                                 "age": {"type": "integer", "minimum": 0, "maximum": 120}}}
        fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
        for stream in (False, True):
            body = chat("سلام", max_tokens=200, temperature=0.9, seed=3, response_format=fmt, stream=stream)
            if stream:
                raw = self.s.request("POST", "/v1/chat/completions", body)[2]
                text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                               for e in sse_events(raw)[:-1])
            else:
                text = self.s.post("/v1/chat/completions", body)[1]["choices"][0]["message"]["content"]
            value = json.loads(text)
            self.assertEqual(sorted(value), ["age", "name"])
            self.assertLessEqual(len(value["name"]), 10)
            self.assertTrue(isinstance(value["age"], int) and 0 <= value["age"] <= 120)

    def test_seeded_sampling_repeats(self):
        body = chat("سلام", max_tokens=16, temperature=0.9, top_p=0.9, top_k=20, seed=42)
        a = self.s.post("/v1/chat/completions", body)[1]["choices"][0]["message"]["content"]
        b = self.s.post("/v1/chat/completions", body)[1]["choices"][0]["message"]["content"]
        self.assertEqual(a, b)


class CommandLineTest(unittest.TestCase):
    def test_exit_codes(self):
        for args, rc in ((["--help"], 0), (["--version"], 0), (["--port", "70000"], 2),
                         (["--parallel", "0"], 2), (["--bogus"], 2), (["--queue"], 2),
                         (["-m", "/nonexistent/model"], 1)):
            p = subprocess.run([CLI, "serve", *args], capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, rc, (args, p.stderr))

    def test_json_log_and_port_in_use(self):
        s = Server("--json")
        try:
            self.assertEqual(s.get("/health")[0], 200)
            busy = subprocess.run([CLI, "serve", "--port", str(s.port)], capture_output=True,
                                  text=True, timeout=60)
            self.assertEqual(busy.returncode, 1)
        finally:
            rc, err = s.stop()
        self.assertEqual(rc, 0)
        records = [json.loads(l) for l in err.splitlines() if l.startswith("{")]
        self.assertIn({"method": "GET", "path": "/health", "status": 200},
                      [{k: r[k] for k in ("method", "path", "status")} for r in records])


class ApiKeyTest(unittest.TestCase):
    def test_api_key(self):
        s = Server("--api-key", "sekret")
        try:
            st, out = s.post("/v1/chat/completions", chat("hi", max_tokens=2))
            self.assertEqual(st, 401)
            self.assertEqual(out["error"]["code"], "invalid_api_key")
            st, out = s.post("/v1/chat/completions", chat("hi", max_tokens=2),
                             headers={"Authorization": "Bearer sekreT"})
            self.assertEqual(st, 401)
            st, out = s.post("/v1/chat/completions", chat("hi", max_tokens=2),
                             headers={"Authorization": "Bearer sekret"})
            self.assertEqual(st, 200)
            self.assertEqual(s.get("/health")[0], 200)  # not under /v1
        finally:
            self.assertEqual(s.stop()[0], 0)


if __name__ == "__main__":
    unittest.main()
