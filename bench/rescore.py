"""Re-score a finished run's saved replies with today's scorer, without generating them again.

When steep.scoring changes, its VERSION makes the eval stage of a new run score afresh; runs made
before the change keep their old figures. This prints, per condition and question kind, the
answer-contained accuracy as recorded and as scored now, and the replies whose judgement changed,
so figures from before and after a scorer change can be set side by side.

Every reply is re-scored but a choice whose row does not record its options (runs before they
were kept), which keeps its recorded judgement.

Usage: python bench/rescore.py RUN_DIR [RUN_DIR ...]   (RUN_DIR holds eval/answers_*.jsonl)"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--show", type=int, default=5, help="changed replies to print per condition")
    args = parser.parse_args()
    from steep.rundir import read_jsonl
    from steep.scoring import score
    from steep.stages.evaluate import bootstrap_ci

    for run in args.runs:
        files = sorted((run / "eval").glob("answers_*.jsonl"))
        print(f"\n{run}")
        if not files:
            print("  no eval/answers_*.jsonl (the run has not been evaluated): skipped")
            continue
        for path in files:
            rows = read_jsonl(path)
            was, now = defaultdict(list), defaultdict(list)
            changed = []
            for row in rows:
                if row["answer_type"] == "choice" and "options" not in row:
                    new = row["contained"]
                else:
                    new = score(row["reply"], row["answers"], row["answer_type"], row.get("options"))["contained"]
                for kind in ("all", row["kind"] or "-"):
                    was[kind].append(row["contained"])
                    now[kind].append(new)
                if new != row["contained"]:
                    changed.append(row)
            condition = path.stem.removeprefix("answers_")
            low, high = bootstrap_ci(now["all"])
            print(f"  {condition}: {_pct(was['all'])} -> {_pct(now['all'])}, 95% CI {100 * low:.1f}-{100 * high:.1f}"
                  f" ({len(changed)} of {len(rows)} changed)")
            for kind in sorted(k for k in was if k != "all" and was[k] != now[k]):
                print(f"    {kind}: {_pct(was[kind])} -> {_pct(now[kind])}")
            for row in changed[: args.show]:
                print(f"    - {row['question']} | gold {' / '.join(row['answers'])} | {row['reply'][:160]!r}")


def _pct(values: list[float]) -> str:
    return f"{100 * sum(values) / len(values):.1f}% of {len(values)}"


if __name__ == "__main__":
    main()
