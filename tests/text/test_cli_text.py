#!/usr/bin/python3
"""gemfa tokenize | detokenize | template against the golden files (TAP output).

Runs the CLI ($GEMFA_CLI) on the tiny tokenizer in tests/data and on the real
Gemma tokenizer ($GEMFA_REAL_TOKENIZER, a directory holding only
tokenizer.json and tokenizer_config.json): ids with and without BOS, decode
with and without skipping specials, chat renderings and ids, error records,
exit codes."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

CLI = os.environ["GEMFA_CLI"]
DATA = os.path.join(os.environ["GEMFA_TEST_DATA"], "tokenizer")
REAL = os.environ.get("GEMFA_REAL_TOKENIZER")
results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond), detail))


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def run(args, records=None, raw=None):
    data = raw if raw is not None else "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    p = subprocess.run([CLI] + args, input=data.encode(), capture_output=True, timeout=120)
    out = [json.loads(line) for line in p.stdout.decode().splitlines()]
    return p.returncode, out, p.stderr.decode()


def suite(label, model_dir, persian, decode, chat):
    texts = jsonl(os.path.join(DATA, "persian.jsonl"))
    want = {r["id"]: r for r in jsonl(os.path.join(DATA, persian))}
    rc, out, err = run(["tokenize", "-m", model_dir], [{"text": t["text"], "id": t["id"]} for t in texts])
    check(f"{label} tokenize exits 0", rc == 0, err)
    check(f"{label} tokenize answers every line", len(out) == len(texts))
    bad = [t["id"] for t, o in zip(texts, out) if o.get("ids") != want[t["id"]]["ids_bos"]]
    check(f"{label} tokenize = HF ids with BOS", not bad, bad[:5])
    rc, out, err = run(["tokenize", "-m", model_dir, "--no-bos"], texts)
    bad = [t["id"] for t, o in zip(texts, out) if o.get("ids") != want[t["id"]]["ids"]]
    check(f"{label} tokenize --no-bos = HF ids", rc == 0 and not bad, bad[:5])

    sot = run(["tokenize", "-m", model_dir, "--no-bos"], [{"text": "<start_of_turn>"}])[1][0]["ids"]
    rc, out, _ = run(["tokenize", "-m", model_dir, "--no-bos", "--no-special"], [{"text": "<start_of_turn>"}])
    check(f"{label} tokenize --no-special keeps markers as text",
          rc == 0 and len(sot) == 1 and sot[0] not in out[0]["ids"] and len(out[0]["ids"]) > 1, out)

    cases = jsonl(os.path.join(DATA, decode))
    rc, out, err = run(["detokenize", "-m", model_dir], cases)
    bad = [c["note"] for c, o in zip(cases, out) if o.get("text") != c["decoded"]]
    check(f"{label} detokenize = HF decode", rc == 0 and len(out) == len(cases) and not bad, bad)
    rc, out, err = run(["detokenize", "-m", model_dir, "--skip-special"], cases)
    bad = [c["note"] for c, o in zip(cases, out) if o.get("text") != c["decoded_skip"]]
    check(f"{label} detokenize --skip-special", rc == 0 and not bad, bad)
    # round trip of every golden text through both commands
    rc, out, _ = run(["detokenize", "-m", model_dir], [{"ids": want[t["id"]]["ids"]} for t in texts])
    bad = [t["id"] for t, o in zip(texts, out) if o.get("text") != want[t["id"]]["decoded"]]
    check(f"{label} detokenize of golden ids", rc == 0 and not bad, bad[:5])

    convs = jsonl(os.path.join(DATA, "chat.jsonl"))
    expected = {r["id"]: r for r in jsonl(os.path.join(DATA, chat))}
    rc, out, err = run(["template", "-m", model_dir], convs)
    check(f"{label} template exits 0", rc == 0 and len(out) == len(convs), err)
    for c, o in zip(convs, out):
        e = expected[c["id"]]
        if "error" in e:
            check(f"{label} template {c['id']} is an error record",
                  "error" in o and e["error"] in o["error"], o)
        else:
            check(f"{label} template {c['id']}",
                  o.get("text") == e["rendered"] and o.get("ids") == e["ids"], o)
    # add_generation_prompt defaults to true
    first = dict(convs[1])
    del first["add_generation_prompt"]
    _, out, _ = run(["template", "-m", model_dir], [first])
    check(f"{label} template add_generation_prompt defaults to true",
          out[0].get("text", "").endswith("<start_of_turn>model\n"), out)


def errors(model_dir):
    raw = ('{"text": "ok"}\n'
           'not json\n'
           '\n'
           '{"text": 7}\n'
           '[1]\n'
           '{"text": "\\ud800"}\n'
           '{"text": "a\\u0000b"}\n'
           '{"text": "last"}')
    rc, out, err = run(["tokenize", "-m", model_dir], raw=raw)
    check("tokenize: bad lines become error records, the run goes on",
          rc == 0 and len(out) == 8 and [("error" in o) for o in out] ==
          [False, True, True, True, True, True, False, False], out)
    rc, out, _ = run(["detokenize", "-m", model_dir], raw='{"ids": [-1]}\n{"ids": "x"}\n{"ids": [1e99]}\n{"ids": []}\n')
    check("detokenize: bad ids are error records", rc == 0 and [("error" in o) for o in out] ==
          [True, True, True, False] and out[3]["text"] == "", out)
    rc, out, _ = run(["template", "-m", model_dir], raw=(
        '{"messages": []}\n'
        '{"messages": [{"role": "user"}]}\n'
        '{"messages": [{"role": "user", "content": "x"}], "add_generation_prompt": 1}\n'
        '{"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " a "},'
        ' {"type": "audio"}]}], "add_generation_prompt": false}\n'))
    check("template: bad records are error records", rc == 0 and [("error" in o) for o in out] ==
          [True, True, True, False], out)
    check("template: image and audio items render as soft tokens",
          out[3].get("text") == "<bos><start_of_turn>user\n<image_soft_token>a<audio_soft_token>"
          "<end_of_turn>\n", out[3])
    rc, _, err = run(["tokenize", "-m", "/nonexistent/dir"], raw="")
    check("a model that does not load exits 1", rc == 1 and "nonexistent" in err, err)
    rc, _, err = run(["tokenize", "--no-such-option"], raw="")
    check("a usage error exits 2", rc == 2, err)
    rc, _, err = run(["detokenize", "-m", model_dir, "--no-bos"], raw="")
    check("an option of another subcommand is a usage error", rc == 2, err)


def main():
    tiny_dir = tempfile.mkdtemp(prefix="gemfa-cli-")
    try:
        # a directory with nothing but the two tokenizer files
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(DATA, "tiny", f), tiny_dir)
        suite("tiny", tiny_dir, "tiny.expected.jsonl", "tiny.decode.expected.jsonl",
              "tiny.chat.expected.jsonl")
        errors(tiny_dir)
    finally:
        shutil.rmtree(tiny_dir)
    if REAL:
        check("the real tokenizer directory holds only the tokenizer files",
              sorted(os.listdir(REAL)) == ["tokenizer.json", "tokenizer_config.json"], os.listdir(REAL))
        suite("real", REAL, "persian.expected.jsonl", "decode.expected.jsonl", "chat.expected.jsonl")
    else:
        check("GEMFA_REAL_TOKENIZER is set (run through meson test)", False)
    print("TAP version 13")
    print(f"1..{len(results)}")
    for i, (name, ok, detail) in enumerate(results, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {name}")
        if not ok:
            print(f"  # {str(detail)[:2000]}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
