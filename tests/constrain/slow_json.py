"""slow_json.py — an independent, slow reference for libgemfa's "any JSON"
constraint: a recursive-descent checker that parses a byte string from
scratch and says whether it is a complete JSON text, a proper prefix of one,
or neither, under the rules libgemfa documents (gemfa.h, "Constrained
output"):

  - whitespace (space, \\n, \\t, \\r): at most 1 byte before and after the
    top-level value, at most min(1 + 2 * depth, 15) bytes in each gap inside
    a container at depth d (the outermost container is depth 1);
  - numbers: -?(0|[1-9]d{0,18})(.d{1,19})?([eE][+-]?d{1,3})?
  - strings: valid UTF-8 without bytes < 0x20; escapes \\" \\\\ \\/ \\b \\f \\n
    \\r \\t and \\uXXXX outside D800-DFFF;
  - at most 63 nested containers.

It shares no code with the C implementation (which is a pushdown automaton
stepped byte by byte with a vocabulary trie); tokens are checked by
re-parsing prefix + token bytes, one token at a time.
"""
from __future__ import annotations

import json

COMPLETE, PREFIX, INVALID = "complete", "prefix", "invalid"
MAX_CONTAINERS = 63


class _Incomplete(Exception):
    """The input ended where more bytes could still make it valid."""


class _Invalid(Exception):
    """No continuation can make the input valid."""


class _Parser:
    def __init__(self, data: bytes):
        self.d = data
        self.i = 0

    def peek(self) -> int:
        if self.i >= len(self.d):
            raise _Incomplete
        return self.d[self.i]

    def ws(self, limit: int) -> None:
        n = 0
        while self.i < len(self.d) and self.d[self.i] in b" \n\t\r":
            n += 1
            if n > limit:
                raise _Invalid
            self.i += 1

    def value(self, depth: int) -> None:
        c = self.peek()
        if c == ord("{"):
            self.container(depth + 1, obj=True)
        elif c == ord("["):
            self.container(depth + 1, obj=False)
        elif c == ord('"'):
            self.string()
        elif c == ord("-") or ord("0") <= c <= ord("9"):
            self.number()
        elif c in b"tfn":
            for word in (b"true", b"false", b"null"):
                if word[0] == c:
                    for b in word:
                        if self.peek() != b:
                            raise _Invalid
                        self.i += 1
                    return
        else:
            raise _Invalid

    def container(self, depth: int, obj: bool) -> None:
        if depth > MAX_CONTAINERS:
            raise _Invalid
        gap = min(1 + 2 * depth, 15)
        close = ord("}") if obj else ord("]")
        self.i += 1
        self.ws(gap)
        if self.peek() == close:
            self.i += 1
            return
        while True:
            if obj:
                if self.peek() != ord('"'):
                    raise _Invalid
                self.string()
                self.ws(gap)
                if self.peek() != ord(":"):
                    raise _Invalid
                self.i += 1
                self.ws(gap)
            self.value(depth)
            self.ws(gap)
            c = self.peek()
            self.i += 1
            if c == close:
                return
            if c != ord(","):
                raise _Invalid
            self.ws(gap)

    def digits(self, lo: int, hi: int) -> int:
        n = 0
        while self.i < len(self.d) and 0x30 <= self.d[self.i] <= 0x39:
            n += 1
            if n > hi:
                raise _Invalid
            self.i += 1
        if n < lo:
            if self.i >= len(self.d):
                raise _Incomplete
            raise _Invalid
        return n

    def number(self) -> None:
        # the number is the last thing read when the input ends inside it:
        # _Incomplete only when a required part is missing
        if self.d[self.i] == ord("-"):
            self.i += 1
        first = self.peek()
        if first == ord("0"):
            self.i += 1
        elif ord("1") <= first <= ord("9"):
            self.digits(1, 19)
        else:
            raise _Invalid
        if self.i < len(self.d) and self.d[self.i] == ord("."):
            self.i += 1
            self.digits(1, 19)
        if self.i < len(self.d) and self.d[self.i] in b"eE":
            self.i += 1
            if self.peek() in b"+-":
                self.i += 1
            self.digits(1, 3)

    def string(self) -> None:
        self.i += 1
        while True:
            c = self.peek()
            if c == ord('"'):
                self.i += 1
                return
            if c < 0x20:
                raise _Invalid
            if c == ord("\\"):
                self.i += 1
                e = self.peek()
                self.i += 1
                if e == ord("u"):
                    hexd = b""
                    for _ in range(4):
                        h = self.peek()
                        if h not in b"0123456789abcdefABCDEF":
                            raise _Invalid
                        hexd += bytes([h])
                        self.i += 1
                        if len(hexd) == 2 and 0xD8 <= int(hexd, 16) <= 0xDF:
                            raise _Invalid
                elif e not in b'"\\/bfnrt':
                    raise _Invalid
                continue
            if c < 0x80:
                self.i += 1
                continue
            # one UTF-8 character: decode what is there with Python's codec
            need = 2 if 0xC2 <= c <= 0xDF else 3 if 0xE0 <= c <= 0xEF else 4 if 0xF0 <= c <= 0xF4 else 0
            if need == 0:
                raise _Invalid
            chunk = self.d[self.i:self.i + need]
            if len(chunk) < need:
                # a partial character: valid if some completion decodes
                for tail in range(0x80, 0xC0):
                    try:
                        (chunk + bytes([tail] * (need - len(chunk)))).decode("utf-8")
                        raise _Incomplete
                    except UnicodeDecodeError:
                        continue
                raise _Invalid
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                raise _Invalid from None
            self.i += need


def check(data: bytes) -> str:
    """COMPLETE, PREFIX or INVALID for a whole generated text."""
    p = _Parser(data)
    try:
        p.ws(1)
        p.value(0)
        p.ws(1)
    except _Incomplete:
        return PREFIX
    except _Invalid:
        return INVALID
    if p.i != len(data):
        return INVALID
    # a complete text must also be what Python's json reads
    json.loads(data.decode("utf-8"))
    return COMPLETE


def token_bytes(tokenizer_json: str) -> dict[int, bytes]:
    """Every id's bytes as the Gemma decoder writes it alone (special tokens
    left out), read straight from tokenizer.json."""
    with open(tokenizer_json, encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    pieces = {}
    items = vocab.items() if isinstance(vocab, dict) else ((p, i) for i, (p, _s) in enumerate(vocab))
    for piece, i in items:
        pieces[i] = piece
    special = set()
    for a in tok.get("added_tokens", []):
        pieces[a["id"]] = a["content"]
        if a.get("special"):
            special.add(a["id"])
    out = {}
    for i, piece in pieces.items():
        if i in special:
            continue
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            out[i] = bytes([int(piece[3:5], 16)])
        else:
            b = piece.replace("\u2581", " ").encode("utf-8")
            if b:
                out[i] = b
    return out


def allowed(prefix: bytes, tokens: dict[int, bytes], eog: list[int]) -> set[int]:
    """Ids allowed after `prefix`: every token tried on its own."""
    ok = {i for i, b in tokens.items() if check(prefix + b) != INVALID}
    if check(prefix) == COMPLETE:
        ok.update(eog)
    return ok
