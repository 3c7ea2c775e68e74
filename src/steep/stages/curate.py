"""curate: the training set's last gate. Removes every example that leaks an evaluation question:
one whose prompt embeds within cosine 0.8 of an eval question (all-MiniLM-L6-v2, as Platypus
does), or that shares a word 8-gram with an eval question and its answer (or contains the whole
of one shorter than that)."""

from __future__ import annotations

import numpy as np

from ..retrieval import embed
from ..scoring import normalize

NGRAM = 8
SIMILARITY = 0.8
CLOSEST_SHOWN = 10


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _contains_any(words: list[str], grams: dict[tuple[str, ...], int]) -> tuple[tuple[str, ...], int] | None:
    for n in {len(g) for g in grams}:
        for i in range(len(words) - n + 1):
            if (gram := tuple(words[i : i + n])) in grams:
                return gram, grams[gram]
    return None


def _prompt(record: dict) -> str:
    """What to compare with eval questions: the question itself, also when a RAFT prompt wraps it in context."""
    if record["metadata"].get("question"):
        return record["metadata"]["question"]
    return record["messages"][0]["content"] if "messages" in record else record["text"]


def _whole(record: dict) -> str:
    return " ".join(m["content"] for m in record["messages"]) if "messages" in record else record["text"]


def decontaminate(records: list[dict], eval_items: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """(kept, leaked, closest): the records split, and the CLOSEST_SHOWN most similar
    (record, eval question) pairs, removed or not, for the report."""
    if not records or not eval_items:
        return records, [], []
    grams: dict[tuple[str, ...], int] = {}
    for i, item in enumerate(eval_items):
        for gram in _ngrams(normalize(f"{item['question']} {' '.join(item.get('answers', []))}").split(), NGRAM):
            grams.setdefault(gram, i)
        for gram in _ngrams(normalize(item["question"]).split(), NGRAM):
            grams.setdefault(gram, i)
    similarity = embed([_prompt(r) for r in records]) @ embed([q["question"] for q in eval_items]).T
    nearest, nearest_sim = similarity.argmax(axis=1), similarity.max(axis=1)
    kept, leaked = [], []
    for r, q_index, sim in zip(records, nearest, nearest_sim):
        hit = _contains_any(normalize(_whole(r)).split(), grams)
        if hit:
            r["metadata"] |= {"leaked_ngram": " ".join(hit[0]), "eval_question": eval_items[hit[1]]["question"]}
            leaked.append(r)
        elif sim >= SIMILARITY:
            r["metadata"] |= {"leaked_similarity": round(float(sim), 3), "eval_question": eval_items[q_index]["question"]}
            leaked.append(r)
        else:
            kept.append(r)
    order = np.argsort(-nearest_sim)[:CLOSEST_SHOWN]
    closest = [{"example": _prompt(records[i]), "eval_question": eval_items[nearest[i]]["question"],
                "similarity": round(float(nearest_sim[i]), 3), "removed": bool(nearest_sim[i] >= SIMILARITY)} for i in order]
    return kept, leaked, closest
