#!/usr/bin/python3
"""make_lora.py - random PEFT LoRA adapters for a Gemma 3n checkpoint, and
the checkpoint with adapters merged in numpy (the reference for libgemfa's
--lora; docs/lora.md).  numpy only; no code from any other project.

  make  MODEL_DIR --out ADAPTER_DIR [--rank 8] [--alpha 16] [--rslora]
        [--targets q_proj,k_proj,...] [--layers 0,3,...] [--seed 0]
        [--dtype f32|bf16|f16] [--style language_model|model|legacy|bare]
        [--rel 0.3]
      writes adapter_config.json and adapter_model.safetensors as PEFT's
      save_pretrained does: tensors base_model.model.<module>.lora_A.weight
      [r, in] and ...lora_B.weight [out, r] (<module> named in the --style
      of prefix: model.language_model.layers.N..., model.layers.N...,
      language_model.model.layers.N... or layers.N...).  Values are random,
      sized so that scale*B@A is about --rel times the weight's RMS.

  merge MODEL_DIR --out MERGED_DIR ADAPTER_DIR[:SCALE] ...
      copies the checkpoint into one model.safetensors with every changed
      matrix replaced by F32  W + s*B@A,  s = float32(SCALE*alpha/r) (alpha/
      sqrt(r) with use_rslora; SCALE rounded to float32 first, as the C API
      takes a float), adapters in the order given.  B@A is summed over the
      rank in order in float32 (acc += B[:,k] A[k,:]), then W + s*acc: the
      same roundings as libgemfa, so loads of the merged copy and --lora
      loads of the base agree bit for bit in every weight type.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys

import numpy as np

ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODULE_PATH = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn",
               "o_proj": "self_attn", "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
STYLES = {"language_model": "model.language_model.", "model": "model.",
          "legacy": "language_model.model.", "bare": ""}
PREFIXES = ["model.language_model.", "model.", "language_model.model."]
ST_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2),
             "I8": (np.int8, 1), "U8": (np.uint8, 1), "F64": (np.float64, 8),
             "I32": (np.int32, 4), "I64": (np.int64, 8)}


# ----------------------------------------------------------------- files
def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n).decode("utf-8"))
    hdr.pop("__metadata__", None)
    return hdr, 8 + n


def shard_files(model_dir):
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        wm = json.load(open(idx))["weight_map"]
        return sorted(set(wm.values()))
    return ["model.safetensors"]


def all_tensors(model_dir):
    """name -> (path, dtype, shape, begin, end) over every shard."""
    out = {}
    for fn in shard_files(model_dir):
        path = os.path.join(model_dir, fn)
        hdr, base = read_header(path)
        for name, e in hdr.items():
            a, b = e["data_offsets"]
            out[name] = (path, e["dtype"], tuple(e["shape"]), base + a, base + b)
    return out


def read_tensor(entry):
    path, dtype, shape, a, b = entry
    with open(path, "rb") as f:
        f.seek(a)
        raw = f.read(b - a)
    if dtype == "BF16":
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32).reshape(shape)
    np_t = {"F32": "<f4", "F16": "<f2"}[dtype]
    return np.frombuffer(raw, dtype=np_t).astype(np.float32).reshape(shape)


def raw_bytes(entry):
    path, _, _, a, b = entry
    with open(path, "rb") as f:
        f.seek(a)
        return f.read(b - a)


def bf16_bits(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + (((u >> 16) & 1) + np.uint32(0x7FFF))) >> 16).astype(np.uint16)


def encode(a, dtype):
    """float32 array -> (safetensors dtype, bytes, the values as stored)."""
    if dtype == "bf16":
        bits = bf16_bits(a)
        return "BF16", bits.astype("<u2").tobytes(), (bits.astype(np.uint32) << 16).view(np.float32)
    if dtype == "f16":
        h = a.astype("<f2")
        return "F16", h.tobytes(), h.astype(np.float32)
    return "F32", a.astype("<f4").tobytes(), a.astype(np.float32)


def write_safetensors(path, items):
    """items: list of (name, st_dtype, shape, bytes)."""
    hdr = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dt, shape, data in items:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    raw = json.dumps(hdr, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for _, _, _, data in items:
            f.write(data)


def text_config(model_dir):
    c = json.load(open(os.path.join(model_dir, "config.json")))
    return c.get("text_config", c)


def decoder_prefix(tensors):
    for p in PREFIXES:
        if p + "embed_tokens.weight" in tensors:
            return p
    sys.exit("no embed_tokens.weight under any known prefix")


# ------------------------------------------------------------------ make
def cmd_make(a):
    tensors = all_tensors(a.model)
    prefix = decoder_prefix(tensors)
    tc = text_config(a.model)
    L = tc["num_hidden_layers"]
    layers = [int(x) for x in a.layers.split(",")] if a.layers else list(range(L))
    targets = a.targets.split(",")
    rng = np.random.default_rng(a.seed)
    factor = a.alpha / (math.sqrt(a.rank) if a.rslora else a.rank)
    items = []
    for l in layers:
        for t in targets:
            rel = "layers.%d.%s.%s" % (l, MODULE_PATH[t], t)
            name = prefix + rel + ".weight"
            if name not in tensors:
                continue
            _, _, (rows, cols), _, _ = tensors[name]
            # RMS of the weight from a sample of it (the whole of a small one)
            w = read_tensor(tensors[name]) if rows * cols <= (1 << 22) else None
            rms = float(np.sqrt(np.mean(w.astype(np.float64) ** 2))) if w is not None else 0.02
            sa = 1.0 / math.sqrt(cols)
            # scale*B@A entries ~ factor*sqrt(r)*sa*sb*sqrt(cols)  (A ~ U(-sa*√3, sa*√3))
            sb = a.rel * rms / (factor * math.sqrt(a.rank) * sa * math.sqrt(cols) + 1e-30)
            A = rng.uniform(-1, 1, (a.rank, cols)).astype(np.float32) * np.float32(sa * math.sqrt(3))
            B = rng.uniform(-1, 1, (rows, a.rank)).astype(np.float32) * np.float32(sb * math.sqrt(3))
            module = STYLES[a.style] + rel
            for half, m in (("A", A), ("B", B)):
                dt, data, _ = encode(m, a.dtype)
                items.append(("base_model.model.%s.lora_%s.weight" % (module, half), dt,
                              m.shape, data))
    if not items:
        sys.exit("no target matrix found")
    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "adapter_model.safetensors"), items)
    cfg = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": a.model,
        "r": a.rank, "lora_alpha": a.alpha, "lora_dropout": 0.0, "use_rslora": a.rslora,
        "target_modules": targets if not a.target_regex else a.target_regex,
        "fan_in_fan_out": False, "bias": "none", "modules_to_save": None,
        "use_dora": False, "rank_pattern": {}, "alpha_pattern": {},
        "init_lora_weights": True, "inference_mode": True,
    }
    with open(os.path.join(a.out, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    print("%s: %d pairs, rank %d" % (a.out, len(items) // 2, a.rank))


# ----------------------------------------------------------------- merge
def load_adapter(d):
    cfg = json.load(open(os.path.join(d, "adapter_config.json")))
    entries = all_tensors_file(os.path.join(d, "adapter_model.safetensors"))
    pairs = {}
    for name, e in entries.items():
        n = name[len("base_model.model."):] if name.startswith("base_model.model.") else name
        for half in ("A", "B"):
            suf = ".lora_%s.weight" % half
            if n.endswith(suf):
                pairs.setdefault(n[:-len(suf)], {})[half] = read_tensor(e)
    return cfg, pairs


def all_tensors_file(path):
    hdr, base = read_header(path)
    return {n: (path, e["dtype"], tuple(e["shape"]), base + e["data_offsets"][0],
                base + e["data_offsets"][1]) for n, e in hdr.items()}


def weight_name(module, prefix):
    for p in PREFIXES + ["language_model."]:
        if module.startswith(p):
            return prefix + module[len(p):] + ".weight"
    return prefix + module + ".weight"


def cmd_merge(a):
    tensors = all_tensors(a.model)
    prefix = decoder_prefix(tensors)
    deltas = {}  # weight name -> list of (s, A, B)
    for spec in a.adapters:
        d, scale = spec, 1.0
        if ":" in spec:
            head, tail = spec.rsplit(":", 1)
            try:
                scale, d = float(tail), head
            except ValueError:
                pass
        cfg, pairs = load_adapter(d)
        r = cfg.get("r", 8)
        alpha = cfg.get("lora_alpha", 8)
        f = float(np.float32(scale)) * alpha / (math.sqrt(r) if cfg.get("use_rslora") else r)
        s = np.float32(f)
        for module, ab in sorted(pairs.items()):
            deltas.setdefault(weight_name(module, prefix), []).append((s, ab["A"], ab["B"]))
    missing = [n for n in deltas if n not in tensors]
    if missing:
        sys.exit("adapter targets tensors the checkpoint lacks: %s" % missing[:3])
    os.makedirs(a.out, exist_ok=True)
    items = []
    for name in sorted(tensors):
        e = tensors[name]
        if name in deltas:
            w = read_tensor(e).astype(np.float32)
            for s, A, B in deltas[name]:
                acc = np.zeros(w.shape, np.float32)
                for k in range(A.shape[0]):
                    acc = acc + B[:, k:k + 1] * A[k:k + 1, :]
                w = w + s * acc
            items.append((name, "F32", w.shape, w.astype("<f4").tobytes()))
        else:
            items.append((name, e[1], e[2], raw_bytes(e)))
    write_safetensors(os.path.join(a.out, "model.safetensors"), items)
    for fn in os.listdir(a.model):
        if fn.endswith(".json") and not fn.startswith("model.safetensors"):
            shutil.copy(os.path.join(a.model, fn), os.path.join(a.out, fn))
    print("%s: %d matrices merged" % (a.out, len(deltas)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make")
    p.add_argument("model")
    p.add_argument("--out", required=True)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--rslora", action="store_true")
    p.add_argument("--targets", default=",".join(ALL_TARGETS))
    p.add_argument("--target-regex", help="write target_modules as this string")
    p.add_argument("--layers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["f32", "bf16", "f16"], default="f32")
    p.add_argument("--style", choices=sorted(STYLES), default="language_model")
    p.add_argument("--rel", type=float, default=0.3)
    p = sub.add_parser("merge")
    p.add_argument("model")
    p.add_argument("--out", required=True)
    p.add_argument("adapters", nargs="+")
    a = ap.parse_args()
    if a.cmd == "make":
        if float(a.alpha).is_integer():
            a.alpha = int(a.alpha)
        cmd_make(a)
    else:
        cmd_merge(a)


if __name__ == "__main__":
    main()
