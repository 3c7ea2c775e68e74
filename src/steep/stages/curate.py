"""curate: the training set's last gate. Drops duplicate questions and any example that leaks an
evaluation question (shared word 8-gram, or the whole question when it is shorter than that)."""

from __future__ import annotations

from ..scoring import normalize

NGRAM = 8


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _contains_any(words: list[str], grams: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    for n in {len(g) for g in grams}:
        for i in range(len(words) - n + 1):
            if tuple(words[i : i + n]) in grams:
                return tuple(words[i : i + n])
    return None


def decontaminate(records: list[dict], eval_questions: list[str]) -> tuple[list[dict], list[dict]]:
    """Split records into (kept, leaked). A record leaks if its prompt (or text) contains a word
    8-gram of an eval question, or a whole eval question shorter than 8 words."""
    grams: set[tuple[str, ...]] = set()
    for q in eval_questions:
        grams |= _ngrams(normalize(q).split(), NGRAM)
    if not grams:
        return records, []
    kept, leaked = [], []
    for r in records:
        prompt = r["messages"][0]["content"] if "messages" in r else r["text"]
        hit = _contains_any(normalize(prompt).split(), grams)
        if hit:
            r["metadata"]["leaked_ngram"] = " ".join(hit)
            leaked.append(r)
        else:
            kept.append(r)
    return kept, leaked
