"""Compares raw logits files of `gemfa logits --all` (little-endian float32,
[positions][vocab]) against a reference file: max |diff|, top-1 agreement,
KL(reference || other) of the softmax distributions, per file.  Used for
the accuracy table of docs/performance.md (not a test by itself).

    /usr/bin/python3 compare_logits.py VOCAB REF.bin OTHER.bin [OTHER.bin ...]
"""
import sys

import numpy as np


def log_softmax(x):
    x = x.astype(np.float64)
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def main():
    vocab, ref_path, others = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    ref = np.fromfile(ref_path, "<f4").reshape(-1, vocab)
    lr = log_softmax(ref)
    pr = np.exp(lr)
    print(f"reference {ref_path}: {ref.shape[0]} positions × {vocab} logits")
    for path in others:
        x = np.fromfile(path, "<f4").reshape(-1, vocab)
        diff = np.abs(x.astype(np.float64) - ref)
        kl = (pr * (lr - log_softmax(x))).sum(axis=1)
        top1 = (x.argmax(axis=1) == ref.argmax(axis=1)).mean()
        print(f"{path}: max|diff| {diff.max():.4f}  mean|diff| {diff.mean():.5f}  "
              f"top-1 agreement {100 * top1:.1f}%  KL mean {kl.mean():.3e} "
              f"median {np.median(kl):.3e} max {kl.max():.3e}  "
              f"(reference logits: max|x| {np.abs(ref).max():.2f}, std {ref.std():.3f})")


if __name__ == "__main__":
    main()
