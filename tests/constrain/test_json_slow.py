#!/usr/bin/env python3
"""test_json_slow.py — libgemfa's "any JSON" constraint against slow_json.py,
an independent checker that tries every token of the tiny model's
vocabulary on its own.

Through the C API (ctypes, no binding code): a greedy run of 50 steps where
the library's constrained greedy pick must equal the argmax over the tokens
slow_json allows (ties to the lower id), and two sampled runs (temperature
1.5); at every step of all three the library's whole mask must equal the
reference's allowed set.
"""
from __future__ import annotations

import ctypes as C
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slow_json  # noqa: E402

BUILD = os.environ.get("GEMFA_BUILD_ROOT", "build")
DATA = os.environ.get("GEMFA_TEST_DATA", "tests/data")
MODEL = os.path.join(DATA, "tiny-gemma3n")
STEPS = 50
PROMPTS = [b"Answer in JSON:", b"{", b"Give a list of numbers as JSON", "سلام".encode(),
           b"x", b"Return an object", b"[", b"JSON please"]

lib = C.CDLL(os.path.join(BUILD, "lib", "libgemfa.so"))
P = C.c_void_p
lib.gemfa_last_error.restype = C.c_char_p
lib.gemfa_session_logits.argtypes = [P, C.POINTER(C.POINTER(C.c_float)), C.POINTER(C.c_size_t)]
lib.gemfa_sample.argtypes = [P, C.POINTER(C.c_float), C.c_size_t, P, C.c_size_t,
                             C.POINTER(C.c_int32)]
lib.gemfa_decode.argtypes = [P, C.POINTER(C.c_int32), C.c_size_t, P]
lib.gemfa_constraint_new_json.argtypes = [P, C.c_char_p, C.c_size_t, C.POINTER(P)]
lib.gemfa_constraint_mask.argtypes = [P, C.POINTER(C.c_uint8), C.c_size_t, C.POINTER(C.c_size_t)]
lib.gemfa_sampler_set_temperature.argtypes = [P, C.c_float]
lib.gemfa_sampler_set_seed.argtypes = [P, C.c_uint64]
lib.gemfa_sampler_set_constraint.argtypes = [P, P]
lib.gemfa_tokenize.argtypes = [P, C.c_char_p, C.c_size_t, C.c_uint, C.POINTER(C.c_int32),
                               C.c_size_t, C.POINTER(C.c_size_t)]
for fn in ("gemfa_model_free", "gemfa_context_free", "gemfa_session_free", "gemfa_sampler_free",
           "gemfa_constraint_free", "gemfa_session_reset"):
    getattr(lib, fn).argtypes = [P]


def ok(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"{what}: status {status}: {lib.gemfa_last_error().decode()}")


def eog_ids() -> list[int]:
    import json
    with open(os.path.join(MODEL, "generation_config.json")) as f:
        e = json.load(f)["eos_token_id"]
    return e if isinstance(e, list) else [e]


def main() -> int:
    tokens = slow_json.token_bytes(os.path.join(MODEL, "tokenizer.json"))
    eog = eog_ids()
    model, ctx, sess, smp, con = P(), P(), P(), P(), P()
    ok(lib.gemfa_model_load(MODEL.encode(), None, C.byref(model)), "load")
    ok(lib.gemfa_context_new(model, None, C.byref(ctx)), "context")
    ok(lib.gemfa_session_new(ctx, None, C.byref(sess)), "session")
    ok(lib.gemfa_sampler_new(None, C.byref(smp)), "sampler")
    ok(lib.gemfa_constraint_new_json(model, None, 0, C.byref(con)), "constraint")
    ok(lib.gemfa_sampler_set_constraint(smp, con), "attach")
    ids = (C.c_int32 * 64)()
    n = C.c_size_t()
    failures = 0
    greedy_steps = 0
    # greedy runs on several prompts until 50 greedy steps were compared,
    # then two sampled runs
    runs = [(p, 0.0) for p in PROMPTS] + [(PROMPTS[0], 1.5), (PROMPTS[1], 1.5)]
    for run, (prompt, temp) in enumerate(runs):
        if temp == 0.0 and greedy_steps >= STEPS:
            continue
        ok(lib.gemfa_tokenize(model, prompt, len(prompt), 3, ids, 64, C.byref(n)), "tokenize")
        lib.gemfa_session_reset(sess)
        lib.gemfa_constraint_reset(con)
        ok(lib.gemfa_sampler_set_temperature(smp, temp), "temperature")
        ok(lib.gemfa_sampler_set_seed(smp, 1000 + run), "seed")
        ok(lib.gemfa_decode(sess, ids, n.value, None), "decode prompt")
        text = b""
        for step in range(STEPS):
            logits = C.POINTER(C.c_float)()
            nv = C.c_size_t()
            ok(lib.gemfa_session_logits(sess, C.byref(logits), C.byref(nv)), "logits")
            mask = (C.c_uint8 * nv.value)()
            got = C.c_size_t()
            ok(lib.gemfa_constraint_mask(con, mask, nv.value, C.byref(got)), "mask")
            fast = {i for i in range(nv.value) if mask[i]}
            slow = slow_json.allowed(text, tokens, eog)
            if fast != slow:
                print(f"run {run} step {step} after {text!r}: library-only "
                      f"{sorted(fast - slow)[:10]}, reference-only {sorted(slow - fast)[:10]}")
                failures += 1
                break
            pick = C.c_int32()
            ok(lib.gemfa_sample(smp, logits, nv.value, None, 0, C.byref(pick)), "sample")
            if temp == 0.0:
                greedy_steps += 1
                best = max(slow, key=lambda i: (logits[i], -i))
                if pick.value != best:
                    print(f"greedy step {step}: library {pick.value}, reference {best}")
                    failures += 1
                    break
            if pick.value in eog:
                break
            text += tokens[pick.value]
            one = (C.c_int32 * 1)(pick.value)
            ok(lib.gemfa_decode(sess, one, 1, None), "decode")
        print(f"run {run} (temperature {temp}): {step + 1} steps, {text.decode('utf-8', 'replace')!r}"
              f" -> {slow_json.check(text)}")
    for fn, h in (("gemfa_sampler_free", smp), ("gemfa_constraint_free", con),
                  ("gemfa_session_free", sess), ("gemfa_context_free", ctx),
                  ("gemfa_model_free", model)):
        getattr(lib, fn)(h)
    if greedy_steps < STEPS:
        print(f"only {greedy_steps} greedy steps compared")
        failures += 1
    print(f"{greedy_steps} greedy steps compared")
    print("FAIL" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
