"""The Countdown task's reward (TinyZero's R1-Zero reproduction) as a zeroth Python reward.

The prompt gives numbers and a target; the completion's last <answer>...</answer> must be
an arithmetic expression that uses each given number exactly once (+, -, *, /,
parentheses) and equals the target. Score 1 and correct for that, 0.1 for an answer that
is there but wrong (TinyZero's format score), 0 without one. The numbers and the target
come from the prompt's record (extra_info), as scripts/make-countdown.py writes it:

    {"prompt": "...", "target": 98, "nums": [44, 19, 35]}

The expression is parsed with `ast` and computed exactly with fractions; nothing the
model wrote is ever evaluated as Python.
"""

import ast
import re
from collections import Counter
from fractions import Fraction

ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
ALLOWED = re.compile(r"[\d+\-*/().\s]+")
OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
       ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


def _evaluate(node, used):
    """The exact value of an expression node; raises ValueError on anything else."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, used)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in OPS:
        left, right = _evaluate(node.left, used), _evaluate(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError("division by zero")
        return OPS[type(node.op)](left, right)
    raise ValueError("not allowed: %s" % type(node).__name__)


def compute_score(solution_str, extra_info, format_score=0.1, score=1.0):
    answers = ANSWER.findall(solution_str)
    if not answers:
        return {"score": 0.0, "correct": False}
    expression = answers[-1].strip()
    if not expression or len(expression) > 200 or not ALLOWED.fullmatch(expression):
        return {"score": format_score, "correct": False}
    used = []
    try:
        value = _evaluate(ast.parse(expression, mode="eval"), used)
    except (SyntaxError, ValueError, RecursionError):
        return {"score": format_score, "correct": False}
    correct = Counter(used) == Counter(extra_info["nums"]) and value == extra_info["target"]
    return {"score": score if correct else format_score, "correct": correct}
