"""The chat page in a real browser (Debian's chromium, headless, driven by
puppeteer-core): a Persian message renders right to left, an English one
left to right, a reply forced to start in Persian right to left; the
screenshot is kept in BUILD/test-artifacts/serve_page.png."""
import json
import os
import shutil
import subprocess
import unittest

from serve_util import Server

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class BrowserTest(unittest.TestCase):
    def test_page_directions(self):
        if not os.path.exists(CHROMIUM) or not shutil.which("node"):
            self.fail("chromium and node are needed (Debian: apt-get install chromium nodejs)")
        npm = subprocess.run([os.path.join(HERE, "fetch_npm.sh")], capture_output=True, text=True,
                             timeout=240)
        self.assertEqual(npm.returncode, 0, npm.stderr)
        shot = os.path.join(os.environ["GEMFA_BUILD_ROOT"], "test-artifacts", "serve_page.png")
        s = Server()
        try:
            st, ids = s.post("/tokenize", {"text": "سلام"})
            persian = ids["ids"][0]
            p = subprocess.run(["node", os.path.join(HERE, "browser_page.cjs"), npm.stdout.strip(), s.url,
                                str(persian), shot], capture_output=True, text=True, timeout=150)
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            out = json.loads(p.stdout)
        finally:
            self.assertEqual(s.stop()[0], 0)
        self.assertEqual(out["errors"], [])
        self.assertEqual(out["inputDir"], "auto")
        self.assertEqual(out["injected"], 0)
        msgs = out["messages"]
        self.assertEqual([m["role"] for m in msgs], ["user", "assistant"] * 3)
        for m in msgs:
            self.assertEqual(m["dir"], "auto")
        self.assertEqual(msgs[0]["direction"], "rtl")   # the Persian message
        self.assertEqual(msgs[2]["direction"], "ltr")   # the English one
        self.assertTrue(msgs[5]["text"].startswith("سلام"), msgs[5])
        self.assertEqual(msgs[5]["direction"], "rtl")   # the reply forced into Persian
        self.assertGreater(os.path.getsize(shot), 1000)


if __name__ == "__main__":
    unittest.main()
