"""Check your own implementation of an objective against minialign's properties.

    from minialign.check import check
    report = check("grpo_loss", my_grpo_loss, framework="torch")
    print(report)          # which properties hold; the smallest failing input of the others
    report.passed          # True / False

Hypothesis (``pip install "minialign[check]"``) is imported only when `check` runs, and
torch only for ``framework="torch"``. See docs/check.md for engineers and
docs/teaching.md for the graded exercises (``minialign exercises init``).
"""

from .options import CheckOptions
from .registry import NAMES, describe
from .report import CheckReport, Failure
from .runner import check

__all__ = ["NAMES", "CheckOptions", "CheckReport", "Failure", "check", "describe"]
