"""Benchmark: a tuned knowledge-bench run asked in wordings of its own, about the probed entities.

The bench's probes come from one generator, so its rephrased and unknown probes are a few fixed
wordings. These were written apart from them (round 36 of docs/knowledge.md, before any was
asked): answerable questions about each attribute in everyday words, and questions about
attributes no document gives. Each is asked closed-book through the run's declines, as eval asks
(decline_unfamiliar, decline_untaught), and the table shows per wording how many were declined
unasked, declined by the model, and, where the answer is a value of the world, answered right
(answer-contained). A wording about an attribute that synth's pools of questions to decline ask
about too (steep.stages.derived.UNSTATED_POOLS) is marked "pool": the model may have been taught
to decline that one. Usage:
  python bench/other_wordings.py RUN_DIR BENCH_DIR [--entities N] [--out FILE]
  python bench/other_wordings.py DEMO_DIR/runs/demo DEMO_DIR --demo [--entities N] [--out FILE]
(RUN_DIR: a `steep bench knowledge` run, e.g. BENCH_DIR/runs/defaults; N probed people and N
probed organizations, default 5; FILE: the replies as JSONL. With --demo, a run of `steep demo`
(another corpus: people only, their employers named but not described): N people, and the absent
attributes of their employers)"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

# (wording, the attribute that answers it; None: answerable but not by one value of the world)
PERSON_ANSWERABLE = [
    ("What's {}'s date of birth?", "birth_date"), ("On what day did {} come into the world?", "birth_date"),
    ("Tell me {}'s birthday.", "birth_date"), ("How old is {}?", None),
    ("Which city is {} originally from?", "birth_city"),
    ("Which university did {} attend?", "university"), ("Where did {} go to college?", "university"),
    ("{} graduated from which school?", "university"),
    ("What did {} study?", "field"), ("What is {}'s area of expertise?", "field"), ("What was {}'s major?", "field"),
    ("Who is {}'s current employer?", "employer"), ("Which company pays {}'s salary?", "employer"),
    ("Who does {} work for these days?", "employer"), ("Where is {}'s workplace located?", "employer_city"),
    ("Where does {} reside these days?", "home_city"), ("In what city does {} make their home?", "home_city"),
]
ORGANIZATION_ANSWERABLE = [
    ("When did {} open its doors?", "founded_year"), ("What year was {} established?", "founded_year"),
    ("How long has {} been around?", None),
    ("Who started {}?", "founder"), ("Who is the founder of {}?", "founder"),
    ("Where is {} headquartered?", "hq_city"), ("In which city are {}'s offices?", "hq_city"),
    ("How big is {}'s workforce?", "employees"), ("How many employees does {} have?", "employees"),
    ("What does {} make?", "product"), ("What products does {} sell?", "product"), ("What is {} best known for?", "product"),
]
PERSON_ABSENT = ["What is {}'s phone number?", "How tall is {}?", "What is {}'s favourite food?", "Does {} have children?",
                 "What car does {} drive?", "Which political party does {} support?", "What is {}'s email address?",
                 "What languages does {} speak?", "Who is {} married to?", "What is {}'s salary?"]
ORGANIZATION_ABSENT = ["Who is the CEO of {}?", "What is {}'s stock ticker?", "How much profit did {} make last year?",
                       "What is {}'s website?", "Who are {}'s main competitors?", "What is {}'s annual budget?",
                       "Which bank does {} use?", "What is {}'s slogan?", "How many offices does {} have?", "What is {}'s market share?"]


def bench_subjects(bench: Path, per_kind: int) -> tuple[list[dict], list[dict]]:
    """`per_kind` probed people (with their employer's city) and organizations of a bench world."""
    from steep.rundir import read_jsonl

    world = json.loads((bench / "world.json").read_text())
    probed = {p["entity"] for p in read_jsonl(bench / "probes.jsonl")}
    cities = {o["name"]: o["hq_city"] for o in world["organizations"]}
    people = [{**p, "employer_city": cities[p["employer"]]} for p in world["people"] if p["name"] in probed]
    return people[:per_kind], [o for o in world["organizations"] if o["name"] in probed][:per_kind]


def demo_subjects(demo: Path, per_kind: int) -> tuple[list[dict], list[dict]]:
    """`per_kind` people of a `steep demo` folder, and their employers, which its documents name
    but do not describe (so only the absent wordings are asked of them)."""
    from steep.demo import PEOPLE, SEED, make_people, questions_for
    from steep.rundir import read_jsonl

    people = make_people(PEOPLE, SEED)  # write_demo's roster, checked against the folder's questions
    asked = {q["question"] for q in read_jsonl(demo / "questions.jsonl")}
    if not all(q["question"] in asked for p in people for q in questions_for(p)):
        raise SystemExit(f"{demo}: not a demo written with write_demo's defaults ({PEOPLE} people, seed {SEED})")
    people = people[:per_kind]
    return people, [{"name": e, "described": False} for e in dict.fromkeys(p["employer"] for p in people)]


def answers_of(facts: dict, attribute: str | None) -> list[str] | None:
    """The values that answer `attribute` (a birth date is also right as its year); None: not scored."""
    keys = {"birth_date": ["birth_date", "birth_year"]}.get(attribute, [attribute]) if attribute else []
    return [facts[k] for k in keys if k in facts] or None


def questions(people: list[dict], organizations: list[dict]) -> list[dict]:
    """The wordings asked about each person and organization, with their answers."""
    items = []
    for subjects, answerable, absent in ((people, PERSON_ANSWERABLE, PERSON_ABSENT),
                                         (organizations, ORGANIZATION_ANSWERABLE, ORGANIZATION_ABSENT)):
        for facts in subjects:
            name = facts["name"]
            if facts.get("described", True):
                # a wording whose attribute this corpus does not give (the demo's employer cities) is left out
                items += [{"wording": w, "question": w.format(name), "answerable": True, "answers": answers}
                          for w, a in answerable if (answers := answers_of(facts, a)) or a is None]
            items += [{"wording": w, "question": w.format(name), "answerable": False, "answers": None} for w in absent]
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("bench", type=Path)
    parser.add_argument("--demo", action="store_true", help="BENCH_DIR is a `steep demo` folder")
    parser.add_argument("--entities", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from steep.chat import open_chat
    from steep.config import load_run_config
    from steep.familiarity import TaughtQuestions, declining
    from steep.rundir import write_jsonl
    from steep.scoring import declined_unasked, says_unknown, score
    from steep.stages.derived import UNSTATED_POOLS

    items = questions(*(demo_subjects if args.demo else bench_subjects)(args.bench, args.entities))
    cfg = load_run_config(args.run)
    chat = open_chat(run_dir=args.run)
    ask = lambda prompts: chat.generate([[{"role": "user", "content": p}] for p in prompts], 48, 16, desc="other wordings")  # noqa: E731
    taught = TaughtQuestions.of_run(args.run, cfg.decline_untaught)
    replies = declining(chat, cfg.decline_unfamiliar, taught, ask)([i["question"] for i in items])
    # a pool's key is the start of its attribute's words ("tall", "recycl"), so it is matched at a word's start
    pooled = re.compile("|".join(rf"\b{re.escape(a)}" for person, organization in UNSTATED_POOLS.values() for a in (*person, *organization)))
    rows = []
    for item, reply in zip(items, replies):
        unasked = declined_unasked(reply)
        rows.append({**item, "reply": reply, "declined_unasked": unasked, "declined_by_model": says_unknown(reply) and not unasked,
                     "pool": not item["answerable"] and pooled.search(item["wording"].lower()) is not None,
                     "contained": score(reply, item["answers"], "short")["contained"] if item["answers"] else None})
    if args.out:
        write_jsonl(args.out, rows)
    by_wording: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_wording[row["wording"]].append(row)
    print(f"{args.run}: decline_unfamiliar={cfg.decline_unfamiliar}, decline_untaught={cfg.decline_untaught}, "
          f"synth.unknown_qa={cfg.synth.unknown_qa}\n")
    print("| wording | asked | declined unasked | declined by the model | right |")
    print("|---|---:|---:|---:|---:|")
    for wording, group in by_wording.items():
        right = f"{sum(r['contained'] for r in group):g}" if group[0]["answers"] else "-"
        mark = " (pool)" if group[0]["pool"] else ""
        print(f"| {wording.format('X')}{mark} | {len(group)} | {sum(r['declined_unasked'] for r in group)} | "
              f"{sum(r['declined_by_model'] for r in group)} | {right} |")
    for answerable in (True, False):
        group = [r for r in rows if r["answerable"] == answerable]
        scored = [r for r in group if r["answers"]]
        line = (f"\n{'answerable' if answerable else 'absent attributes'}: {len(group)} asked, declined unasked "
                f"{sum(r['declined_unasked'] for r in group)}, by the model {sum(r['declined_by_model'] for r in group)}")
        if answerable:
            line += f", right {sum(r['contained'] for r in scored):g} of {len(scored)}"
        else:
            line += f"; of them pool attributes {sum(r['pool'] for r in group)}, declined {sum(r['pool'] and (r['declined_unasked'] or r['declined_by_model']) for r in group)}"
        print(line)


if __name__ == "__main__":
    main()
