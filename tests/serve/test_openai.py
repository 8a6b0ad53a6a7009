"""The official `openai` npm package (pinned in package-lock.json) against
gemfa serve: streamed and non-streamed greedy chat completions give the
text of `gemfa generate --chat`; an unsupported n answers 400 that the SDK
surfaces as an APIError with the param."""
import json
import os
import subprocess
import unittest

from serve_util import CLI, Server

HERE = os.path.dirname(os.path.abspath(__file__))


class OpenAISDKTest(unittest.TestCase):
    def test_openai_sdk(self):
        npm = subprocess.run([os.path.join(HERE, "fetch_npm.sh")], capture_output=True, text=True,
                             timeout=240)
        self.assertEqual(npm.returncode, 0, npm.stderr)
        npm_dir = npm.stdout.strip()
        s = Server()
        try:
            for prompt in ("سلام! حالت چطوره؟", "Hello, who are you?"):
                ref = subprocess.run([CLI, "generate", "--chat", "-p", prompt, "--temp", "0", "-n", "32",
                                      "--json"], capture_output=True, text=True, timeout=60)
                ref = json.loads(ref.stdout)
                p = subprocess.run(["node", os.path.join(HERE, "openai_client.cjs"), npm_dir, s.url,
                                    prompt, "32"], capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                out = json.loads(p.stdout)
                self.assertEqual(out["plain"], ref["text"])
                self.assertEqual(out["streamed"], ref["text"])
                self.assertGreater(out["chunks"], 2)
                finish = "stop" if ref["stop"] == "eog" else "length"
                self.assertEqual(out["plain_finish"], finish)
                self.assertEqual(out["finish"], finish)
                self.assertEqual(out["usage"]["completion_tokens"], len(ref["ids"]))
                self.assertEqual(out["models"], ["tiny-gemma3n"])
                self.assertEqual(out["bad"]["status"], 400)
                self.assertEqual(out["bad"]["param"], "n")
        finally:
            self.assertEqual(s.stop()[0], 0)


if __name__ == "__main__":
    unittest.main()
