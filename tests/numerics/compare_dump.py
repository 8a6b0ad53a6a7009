#!/usr/bin/python3
"""compare_dump.py - where does gemfa leave the reference?  Runs dump_pass
(gemfa, every intermediate) and gemma3n_ref.py in float64 and float32 on one
sequence and prints, per intermediate in pass order, max |x - ref64| of gemfa
and of the float32 reference (at one position, or the max over positions).

  /usr/bin/python3 tests/numerics/compare_dump.py MODEL ID,ID,... [--pos P]
        [--dump-pass build/tests/numerics/dump_pass] [--only L03.]
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


if __name__ == "__main__":
    main()
