"""Benchmark: could the tuned model's own confidence decide when to decline? Reads a run's
closed-book replies (eval/answers_tuned.jsonl) and, teacher-forced under the tuned model, prints
two figures per reply, grouped by what the reply was (an answerable question answered right,
answered wrong or declined; an unanswerable one declined or answered):

- p(decline): the probability of the decline's opening ("I don't know") at the reply's start.
  A rule "decline only when p(decline) >= t" keeps the declines above t and answers the rest;
- least sure token: the lowest probability among the reply's tokens that are not in the question
  (the recalled value, not the restated subject). A rule "decline when it is below t" would
  catch invented answers if they are less sure than recalled ones.

For each threshold, how many replies of each group fall on the declining side.
Usage: python bench/reply_confidence.py RUN_DIR [--probes PROBES_JSONL]
(RUN_DIR: a run with eval/ done, e.g. `steep bench knowledge`'s DIR/runs/defaults; PROBES_JSONL,
by default DIR/probes.jsonl when it exists, splits the unanswerable probes by attribute, which
tells questions about subjects that do not exist (attribute no_person, no_organization) apart)"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def group(row: dict, attributes: dict[str, str]) -> str:
    if row["kind"] == "unknown":
        what = "nonexistent subject" if attributes.get(row["question"], "").startswith("no_") else "unstated attribute"
        return f"unknown, {what}, {'declined' if row['declined'] else 'answered'}"
    if row["declined"]:
        return "answerable, declined"
    return "answerable, right" if row["contained"] else "answerable, wrong"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--probes", type=Path)
    args = parser.parse_args()
    from steep.chat import open_chat
    from steep.forgetting import continuation_logprobs
    from steep.rundir import read_jsonl
    from steep.stages.derived import DECLINE

    probes = args.probes or args.run.parent.parent / "probes.jsonl"
    attributes = {p["question"]: p["attribute"] for p in read_jsonl(probes)} if probes.exists() else {}
    # yes/no and comparison replies answer from a closed set: declining them is not what is asked here
    rows = [r for r in read_jsonl(args.run / "eval" / "answers_tuned.jsonl") if r["answer_type"] in ("short", "unanswerable")]
    chat = open_chat(args.run)
    tok = chat.tokenizer

    def ids(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    opening = ids(DECLINE)[:4]  # "I don't know"; a name may start with "I" alone
    prompts = [chat.prompt_ids([{"role": "user", "content": r["question"]}]) for r in rows]
    replies = [ids(r["reply"]) for r in rows]
    declines = continuation_logprobs(chat.model, tok.pad_token_id, [(p, opening) for p in prompts])
    own = continuation_logprobs(chat.model, tok.pad_token_id, list(zip(prompts, replies)))
    measures: dict[str, dict[str, list[float]]] = {"p(decline)": defaultdict(list), "least sure token": defaultdict(list)}
    for row, decline, reply, logprobs in zip(rows, declines, replies, own):
        asked = set(ids(row["question"])) | set(ids(" " + row["question"]))
        measures["p(decline)"][group(row, attributes)].append(math.exp(sum(decline)))
        measures["least sure token"][group(row, attributes)].append(
            min((math.exp(lp) for t, lp in zip(reply, logprobs) if t not in asked), default=1.0))
    for name, groups in measures.items():
        side = ">=" if name == "p(decline)" else "<"
        print(f"\n## {name}: quartiles per group; replies with {name} {side} t (the side that declines)")
        print(f"{'group':40s} {'n':>4s} {'q1':>5s} {'median':>6s} {'q3':>5s} " + " ".join(f"{t:>5}" for t in THRESHOLDS))
        for key in sorted(groups):
            v = sorted(groups[key])
            counts = [sum((x >= t) if side == ">=" else (x < t) for x in v) for t in THRESHOLDS]
            print(f"{key:40s} {len(v):4d} {v[len(v) // 4]:5.2f} {v[len(v) // 2]:6.2f} {v[3 * len(v) // 4]:5.2f} " + " ".join(f"{c:5d}" for c in counts))


if __name__ == "__main__":
    main()
