"""R1-Zero's rule-based reward written as a zeroth Python reward function.

The same rule as zeroth's native `accuracy` + strict `format` functions (for numeric
answers): 1 for the answer in the last <answer>...</answer> equal to the ground truth,
plus 1 for the whole completion being <think>...</think> <answer>...</answer> with each
tag once. It has verl's compute_score signature, so a verl reward file drops in the
same way. Use it as the starting point for a rule of your own:

    rewards:
      functions: [{name: python}]
      python: {path: scripts/rewards/r1zero_reward.py}

(configs/rewards-python.yaml; docs/rewards.md, "Python reward functions").
"""

import re
from fractions import Fraction

TAGS = ("<think>", "</think>", "<answer>", "</answer>")
STRICT = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")


def _value(text):
    """The last number in `text` as an exact fraction, or None."""
    found = NUMBER.findall(text.replace("$", ""))
    if not found:
        return None
    try:
        return Fraction(found[-1].replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    strict = STRICT.fullmatch(solution_str)
    formatted = (strict is not None and all(solution_str.count(t) == 1 for t in TAGS)
                 and strict.group(1).strip() != "" and strict.group(2).strip() != "")
    answers = ANSWER.findall(solution_str)
    answer = _value(answers[-1]) if answers else None
    correct = answer is not None and answer == _value(str(ground_truth))
    return {"score": float(correct) + float(formatted), "correct": correct}
