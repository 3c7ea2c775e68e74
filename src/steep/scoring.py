"""Answer scoring: normalized exact match, answer-contained, token F1 (SQuAD-style normalization)."""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalize(text: str) -> str:
    """Lowercase, punctuation to spaces, articles dropped, whitespace folded."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(prediction: str, answer: str) -> bool:
    return normalize(prediction) == normalize(answer)


def contained(prediction: str, answer: str) -> bool:
    """The answer appears in the prediction as whole words."""
    pred, ans = normalize(prediction), normalize(answer)
    return bool(ans) and f" {ans} " in f" {pred} "


def token_f1(prediction: str, answer: str) -> float:
    pred, ans = normalize(prediction).split(), normalize(answer).split()
    common = sum((Counter(pred) & Counter(ans)).values())
    if not pred or not ans or not common:
        return float(pred == ans)
    precision, recall = common / len(pred), common / len(ans)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, answers: list[str]) -> dict[str, float]:
    """The best of each metric over the gold answers."""
    return {
        "exact_match": float(any(exact_match(prediction, a) for a in answers)),
        "contained": float(any(contained(prediction, a) for a in answers)),
        "f1": max((token_f1(prediction, a) for a in answers), default=0.0),
    }


def answer_matches(prediction: str, answer: str) -> bool:
    """Lenient agreement for filters: contained, or token F1 of at least 0.5."""
    return contained(prediction, answer) or token_f1(prediction, answer) >= 0.5
