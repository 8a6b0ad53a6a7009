"""Starting `gemfa serve` on a free loopback port and talking to it."""
import http.client
import json
import os
import subprocess
import sys
import time

CLI = os.environ["GEMFA_CLI"]
with open(CLI, "rb") as _f:
    # an AddressSanitizer build keeps freed memory in quarantine: RSS says little
    SANITIZED = b"__asan_init" in _f.read()


def recv_until(sock, marker, limit=1 << 20):
    """Reads from a raw socket until `marker` arrives (or the peer closes)."""
    data = b""
    while marker not in data and len(data) < limit:
        b = sock.recv(4096)
        if not b:
            break
        data += b
    return data


class Server:
    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([CLI, "serve", "--port", "0", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            self.proc.kill()
            raise RuntimeError("no ready line: %r %s" % (line, self.proc.stderr.read()))
        self.url = line.strip().split("listening on ")[1]
        self.host, port = self.url[len("http://"):].rsplit(":", 1)
        self.port = int(port)

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.read()
        c.close()
        return r.status, dict(r.getheaders()), out

    def post(self, path, body, **kw):
        status, headers, out = self.request("POST", path, body, **kw)
        try:
            return status, json.loads(out)
        except ValueError:
            return status, out

    def get(self, path):
        return self.request("GET", path)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read()
        sys.stderr.write(err)  # sanitizer reports reach tests/sanitizer_check.sh
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode, err


def chat(text, **kw):
    body = {"messages": [{"role": "user", "content": text}], "temperature": 0}
    body.update(kw)
    return body


def sse_events(raw):
    """The payloads of a text/event-stream body; asserts the framing."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), text[-50:]
    events = []
    for block in text[:-2].split("\n\n"):
        assert block.startswith("data: "), block[:80]
        assert "\n" not in block, block[:80]
        events.append(block[len("data: "):])
    return events
