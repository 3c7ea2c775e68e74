"""curate: the training set's last gate. Removes every example that leaks an evaluation question:
one whose prompt embeds within cosine 0.8 of an eval question (all-MiniLM-L6-v2, as Platypus
does), or that shares a word 8-gram with an eval question and its answer (or contains the whole
of one shorter than that). Then evens out the answers of derived questions that what was removed
left lopsided."""

from __future__ import annotations

import random
from collections import defaultdict

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


def balance_labels(records: list[dict], methods: tuple[str, ...], seed: int) -> tuple[list[dict], list[dict]]:
    """(kept, dropped): for each method in `methods`, as many examples of each label (a closed-set
    answer: yes/no, the first or the second of two) as of its rarest one, the surplus dropped at
    random. Synth makes the labels even, but decontamination removes more of one than the other
    (on the knowledge bench: 27 "no" kept against 14 "yes"), and a training set that leans one way
    teaches the lean: that model answered "no" to every yes/no probe."""
    groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, r in enumerate(records):
        if r["metadata"].get("method") in methods and r["metadata"].get("label"):
            groups[r["metadata"]["method"]][r["metadata"]["label"]].append(i)
    rng = random.Random(seed)
    surplus: set[int] = set()
    for labels in groups.values():
        keep = min(map(len, labels.values())) if len(labels) > 1 else 0  # a single label teaches only the lean
        for indices in labels.values():
            surplus.update(rng.sample(indices, len(indices) - keep))
    return [r for i, r in enumerate(records) if i not in surplus], [r for i, r in enumerate(records) if i in surplus]
