#!/usr/bin/python3
"""compare_dump.py - where does gemfa leave the reference?  Runs dump_pass
(gemfa, every intermediate) and gemma3n_ref.py in float64 and float32 on one
sequence and prints, per intermediate in pass order, max |x - ref64| of gemfa
and of the float32 reference (at one position, or the max over positions),
relative to max |ref64|.

With --local, per layer instead: each evaluation's layer output against the
float64 layer run on that evaluation's own layer input (the K/V of a shared
layer rebuilt from its own input to the source layer), i.e. the error the
layer itself adds; an operation that loses precision shows up there, while
the accumulated error of --local off also carries the amplification.

With --ops, the same per step of a layer (AltUp predict, LAuReL, attention,
the residual, FFN, PLE injection, AltUp correct): each step in float64 on the
evaluation's own inputs to that step; per step the median over layers of
gemfa's local error over the float32 reference's.

  /usr/bin/python3 tests/numerics/compare_dump.py MODEL ID,ID,... [--pos P]
        [--dump-pass build/tests/numerics/dump_pass] [--only L03.] [--local | --ops]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import gemma3n_ref as ref  # noqa: E402

KEYS = ["predictions", "attn_out", "laurel_out", "attn_laurel", "ffn_out", "ple_injection",
        "streams_out"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("ids")
    ap.add_argument("--pos", type=int)
    ap.add_argument("--dump-pass", default=os.path.join(ROOT, "build", "tests", "numerics", "dump_pass"))
    ap.add_argument("--only", default="")
    ap.add_argument("--local", action="store_true", help="error added by each layer alone")
    ap.add_argument("--ops", action="store_true", help="error added by each step of a layer")
    a = ap.parse_args()
    ids = [int(x) for x in a.ids.split(",")]
    T = len(ids)
    d64, d32 = {}, {}
    ref.Gemma3nText(a.model, np.float64).logits_full(ids, d64)
    ref.Gemma3nText(a.model, np.float32).logits_full(ids, d32)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([a.dump_pass, a.model, tmp, a.ids], check=True)
        g = {}
        for fn in os.listdir(tmp):
            g[fn[:-4]] = np.fromfile(os.path.join(tmp, fn), "<f4").astype(np.float64)
    if a.local:
        return local(a, ids, g, d64, d32)
    if a.ops:
        return ops(a, ids, g, d32)
    names = ["inputs_embeds", "per_layer_inputs", "streams_init"]
    for li in range(d64.get("L_count", 10 ** 6)):
        if "L%02d.predictions" % li not in d64:
            break
        names += ["L%02d.%s" % (li, k) for k in KEYS]
    names += ["final_hidden", "logits_raw", "logits"]
    print("%-22s %11s %11s %8s" % ("tensor", "gemfa", "ref f32", "ratio"))
    for nm in names:
        if a.only and not nm.startswith(a.only) or nm not in g:
            continue
        r = np.asarray(d64[nm], np.float64)
        x = g[nm].reshape(r.shape)
        y = np.asarray(d32[nm], np.float64)
        # positions: the first axis of per_layer_inputs [T,L,P], else the second-to-last
        if a.pos is not None and nm == "per_layer_inputs":
            r, x, y = r[a.pos], x[a.pos], y[a.pos]
        elif a.pos is not None:
            r, x, y = r[..., a.pos, :], x[..., a.pos, :], y[..., a.pos, :]
        scale = max(np.abs(r).max(), 1e-30)
        eg, ey = np.abs(x - r).max() / scale, np.abs(y - r).max() / scale
        print("%-22s %11.3e %11.3e %8.1f" % (nm, eg, ey, eg / max(ey, 1e-30)))


def local(a, ids, g, d64, d32):
    m = ref.Gemma3nText(a.model, np.float64)
    c = m.c
    T, H = len(ids), c.hidden
    pos = np.arange(T)
    K = c.altup_n

    def inputs(src, li):
        """(streams into layer li, per-layer inputs) of one evaluation"""
        if src == "gemfa":
            s = g["streams_init"] if li == 0 else g["L%02d.streams_out" % (li - 1)]
            return s.reshape(K, T, H), g["per_layer_inputs"].reshape(T, c.n_layer, c.ple)
        s = d32["streams_init"] if li == 0 else d32["L%02d.streams_out" % (li - 1)]
        return np.asarray(s, np.float64), np.asarray(d32["per_layer_inputs"], np.float64)

    print("%-5s %11s %11s %8s   (streams_out: error the layer adds, relative to max|out|)"
          % ("layer", "gemfa", "ref f32", "ratio"))
    for li in range(c.n_layer):
        errs = []
        for src in ("gemfa", "f32"):
            s_in, pli = inputs(src, li)
            kv = {}
            if m.kv_src[li] != li:
                s_src, _ = inputs(src, m.kv_src[li])
                m.layer(m.kv_src[li], s_src, pli, pos, kv)
            want = m.layer(li, s_in, pli, pos, kv)
            got = (g["L%02d.streams_out" % li].reshape(K, T, H) if src == "gemfa"
                   else np.asarray(d32["L%02d.streams_out" % li], np.float64))
            if a.pos is not None:
                want, got = want[:, a.pos], got[:, a.pos]
            errs.append(np.abs(got - want).max() / np.abs(want).max())
        print("L%02d   %11.3e %11.3e %8.1f" % (li, errs[0], errs[1], errs[0] / errs[1]))


def ops(a, ids, g, d32):
    """Local error of each step of every layer, from dumps alone."""
    m = ref.Gemma3nText(a.model, np.float64)
    c = m.c
    T, H, K, eps = len(ids), c.hidden, c.altup_n, c.eps
    pos = np.arange(T)
    act = c.altup_active
    steps = ["predict", "laurel", "attention", "attn_laurel", "ffn", "ple_injection", "correct"]
    ratios = {k: [] for k in steps}

    def get(src, name, shape):
        if src == "gemfa":
            return g[name].reshape(shape)
        return np.asarray(d32[name], np.float64).reshape(shape)

    print("%-5s " % "layer" + " ".join("%13s" % k for k in steps) + "   (gemfa/f32 local error)")
    for li in range(c.n_layer):
        L = "layers.%d." % li
        w = lambda n: m.w(L + n)  # noqa: E731
        row = []
        for step in steps:
            errs = []
            for src in ("gemfa", "f32"):
                G = lambda n, shape=(T, H): get(src, n, shape)  # noqa: E731
                s_in = G("streams_init" if li == 0 else "L%02d.streams_out" % (li - 1), (K, T, H))
                pred = G("L%02d.predictions" % li, (K, T, H))
                a_n = rms_norm = None
                a_n = ref.rms_norm(pred[act], w("input_layernorm.weight"), eps)
                if step == "predict":
                    got, want = pred, m.altup_predict(L, s_in)
                elif step == "laurel":
                    lr = (a_n @ w("laurel.linear_left.weight").T) @ w("laurel.linear_right.weight").T
                    got = G("L%02d.laurel_out" % li)
                    want = a_n + ref.rms_norm(lr, w("laurel.post_laurel_norm.weight"), eps)
                elif step == "attention":
                    kv = {}
                    if m.kv_src[li] != li:
                        sp = G("L%02d.predictions" % m.kv_src[li], (K, T, H))[act]
                        m.attention(m.kv_src[li], ref.rms_norm(
                            sp, m.w("layers.%d.input_layernorm.weight" % m.kv_src[li]), eps), pos, kv)
                    got, want = G("L%02d.attn_out" % li), m.attention(li, a_n, pos, kv)
                elif step == "attn_laurel":
                    att_n = ref.rms_norm(G("L%02d.attn_out" % li), w("post_attention_layernorm.weight"), eps)
                    got = G("L%02d.attn_laurel" % li)
                    want = (pred[act] + att_n + G("L%02d.laurel_out" % li)) / np.sqrt(2.0)
                elif step == "ffn":
                    x = ref.rms_norm(G("L%02d.attn_laurel" % li), w("pre_feedforward_layernorm.weight"), eps)
                    got, want = G("L%02d.ffn_out" % li), m.mlp(li, x)
                else:
                    out = G("L%02d.attn_laurel" % li) + ref.rms_norm(
                        G("L%02d.ffn_out" % li), w("post_feedforward_layernorm.weight"), eps)
                    cor = m.altup_correct(L, pred, out)
                    inj = G("L%02d.ple_injection" % li)
                    if step == "correct":
                        got = G("L%02d.streams_out" % li, (K, T, H))
                        want = cor.copy()
                        want[1:] += inj[None]
                    else:
                        pli = G("per_layer_inputs", (T, c.n_layer, c.ple))
                        fp = cor[act] * w("altup.correct_output_scale")
                        gte = ref.gelu_tanh(fp @ w("per_layer_input_gate.weight").T) * pli[:, li, :]
                        got = inj
                        want = ref.rms_norm(gte @ w("per_layer_projection.weight").T,
                                            w("post_per_layer_input_norm.weight"), eps)
                if a.pos is not None:
                    got, want = got[..., a.pos, :], want[..., a.pos, :]
                errs.append(np.abs(got - want).max() / np.abs(want).max())
            row.append(errs[0] / errs[1])
            ratios[step].append(errs[0] / errs[1])
        print("L%02d   " % li + " ".join("%13.2f" % x for x in row))
    print("median" + " ".join("%13.2f" % np.median(ratios[k]) for k in steps))


if __name__ == "__main__":
    main()
