"""QA metrics after SQuAD-style normalization: exact match, answer recall, ROUGE-L."""

from __future__ import annotations

import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lower case, strip punctuation and articles, fold whitespace (SQuAD's normalize_answer)."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def answer_recall(prediction: str, gold: str) -> float:
    """1 if the normalized gold answer is contained in the normalized prediction (PIT's recall)."""
    g = normalize(gold)
    return float(bool(g) and f" {g} " in f" {normalize(prediction)} ")


def rouge_l(prediction: str, gold: str) -> float:
    """ROUGE-L F1 over normalized word tokens (longest common subsequence)."""
    p, g = normalize(prediction).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    prev = [0] * (len(g) + 1)
    for a in p:
        cur = [0]
        for j, b in enumerate(g):
            cur.append(prev[j] + 1 if a == b else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(g)
    return 2 * precision * recall / (precision + recall)
