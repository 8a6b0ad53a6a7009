#!/usr/bin/python3
"""sweep.py - f32 accuracy sweep of `gemfa logits --all --weights f32` (issue 12).

For every checkpoint (the fixtures and freshly generated tiny configurations)
and many random token sequences, compares gemfa's logits at every position,
at every kernel level, with the numpy reference (tests/tools/gemma3n_ref.py)
in float64 and in float32.  Per sequence:

    e_gemfa = max over positions and vocabulary |gemfa - ref64|
    e_f32   = max over positions and vocabulary |ref32 - ref64|
    issue 12's target: e_gemfa <= 3 e_f32 + 2e-3   (ratio = e_gemfa / (3 e_f32 + 2e-3))

The plain float32 reference is one draw among equally good float32
evaluations: --peers N more of them sum in other orders (gemma3n_ref.py
--permute 1..N: hidden and FFN units renumbered; the same function).  The
sweep reports the issue's ratio for gemfa and for those peers (which miss it
too, a few % of sequences), and checks the bound libgemfa guarantees:

    e_gemfa <= 3 e_env + 2e-3,   e_env = max(e_f32, e_peer_1, ..., e_peer_N)

plus the median over sequences of e_gemfa / e_f32 next to the peers' median
(systematic accuracy: about 1 when gemfa is as good as a float32 evaluation).

  /usr/bin/python3 tests/numerics/sweep.py [--gemfa build/examples/gemfa/gemfa]
        [--seqs 200] [--max-len 64] [--levels scalar,avx2,avx512]
        [--configs NAME,...] [--peers 8] [--workdir DIR] [--json OUT]
        [--keep-worst K --keep-dir tests/data/numerics]

Configurations: `fixture:tiny`, `fixture:tiny10` (tests/data) and the generated
ones of GENERATED below (made with tests/tools/make_tiny_gemma3n.py in
--workdir, reused when already there).  Exit status 1 when a sequence misses
the guaranteed bound.  numpy on one core; gemfa runs with -t 1.
GEMFA_KERNEL_LEVEL never raises the level above the CPU's: on a CPU without
AVX-512 the avx512 column repeats avx2.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(ROOT, "tests", "tools")
sys.path.insert(0, TOOLS)
import gemma3n_ref as ref  # noqa: E402

FIXTURES = {
    "tiny": os.path.join(ROOT, "tests", "data", "tiny-gemma3n"),
    "tiny10": os.path.join(ROOT, "tests", "data", "runtime", "tiny10-s1"),
}

# name -> make_tiny_gemma3n.py arguments.  "issue" is the checkpoint of issue 12
# (tiny shape, f32 weights in one file, text only); the others vary seed,
# window (4..16), KV sharing, depth, sparsity and the stored dtype.
GENERATED = {
    "issue": "--preset tiny --seed 0 --dtype f32 --single-file --text-only",
    "s1-w4-kv0-f32": "--preset tiny --seed 1 --window 4 --kv-shared 0 --dtype f32",
    "s2-w16-kv8-bf16": "--preset tiny --seed 2 --window 16 --kv-shared 8 --dtype bf16",
    "s3-w5-kv2-f16": "--preset tiny --seed 3 --window 5 --kv-shared 2 --dtype f16 --single-file",
    "s4-w12-kv5-f32-L15": "--preset tiny --seed 4 --layers 15 --window 12 --kv-shared 5 "
                          "--sparse-layers 6 --dtype f32 --text-only",
    "s5-w8-kv4-bf16-L10": "--preset tiny10 --seed 5 --window 8 --kv-shared 4 --dtype bf16",
    "s6-w6-kv10-f32-dense": "--preset tiny --seed 6 --window 6 --kv-shared 10 --sparse-layers 0 "
                            "--dtype f32 --single-file",
    "s7-w13-kv3-f16-sp25": "--preset tiny --seed 7 --window 13 --kv-shared 3 --sparse-layers 25 "
                           "--dtype f16 --text-only",
}

LEVELS = ("scalar", "avx2", "avx512")


def make_generated(name, workdir):
    out = os.path.join(workdir, name)
    if os.path.exists(os.path.join(out, "config.json")):
        return out
    args = [sys.executable, os.path.join(TOOLS, "make_tiny_gemma3n.py"), "--out", out]
    subprocess.run(args + GENERATED[name].split(), check=True, stdout=subprocess.DEVNULL)
    return out


def config_dir(name, workdir):
    if name.startswith("fixture:"):
        return FIXTURES[name.split(":", 1)[1]]
    return make_generated(name, workdir)


def sequences(cfg, n, max_len, seed):
    """n random sequences: <bos> then uniform ids; multimodal ids only when the
    checkpoint has an embedder for them."""
    r = random.Random(seed)
    hi = cfg.vpli
    if "vision_config" in cfg.root or "audio_config" in cfg.root:
        hi = cfg.vocab
    out = []
    for _ in range(n):
        length = r.randint(1, max_len)
        out.append([2] + [r.randrange(hi) for _ in range(length - 1)])
    return out


def run_gemfa(gemfa, model, ids, level, vocab):
    env = dict(os.environ, GEMFA_KERNEL_LEVEL=level)
    p = subprocess.run([gemfa, "logits", "-m", model, "--tokens", ",".join(map(str, ids)), "--all",
                        "--weights", "f32", "-t", "1", "-o", "-"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if p.returncode != 0:
        raise SystemExit("gemfa failed (%s): %s" % (level, p.stderr.decode(errors="replace")))
    return np.frombuffer(p.stdout, dtype="<f4").reshape(len(ids), vocab).astype(np.float64)


def sweep_config(name, model, a, levels):
    m64 = ref.Gemma3nText(model, np.float64)
    m32 = ref.Gemma3nText(model, np.float32)
    # the float32 "peers": the same evaluation summing in other orders
    peers = [ref.Gemma3nText(model, np.float32, permute=k) for k in range(1, a.peers + 1)]
    cfg = m64.c
    seqs = sequences(cfg, a.seqs, a.max_len, a.seed)
    rows = []
    for si, ids in enumerate(seqs):
        r64 = m64.logits_full(ids)
        e32_pos = np.abs(m32.logits_full(ids) - r64).max(axis=1)
        e32 = float(e32_pos.max())
        e_peers = [float(np.abs(p.logits_full(ids) - r64).max()) for p in peers]
        env = max([e32] + e_peers)
        row = {"seq": si, "ids": ids, "e_f32": e32, "e_peers": e_peers, "e_env": env, "levels": {}}
        for lv in levels:
            g = run_gemfa(a.gemfa, model, ids, lv, cfg.vocab)
            eg_pos = np.abs(g - r64).max(axis=1)
            eg = float(eg_pos.max())
            row["levels"][lv] = {"e": eg, "ratio": eg / (3 * e32 + 2e-3),
                                 "ratio_env": eg / (3 * env + 2e-3),
                                 "pos": int(eg_pos.argmax())}
        rows.append(row)
    return cfg, rows


def summarize(name, rows, levels):
    out = {"config": name, "seqs": len(rows), "max_e_f32": max(r["e_f32"] for r in rows), "levels": {}}
    # the criterion applied to the float32 peers themselves
    pr = [e / (3 * r["e_f32"] + 2e-3) for r in rows for e in r["e_peers"]]
    out["peers"] = {"max_ratio": max(pr) if pr else 0.0,
                    "fail_rate": sum(1 for x in pr if x > 1.0) / max(len(pr), 1)}
    for lv in levels:
        rs = [r["levels"][lv] for r in rows]
        worst = max(range(len(rows)), key=lambda i: rs[i]["ratio"])
        q = [x["e"] / max(r["e_f32"], 1e-9) for x, r in zip(rs, rows)]
        qp = [e / max(r["e_f32"], 1e-9) for r in rows for e in r["e_peers"]]
        out["levels"][lv] = {
            "max_ratio": rs[worst]["ratio"],
            "fails": sum(1 for x in rs if x["ratio"] > 1.0),
            "fail_rate": sum(1 for x in rs if x["ratio"] > 1.0) / len(rs),
            "max_ratio_env": max(x["ratio_env"] for x in rs),
            "fails_env": sum(1 for x in rs if x["ratio_env"] > 1.0),
            # systematic accuracy: median of e_gemfa / e_f32 against the peers' median
            "median_q": float(np.median(q)),
            "peers_median_q": float(np.median(qp)) if qp else float("nan"),
            "max_e": max(x["e"] for x in rs),
            "worst_seq": worst,
            "worst_e": rs[worst]["e"],
            "worst_e_f32": rows[worst]["e_f32"],
            "worst_len": len(rows[worst]["ids"]),
        }
    return out


def file_hashes(model):
    import hashlib
    out = {}
    for fn in sorted(os.listdir(model)):
        if fn.endswith((".safetensors", ".json")):
            with open(os.path.join(model, fn), "rb") as f:
                out[fn] = hashlib.sha256(f.read()).hexdigest()
    return out


def keep_worst(name, model, cfg, rows, levels, k, keep_dir, a, n_pos=3):
    """Adds the k sequences of highest ratio (any level) to keep_dir/cases.json
    as regression cases (tests/numerics/test_regressions.py): the ids, the
    n_pos positions where gemfa is worst, the float64 reference logits of
    those positions (NAME.logits.f32.bin, [n_pos][vocab]) and e_f32 / e_env
    (plain float32 reference, and the envelope with its peers) over them."""
    order = sorted(rows, key=lambda r: -max(r["levels"][lv]["ratio"] for lv in levels))[:k]
    m64 = ref.Gemma3nText(model, np.float64)
    m32 = [ref.Gemma3nText(model, np.float32)] + [
        ref.Gemma3nText(model, np.float32, permute=j) for j in range(1, a.peers + 1)]
    os.makedirs(keep_dir, exist_ok=True)
    path = os.path.join(keep_dir, "cases.json")
    cases = json.load(open(path)) if os.path.exists(path) else {"cases": []}
    for r in order:
        ids = r["ids"]
        case = "%s-seq%d" % (name.replace("fixture:", ""), r["seq"])
        r64 = m64.logits_full(ids)
        eg = {lv: np.abs(run_gemfa(a.gemfa, model, ids, lv, cfg.vocab) - r64).max(axis=1) for lv in levels}
        worst = np.max(np.stack(list(eg.values())), axis=0)
        pos = sorted(int(p) for p in np.argsort(-worst)[:n_pos])
        e32 = [float(np.abs(m.logits_full(ids)[pos] - r64[pos]).max()) for m in m32]
        r64[pos].astype("<f4").tofile(os.path.join(keep_dir, case + ".logits.f32.bin"))
        entry = {"name": case, "ids": ids, "positions": pos, "logits_file": case + ".logits.f32.bin",
                 "e_f32": e32[0], "e_env": max(e32), "peers": a.peers,
                 "gemfa_when_kept": {lv: float(eg[lv][pos].max()) for lv in levels}}
        if name.startswith("fixture:"):
            entry["model"] = os.path.relpath(model, os.path.join(ROOT, "tests", "data"))
        else:
            entry["generate"] = GENERATED[name]
            entry["sha256"] = file_hashes(model)
        cases["cases"] = [c for c in cases["cases"] if c["name"] != case] + [entry]
        print("kept %s: positions %s, e_f32 %.2e, e_env %.2e, gemfa %s" % (
            case, pos, e32[0], max(e32), ", ".join("%s %.2e" % (lv, v)
                                                  for lv, v in entry["gemfa_when_kept"].items())))
    with open(path, "w") as f:
        json.dump(cases, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gemfa", default=os.path.join(ROOT, "build", "examples", "gemfa", "gemfa"))
    ap.add_argument("--seqs", type=int, default=200)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--peers", type=int, default=8,
                    help="float32 references summing in other orders (gemma3n_ref.py --permute 1..N)")
    ap.add_argument("--levels", default=",".join(LEVELS))
    ap.add_argument("--configs", default=",".join(["fixture:" + k for k in FIXTURES] + list(GENERATED)))
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "numerics-sweep"))
    ap.add_argument("--json", help="write every sequence's numbers here")
    ap.add_argument("--keep-worst", type=int, default=0)
    ap.add_argument("--keep-dir", default=None)
    a = ap.parse_args()
    levels = [x for x in a.levels.split(",") if x]
    for lv in levels:
        if lv not in LEVELS:
            raise SystemExit("unknown level %s" % lv)
    os.makedirs(a.workdir, exist_ok=True)
    summaries, everything = [], {}
    failed = False
    print("per config and level: max ratio e/(3 e_f32 + 2e-3) [sequences > 1] | against the "
          "envelope of the f32 evaluations | median e/e_f32 (peers' median)")
    for name in [x for x in a.configs.split(",") if x]:
        if not name.startswith("fixture:") and name not in GENERATED:
            raise SystemExit("unknown config %s (known: %s)" % (name, ", ".join(GENERATED)))
        t0 = time.time()
        model = config_dir(name, a.workdir)
        cfg, rows = sweep_config(name, model, a, levels)
        s = summarize(name, rows, levels)
        s["seconds"] = round(time.time() - t0, 1)
        summaries.append(s)
        everything[name] = rows
        print("%-22s max e_f32 %.1e; f32 peers: max ratio %.2f, %.1f%% > 1   (%.0f s)" % (
            name, s["max_e_f32"], s["peers"]["max_ratio"], 100 * s["peers"]["fail_rate"], s["seconds"]))
        for lv in levels:
            x = s["levels"][lv]
            print("    %-7s %5.2f [%3d]  | env %5.2f [%3d]  | median %.2f (%.2f)" % (
                lv, x["max_ratio"], x["fails"], x["max_ratio_env"], x["fails_env"], x["median_q"],
                x["peers_median_q"]), flush=True)
        failed |= any(s["levels"][lv]["fails_env"] for lv in levels)
        if a.keep_worst:
            keep_worst(name, model, cfg, rows, levels, a.keep_worst, a.keep_dir or a.workdir, a)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summaries, "sequences": everything}, f)
    print("guaranteed bound (e_gemfa <= 3 max(e_f32, peers) + 2e-3 for every sequence):",
          "MISSED" if failed else "met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
