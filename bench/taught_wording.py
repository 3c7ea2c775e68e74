"""Benchmark: of what a tuned model misses under wordings it was not taught, how much it answers when
the same question is put in a wording it was taught (docs/knowledge.md, round 39).

Each closed-book eval question that asks one taught name for a value (not yes/no, not a choice) is
matched, names masked, to its nearest shape among the training questions that ask one name about
itself (the taught reply opens with that name), by MiniLM cosine. Where the question's own shape was
not taught, the tuned model is asked the nearest shape with the name filled in. Per group (probe kind
and attribute, or the row's kind) and per minimum cosine: how many questions that rewords, and how
many of them are right as asked and as reworded. A measurement, not a feature: the nearest shape can
ask for something else ("At which university did X study?" -> "What did X study?").
Usage:
  python bench/taught_wording.py RUN_DIR [--rows ROWS_JSONL] [--probes PROBES_JSONL] [--min-cosine 0.6 0.7 ...]
(RUN_DIR: a run with curate/ and eval/ done; ROWS_JSONL: scored questions, by default RUN_DIR's
eval/answers_tuned.jsonl, or bench/other_wordings.py's output; PROBES_JSONL: the knowledge bench's
probes, for the attribute of each question, by default DIR/probes.jsonl when it exists)"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from steep.recital import asks_for_a_value

OWN_SHAPE = 0.999  # the question's shape is a taught one: asked as it is


def names(text: str) -> list[str]:
    from steep.familiarity import name_spans

    return [text[a:b] for a, b in name_spans(text)]


def taught_shapes(answered: list[tuple[str, str]]) -> list[str]:
    """Shapes of the answered training questions (`answered_questions`) that ask one name for a value about itself."""
    from steep.familiarity import question_shape

    return sorted({question_shape(question) for question, reply in answered
                   if asks_for_a_value(question) and len(asked := names(question)) == 1 and names(reply)[:1] == asked})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--rows", type=Path)
    parser.add_argument("--probes", type=Path)
    parser.add_argument("--min-cosine", type=float, nargs="+", default=[0.6, 0.7, 0.75, 0.8])
    args = parser.parse_args()
    from steep.chat import open_chat
    from steep.familiarity import answered_questions, question_shape
    from steep.retrieval import embed
    from steep.rundir import read_jsonl
    from steep.scoring import says_unknown, score

    answered = answered_questions(list(read_jsonl(args.run / "curate" / "qa.jsonl")))
    shapes = taught_shapes(answered)
    taught_names = {name for question, _ in answered for name in names(question)}
    probes = args.probes or args.run.parent.parent / "probes.jsonl"
    attributes = {p["question"]: f"{p['kind']}: {p['attribute']}" for p in read_jsonl(probes)} if probes.exists() else {}
    rows = list(read_jsonl(args.rows or args.run / "eval" / "answers_tuned.jsonl"))

    def group(row: dict) -> str:
        return attributes.get(row["question"]) or row.get("kind") or ("answerable" if row.get("answers") else "unanswerable")

    asked = [row for row in rows if not row.get("declined_unasked") and "options" not in row and asks_for_a_value(row["question"])
             and len(found := names(row["question"])) == 1 and found[0] in taught_names]
    cosines = embed([question_shape(row["question"]) for row in asked]) @ embed(shapes).T if asked else []
    lowest = min(args.min_cosine)
    reworded = [(row, shapes[best], float(row_cosines[best])) for row, row_cosines in zip(asked, cosines)
                if lowest <= row_cosines[(best := int(row_cosines.argmax()))] < OWN_SHAPE]
    print(f"{len(shapes)} taught shapes; {len(rows)} questions, {len(asked)} asking a taught name for a value, "
          f"{len(reworded)} of them not in a taught shape and within {lowest:g} of one")
    if not reworded:
        return
    chat = open_chat(args.run)
    fill = [re.sub(r"\bX\b", names(row["question"])[0], shape) for row, shape, _ in reworded]
    replies = chat.generate([[{"role": "user", "content": q}] for q in fill], 64, 16, desc="reworded")

    def right(row: dict, reply: str) -> float:
        return score(reply, row["answers"], row.get("answer_type", "short"))["contained"] if row.get("answers") else float(says_unknown(reply))

    then = [right(row, row["reply"]) for row, _, _ in reworded]
    now = [right(row, reply) for (row, _, _), reply in zip(reworded, replies)]

    print("\n| group | questions | " + " | ".join(f"cosine >= {t:g}: reworded, right as asked -> reworded" for t in args.min_cosine) + " |")
    print("|---|---:|" + "---:|" * len(args.min_cosine))
    sizes = Counter(group(row) for row in rows)
    for name in sorted(sizes) + ["all"]:
        cells = []
        for threshold in args.min_cosine:
            these = [(a, b) for (row, _, cosine), a, b in zip(reworded, then, now) if cosine >= threshold and name in ("all", group(row))]
            cells.append(f"{len(these)}: {sum(a for a, _ in these):g} -> {sum(b for _, b in these):g}")
        print(f"| {name} | {len(rows) if name == 'all' else sizes[name]} | " + " | ".join(cells) + " |")
    pairs = Counter((group(row), question_shape(row["question"]), shape, round(cosine, 3)) for row, shape, cosine in reworded)
    print("\nrewordings (group, asked -> taught shape, cosine, how many):")
    for (name, shape, taught, cosine), count in sorted(pairs.items(), key=lambda item: (item[0][0], -item[1]))[:60]:
        print(f"  {name}: {shape} -> {taught} ({cosine:.3f}) x{count}")


if __name__ == "__main__":
    main()
