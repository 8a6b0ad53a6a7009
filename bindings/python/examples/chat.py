#!/usr/bin/python3
"""Chat with a Gemma 3n model through the gemfa Python bindings.

    chat.py MODEL_DIR                      interactive: one conversation, a line per turn
    chat.py MODEL_DIR -p "سلام"            one answer, streamed, then exit

Ctrl-C stops an answer in the middle (the conversation goes on)."""
from __future__ import annotations

import argparse
import sys

import gemfa


def main(argv: list) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="Hugging Face Gemma 3n directory")
    ap.add_argument("-p", "--prompt", help="answer this and exit")
    ap.add_argument("-s", "--system", help="system prompt")
    ap.add_argument("-w", "--weights", default="auto", help="auto|f32|f16|bf16|int8")
    ap.add_argument("-t", "--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("-c", "--context", type=int, default=4096, help="tokens the chat may hold")
    ap.add_argument("-n", "--max-new-tokens", type=int, default=512)
    ap.add_argument("--temperature", type=float)
    ap.add_argument("--top-k", type=int)
    ap.add_argument("--top-p", type=float)
    ap.add_argument("--seed", type=int)
    args = ap.parse_args(argv)

    try:
        model = gemfa.Model(args.model, weights=args.weights)
    except gemfa.Error as e:
        print(f"chat.py: cannot load {args.model}: {e}", file=sys.stderr)
        return 1
    with model, model.session(context=args.context, threads=args.threads) as session:
        sampler = gemfa.Sampler(model, temperature=args.temperature, top_k=args.top_k,
                                top_p=args.top_p, seed=args.seed)
        first = True

        def answer(text: str) -> None:
            nonlocal first
            messages = [{"role": "user", "content": text}]
            if first and args.system:
                messages.insert(0, {"role": "system", "content": args.system})
            first = False
            gen = session.generate(messages, sampler=sampler, max_new_tokens=args.max_new_tokens)
            try:
                for piece in gen:
                    print(piece, end="", flush=True)
            except KeyboardInterrupt:
                gen.close()
                print(" [stopped]", end="")
            except gemfa.Error as e:
                print(f"\n[{e}]", end="")
            print()

        if args.prompt is not None:
            answer(args.prompt)
            return 0
        while True:
            try:
                line = input("> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if line.strip():
                answer(line)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
