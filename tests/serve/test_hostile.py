"""Hostile clients: a table of bad requests (each a clear 4xx in OpenAI's
error shape), slowloris, an oversized body and 500 connections opened and
dropped; afterwards the server still answers, a stream running meanwhile
is undisturbed, and RSS is back within a few MB."""
import json
import socket
import threading
import time
import unittest

from serve_util import SANITIZED, Server, chat

U = [{"role": "user", "content": "hi"}]

BAD = [  # (path, body bytes or object, expected status, expected param or None)
    ("/v1/chat/completions", b"{", 400, None),
    ("/v1/chat/completions", b"", 400, None),
    ("/v1/chat/completions", b"[]", 400, None),
    ("/v1/chat/completions", b'{"messages": [{"role":"user","content":"\xff\xfe"}]}', 400, None),
    ("/v1/chat/completions", b'{"messages": [{"role":"user","content":"a"}]} trailing', 400, None),
    ("/v1/chat/completions", b'{"messages": [{"role":"user","content":"a\x00"}]}', 400, None),
    ("/v1/chat/completions", {}, 400, "messages"),
    ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"messages": "hi"}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [1]}, 400, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": 5, "content": "x"}]}, 400, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "user"}]}, 400, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "   "}]}, 400, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 42}]}, 400, "messages[0].content"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url",
                              "image_url": {"url": "http://x/y.png"}}]}]}, 400, "messages[0].content"),
    ("/v1/chat/completions", {"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0]"),
    ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "x"},
                                           {"role": "assistant", "content": "y"}]}, 400, "messages"),
    ("/v1/chat/completions", {"messages": U, "n": 2}, 400, "n"),
    ("/v1/chat/completions", {"messages": U, "tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "tools"),
    ("/v1/chat/completions", {"messages": U, "tool_choice": "auto"}, 400, "tool_choice"),
    ("/v1/chat/completions", {"messages": U, "temperature": -1}, 400, "temperature"),
    ("/v1/chat/completions", {"messages": U, "temperature": "hot"}, 400, "temperature"),
    ("/v1/chat/completions", {"messages": U, "temperature": 1e308}, 400, "temperature"),
    ("/v1/chat/completions", {"messages": U, "top_p": 0}, 400, "top_p"),
    ("/v1/chat/completions", {"messages": U, "top_p": 1.5}, 400, "top_p"),
    ("/v1/chat/completions", {"messages": U, "max_tokens": 0}, 400, "max_tokens"),
    ("/v1/chat/completions", {"messages": U, "max_tokens": -5}, 400, "max_tokens"),
    ("/v1/chat/completions", {"messages": U, "max_tokens": 1e20}, 400, "max_tokens"),
    ("/v1/chat/completions", {"messages": U, "max_tokens": 99999999999}, 400, "max_tokens"),
    ("/v1/chat/completions", {"messages": U, "top_k": -1}, 400, "top_k"),
    ("/v1/chat/completions", {"messages": U, "min_p": 2}, 400, "min_p"),
    ("/v1/chat/completions", {"messages": U, "presence_penalty": 3}, 400, "presence_penalty"),
    ("/v1/chat/completions", {"messages": U, "frequency_penalty": -3}, 400, "frequency_penalty"),
    ("/v1/chat/completions", {"messages": U, "repetition_penalty": 0}, 400, "repetition_penalty"),
    ("/v1/chat/completions", {"messages": U, "seed": "x"}, 400, "seed"),
    ("/v1/chat/completions", {"messages": U, "seed": 1.5}, 400, "seed"),
    ("/v1/chat/completions", {"messages": U, "stop": 5}, 400, "stop"),
    ("/v1/chat/completions", {"messages": U, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ("/v1/chat/completions", {"messages": U, "stop": [""]}, 400, "stop"),
    ("/v1/chat/completions", {"messages": U, "logit_bias": {"abc": 1}}, 400, "logit_bias"),
    ("/v1/chat/completions", {"messages": U, "logit_bias": {"5": 1000}}, 400, "logit_bias"),
    ("/v1/chat/completions", {"messages": U, "logit_bias": {"99999999": 1}}, 400, "logit_bias"),
    ("/v1/chat/completions", {"messages": U, "logit_bias": [1]}, 400, "logit_bias"),
    ("/v1/chat/completions", {"messages": U, "top_logprobs": 50, "logprobs": True}, 400, "top_logprobs"),
    ("/v1/chat/completions", {"messages": U, "stream": "yes"}, 400, "stream"),
    ("/v1/chat/completions", {"messages": U, "stream_options": {"include_usage": True}}, 400, "stream_options"),
    ("/v1/chat/completions", {"messages": U, "response_format": {"type": "xml"}}, 400, "response_format"),
    ("/v1/chat/completions", {"messages": U, "response_format": {"type": "json_schema", "json_schema":
                              {"schema": {"type": "object", "patternProperties": {}}}}}, 400, "response_format"),
    ("/v1/chat/completions", {"messages": U, "response_format": {"type": "json_schema"}}, 400, "response_format"),
    ("/v1/chat/completions", {"messages": U, "model": 7}, 400, "model"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "word " * 3000}]}, 400, "messages"),
    ("/v1/completions", {}, 400, "prompt"),
    ("/v1/completions", {"prompt": ""}, 400, "prompt"),
    ("/v1/completions", {"prompt": 12}, 400, "prompt"),
    ("/v1/completions", {"prompt": "x", "echo": True}, 400, "echo"),
    ("/v1/completions", {"prompt": "x", "logprobs": 9}, 400, "logprobs"),
    ("/tokenize", {"text": 5}, 400, "text"),
    ("/detokenize", {"ids": [-1]}, 400, "ids"),
    ("/detokenize", {"ids": "1,2"}, 400, "ids"),
    ("/v1/nothing", {}, 404, None),
]


