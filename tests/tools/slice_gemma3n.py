#!/usr/bin/python3
"""slice_gemma3n.py - write a MatFormer sub-model of a Gemma 3n checkpoint as a
new Hugging Face directory, in numpy (the offline equivalent of
`gemfa --matformer SPEC`; the rules and their sources: docs/matformer.md).

  /usr/bin/python3 slice_gemma3n.py --spec SPEC IN_DIR OUT_DIR

SPEC as for gemfa: `e2b` (E4B -> E2B: FFN 8192, layers 20-24 skipped), or
`ffn=W[,W...][:skip=I[,I...]]` / `skip=I[,I...]` (one width for every kept
layer or one per kept layer in order; checkpoint layers to skip).

Per kept layer: gate_proj/up_proj keep their first W rows, down_proj its first
W columns; the layer is renumbered.  Skipped layers vanish with all their
tensors; their slices of embed_tokens_per_layer (columns) and
per_layer_model_projection (rows) are removed.  config.json: num_hidden_layers,
intermediate_size (a list), num_kv_shared_layers (minus the skipped shared
layers), layer_types and activation_sparsity_pattern (the kept layers' own
entries, written out explicitly).  Other tensors and files are copied.  The
output is one model.safetensors; bytes are sliced, never converted.
"""
import argparse
import json
import os
import re
import shutil
import struct
import sys

import numpy as np

RAW = {"F32": np.uint32, "F16": np.uint16, "BF16": np.uint16, "I8": np.uint8, "U8": np.uint8,
       "I32": np.uint32, "I64": np.uint64, "F64": np.uint64}
LAYER = re.compile(r"^(model\.language_model\.|model\.|language_model\.model\.)layers\.(\d+)\.(.+)$")
PRESETS = {"e2b": (35, 15, 8192, list(range(20, 25)))}


def parse_spec(spec):
    """(preset, widths, skips) from the spec text (widths [] = keep)."""
    if spec.lower() in PRESETS:
        return spec.lower(), None, None
    nums = re.compile(r"\d+(?:,\d+)*")
    widths, rest = [], spec
    if spec.startswith("ffn="):
        body, sep, rest = spec[4:].partition(":")
        if not nums.fullmatch(body) or (sep and not rest):
            raise SystemExit("bad spec %r" % spec)
        widths = [int(x) for x in body.split(",")]
        if not sep:
            return None, widths, []
    if not rest.startswith("skip=") or not nums.fullmatch(rest[5:]):
        raise SystemExit("bad spec %r" % spec)
    skips = sorted(int(x) for x in rest[5:].split(","))
    if len(set(skips)) != len(skips):
        raise SystemExit("repeated skip index")
    return None, widths, skips


def read_tensors(d):
    """{name: (dtype, shape, bytes)} of every safetensors file in d."""
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
    out = {}
    for fn in files:
        with open(os.path.join(d, fn), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            hdr = json.loads(f.read(n))
            data = f.read()
        hdr.pop("__metadata__", None)
        for name, e in hdr.items():
            a, b = e["data_offsets"]
            out[name] = (e["dtype"], list(e["shape"]), data[a:b])
    return out


def write_safetensors(path, tensors):
    hdr, off, blobs = {}, 0, []
    for name in sorted(tensors):
        dt, shape, raw = tensors[name]
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def as_array(t):
    dt, shape, raw = t
    return np.frombuffer(raw, dtype=RAW[dt]).reshape(shape)


def from_array(dt, a):
    a = np.ascontiguousarray(a)
    return (dt, list(a.shape), a.tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True)
    ap.add_argument("src")
    ap.add_argument("out")
    a = ap.parse_args()

    root = json.load(open(os.path.join(a.src, "config.json")))
    tc = root.get("text_config", root)
    L = tc["num_hidden_layers"]
    ims = tc.get("intermediate_size", 16384)
    ffn = list(ims) if isinstance(ims, list) else [ims] * L
    lt = tc.get("layer_types") or ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention"
                                   for i in range(L)]
    sp = tc.get("activation_sparsity_pattern")
    if sp is None:
        sp = [0.95] * (10 if L > 10 else 0) + [0.0] * (L - (10 if L > 10 else 0))
    elif not isinstance(sp, list):
        sp = [sp] * L
    shared = tc.get("num_kv_shared_layers", 0)
    S = L - shared

    preset, widths, skips = parse_spec(a.spec)
    if preset:
        n_layers, n_shared, w, skips = PRESETS[preset]
        if L != n_layers or shared != n_shared or min(ffn) < w:
            raise SystemExit("preset %s does not fit this checkpoint" % preset)
        widths = [w]
    if any(s >= L for s in skips):
        raise SystemExit("skip index out of range")
    kept = [l for l in range(L) if l not in skips]
    # HF: a shared layer reads the last layer before S of its own type
    for l in kept:
        if l >= S:
            src = max(j for j in range(S) if lt[j] == lt[l])
            if src in skips:
                raise SystemExit("layer %d is the KV source of kept layer %d" % (src, l))
    if not widths:
        widths = [ffn[l] for l in kept]
    elif len(widths) == 1:
        widths = widths * len(kept)
    if len(widths) != len(kept):
        raise SystemExit("%d widths for %d kept layers" % (len(widths), len(kept)))
    for l, w in zip(kept, widths):
        if not 1 <= w <= ffn[l]:
            raise SystemExit("width %d outside 1..%d for layer %d" % (w, ffn[l], l))
    new_index = {l: i for i, l in enumerate(kept)}
    width_of = dict(zip(kept, widths))

    src = read_tensors(a.src)
    out = {}
    for name, t in src.items():
        m = LAYER.match(name)
        if m:
            l = int(m.group(2))
            if l not in new_index:
                continue
            rest, W = m.group(3), width_of[l]
            if rest in ("mlp.gate_proj.weight", "mlp.up_proj.weight"):
                t = from_array(t[0], as_array(t)[:W, :])
            elif rest == "mlp.down_proj.weight":
                t = from_array(t[0], as_array(t)[:, :W])
            out["%slayers.%d.%s" % (m.group(1), new_index[l], rest)] = t
        elif name.endswith("embed_tokens_per_layer.weight"):
            x = as_array(t)
            x = x.reshape(x.shape[0], L, -1)[:, kept, :]
            out[name] = from_array(t[0], x.reshape(x.shape[0], -1))
        elif name.endswith("per_layer_model_projection.weight"):
            x = as_array(t)
            x = x.reshape(L, -1, x.shape[1])[kept]
            out[name] = from_array(t[0], x.reshape(-1, x.shape[-1]))
        else:
            out[name] = t

    os.makedirs(a.out, exist_ok=True)
    for fn in os.listdir(a.src):
        if fn.endswith(".safetensors") or fn in ("model.safetensors.index.json", "config.json", "golden"):
            continue
        p = os.path.join(a.src, fn)
        if os.path.isfile(p):
            shutil.copy(p, os.path.join(a.out, fn))
    tc["num_hidden_layers"] = len(kept)
    tc["intermediate_size"] = widths
    tc["num_kv_shared_layers"] = sum(1 for l in kept if l >= S)
    tc["layer_types"] = [lt[l] for l in kept]
    tc["activation_sparsity_pattern"] = [sp[l] for l in kept]
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(root, f, indent=2)
    write_safetensors(os.path.join(a.out, "model.safetensors"), out)
    print("wrote %s: %d of %d layers (skipped %s), FFN widths %s"
          % (a.out, len(kept), L, skips or "none", sorted(set(widths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
