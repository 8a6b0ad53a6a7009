#!/usr/bin/python3
"""make_tiny_gemma3n.py - write a random-weight Gemma 3n checkpoint directory in
the Hugging Face multimodal layout (Gemma3nForConditionalGeneration naming).

  /usr/bin/python3 make_tiny_gemma3n.py --out DIR [--seed 0] [--preset tiny]
                                        [--tokenizer-dir DIR]
         [--layers N] [--window W] [--kv-shared N] [--sparse-layers N]
         [--sparsity S] [--dtype bf16|f16|f32] [--single-file] [--text-only]

Presets
  tiny    hidden 64, 25 layers (pattern 4 sliding : 1 full), 4 heads / 2 KV
          heads, head_dim 16, ffn 128, per-layer input dim 8, laurel rank 8,
          sliding window 8, num_kv_shared_layers 5 (layers 20..24 reuse KV of
          layers 18/19), sparsity 0.95 on layers 0..9, vocab 1024 of which the
          last 32 ids are the vision/audio ranges (vocab_size_per_layer_input
          992).  Chosen so that llama.cpp (which hard-codes "first KV-shared
          layer = 20" and "sparsity on layers < 10") computes the same thing.
          With --tokenizer-dir the vocabulary follows the tokenizer and the
          vision range starts at its <end_of_image> id (audio range at
          <end_of_audio>, else right after the vision range).
  tiny10  the 10-layer variant: 10 layers, num_kv_shared_layers 4 (layers
          6..9 reuse layer 5 (sliding) / 4 (full)), sparsity on layers 0..2.
          Valid for HF; llama.cpp cannot reproduce it (see the spec).
  e4b     real E4B dimensions (~14 GB of bf16), random values, written fast.

Variations (tiny presets; every one defaults to the preset's value, and with
none given the output is byte for byte what this tool always wrote)
  --layers N         number of decoder layers (pattern stays 4 sliding : 1 full)
  --window W         sliding window
  --kv-shared N      num_kv_shared_layers (the last N layers reuse earlier KV)
  --sparse-layers N  activation sparsity on layers 0..N-1
  --sparsity S       the sparsity target of those layers (default 0.95)
  --dtype D          bf16 (default), f16 or f32 weights in the files.  The
                     values are drawn in float32 and rounded once to D, so
                     the same seed gives the same model up to that rounding
  --single-file      one model.safetensors, no index
  --text-only        no embed_vision/embed_audio, towers or their configs

Everything is deterministic in --seed.  Weights are stored as bf16 (unless
--dtype), split over two shards with model.safetensors.index.json; a few
dummy vision/audio tower tensors are included so that loaders must skip them.
No code from any other project is used here.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np


# --------------------------------------------------------------------------
# bf16 helpers and a tiny safetensors writer
# --------------------------------------------------------------------------
def f32_to_bf16_bits(a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32)
    rounding = ((u >> 16) & 1) + np.uint32(0x7FFF)
    return ((u + rounding) >> 16).astype(np.uint16)


# --dtype -> (element dtype written, safetensors name, bytes per element);
# bf16 chunks arrive as uint16 bit patterns, the others as float32 values.
DTYPES = {"bf16": ("<u2", "BF16", 2), "f16": ("<f2", "F16", 2), "f32": ("<f4", "F32", 4)}


class ShardWriter:
    """Streams tensors into one .safetensors file. Header is written first, so
    the list of (name, shape) must be known in advance."""

    def __init__(self, path, specs, dtype="bf16"):
        self.path = path
        self.np_dtype, self.st_dtype, self.size = DTYPES[dtype]
        hdr = {"__metadata__": {"format": "pt"}}
        off = 0
        self.order = []
        for name, shape in specs:
            n = int(np.prod(shape)) * self.size
            hdr[name] = {"dtype": self.st_dtype, "shape": list(shape), "data_offsets": [off, off + n]}
            self.order.append((name, tuple(shape), off, n))
            off += n
        raw = json.dumps(hdr, separators=(",", ":")).encode()
        raw += b" " * ((8 - len(raw) % 8) % 8)
        self.total = off
        self.f = open(path, "wb")
        self.f.write(struct.pack("<Q", len(raw)))
        self.f.write(raw)
        self.i = 0

    def write(self, name, bits_chunks):
        ename, shape, off, n = self.order[self.i]
        assert ename == name, (ename, name)
        w = 0
        for ch in bits_chunks:
            b = np.ascontiguousarray(ch, dtype=self.np_dtype).tobytes()
            self.f.write(b)
            w += len(b)
        assert w == n, (name, w, n)
        self.i += 1

    def close(self):
        assert self.i == len(self.order)
        self.f.close()


# --------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------
def preset(name):
    if name == "tiny":
        return dict(hidden=64, layers=25, heads=4, kv_heads=2, head_dim=16, ffn=128, ple=8,
                    laurel=8, window=8, kv_shared=5, n_sparse=10, vocab=1024, mm_vocab=16,
                    vis_hidden=32, aud_hidden=48, max_pos=4096)
    if name == "tiny10":
        return dict(hidden=64, layers=10, heads=4, kv_heads=2, head_dim=16, ffn=128, ple=8,
                    laurel=8, window=8, kv_shared=4, n_sparse=3, vocab=1024, mm_vocab=16,
                    vis_hidden=32, aud_hidden=48, max_pos=4096)
    if name == "e4b":
        return dict(hidden=2048, layers=35, heads=8, kv_heads=2, head_dim=256, ffn=16384, ple=256,
                    laurel=64, window=512, kv_shared=15, n_sparse=10, vocab=262400, mm_vocab=128,
                    vis_hidden=2048, aud_hidden=1536, max_pos=32768)
    raise SystemExit("unknown preset " + name)


def tokenizer_special_ids(tok_dir):
    """content -> id for the added tokens of tokenizer.json"""
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    return {t["content"]: t["id"] for t in tj.get("added_tokens", [])}


def tokenizer_vocab_size(tok_dir):
    with open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    ids = [-1]
    voc = tj.get("model", {}).get("vocab")
    if isinstance(voc, dict):
        ids.append(max(voc.values()) if voc else -1)
    elif isinstance(voc, list):
        ids.append(len(voc) - 1)
    for t in tj.get("added_tokens", []):
        ids.append(t["id"])
    return max(ids) + 1


def mm_layout(p, vocab, special=None):
    """Where the vision/audio id ranges start.  Without a tokenizer: the last
    2*mm_vocab ids.  With one: the vision range starts at <end_of_image> and the
    audio range at <end_of_audio> (as in the real vocabulary); a missing audio
    range is put right after the vision range (possibly beyond vocab_size)."""
    mm = p["mm_vocab"]
    special = special or {}
    if "<end_of_image>" in special:
        vis = special["<end_of_image>"]
        aud = special.get("<end_of_audio>", vis + mm)
    else:
        vis = vocab - 2 * mm
        aud = vis + mm
    return vis, aud


def build_config(p, vocab, special=None):
    H, L = p["hidden"], p["layers"]
    special = special or {}
    vis_off, aud_off = mm_layout(p, vocab, special)
    vpli = vis_off
    types = ["full_attention" if (i + 1) % 5 == 0 else "sliding_attention" for i in range(L)]
    text = {
        "activation_sparsity_pattern": [p.get("sparsity", 0.95)] * p["n_sparse"] + [0.0] * (L - p["n_sparse"]),
        "altup_active_idx": 0,
        "altup_coef_clip": 120.0,
        "altup_correct_scale": True,
        "altup_lr_multiplier": 1.0,
        "altup_num_inputs": 4,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 2,
        "eos_token_id": 1,
        "final_logit_softcapping": 30.0,
        "head_dim": p["head_dim"],
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": H,
        "hidden_size_per_layer_input": p["ple"],
        "initializer_range": 0.02,
        "intermediate_size": [p["ffn"]] * L,
        "laurel_rank": p["laurel"],
        "layer_types": types,
        "max_position_embeddings": p["max_pos"],
        "model_type": "gemma3n_text",
        "num_attention_heads": p["heads"],
        "num_hidden_layers": L,
        "num_key_value_heads": p["kv_heads"],
        "num_kv_shared_layers": p["kv_shared"],
        "pad_token_id": 0,
        "query_pre_attn_scalar": p["head_dim"],
        "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": p["window"],
        "torch_dtype": p.get("torch_dtype", "bfloat16"),
        "use_cache": True,
        "vocab_size": vocab,
        "vocab_size_per_layer_input": vpli,
    }
    mm = p["mm_vocab"]
    eot = special.get("<end_of_turn>", 106 if vocab > 106 else None)

    def tid(name, default):
        if special:
            return special.get(name)
        return default
    cfg = {
        "architectures": ["Gemma3nForConditionalGeneration"],
        "audio_config": {
            "model_type": "gemma3n_audio", "hidden_size": p["aud_hidden"], "vocab_size": mm,
            "vocab_offset": aud_off, "rms_norm_eps": 1e-06, "input_feat_size": 128,
            "conf_num_hidden_layers": 1, "conf_num_attention_heads": 2,
            "torch_dtype": "bfloat16", "_note": "stub: towers are dummies, only embed_audio is real-shaped",
        },
        "audio_soft_tokens_per_image": 188,
        "audio_token_id": tid("<audio_soft_token>", aud_off + 1),
        "boa_token_id": tid("<start_of_audio>", vpli - 1),
        "boi_token_id": tid("<start_of_image>", vpli - 2),
        "eoa_token_id": tid("<end_of_audio>", aud_off),
        "eoi_token_id": tid("<end_of_image>", vis_off),
        "eos_token_id": [1, eot] if eot is not None else [1],
        "image_token_id": tid("<image_soft_token>", vis_off + 1),
        "initializer_range": 0.02,
        "model_type": "gemma3n",
        "text_config": text,
        "torch_dtype": p.get("torch_dtype", "bfloat16"),
        "transformers_version": "4.53.0",
        "vision_config": {
            "model_type": "gemma3n_vision", "architecture": "mobilenetv5_300m_enc",
            "hidden_size": p["vis_hidden"], "vocab_size": mm, "vocab_offset": vis_off,
            "rms_norm_eps": 1e-06, "do_pooling": False, "initializer_range": 0.02,
            "torch_dtype": "bfloat16", "_note": "stub: towers are dummies, only embed_vision is real-shaped",
        },
        "vision_soft_tokens_per_image": 256,
    }
    if p.get("text_only"):
        del cfg["audio_config"], cfg["vision_config"]
    return cfg


# --------------------------------------------------------------------------
# tensor list with init recipes: (name, shape, kind, a, b)
#   kind "n": normal(a + b*N(0,1));   kind "u": uniform(a, b)
# --------------------------------------------------------------------------
def tensor_specs(p, vocab, vpli):
    H, L, P = p["hidden"], p["layers"], p["ple"]
    nh, nk, hd, F, R = p["heads"], p["kv_heads"], p["head_dim"], p["ffn"], p["laurel"]
    T = "model.language_model."
    s = []
    s.append((T + "embed_tokens.weight", (vocab, H), "n", 0.0, H ** -0.5))
    s.append((T + "embed_tokens_per_layer.weight", (vpli, L * P), "n", 0.0, P ** -0.5))
    s.append((T + "per_layer_model_projection.weight", (L * P, H), "n", 0.0, H ** -0.5))
    s.append((T + "per_layer_projection_norm.weight", (P,), "u", 0.7, 1.3))
    for i in range(3):
        s.append((T + "altup_projections.%d.weight" % i, (H, H), "n", 0.0, H ** -0.5))
    for i in range(3):
        s.append((T + "altup_unembed_projections.%d.weight" % i, (H, H), "n", 0.0, H ** -0.5))
    s.append((T + "norm.weight", (H,), "u", 6.0, 14.0))
    for li in range(L):
        Lp = T + "layers.%d." % li
        s += [
            (Lp + "altup.correct_output_scale", (H,), "u", 0.5, 1.5),
            (Lp + "altup.correction_coefs.weight", (4, 4), "n", 0.0, 0.3),
            (Lp + "altup.modality_router.weight", (4, H), "n", 0.0, 6.0),
            (Lp + "altup.prediction_coefs.weight", (16, 4), "n", 0.0, 0.15),
            (Lp + "altup.router_norm.weight", (H,), "u", 0.6, 1.4),
            (Lp + "input_layernorm.weight", (H,), "u", 0.6, 1.4),
            (Lp + "laurel.linear_left.weight", (R, H), "n", 0.0, H ** -0.5),
            (Lp + "laurel.linear_right.weight", (H, R), "n", 0.0, R ** -0.5),
            (Lp + "laurel.post_laurel_norm.weight", (H,), "u", 0.3, 0.9),
            (Lp + "mlp.down_proj.weight", (H, F), "n", 0.0, F ** -0.5),
            (Lp + "mlp.gate_proj.weight", (F, H), "n", 0.0, H ** -0.5),
            (Lp + "mlp.up_proj.weight", (F, H), "n", 0.0, H ** -0.5),
            (Lp + "per_layer_input_gate.weight", (P, H), "n", 0.0, H ** -0.5),
            (Lp + "per_layer_projection.weight", (H, P), "n", 0.0, P ** -0.5),
            (Lp + "post_attention_layernorm.weight", (H,), "u", 0.3, 0.9),
            (Lp + "post_feedforward_layernorm.weight", (H,), "u", 0.3, 0.9),
            (Lp + "post_per_layer_input_norm.weight", (H,), "u", 0.3, 0.9),
            (Lp + "pre_feedforward_layernorm.weight", (H,), "u", 0.6, 1.4),
            (Lp + "self_attn.k_norm.weight", (hd,), "u", 0.5, 1.0),
            (Lp + "self_attn.k_proj.weight", (nk * hd, H), "n", 0.0, H ** -0.5),
            (Lp + "self_attn.o_proj.weight", (H, nh * hd), "n", 0.0, (nh * hd) ** -0.5),
            (Lp + "self_attn.q_norm.weight", (hd,), "u", 0.5, 1.0),
            (Lp + "self_attn.q_proj.weight", (nh * hd, H), "n", 0.0, H ** -0.5),
            (Lp + "self_attn.v_proj.weight", (nk * hd, H), "n", 0.0, H ** -0.5),
        ]
    if p.get("text_only"):
        return s
    # multimodal embedders: real shapes (small), so HF semantics can be exercised
    vh, ah, mm = p["vis_hidden"], p["aud_hidden"], p["mm_vocab"]
    for nm, hh in (("embed_vision", vh), ("embed_audio", ah)):
        s += [
            ("model.%s.embedding.weight" % nm, (mm, hh), "n", 0.0, 1.0),
            ("model.%s.hard_embedding_norm.weight" % nm, (hh,), "u", 0.6, 1.4),
            ("model.%s.soft_embedding_norm.weight" % nm, (hh,), "u", 0.6, 1.4),
            ("model.%s.embedding_projection.weight" % nm, (H, hh), "n", 0.0, hh ** -0.5),
        ]
    # dummy tower tensors (shapes are arbitrary; a text loader must skip them)
    s += [
        ("model.vision_tower.timm_model.conv_stem.conv.weight", (8, 3, 3, 3), "n", 0.0, 0.1),
        ("model.vision_tower.timm_model.blocks.0.0.conv_exp.weight", (16, 8, 3, 3), "n", 0.0, 0.1),
        ("model.vision_tower.timm_model.msfa.norm.weight", (16,), "u", 0.9, 1.1),
        ("model.audio_tower.subsample_conv_projection.conv_0.conv.weight", (8, 1, 3, 3), "n", 0.0, 0.1),
        ("model.audio_tower.conformer.0.attention.attn.per_dim_scale", (8,), "n", 0.0, 0.1),
        ("model.audio_tower.conformer.0.ffw_layer_start.ffw_layer_1.weight", (32, 16), "n", 0.0, 0.1),
    ]
    return s


# --------------------------------------------------------------------------
# value generation
# --------------------------------------------------------------------------
def gen_exact(rng, shape, kind, a, b, dtype="bf16"):
    n = int(np.prod(shape))
    if kind == "n":
        x = a + b * rng.standard_normal(n, dtype=np.float32)
    else:
        x = rng.uniform(a, b, n).astype(np.float32)
    return f32_to_bf16_bits(x) if dtype == "bf16" else x


class FastPool:
    """For huge presets: a pool of bf16 N(0,1) samples; a tensor is a run of
    the pool from a random offset, rescaled by a power of two through the
    exponent bits (exact, no float math).  Uniform gains use a second pool."""

    def __init__(self, rng, n=1 << 24):
        x = rng.standard_normal(n, dtype=np.float32)
        x = np.where(np.abs(x) < 1e-3, np.float32(1e-3), x)
        self.normal = f32_to_bf16_bits(x)
        self.unif = f32_to_bf16_bits(rng.uniform(0.5, 1.5, n).astype(np.float32))
        self.rng = rng
        self.n = n

    def chunks(self, shape, kind, a, b, chunk=1 << 23):
        total = int(np.prod(shape))
        src = self.normal if kind == "n" else self.unif
        if kind == "n":
            k = int(np.round(np.log2(b)))
            adj = np.uint16((k & 0xFF) << 7) if k >= 0 else None
            sub = np.uint16(((-k) & 0xFF) << 7) if k < 0 else None
        pos = int(self.rng.integers(0, self.n))
        done = 0
        while done < total:
            m = min(chunk, total - done, self.n - pos)
            c = src[pos:pos + m]
            if kind == "n":
                c = c + adj if adj is not None else c - sub
            yield c
            done += m
            pos = (pos + m) % self.n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", choices=["tiny", "tiny10", "e4b"], default="tiny")
    ap.add_argument("--tokenizer-dir", help="copy tokenizer files from here; vocab_size follows it")
    ap.add_argument("--layers", type=int, help="number of decoder layers")
    ap.add_argument("--window", type=int, help="sliding window")
    ap.add_argument("--kv-shared", type=int, help="num_kv_shared_layers")
    ap.add_argument("--sparse-layers", type=int, help="activation sparsity on layers 0..N-1")
    ap.add_argument("--sparsity", type=float, help="sparsity target of those layers (0.95)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16", help="weight dtype in the files")
    ap.add_argument("--single-file", action="store_true", help="one model.safetensors, no index")
    ap.add_argument("--text-only", action="store_true", help="no multimodal embedders, towers or configs")
    ap.add_argument("--max-position-embeddings", type=int,
                    help="context length in config.json (default: the preset's; weights unchanged)")
    a = ap.parse_args()

    p = preset(a.preset)
    for key, val in (("layers", a.layers), ("window", a.window), ("kv_shared", a.kv_shared),
                     ("n_sparse", a.sparse_layers), ("sparsity", a.sparsity),
                     ("max_pos", a.max_position_embeddings)):
        if val is not None:
            p[key] = val
    p["text_only"] = a.text_only
    p["torch_dtype"] = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[a.dtype]
    if p["layers"] < 1 or p["window"] < 1 or not 0 <= p["kv_shared"] < p["layers"]:
        raise SystemExit("need layers >= 1, window >= 1 and 0 <= kv-shared < layers")
    if p["max_pos"] < 1:
        raise SystemExit("need max-position-embeddings >= 1")
    if not 0 <= p["n_sparse"] <= p["layers"] or not 0.0 < p.get("sparsity", 0.95) < 1.0:
        raise SystemExit("need 0 <= sparse-layers <= layers and 0 < sparsity < 1")
    if a.dtype != "bf16" and a.preset == "e4b":
        raise SystemExit("--dtype applies to the tiny presets only")
    vocab = p["vocab"]
    special = {}
    if a.tokenizer_dir:
        vocab = tokenizer_vocab_size(a.tokenizer_dir)
        special = tokenizer_special_ids(a.tokenizer_dir)
        if a.preset == "e4b" and vocab != 262400:
            print("warning: tokenizer has %d ids, real E4B has 262400" % vocab, file=sys.stderr)
        if vocab <= 2 * p["mm_vocab"] + 110:
            raise SystemExit("tokenizer vocabulary too small (%d)" % vocab)
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    cfg = build_config(p, vocab, special)
    specs = tensor_specs(p, vocab, cfg["text_config"]["vocab_size_per_layer_input"])

    # two shards: text embeddings + first half of layers | rest + towers
    half = "model.language_model.layers.%d." % (p["layers"] // 2)
    cut = next(i for i, s in enumerate(specs) if s[0].startswith(half))
    shards = [specs[:cut], specs[cut:]]
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    if a.single_file:
        shards, names = [specs], ["model.safetensors"]
    pool = FastPool(rng) if a.preset == "e4b" else None
    weight_map = {}
    total = 0
    for fn, sp in zip(names, shards):
        wr = ShardWriter(os.path.join(a.out, fn), [(n, sh) for n, sh, *_ in sp], a.dtype)
        for name, shape, kind, x, y in sp:
            if pool is None:
                wr.write(name, [gen_exact(rng, shape, kind, x, y, a.dtype)])
            else:
                wr.write(name, pool.chunks(shape, kind, x, y))
            weight_map[name] = fn
        wr.close()
        total += wr.total
    if not a.single_file:
        with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
                      f, indent=2)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    gen = {"bos_token_id": 2, "cache_implementation": "hybrid", "do_sample": True,
           "eos_token_id": cfg["eos_token_id"], "pad_token_id": 0, "top_k": 64, "top_p": 0.95,
           "transformers_version": "4.53.0"}
    with open(os.path.join(a.out, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    if a.tokenizer_dir:
        for fn in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
            src = os.path.join(a.tokenizer_dir, fn)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(a.out, fn))
    print("wrote %s: preset %s seed %d vocab %d, %.2f MB of %s weights"
          % (a.out, a.preset, a.seed, vocab, total / 1e6, a.dtype))


if __name__ == "__main__":
    main()
