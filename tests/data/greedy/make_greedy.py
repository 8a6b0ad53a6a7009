#!/usr/bin/python3
"""Greedy (argmax) continuation of a prompt on a checkpoint, computed with the
numpy reference (float64), for the end-to-end generation test.

  /usr/bin/python3 make_greedy.py REF_TOOLS_DIR MODEL_DIR PROMPT_IDS N OUT.json

Writes {"prompt_ids", "ids", "margins"}: ids[i] is the argmax after the prompt
and ids[:i]; margins[i] is the top-1 minus top-2 logit there, so a test can stop
comparing where the chain is too close to call (margin < 0.05)."""
import json
import sys

import numpy as np


def main():
    tools, model_dir, prompt, n, out = sys.argv[1:6]
    sys.path.insert(0, tools)
    import gemma3n_ref as ref

    m = ref.Gemma3nText(model_dir, np.float64, "hf")
    prompt_ids = [int(t) for t in prompt.split(",")]
    kv = {}
    logits = m.forward(prompt_ids, kv, 0)[-1]
    pos = len(prompt_ids)
    ids, margins = [], []
    for _ in range(int(n)):
        order = np.argsort(-logits)
        ids.append(int(order[0]))
        margins.append(float(logits[order[0]] - logits[order[1]]))
        logits = m.forward([ids[-1]], kv, pos)[-1]
        pos += 1
    with open(out, "w") as f:
        json.dump({"prompt_ids": prompt_ids, "ids": ids, "margins": margins}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
