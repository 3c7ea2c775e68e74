"""eval: the held-out questions answered by the base and the tuned model, closed-book, with retrieved
context (RAG) and with the right context given (oracle); scored, with bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..rag import check_citations, rag_prompt
from ..retrieval import cite_id
from ..rundir import InputError, read_jsonl
from ..scoring import declined_unasked, says_unknown, score

METRICS = ("contained", "exact_match", "f1")
ANSWER_TYPES = ("short", "yes_no", "choice", "unanswerable")


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
        if row.get("answer_type", "short") not in ANSWER_TYPES:
            raise InputError(f"{path}: question {lineno} has answer_type {row['answer_type']!r}; use one of {', '.join(ANSWER_TYPES)}")
        if not isinstance(row.get("held_out", True), bool):
            raise InputError(f"{path}: question {lineno} has held_out {row['held_out']!r}; use true or false")
        if row.get("answer_type") == "choice" and not (isinstance(row.get("options"), list) and len(row["options"]) >= 2):
            raise InputError(f"{path}: question {lineno} is a choice but has no 'options' (a list of at least two)")
    if not rows:
        raise InputError(f"{path}: no questions")
    return rows


def answer_condition(questions: list[dict], contexts: list[list[dict]] | None, ask: Callable[[list[str]], list[str]]) -> list[dict]:
    """One condition's per-question rows. With `contexts` (retrieved or oracle chunks per
    question) the prompt carries them and the reply's citations are checked against them."""
    given: list[list[dict] | None] = list(contexts) if contexts is not None else [None] * len(questions)
    prompts = [q["question"] if ctx is None else rag_prompt(q["question"], ctx) for q, ctx in zip(questions, given)]
    rows = []
    for q, ctx, reply in zip(questions, given, ask(prompts)):
        answer_type = q.get("answer_type", "short")
        row = {"question": q["question"], "answers": q["answers"], "kind": q.get("kind"), "answer_type": answer_type, "reply": reply,
               **score(reply, q["answers"], answer_type, q.get("options")), "declined": says_unknown(reply),
               "declined_unasked": declined_unasked(reply)}  # decline_unfamiliar: the model was not asked
        if "options" in q:  # kept so that a later scorer can re-score the reply (bench/rescore.py)
            row["options"] = q["options"]
        if ctx is not None:
            row |= {"context": [cite_id(c) for c in ctx], **check_citations(reply, ctx)}
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> dict:
    """Mean of each metric with a bootstrap 95% interval for the headline one; per question kind
    when questions carry a `kind`; citation behaviour when the condition gave context."""
    def mean(rs: list[dict], metric: str) -> float:
        return round(sum(r[metric] for r in rs) / len(rs), 4)

    summary = {m: mean(rows, m) for m in METRICS} | {"n": len(rows)}
    answerable = [r for r in rows if r.get("answer_type", "short") != "unanswerable"]
    if answerable and "declined" in rows[0]:  # saying "I don't know" to a question the documents answer
        summary["declined"] = mean(answerable, "declined")
    if rows and "declined_unasked" in rows[0]:
        summary["declined_unasked"] = sum(r["declined_unasked"] for r in rows)
    summary["contained_ci"] = bootstrap_ci([float(r["contained"]) for r in rows])
    if rows and "citations" in rows[0]:
        summary["cited"] = round(sum(bool(r["citations"]) for r in rows) / len(rows), 4)
        summary["invalid_citations"] = round(sum(bool(r["invalid_citations"]) for r in rows) / len(rows), 4)
    kinds = sorted({r["kind"] for r in rows if r["kind"]})
    if kinds:
        summary["by_kind"] = {k: {m: mean([r for r in rows if r["kind"] == k], m) for m in METRICS} for k in kinds}
    return summary


