"""Benchmark: which questions `decline_unfamiliar` would decline, per threshold (steep.familiarity).

Scores every eval question of a run under its tuned model (the subject's familiarity, as the
eval and the server compute it) and counts, per threshold, how many questions of each group fall
below it: answerable ones per kind, unanswerable ones about an unstated attribute, and
unanswerable ones about a subject that does not exist (the knowledge bench's attributes no_person
and no_organization, read from PROBES_JSONL). Also the same for general questions no document
answers, "What is the capital of C?" for the forgetting set's countries: what the rule costs
outside the documents. Usage:
  python bench/unfamiliar_subjects.py RUN_DIR [--probes PROBES_JSONL] [--base]
(RUN_DIR: a run with eval/ done, e.g. `steep bench knowledge`'s DIR/runs/defaults; PROBES_JSONL,
by default DIR/probes.jsonl when it exists; --base scores under the run's base model instead)"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

THRESHOLDS = (-3.0, -4.0, -5.0, -6.0, -7.0)


def group(question: dict, attributes: dict[str, str]) -> str:
    if question.get("answer_type") == "unanswerable" or question.get("kind") == "unknown":
        made_up = attributes.get(question["question"], "").startswith("no_")
        return "unknown: subject does not exist" if made_up else "unknown: attribute unstated"
    return f"answerable: {question.get('kind') or 'any'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--probes", type=Path)
    parser.add_argument("--base", action="store_true")
    args = parser.parse_args()
    from steep.chat import open_chat
    from steep.familiarity import subject_familiarity
    from steep.forgetting import capital_items
    from steep.rundir import read_jsonl

    probes = args.probes or args.run.parent.parent / "probes.jsonl"
    attributes = {p["question"]: p["attribute"] for p in read_jsonl(probes)} if probes.exists() else {}
    questions = list(read_jsonl(args.run / "eval" / "answers_tuned.jsonl"))
    countries = [item["prompt"].removeprefix("The capital of ").removesuffix(" is") for item in capital_items()]
    general = [f"What is the capital of {c}?" for c in countries]
    chat = open_chat(args.run, base=args.base)
    scores = [None if found is None else found.score
              for found in subject_familiarity(chat.model, chat.tokenizer, chat.system_prompt, [q["question"] for q in questions] + general)]
    groups = [group(q, attributes) for q in questions] + ["general: capital of a country"] * len(general)
    sizes, scored = Counter(groups), Counter(g for g, s in zip(groups, scores) if s is not None)
    print(f"{'model':>8}: {'base' if args.base else 'tuned'} ({args.run})")
    print("| group | questions | with a subject | " + " | ".join(f"< {t:g}" for t in THRESHOLDS) + " |")
    print("|---|---:|---:|" + "---:|" * len(THRESHOLDS))
    for name in sorted(sizes):
        below = [sum(1 for g, s in zip(groups, scores) if g == name and s is not None and s < t) for t in THRESHOLDS]
        print(f"| {name} | {sizes[name]} | {scored[name]} | " + " | ".join(map(str, below)) + " |")
    answerable = [(s, q["question"]) for q, s in zip(questions, scores) if s is not None and group(q, attributes).startswith("answerable")]
    print("\nleast familiar answerable subjects:", *(f"  {s:6.2f}  {q}" for s, q in sorted(answerable)[:5]), sep="\n")


if __name__ == "__main__":
    main()
