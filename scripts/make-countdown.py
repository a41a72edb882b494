#!/usr/bin/env python3
"""Writes a Countdown prompt set (TinyZero's R1-Zero task) as zeroth prompt JSONL.

Each line: {"prompt": "...", "target": T, "nums": [a, b, c]}: reach T with each number
once and + - * /. The target is made from the numbers by a random expression, so every
problem has a solution. Score it with scripts/rewards/countdown_reward.py
(docs/rewards.md, "Python reward functions"):

    python3 scripts/make-countdown.py --out data/countdown/train.jsonl --n 20000 --seed 1
    python3 scripts/make-countdown.py --out data/countdown/test.jsonl --n 500 --seed 2
"""

import argparse
import json
import os
import random
from fractions import Fraction

PROMPT = ("Using the numbers {nums}, create an equation that equals {target}. You can use basic "
          "arithmetic operations (+, -, *, /) and each number can only be used once. Show your work in "
          "<think> </think> tags. And return the final answer in <answer> </answer> tags, for example "
          "<answer> (1 + 2) / 3 </answer>.")


def make_problem(rng, count, max_number, max_target):
    while True:
        nums = [rng.randint(1, max_number) for _ in range(count)]
        order = nums[:]
        rng.shuffle(order)
        value = Fraction(order[0])
        for n in order[1:]:
            op = rng.choice("+-*/")
            if op == "+":
                value += n
            elif op == "-":
                value -= n
            elif op == "*":
                value *= n
            else:
                value /= n
        if value.denominator == 1 and 1 <= value <= max_target:
            return nums, int(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the JSONL file to write")
    parser.add_argument("--n", type=int, default=10000, help="problems (default 10000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-numbers", type=int, default=3)
    parser.add_argument("--max-numbers", type=int, default=4)
    parser.add_argument("--max-number", type=int, default=99)
    parser.add_argument("--max-target", type=int, default=100)
    args = parser.parse_args()
    if args.n < 1 or not 2 <= args.min_numbers <= args.max_numbers or args.max_number < 1:
        parser.error("expected --n >= 1, 2 <= --min-numbers <= --max-numbers and --max-number >= 1")
    rng = random.Random(args.seed)
    folder = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(folder, exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        for _ in range(args.n):
            nums, target = make_problem(rng, rng.randint(args.min_numbers, args.max_numbers), args.max_number,
                                        args.max_target)
            f.write(json.dumps({"prompt": PROMPT.format(nums=nums, target=target), "target": target,
                                "nums": nums}) + "\n")
    os.replace(tmp, args.out)
    print("%d problems -> %s" % (args.n, args.out))


if __name__ == "__main__":
    main()
