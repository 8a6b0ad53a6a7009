"""Shared test helpers: where the fixtures are, and the tiny model loaded once."""
from __future__ import annotations

import json
import os
import struct
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.environ.get("GEMFA_SOURCE_ROOT") or os.path.normpath(
    os.path.join(HERE, "..", "..", ".."))
DATA = os.environ.get("GEMFA_TEST_DATA") or os.path.join(SOURCE_ROOT, "tests", "data")
TINY = os.path.join(DATA, "tiny-gemma3n")
GOLDEN = os.path.join(TINY, "golden")
TOKENIZER = os.path.join(DATA, "tokenizer")
HEADER = os.path.join(SOURCE_ROOT, "include", "gemfa.h")

LOGITS_TOL = 0.01  # golden.json: float32 engines, logits max |diff|


def jsonl(name: str) -> List[Dict[str, Any]]:
    with open(os.path.join(TOKENIZER, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def golden() -> Dict[str, Any]:
    with open(os.path.join(GOLDEN, "golden.json"), encoding="utf-8") as f:
        return json.load(f)


def read_f32(name: str) -> List[float]:
    with open(os.path.join(GOLDEN, name), "rb") as f:
        raw = f.read()
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def read_i32(name: str) -> List[int]:
    with open(os.path.join(GOLDEN, name), "rb") as f:
        raw = f.read()
    return list(struct.unpack(f"<{len(raw) // 4}i", raw))


def greedy() -> Dict[str, Any]:
    with open(os.path.join(DATA, "greedy", "chat-01.greedy.json"), encoding="utf-8") as f:
        return json.load(f)


def config() -> Dict[str, Any]:
    with open(os.path.join(TINY, "config.json"), encoding="utf-8") as f:
        return json.load(f)


def generation_config() -> Dict[str, Any]:
    with open(os.path.join(TINY, "generation_config.json"), encoding="utf-8") as f:
        return json.load(f)


_models: Dict[str, Any] = {}


def tiny_model(weights: str = "f32") -> Any:
    """The tiny fixture loaded once per weight type (tests must not close it)."""
    import gemfa
    if weights not in _models:
        _models[weights] = gemfa.Model(TINY, weights=weights)
    return _models[weights]


def max_abs_diff(a: Any, b: Any) -> float:
    return max((abs(float(x) - float(y)) for x, y in zip(a, b)), default=0.0)


def golden_short():
    """(tokens, last-position logits) of the short golden sequence, without numpy."""
    g = golden()["sequences"]["short"]
    n, vocab = g["logits_shape"]
    logits = read_f32(g["logits_file"])
    return read_i32(g["tokens_file"]), logits[(n - 1) * vocab:]
