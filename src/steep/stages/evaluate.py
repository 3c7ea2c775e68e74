"""eval: the held-out questions answered closed-book by the base and the tuned model, scored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..rundir import InputError, read_jsonl
from ..scoring import score

METRICS = ("contained", "exact_match", "f1")


def load_questions(path: str | Path) -> list[dict]:
    """Questions from JSONL; each line needs `question` (text) and `answers` (non-empty list)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"questions file not found: {path}")
    rows = read_jsonl(path)
    for lineno, row in enumerate(rows, 1):
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            raise InputError(f"{path}: question {lineno} has no 'question' text")
        answers = row.get("answers")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            raise InputError(f"{path}: question {lineno} needs 'answers', a non-empty list of strings")
    if not rows:
        raise InputError(f"{path}: no questions")
    return rows


def evaluate_condition(questions: list[dict], answer: Callable[[list[str]], list[str]]) -> tuple[dict, list[dict]]:
    """Mean of each metric (and per question kind, when questions carry a `kind`) plus per-question rows."""
    replies = answer([q["question"] for q in questions])
    rows = []
    for q, reply in zip(questions, replies):
        rows.append({"question": q["question"], "answers": q["answers"], "kind": q.get("kind"), "reply": reply, **score(reply, q["answers"])})
    return summarize(rows), rows


def summarize(rows: list[dict]) -> dict:
    def mean(rs: list[dict], metric: str) -> float:
        return round(sum(r[metric] for r in rs) / len(rs), 4)

    summary = {m: mean(rows, m) for m in METRICS} | {"n": len(rows)}
    kinds = sorted({r["kind"] for r in rows if r["kind"]})
    if kinds:
        summary["by_kind"] = {k: {m: mean([r for r in rows if r["kind"] == k], m) for m in METRICS} for k in kinds}
    return summary


def markdown_report(results: dict[str, dict], rows: dict[str, list[dict]], examples: int, context: dict) -> str:
    """A short human-readable report: the table of conditions and a few answers from each."""
    lines = [f"# steep report: {context.get('name', '')}", ""]
    for key, value in context.items():
        if key != "name":
            lines.append(f"- **{key}**: {value}")
    lines += ["", "## Results", "", table(results), ""]
    for condition, condition_rows in rows.items():
        lines += [f"## Examples: {condition}", ""]
        for r in condition_rows[:examples]:
            mark = "✓" if r["contained"] else "✗"
            lines.append(f"- {mark} **Q:** {r['question']}  \n  **gold:** {' / '.join(r['answers'])}  \n  **reply:** {r['reply']}")
        lines.append("")
    return "\n".join(lines)


def table(results: dict[str, dict]) -> str:
    """Markdown table of conditions x metrics (percentages)."""
    lines = ["| condition | answer-contained | exact match | token F1 | n |", "|---|---:|---:|---:|---:|"]
    for condition, s in results.items():
        lines.append(f"| {condition} | {s['contained']:.1%} | {s['exact_match']:.1%} | {s['f1']:.1%} | {s['n']} |")
    return "\n".join(lines)
