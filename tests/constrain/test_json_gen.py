#!/usr/bin/env python3
"""test_json_gen.py — sampled generations from the tiny model under JSON
constraints, checked by validators libgemfa did not write: Python's json
module, and ajv (npm, tests/constrain/fetch_ajv.sh) for the schemas.

  - bounded schemas (every string, array and number bounded): every
    generation ends with an end-of-generation token within 200 tokens, parses,
    and validates;
  - "any JSON": every generation that ends parses; every one cut by the
    200-token budget is a valid prefix: a completion is built for it and
    Python's json must accept prefix + completion (a prefix with an error
    cannot be completed, whatever the completion).

usage: test_json_gen.py [RUNS]   (default $GEMFA_JSON_RUNS or 40 per grammar;
tests/constrain/run_json_full.sh runs 1,000)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("GEMFA_BUILD_ROOT", "build")
DATA = os.environ.get("GEMFA_TEST_DATA", os.path.join(HERE, "..", "data"))
MODEL = os.path.join(DATA, "tiny-gemma3n")
BUDGET = 200
TEMPERATURE = "1.5"

# Worst cases (one token per byte, every whitespace gap full: 3 bytes at
# depth 1, 5 at depth 2): PERSON 166 tokens, LIST 60, RECORD 190, all < 200.
SCHEMAS = {
    "person": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 6},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 2},
            "ok": {"type": "boolean"},
        },
        "required": ["name", "ok"],
        "additionalProperties": False,
    },
    "list": {"type": "array", "items": {"type": "integer", "minimum": -50, "maximum": 50},
             "minItems": 1, "maxItems": 5},
    "record": {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 1, "maximum": 9999},
            "status": {"enum": ["ok", "fail", "پایان"]},
            "value": {"type": ["number", "null"], "minimum": -10, "maximum": 10},
            "child": {"type": "object",
                      "properties": {"x": {"type": "boolean"},
                                     "y": {"type": "string", "minLength": 1, "maxLength": 2}},
                      "required": ["x"]},
        },
        "required": ["id", "status", "child"],
    },
}


def complete_prefix(p: bytes) -> bytes:
    """A suffix that completes p if p is a valid JSON prefix (json decides)."""
    stack = []  # [kind, state]: kind "{" or "["
    i, n = 0, len(p)
    in_str = False
    esc = None  # None, "\\", or number of hex digits read after \\u
    str_is_key = False
    num = lit = None
    out = b""

    def value_done():
        if stack:
            stack[-1][1] = "after"

    while i < n:
        c = p[i:i + 1]
        if in_str:
            if esc == "\\":
                esc = 0 if c == b"u" else None
            elif isinstance(esc, int):
                esc = esc + 1 if esc < 3 else None
            elif c == b"\\":
                esc = "\\"
            elif c == b'"':
                in_str = False
                if str_is_key:
                    stack[-1][1] = "colon"
                else:
                    value_done()
            i += 1
            continue
        if num is not None:
            if c in b"0123456789.eE+-":
                num += c
                i += 1
                continue
            num = None
            value_done()
        if lit is not None:
            lit += c
            i += 1
            if lit in (b"true", b"false", b"null"):
                lit = None
                value_done()
            continue
        if c in b" \n\t\r":
            pass
        elif c in b"{[":
            value_done()  # the container is its parent's value
            stack.append([c.decode(), "open"])
        elif c in b"}]":
            stack.pop()
            value_done()
        elif c == b",":
            stack[-1][1] = "comma"
        elif c == b":":
            stack[-1][1] = "value"
        elif c == b'"':
            in_str = True
            str_is_key = bool(stack) and stack[-1][0] == "{" and stack[-1][1] in ("open", "comma")
        elif c in b"-0123456789":
            num = c
        elif c in b"tfn":
            lit = c
        i += 1
    if in_str:
        # finish a partial UTF-8 character with whatever continuation decodes
        tail = p[-4:]
        for cut in range(1, 4):
            lead = tail[-cut:] if cut <= len(tail) else b""
            if lead and lead[0] >= 0xC0:
                need = (2 if lead[0] < 0xE0 else 3 if lead[0] < 0xF0 else 4) - len(lead)
                for b in range(0x80, 0xC0):
                    try:
                        (lead + bytes([b] * need)).decode("utf-8")
                        out += bytes([b] * need)
                        break
                    except UnicodeDecodeError:
                        continue
                break
        if esc == "\\":
            out += b"n"
        elif isinstance(esc, int):
            out += b"0" * (4 - esc)
        out += b'"'
        if str_is_key:
            out += b":0"
        value_done()
    elif num is not None:
        if num[-1:] in b"-.eE+":
            out += b"0"
        value_done()
    elif lit is not None:
        for w in (b"true", b"false", b"null"):
            if w.startswith(lit):
                out += w[len(lit):]
        value_done()
    elif not stack and not p.strip():
        out += b"0"
    for kind, state in reversed(stack):
        if kind == "{":
            out += {"open": b"}", "comma": b'"k":0}', "colon": b":0}", "value": b"0}",
                    "after": b"}"}[state]
        else:
            out += {"open": b"]", "comma": b"0]", "after": b"]", "value": b"0]"}[state]
    return out


def generate(schema_path: str, runs: int, seed: int) -> list[dict]:
    exe = os.path.join(BUILD, "tests", "constrain", "json_gen")
    r = subprocess.run([exe, MODEL, schema_path, str(runs), str(seed), str(BUDGET), TEMPERATURE],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"json_gen failed: {r.stderr}")
    return [json.loads(line) for line in r.stdout.splitlines()]


def ajv_check(schema_path: str, texts: list[str]) -> list[str]:
    modules = subprocess.run([os.path.join(HERE, "fetch_ajv.sh")], capture_output=True, text=True,
                             check=True).stdout.strip()
    r = subprocess.run(["node", os.path.join(HERE, "validate.cjs"), modules, schema_path],
                       input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True,
                       text=True, check=True)
    return r.stdout.splitlines()


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("GEMFA_JSON_RUNS", "40"))
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        grammars = [("any", None)] + list(SCHEMAS.items())
        for gi, (name, schema) in enumerate(grammars):
            path = "-"
            if schema is not None:
                path = os.path.join(tmp, name + ".json")
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(schema, f, ensure_ascii=False)
            gens = generate(path, runs, 1 + 100000 * gi)
            ended = cut = 0
            texts = []
            for g in gens:
                raw = bytes.fromhex(g["hex"])
                if g["reason"] == "eog":
                    ended += 1
                    try:
                        text = raw.decode("utf-8")
                        json.loads(text)
                        texts.append(text)
                    except (UnicodeDecodeError, ValueError) as e:
                        print(f"{name} seed {g['seed']}: ended but does not parse ({e}): {raw!r}")
                        failures += 1
                    continue
                cut += 1
                if schema is not None:
                    print(f"{name} seed {g['seed']}: no end within {BUDGET} tokens: {raw!r}")
                    failures += 1
                    continue
                try:
                    json.loads((raw + complete_prefix(raw)).decode("utf-8"))
                except (UnicodeDecodeError, ValueError, IndexError, KeyError) as e:
                    print(f"{name} seed {g['seed']}: cut text is not a JSON prefix ({e}): {raw!r}")
                    failures += 1
            if schema is not None and texts:
                for text, verdict in zip(texts, ajv_check(path, texts)):
                    if verdict != "ok":
                        print(f"{name}: ajv: {verdict}: {text!r}")
                        failures += 1
            lengths = sorted(len(g["ids"]) for g in gens)
            print(f"{name}: {len(gens)} generations, {ended} ended, {cut} cut at {BUDGET} tokens, "
                  f"median {lengths[len(lengths) // 2]} tokens, longest {lengths[-1]}")
            if len(gens) != runs:
                failures += 1
    print("FAIL" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