def bootstrap_ci(values: list[float], resamples: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean, resampling questions with replacement."""
    if not values:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def paired_difference(a: list[dict], b: list[dict], metric: str = "contained") -> dict:
    """Mean of b - a over the same questions, with a bootstrap interval of that difference."""
    diffs = [float(y[metric]) - float(x[metric]) for x, y in zip(a, b)]
    return {"difference": round(sum(diffs) / len(diffs), 4), "ci": bootstrap_ci(diffs)}


def recall_at(questions: list[dict], ranked: list[list[dict]], oracles: list[dict | None], ks: tuple[int, ...] = (1, 3, 5, 10)) -> dict:
    """How often the oracle chunk is among the first k retrieved, overall and per kind."""
    def recall(indices: list[int]) -> dict:
        found = [i for i in indices if oracles[i] is not None]
        return {f"recall@{k}": round(sum(oracles[i]["id"] in {c["id"] for c in ranked[i][:k]} for i in found) / max(1, len(found)), 4)
                for k in ks} | {"n": len(found)}

    everything = list(range(len(questions)))
    result = recall(everything) | {"without_oracle": sum(o is None for o in oracles)}
    kinds = sorted({q.get("kind") for q in questions if q.get("kind")})
    if kinds:
        result["by_kind"] = {k: recall([i for i in everything if questions[i].get("kind") == k]) for k in kinds}
    return result


def markdown_report(results: dict, rows: dict[str, list[dict]], examples: int, context: dict, trained: dict | None = None) -> str:
    """A short human-readable report: conditions with intervals, retrieval, forgetting, answers.
    `trained` ({"epochs", "tokens_trained"}) is where the tuned model's training ended: the learning curve's last row."""
    lines = [f"# steep report: {context.get('name', '')}", ""]
    for key, value in context.items():
        if key != "name":
            lines.append(f"- **{key}**: {value}")
    lines += ["", "## Results", "", table(results["conditions"]), ""]
    for name, c in results.get("comparisons", {}).items():
        lines.append(f"- {name}: {c['difference']:+.1%} (95% interval {c['ci'][0]:+.1%} to {c['ci'][1]:+.1%})")
    if results.get("learning_curve") and trained:
        end = {**trained, **results["conditions"]["tuned"]}
        lines += ["", "## Learning curve", "", "The tuned model, closed-book, as it was after fewer passes (train.snapshot_epochs; "
                  "its learning rate had not yet decayed there), and at the end:", "", learning_curve_table(results["learning_curve"] + [end])]
    if "retrieval" in results:
        r = results["retrieval"]
        lines += ["", "## Retrieval", "", f"Oracle chunk found among the first k retrieved ({r['n']} questions with an oracle, "
                  f"{r['without_oracle']} without): " + ", ".join(f"{k} {v:.1%}" for k, v in r.items() if k.startswith("recall@"))]
    if "forgetting" in results:
        f = results["forgetting"]
        lines += ["", "## General ability (forgetting)", "",
                  f"Capitals, 4 options ({f['base']['capitals_n']} items): base {f['base']['capitals_accuracy']:.1%}, "
                  f"tuned {f['tuned']['capitals_accuracy']:.1%}, change {f['accuracy_change_points']:+.1f} points "
                  f"(95% interval {f['accuracy_change_ci_points'][0]:+.1f} to {f['accuracy_change_ci_points'][1]:+.1f}). "
                  f"Perplexity on general prose: base {f['base']['perplexity']}, tuned {f['tuned']['perplexity']}."]
    for condition, condition_rows in rows.items():
        lines += ["", f"## Examples: {condition}", ""]
        for r in condition_rows[:examples]:
            mark = "✓" if r["contained"] else "✗"
            cites = f"  \n  **cited:** {', '.join(r['citations']) or '-'}" if "citations" in r else ""
            lines.append(f"- {mark} **Q:** {r['question']}  \n  **gold:** {' / '.join(r['answers'])}  \n  **reply:** {r['reply']}{cites}")
    return "\n".join(lines) + "\n"


def learning_curve_table(points: list[dict]) -> str:
    """Markdown: passes, tokens trained and answer-contained (per kind where the questions have kinds)."""
    kinds = list(points[-1].get("by_kind", {}))
    row = lambda cells: "| " + " | ".join(cells) + " |"  # noqa: E731
    lines = [row(["passes", "tokens trained", "answer-contained", *kinds]), row(["---:"] * (3 + len(kinds)))]
    for p in points:
        lines.append(row([f"{p['epochs']:g}", f"{p['tokens_trained']:,}", f"{p['contained']:.1%}", *(f"{p['by_kind'][k]['contained']:.1%}" for k in kinds)]))
    return "\n".join(lines)


def table(conditions: dict[str, dict]) -> str:
    """Markdown table of conditions x metrics (percentages), with the headline's interval, the
    share of answerable questions declined and how many questions were declined unasked
    (decline_unfamiliar)."""
    lines = ["| condition | answer-contained | 95% interval | exact match | token F1 | declines answerable | declined unasked | cites | n |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for condition, s in conditions.items():
        lo, hi = s["contained_ci"]
        cites = f"{s['cited']:.0%}" if "cited" in s else "-"
        declines = f"{s['declined']:.1%}" if "declined" in s else "-"
        lines.append(f"| {condition} | {s['contained']:.1%} | {lo:.1%}–{hi:.1%} | {s['exact_match']:.1%} | {s['f1']:.1%} | {declines} | "
                     f"{s.get('declined_unasked', '-')} | {cites} | {s['n']} |")
    return "\n".join(lines)
