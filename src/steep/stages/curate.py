"""curate: the training set's last gate. Removes every example that leaks an evaluation question:
one that shares a word 8-gram with an eval question and its answer (or contains the whole of one
shorter than that); and of question/answer pairs, one whose question embeds within cosine 0.8 of
an eval question (all-MiniLM-L6-v2, as Platypus does) or names every name and number of an eval
question that names two or more. Then evens out the answers of derived questions that what was
removed left lopsided.

A text (a document passage or its augmentation) is held to the 8-gram test only: it states the
facts the eval asks about, which is what training is for, and a short passage about one subject
embeds within 0.8 of any question about that subject (knowledge bench, 100 entities: a person's
whole section, original and rewrites, went for "Name the town that is the birthplace of X.").
A passage that copies an eval question is still caught by its words."""

from __future__ import annotations

import random
import re
from collections import defaultdict

import numpy as np

from ..retrieval import embed
from ..scoring import normalize
from .synth import NUMBER_RE, PROPER_RE

VERSION = 2  # bumped when what counts as a leak changes, so that a rerun curates again (2: texts by words only)
NGRAM = 8
SIMILARITY = 0.8
# Two names (or a name and a number) pin a question to one claim, which a paraphrase keeps while its
# wording drifts: "Is the one Ada Lim works for based in Brask?" is 0.57-0.80 from "Is Ada Lim's
# employer based in Brask?" (knowledge bench, round 7). No cosine floor: MiniLM is so taken with
# names that questions sharing two sit above 0.5 whatever else they ask.
MIN_NAMES = 2
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
    return record["metadata"].get("question") or record["messages"][0]["content"]


def names(question: str) -> set[str]:
    """The proper names and numbers `question` mentions, possessives dropped. Its first word is
    capitalized whatever it is, so it is lowercased first."""
    text = question[:1].lower() + question[1:]
    return {re.sub(r"['’]s$", "", m.group()) for pattern in (PROPER_RE, NUMBER_RE) for m in pattern.finditer(text)}


def _mentions_all(text: str, wanted: set[str]) -> bool:
    return all(re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) for name in wanted)


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
    asking = [i for i, r in enumerate(records) if "messages" in r]
    nearest, nearest_sim = np.zeros(len(records), dtype=int), np.full(len(records), -1.0)
    if asking:
        similarity = embed([_prompt(records[i]) for i in asking]) @ embed([q["question"] for q in eval_items]).T
        nearest[asking], nearest_sim[asking] = similarity.argmax(axis=1), similarity.max(axis=1)
    eval_names = [names(q["question"]) for q in eval_items]
    same_names = _same_names([_prompt(r) if "messages" in r else None for r in records], eval_names)
    kept, leaked = [], []
    for i, (r, q_index, sim) in enumerate(zip(records, nearest, nearest_sim)):
        hit = _contains_any(normalize(_whole(r)).split(), grams)
        if hit:
            r["metadata"] |= {"leaked_ngram": " ".join(hit[0]), "eval_question": eval_items[hit[1]]["question"]}
            leaked.append(r)
        elif sim >= SIMILARITY:
            r["metadata"] |= {"leaked_similarity": round(float(sim), 3), "eval_question": eval_items[q_index]["question"]}
            leaked.append(r)
        elif i in same_names:
            q_index = same_names[i]
            r["metadata"] |= {"leaked_names": sorted(eval_names[q_index]), "eval_question": eval_items[q_index]["question"]}
            leaked.append(r)
        else:
            kept.append(r)
    order = np.argsort(-nearest_sim)[: min(CLOSEST_SHOWN, len(asking))]  # texts sit at -1, below every question
    closest = [{"example": _prompt(records[i]), "eval_question": eval_items[nearest[i]]["question"],
                "similarity": round(float(nearest_sim[i]), 3), "removed": bool(nearest_sim[i] >= SIMILARITY)} for i in order]
    return kept, leaked, closest


def _same_names(questions: list[str | None], eval_names: list[set[str]]) -> dict[int, int]:
    """{question index: eval index} for each question that names every name of an eval question
    with MIN_NAMES or more. None stands for a record that asks nothing: a document sentence naming a
    person and the city of their employer is the fact itself, which training must keep."""
    postings: dict[str, set[int]] = defaultdict(set)  # word -> questions, so each eval question checks only its candidates
    for i, question in enumerate(questions):
        for word in re.findall(r"\w+", question or ""):
            postings[word].add(i)
    found: dict[int, int] = {}
    for q_index, wanted in enumerate(eval_names):
        if len(wanted) < MIN_NAMES:  # one name is a subject, not a claim
            continue
        words = [word for name in wanted for word in re.findall(r"\w+", name)]
        for i in sorted(set.intersection(*(postings.get(word, set()) for word in words))):
            if i not in found and _mentions_all(questions[i], wanted):
                found[i] = q_index
    return found


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
