"""Verifiable arithmetic: outcome rewards, process rewards, and a hack that fools one of them.

A prompt is a problem such as ``7+5=``; the response is a short chain of
steps and a final answer, character by character::

    7+3=10;10+2=12;a12        (make ten, then add the rest; "a" marks the answer)

Two rewards can be computed exactly from the text, so GRPO needs no reward model:

* $r_{\\rm outcome} \\in \\{0, 1\\}$: is the final answer right?
* $r_{\\rm process} \\in [0, 1]$: the fraction of sound steps. Step $i$, written
  $x_i \\circ y_i = z_i$, is sound if it is **true**, uses the problem's operator,
  **connects** ($x_1 = a$, $x_i = z_{i-1}$) and **makes progress**
  ($y_i \\ge 1$, $\\sum_{j \\le i} y_j \\le b$). The answer line counts as one more
  step: sound if it equals the last result and the problem's answer. So
  $r_{\\rm process} = (\\#\\text{sound steps} + [\\text{answer sound}]) / (k + 1)$.

``1+1=5;a12`` (for 7+5) is the *superficial solution hack*: outcome 1, process 0.
Outcome reward alone cannot tell it from real work; the combination
$\\lambda r_{\\rm outcome} + (1-\\lambda) r_{\\rm process}$ can. Any string gets rewards in
[0, 1]; parsing never raises.
"""

from __future__ import annotations

import re

import numpy as np

from ..autograd.engine import get_rng
from ..tokenizer import SequenceBatch, Tokenizer

CHARS = "0123456789+-=;a"
_PROBLEM = re.compile(r"(\d)([+-])(\d)=")
_STEP = re.compile(r"(\d{1,6})([+-])(\d{1,6})=(\d{1,6})")
_ANSWER = re.compile(r"a(\d{1,6})")
CORRUPTIONS = ("slip", "wrong_answer", "skip", "bogus")

Problem = tuple[int, str, int]  # (a, op, b)


def solve(problem: Problem) -> int:
    a, op, b = problem
    return a + b if op == "+" else a - b


def _chain(problem: Problem) -> list[tuple[int, int]]:
    """The (x_i, y_i) of a correct trace: make ten when a sum crosses ten, else one step."""
    a, op, b = problem
    if op == "+" and a + b > 10 and a < 10:
        return [(a, 10 - a), (10, b - (10 - a))]
    return [(a, b)]


def _render(op: str, steps: list[tuple[int, int, int]], answer: int) -> str:
    return ";".join([f"{x}{op}{y}={z}" for x, y, z in steps] + [f"a{answer}"])


def correct_trace(problem: Problem) -> str:
    """The reference solution, e.g. ``7+3=10;10+2=12;a12`` for (7, '+', 5)."""
    op = problem[1]
    steps = [(x, y, solve((x, op, y))) for x, y in _chain(problem)]
    return _render(op, steps, steps[-1][2])


def hacked_response(problem: Problem, rng: np.random.Generator | None = None) -> str:
    """Right answer, bogus reasoning: 1-2 false, unconnected steps then ``a<answer>``."""
    rng, target = get_rng(rng), solve(problem)
    steps = []
    for _ in range(int(rng.integers(1, 3))):
        x, y = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        z = x + y + int(rng.integers(1, 4))  # false by construction
        steps.append((x, y, z if z != target else z + 1))
    return _render("+", steps, target)


def corrupted_trace(problem: Problem, kind: str, rng: np.random.Generator | None = None) -> str:
    """A flawed response of the given ``kind``:

    ``slip``          one step's result off by one, carried through to a wrong answer
    ``wrong_answer``  a correct trace ending in a wrong answer
    ``skip``          no steps, just the right answer (``a12``)
    ``bogus``         `hacked_response`: false steps, right answer
    """
    rng, op, target = get_rng(rng), problem[1], solve(problem)
    steps = [(x, y, solve((x, op, y))) for x, y in _chain(problem)]
    if kind == "slip":
        i = int(rng.integers(len(steps)))
        x, y, z = steps[i]
        steps[i] = (x, y, z + (1 if z == 0 or rng.random() < 0.5 else -1))
        for j in range(i + 1, len(steps)):  # later steps start from the wrong value
            x = steps[j - 1][2]
            steps[j] = (x, steps[j][1], solve((x, op, steps[j][1])))
        return _render(op, steps, steps[-1][2])
    if kind == "wrong_answer":
        off = int(rng.integers(1, 3))
        return _render(
            op, steps, target + off if target < off or rng.random() < 0.5 else target - off
        )
    if kind == "skip":
        return f"a{target}"
    if kind == "bogus":
        return hacked_response(problem, rng)
    raise ValueError(f"kind must be one of {CORRUPTIONS}, got {kind!r}")


def parse_problem(text: str) -> Problem | None:
    """``'7+5=...'`` -> (7, '+', 5); None if the text does not start with a problem."""
    m = _PROBLEM.match(text)
    return (int(m[1]), m[2], int(m[3])) if m else None


