"""Two gemfa serve replicas behind Debian's nginx on loopback, configured as
docs/serving.md shows: requests with an X-Conversation-Id always reach the
same replica (hash ... consistent), the others the least busy one
(least_conn, chosen through a map); streams pass through unbuffered."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from serve_util import Server, chat, sse_events

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format gemfa '$http_x_conversation_id $upstream_addr $status';
    access_log {prefix}/access.log gemfa;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
{body}
    server {{
        listen 127.0.0.1:{port};
        include {prefix}/gemfa_location.conf;
    }}
}}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def doc_block(name):
    """The nginx snippet `name` from docs/serving.md (```nginx blocks whose
    first line is '# name')."""
    with open(os.path.join(os.environ["GEMFA_SOURCE_ROOT"], "docs", "serving.md")) as f:
        text = f.read()
    for block in text.split("```nginx\n")[1:]:
        block = block.split("```", 1)[0]
        if block.startswith("# " + name + " ") or block.startswith("# " + name + "\n"):
            return block
    raise AssertionError("docs/serving.md has no nginx block '# %s'" % name)


class NginxTest(unittest.TestCase):
    def test_two_replicas_behind_nginx(self):
        self.assertTrue(os.path.exists(NGINX), "nginx is needed (Debian: apt-get install nginx)")
        a, b = Server("--parallel", "2"), Server("--parallel", "2")
        prefix = tempfile.mkdtemp(prefix="gemfa-nginx-")
        os.chmod(prefix, 0o755)
        nginx = None
        try:
            for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
                os.makedirs(os.path.join(prefix, "tmp", d), mode=0o777)
                os.chmod(os.path.join(prefix, "tmp", d), 0o777)
            port = free_port()
            upstreams = doc_block("gemfa-upstreams.conf")
            upstreams = upstreams.replace("127.0.0.1:8081", "127.0.0.1:%d" % a.port)
            upstreams = upstreams.replace("127.0.0.1:8082", "127.0.0.1:%d" % b.port)
            with open(os.path.join(prefix, "gemfa_location.conf"), "w") as f:
                f.write(doc_block("gemfa-location.conf"))
            with open(os.path.join(prefix, "nginx.conf"), "w") as f:
                f.write(CONF.format(prefix=prefix, port=port, body=upstreams))
            nginx = subprocess.Popen([NGINX, "-p", prefix, "-c", os.path.join(prefix, "nginx.conf"),
                                      "-e", os.path.join(prefix, "error.log")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)

            def post(body, conv=None, stream=False):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                h = {"Content-Type": "application/json"}
                if conv:
                    h["X-Conversation-Id"] = conv
                c.request("POST", "/v1/chat/completions", json.dumps(body), h)
                r = c.getresponse()
                data = r.read()
                c.close()
                return r.status, data

            for i in range(6):
                for conv in ("conv-a", "conv-b", "conv-c"):
                    st, _ = post(chat("سلام %d" % i, max_tokens=4), conv)
                    self.assertEqual(st, 200)
            for i in range(8):
                st, _ = post(chat("hello %d" % i, max_tokens=4))
                self.assertEqual(st, 200)
            st, raw = post(chat("سلام", max_tokens=16, stream=True), "conv-a")
            self.assertEqual(st, 200)
            self.assertEqual(sse_events(raw)[-1], "[DONE]")
            time.sleep(0.3)
            with open(os.path.join(prefix, "access.log")) as f:
                lines = [l.split() for l in f.read().splitlines()]
            by_conv = {}
            for conv, upstream, status in lines:
                by_conv.setdefault(conv, set()).add(upstream)
                self.assertEqual(status, "200")
            self.assertEqual(len(lines), 27)
            for conv in ("conv-a", "conv-b", "conv-c"):
                self.assertEqual(len(by_conv[conv]), 1, by_conv)   # sticky
            self.assertEqual(len(by_conv["-"]), 2, by_conv)        # both replicas serve the rest
        finally:
            if nginx:
                nginx.terminate()
                nginx.wait(timeout=20)
                nginx.stdout.close()
                nginx.stderr.close()
            self.assertEqual(a.stop()[0], 0)
            self.assertEqual(b.stop()[0], 0)
            shutil.rmtree(prefix, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
