#!/usr/bin/env python3
"""Writes a synthetic word corpus (train/valid/test.txt) for timing txl_prep.

Words follow a Zipf law over a fixed vocabulary (like natural text), lines vary in length
and every third line is blank (like WikiText). Standard library only; deterministic.

    python3 data_prep/make_synthetic_corpus.py OUT_DIR --train_mb 500
"""
import argparse
import itertools
import os
import random


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--train_mb", type=float, default=500.0, help="size of train.txt in MB (1e6 bytes)")
    ap.add_argument("--eval_mb", type=float, default=1.0, help="size of valid.txt and test.txt in MB")
    ap.add_argument("--vocab", type=int, default=267000, help="distinct words (WikiText-103 has 267k)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words, seen = [], set()
    while len(words) < args.vocab:
        w = "".join(rng.choice(letters) for _ in range(rng.randint(2, 10)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    cum = list(itertools.accumulate(1.0 / (r + 1) ** 1.05 for r in range(args.vocab)))

    os.makedirs(args.out_dir, exist_ok=True)
    for name, mb in (("train", args.train_mb), ("valid", args.eval_mb), ("test", args.eval_mb)):
        target = int(mb * 1e6)
        written = 0
        with open(os.path.join(args.out_dir, name + ".txt"), "w", encoding="utf-8") as f:
            line_no = 0
            while written < target:
                lines = []
                for _ in range(1000):
                    line_no += 1
                    if line_no % 3 == 0:
                        lines.append(" \n")
                    else:
                        n = rng.randint(1, 150)
                        lines.append(" " + " ".join(rng.choices(words, cum_weights=cum, k=n)) + " \n")
                chunk = "".join(lines)
                f.write(chunk)
                written += len(chunk)
        print(f"{name}.txt: {written / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