def raw_request(server, data, timeout=10):
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    return out


class HostileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = Server("--parallel", "2", "--ctx", "2048", "--timeout", "2")

    @classmethod
    def tearDownClass(cls):
        rc, err = cls.s.stop()
        assert rc == 0, err

    def test_bad_request_table(self):
        self.assertGreaterEqual(len(BAD), 30)
        for path, body, status, param in BAD:
            with self.subTest(path=path, body=str(body)[:80]):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                st, _, out = self.s.request("POST", path, data)
                self.assertEqual(st, status, out[:300])
                err = json.loads(out)["error"]
                self.assertTrue(err["message"])
                self.assertIn("type", err)
                self.assertIn("code", err)
                if param:
                    self.assertEqual(err["param"], param, err)
        self.assertEqual(self.s.request("GET", "/v1/chat/completions")[0], 405)
        self.assertEqual(self.s.request("POST", "/health")[0], 405)

    def test_oversized_body(self):
        big = b'{"messages": [{"role": "user", "content": "' + b"a" * (2 << 20) + b'"}]}'
        st, _, out = self.s.request("POST", "/v1/chat/completions", big)
        self.assertEqual(st, 413)
        # chunked, without a Content-Length
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"a" * 65536
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
        out = raw_request(self.s, head + body)
        self.assertIn(b" 413 ", out.split(b"\r\n", 1)[0])

    def test_slowloris_dropped(self):
        s = socket.create_connection((self.s.host, self.s.port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        s.settimeout(10)
        t0 = time.time()
        try:
            data = s.recv(1024)
        except OSError:
            data = b""
        self.assertEqual(data, b"")  # closed by the server, nothing answered
        self.assertLess(time.time() - t0, 8)
        s.close()

    def test_open_and_drop_and_stream_undisturbed(self):
        st, _, out = self.s.request("POST", "/v1/chat/completions", chat("سلام", max_tokens=30))
        expected = json.loads(out)["choices"][0]["message"]["content"]
        for _ in range(20):  # warm up allocations before measuring
            self.s.post("/v1/chat/completions", chat("x", max_tokens=2))
        rss0 = self.s.rss_kb()
        result = {}

        def streamer():
            body = chat("سلام", max_tokens=30, stream=True)
            result["raw"] = self.s.request("POST", "/v1/chat/completions", body)[2]

        t = threading.Thread(target=streamer)
        t.start()
        socks = []
        for i in range(500):
            c = socket.create_connection((self.s.host, self.s.port))
            if i % 3 == 1:
                c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"mess")
            elif i % 3 == 2:
                c.sendall(b"GARBAGE \x00\xff\r\n\r\n")
            socks.append(c)
            if len(socks) >= 100:
                for c in socks:
                    c.close()
                socks = []
        for c in socks:
            c.close()
        t.join(60)
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "")
                       for e in result["raw"].decode().split("\n\n")
                       if e.startswith("data: {") for e in [e[6:]])
        self.assertEqual(text, expected)
        for _ in range(20):
            st, out = self.s.post("/v1/chat/completions", chat("x", max_tokens=2))
            self.assertEqual(st, 200)
        time.sleep(1)
        if not SANITIZED:
            self.assertLess(self.s.rss_kb() - rss0, 8 * 1024, "RSS grew by more than 8 MB")

    def test_deep_json(self):
        st, _, out = self.s.request("POST", "/v1/chat/completions", b"[" * 100000 + b"]" * 100000)
        self.assertEqual(st, 400)
        self.assertEqual(self.s.get("/health")[0], 200)


if __name__ == "__main__":
    unittest.main()