def score(problem: Problem | None, response: str) -> tuple[float, float]:
    """(r_outcome, r_process) of one response string; (0, 0) if there is no problem."""
    if problem is None:
        return 0.0, 0.0
    a, op, b = problem
    target = solve(problem)
    segments = response.split(";")
    answer = _ANSWER.fullmatch(segments[-1])
    steps = segments[:-1] if answer else segments
    outcome = float(answer is not None and int(answer[1]) == target)
    sound, prev, used, last = 0, a, 0, None
    for seg in steps:
        m = _STEP.fullmatch(seg)
        if m is None:
            prev = last = None  # the chain is broken: the next step cannot connect
            continue
        x, o, y, z = int(m[1]), m[2], int(m[3]), int(m[4])
        used += y
        true = solve((x, o, y)) == z
        sound += int(true and o == op and x == prev and y >= 1 and used <= b)
        prev = last = z
    answer_sound = answer is not None and last is not None and int(answer[1]) == last == target
    return outcome, (sound + answer_sound) / (len(steps) + 1)


class ArithmeticTask:
    """Single-digit problems ``a op b`` with a, b in 1..max_operand (``-`` only when a >= b).

    Character-level tokenizer (vocab_size 18). Every prompt is BOS + 4 characters
    (``prompt_len`` = 5), so prompts stack densely; the longest correct response
    is 18 characters + END, and ``block_size`` = 32 leaves room to ramble.
    """

    def __init__(self, ops: str = "+", max_operand: int = 9, block_size: int = 32):
        if not ops or set(ops) - {"+", "-"}:
            raise ValueError(f"ops must be a non-empty string of '+' and '-', got {ops!r}")
        if not 1 <= max_operand <= 9:
            raise ValueError(f"max_operand must be in 1..9 (single digits), got {max_operand}")
        if block_size < 24:
            raise ValueError(
                f"block_size must be >= 24 to fit every correct trace, got {block_size}"
            )
        self.tokenizer = Tokenizer(list(CHARS), level="char")
        self.prompt_len, self.block_size = 5, block_size
        r = range(1, max_operand + 1)
        self.problems: list[Problem] = [
            (a, op, b) for op in ops for a in r for b in r if op == "+" or a >= b
        ]

    def sample_problems(self, n: int, rng: np.random.Generator | None = None) -> list[Problem]:
        return [self.problems[i] for i in get_rng(rng).integers(len(self.problems), size=n)]

    def encode_prompts(self, problems: list[Problem]) -> np.ndarray:
        """Problems -> dense (n, 5) int64 prompt ids: BOS ``a op b =``."""
        ids = [self.tokenizer.encode(f"{a}{op}{b}=", add_bos=True) for a, op, b in problems]
        return np.array(ids, dtype=np.int64).reshape(len(problems), self.prompt_len)

    def sample_prompts(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.encode_prompts(self.sample_problems(n, rng))

    def corpus(
        self, n: int, rng: np.random.Generator | None = None, p_noisy: float = 0.3
    ) -> SequenceBatch:
        """``n`` SFT sequences: correct traces, but a fraction ``p_noisy`` corrupted (an even
        mix of `CORRUPTIONS`) so the pre-trained reference is imperfect."""
        if not 0.0 <= p_noisy <= 1.0:
            raise ValueError(f"p_noisy must be in [0, 1], got {p_noisy}")
        rng = get_rng(rng)
        problems = self.sample_problems(n, rng)
        texts = []
        for problem in problems:
            if rng.random() < p_noisy:
                kind = CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
                texts.append(corrupted_trace(problem, kind, rng))
            else:
                texts.append(correct_trace(problem))
        responses = [self.tokenizer.encode(t, add_end=True) for t in texts]
        return self.tokenizer.pack(self.encode_prompts(problems), responses, self.block_size)

    def _response_text(self, ids: np.ndarray) -> str:
        """Masked response ids -> text up to END; PAD/BOS inside a response become '?'."""
        tok, out = self.tokenizer, []
        for i in ids.tolist():
            if i == tok.end_id:
                break
            out.append(tok.tokens[i] if i > tok.end_id and i < tok.vocab_size else "?")
        return "".join(out)

    def rewards(self, prompt_ids, response_ids, mask=None) -> tuple[np.ndarray, np.ndarray]:
        """``(r_outcome, r_process)``, each float64 (B,), in [0, 1].

        ``prompt_ids`` (B, P) start with BOS (a full sequence works too: the problem
        is read from its start); ``response_ids`` (B, R) with ``mask`` (B, R) True on
        generated tokens (None = all). Only tokens before the first END count.
        """
        prompt_ids, response_ids = np.asarray(prompt_ids), np.asarray(response_ids)
        mask = np.ones(response_ids.shape, bool) if mask is None else np.asarray(mask, bool)
        if prompt_ids.ndim != 2 or response_ids.ndim != 2 or mask.shape != response_ids.shape:
            raise ValueError(
                f"expected prompt_ids (B, P), response_ids (B, R) and mask (B, R); got "
                f"{prompt_ids.shape}, {response_ids.shape}, {mask.shape}"
            )
        if prompt_ids.shape[0] != response_ids.shape[0]:
            raise ValueError(
                f"batch sizes differ: {prompt_ids.shape[0]} vs {response_ids.shape[0]}"
            )
        scores = [
            score(parse_problem(self._response_text(p[p != self.tokenizer.bos_id])),
                  self._response_text(r[m]))
            for p, r, m in zip(prompt_ids, response_ids, mask)
        ]  # fmt: skip
        out = np.array(scores, dtype=np.float64).reshape(-1, 2)
        return out[:, 0], out[:, 1]

    def accuracy(self, prompt_ids, response_ids, mask=None) -> float:
        """Fraction of responses whose final answer is right (mean outcome reward)."""
        r_outcome, _ = self.rewards(prompt_ids, response_ids, mask)
        return float(r_outcome.mean()) if r_outcome.size else 0.0
