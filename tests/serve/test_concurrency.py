"""Many users at once: 8 clients against --parallel 4 all complete and, with
greedy sampling and f32 weights, each answer equals the same request alone;
a client that disconnects frees its slot; a full queue answers 503; a
second turn reuses the first turn's cache."""
import json
import socket
import threading
import time
import unittest

from serve_util import SANITIZED, Server, chat, recv_until

PROMPTS = ["سلام! حالت چطوره؟", "Hello there", "یک داستان کوتاه بگو", "What is 2+2?",
           "کتاب خوب چیست؟", "Tell me a joke", "امروز هوا چطور است؟", "Write a poem"]


def no_eog(server):
    """logit_bias banning the end-of-turn and eos tokens: long answers."""
    ids = []
    for t in ("<end_of_turn>", "<eos>"):
        st, out = server.post("/tokenize", {"text": t})
        ids += out["ids"]
    return {str(i): -100 for i in ids}


class ConcurrencyTest(unittest.TestCase):
    def run_parallel(self, server, bodies):
        results = [None] * len(bodies)

        def one(i):
            results[i] = server.post("/v1/chat/completions", bodies[i], timeout=300)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def check_alone_equals_together(self, weights, *args):
        s = Server("--parallel", "4", "--weights", weights, *args)
        try:
            bodies = [chat(p, max_tokens=40) for p in PROMPTS]
            alone = [s.post("/v1/chat/completions", b)[1] for b in bodies]
            together = self.run_parallel(s, bodies)
            for a, (st, t) in zip(alone, together):
                self.assertEqual(st, 200, t)
                self.assertEqual(t["choices"][0]["message"]["content"],
                                 a["choices"][0]["message"]["content"])
            # seeded sampling too
            bodies = [chat(p, max_tokens=30, temperature=0.8, seed=7 + i) for i, p in enumerate(PROMPTS)]
            alone = [s.post("/v1/chat/completions", b)[1] for b in bodies]
            together = self.run_parallel(s, bodies)
            for a, (st, t) in zip(alone, together):
                self.assertEqual(t["choices"][0]["message"]["content"],
                                 a["choices"][0]["message"]["content"])
        finally:
            self.assertEqual(s.stop()[0], 0)

    def test_batched_equals_alone(self):
        self.check_alone_equals_together("f32")

    def test_deterministic_mode_equals_alone(self):
        # int8 weights: the batched kernels' results depend on the batch (3 of
        # 8 answers differed when measured), so only --deterministic holds
        self.check_alone_equals_together("int8", "--deterministic")

    def test_disconnect_frees_slot(self):
        s = Server("--parallel", "1", "--ctx", "4096")
        try:
            bias = no_eog(s)
            body = json.dumps(chat("سلام", max_tokens=4000, stream=True, logit_bias=bias)).encode()
            sock = socket.create_connection((s.host, s.port))
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            self.assertIn(b"data: ", recv_until(sock, b"data: "))
            sock.close()
            t0 = time.time()
            st, out = s.post("/v1/chat/completions", chat("Hi", max_tokens=4), timeout=30)
            self.assertEqual(st, 200)
            st, _, h = s.get("/health")
            self.assertEqual(json.loads(h)["busy"], 0)
            st, _, m = s.get("/metrics")
            generated = [l for l in m.decode().splitlines() if l.startswith("gemfa_generated_tokens_total")]
            self.assertLess(int(generated[0].split()[1]), 3900, "generation went on after the disconnect")
            self.assertLess(time.time() - t0, 20)
        finally:
            self.assertEqual(s.stop()[0], 0)

    def test_queue_limit_503(self):
        s = Server("--parallel", "1", "--queue", "1", "--ctx", "4096")
        try:
            bias = no_eog(s)
            bodies = [chat("سلام %d" % i, max_tokens=3000, logit_bias=bias) for i in range(5)]
            results = self.run_parallel(s, bodies)
            codes = sorted(st for st, _ in results)
            self.assertIn(503, codes)
            self.assertIn(200, codes)
            busy = [out for st, out in results if st == 503][0]
            self.assertEqual(busy["error"]["code"], "server_busy")
            st, headers, _ = s.request("POST", "/v1/chat/completions", chat("x", max_tokens=1))
            self.assertEqual(st, 200)
        finally:
            self.assertEqual(s.stop()[0], 0)

    def test_waiting_longer_than_timeout(self):
        """--timeout drops idle clients, not requests that wait in the queue
        or run long: streamed and non-streamed answers behind long jobs
        arrive whole."""
        s = Server("--parallel", "1", "--ctx", "4096", "--timeout", "1")
        try:
            bias = no_eog(s)
            n = 1000 if SANITIZED else 4000  # an ASan build is ~5x slower
            bodies = [chat("سلام %d" % i, max_tokens=n, logit_bias=bias) for i in range(3)]
            bodies.append(chat("stream", max_tokens=n, logit_bias=bias, stream=True))
            t0 = time.time()
            results = self.run_parallel(s, bodies)
            for st, out in results[:3]:
                self.assertEqual(st, 200)
                self.assertEqual(out["usage"]["completion_tokens"], n)
            st, raw = results[3]
            self.assertEqual(st, 200)
            self.assertTrue(raw.endswith(b"data: [DONE]\n\n"), raw[-200:])
            self.assertGreater(time.time() - t0, 1.5, "too fast to test the timeout")
        finally:
            self.assertEqual(s.stop()[0], 0)

    def test_prefix_reuse(self):
        s = Server("--parallel", "2")
        try:
            msgs = [{"role": "system", "content": "Answer briefly. " * 20},
                    {"role": "user", "content": "سلام"}]
            # max_tokens 1: the slot keeps exactly the first prompt (the one sampled
            # token is never decoded), a prefix of the second turn's prompt
            st, first = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 1, "temperature": 0})
            msgs += [{"role": "assistant", "content": first["choices"][0]["message"]["content"]},
                     {"role": "user", "content": "و بعد؟"}]
            st, second = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 8, "temperature": 0})
            self.assertEqual(st, 200)
            cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
            self.assertEqual(cached, first["usage"]["prompt_tokens"])
        finally:
            self.assertEqual(s.stop()[0], 0)

    def test_chat_second_turn_reuse(self):
        """A chat client resends the conversation with the answer as text.
        With session truncation (prefix_reuse common_prefix) the slot keeps
        at least the whole first prompt even when the answer's text does not
        tokenize back to the generated ids; without it, only a cache that is
        wholly a prefix counts, so the reuse may be 0."""
        s = Server("--parallel", "1")
        try:
            mode = json.loads(s.get("/health")[2])["prefix_reuse"]
            msgs = [{"role": "system", "content": "Answer briefly. " * 20},
                    {"role": "user", "content": "سلام"}]
            st, first = s.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 12, "temperature": 0})
            msgs += [{"role": "assistant", "content": first["choices"][0]["message"]["content"]},
                     {"role": "user", "content": "و بعد؟"}]
            body = {"messages": msgs, "max_tokens": 12, "temperature": 0}
            st, second = s.post("/v1/chat/completions", body)
            cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
            if mode == "common_prefix":
                self.assertGreaterEqual(cached, first["usage"]["prompt_tokens"])
            else:
                self.assertEqual(mode, "whole_cache")
            # the reused cache gives the answer a cold slot gives
            cold = Server("--parallel", "1")
            try:
                st, ref = cold.post("/v1/chat/completions", body)
            finally:
                cold.stop()
            self.assertEqual(second["choices"][0]["message"]["content"],
                             ref["choices"][0]["message"]["content"])
        finally:
            self.assertEqual(s.stop()[0], 0)

    def test_sigterm_ends_streams_with_error(self):
        s = Server("--parallel", "1", "--ctx", "4096")
        bias = no_eog(s)
        body = json.dumps(chat("سلام", max_tokens=4000, stream=True, logit_bias=bias)).encode()
        sock = socket.create_connection((s.host, s.port))
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body)
        self.assertIn(b"data: ", recv_until(sock, b"data: "))
        rc, err = s.stop()
        self.assertEqual(rc, 0, err)
        sock.settimeout(10)
        rest = b""
        while True:
            try:
                b = sock.recv(65536)
            except OSError:
                break
            if not b:
                break
            rest += b
        sock.close()
        self.assertIn(b"shutting down", rest)


if __name__ == "__main__":
    unittest.main()
