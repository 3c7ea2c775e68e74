"""Pair two runs' saved replies over the same probes: the difference with its bootstrap interval,
and per kind (and per attribute, given the bench's probes) how many each got right and how many
probes one gained or lost against the other.

`steep bench knowledge` pairs the variants of one bench folder. This pairs any two answer files,
so a run can be set against one from another folder or session (rounds 44 and 45 in
docs/knowledge.md), and splits the probes by the attribute they ask, which the bench's table
does not.

Usage: python bench/pair_answers.py REFERENCE OTHER [--probes BENCH_DIR/probes.jsonl]
  REFERENCE, OTHER: eval/answers_<condition>.jsonl of two runs"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path)
    parser.add_argument("other", type=Path)
    parser.add_argument("--probes", type=Path, help="the bench's probes.jsonl, to split the probes by attribute")
    args = parser.parse_args()
    from steep.knowledge.bench import gained_and_lost
    from steep.rundir import read_jsonl
    from steep.stages.evaluate import paired_difference

    reference, other = read_jsonl(args.reference), read_jsonl(args.other)
    if [r["question"] for r in reference] != [r["question"] for r in other]:
        raise SystemExit(f"{args.reference} and {args.other} answer different probes, so they cannot be paired")
    pair = paired_difference(reference, other)
    low, high = pair["ci"]
    print(f"{args.other} minus {args.reference}, {len(other)} probes: {pair['difference']:+.1%} (95% interval {low:+.1%} to {high:+.1%})\n")

    groups = {"kind": lambda row: row["kind"]}
    if args.probes:
        attribute = {p["question"]: p["attribute"] for p in read_jsonl(args.probes)}
        groups["kind / attribute"] = lambda row: f"{row['kind']} / {attribute[row['question']]}"
    for name, group in groups.items():
        total, right_before, right_after = Counter(), Counter(), Counter()
        for before, after in zip(reference, other):
            total[group(after)] += 1
            right_before[group(after)] += int(before["contained"])
            right_after[group(after)] += int(after["contained"])
        changed = gained_and_lost(reference, other, group)
        print(f"| {name} | reference | other | gained | lost |\n|---|---:|---:|---:|---:|")
        for key in sorted(total):
            moved = changed.get(key, {"gained": 0, "lost": 0})
            print(f"| {key} | {right_before[key]} of {total[key]} | {right_after[key]} of {total[key]} | +{moved['gained']} | -{moved['lost']} |")
        print()


if __name__ == "__main__":
    main()
