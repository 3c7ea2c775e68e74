"""The run report a person reads: one self-contained HTML page (inline CSS and SVG charts, nothing
fetched when it opens) with the conditions, charts per question kind, the loss curve, the learning
curve from snapshots, the data's lineage, forgetting, decontamination and sample answers.
`compare_runs` puts runs side by side."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jinja2

from .config import load_config
from .rundir import read_jsonl

SAMPLE_QUESTIONS = 12


def _svg(figure) -> str:
    """A matplotlib figure as inline SVG markup (the XML prologue dropped)."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9})  # text stays text: searchable, small
    return plt


def kind_chart(conditions: dict[str, dict]) -> str | None:
    """Grouped bars: answer-contained per question kind, one bar per condition."""
    kinds = sorted({k for c in conditions.values() for k in c.get("by_kind", {})})
    if not kinds:
        return None
    plt = _plt()
    figure, axes = plt.subplots(figsize=(max(6, 1.1 * len(kinds) * max(1, len(conditions)) / 3), 3))
    width = 0.8 / len(conditions)
    for n, (name, c) in enumerate(conditions.items()):
        axes.bar([i + n * width for i in range(len(kinds))], [100 * c["by_kind"].get(k, {}).get("contained", 0) for k in kinds], width, label=name)
    axes.set_xticks([i + width * (len(conditions) - 1) / 2 for i in range(len(kinds))], kinds)
    axes.set_ylabel("answer-contained (%)")
    axes.set_ylim(0, 100)
    axes.legend(ncols=min(5, len(conditions)), fontsize=8, loc="upper left", bbox_to_anchor=(0, 1.18))
    return _svg(figure)


def loss_chart(log_rows: list[dict]) -> str | None:
    points = [(r["epoch"], r["loss"]) for r in log_rows if "loss" in r and "epoch" in r]
    if not points:
        return None
    plt = _plt()
    figure, axes = plt.subplots(figsize=(6, 2.6))
    axes.plot(*zip(*points), marker=".")
    axes.set_xlabel("epoch")
    axes.set_ylabel("training loss")
    axes.grid(alpha=0.3)
    return _svg(figure)


def learning_curve_chart(curve: list[dict], final: dict, epochs: float) -> str:
    """Answer-contained (all questions, and per kind) after each snapshot's passes and at the end."""
    points = curve + [{"epochs": epochs, **final}]
    plt = _plt()
    figure, axes = plt.subplots(figsize=(6, 2.8))
    passes = [p["epochs"] for p in points]
    axes.plot(passes, [100 * p["contained"] for p in points], marker="o", linewidth=2, label="all")
    for kind in final.get("by_kind", {}):
        axes.plot(passes, [100 * p["by_kind"][kind]["contained"] for p in points], marker=".", linewidth=1, label=kind)
    axes.set_xlabel("passes over the data (tuned, closed-book)")
    axes.set_ylabel("answer-contained (%)")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    return _svg(figure)


def _summary(run_dir: Path, stage: str) -> dict:
    marker = run_dir / stage / "done.json"
    return json.loads(marker.read_text())["summary"] if marker.exists() else {}


def lineage(run_dir: Path) -> list[tuple[str, str]]:
    """Documents -> chunks -> synthetic examples -> after each filter -> trained tokens."""
    ingest, synth, curate, train = (_summary(run_dir, s) for s in ("ingest", "synth", "curate", "train"))
    steps = []
    if ingest:
        dup = ingest.get("duplicates_removed", {})
        steps += [("files read", f"{ingest.get('files_read', 0) + ingest.get('files_unchanged', 0)} ({ingest.get('files_failed', 0)} failed)"),
                  ("documents", str(ingest.get("documents", "?"))),
                  ("chunks", f"{ingest.get('chunks', '?')} ({ingest.get('tokens', '?')} tokens; removed {dup.get('exact_chunks', 0)} duplicate, "
                             f"{dup.get('near_duplicate_chunks', 0)} near-duplicate; filtered {sum(ingest.get('filtered', {}).values())})")]
    if synth:
        made, kept = sum(synth.get("qa_made", {}).values()), sum(synth.get("qa_kept", {}).values())
        steps += [("augmented texts", str(sum(synth.get("texts", {}).values()))),
                  ("QA pairs made", str(made)),
                  ("after dedupe and round-trip check", f"{kept} (removed {synth.get('removed_duplicates', 0)} duplicates, "
                                                         f"{sum(synth.get('removed_roundtrip', {}).values())} by round-trip)")]
        if synth.get("ingested_conversations"):
            steps.append(("conversations from the inputs", str(synth["ingested_conversations"])))
    if curate:
        balanced = f", {curate['removed_balancing_answers']} to even out yes/no and comparison answers" if curate.get("removed_balancing_answers") else ""
        steps.append(("after decontamination", f"{curate.get('texts', 0)} texts + {curate.get('qa', 0)} QA "
                                               f"(removed {curate.get('removed_leaking_eval', 0)} leaking eval questions{balanced})"))
    if train:
        replayed = f", {train['replay_tokens']:,} of them the base model's own text (replay)" if train.get("replay_tokens") else ""
        steps.append(("trained", f"{train.get('tokens_trained', 0):,} tokens in {train.get('examples', '?')} examples{replayed}; "
                                 f"{train.get('method', '?')}, final loss {train.get('final_train_loss', '?')}"))
    return steps


def sample_answers(run_dir: Path, conditions: list[str], count: int = SAMPLE_QUESTIONS) -> list[dict]:
    """The first `count` questions with every condition's reply, correctness and citations."""
    answers = {c: read_jsonl(run_dir / "eval" / f"answers_{c}.jsonl") for c in conditions if (run_dir / "eval" / f"answers_{c}.jsonl").exists()}
    if not answers:
        return []
    first = next(iter(answers.values()))
    return [{"question": row["question"], "gold": " / ".join(row["answers"]), "kind": row.get("kind"),
             "replies": {c: rows[i] for c, rows in answers.items()}} for i, row in enumerate(first[:count])]


def html_report(run_dir: Path, name: str) -> str:
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    conditions = results["conditions"]
    log_path = run_dir / "train" / "log.jsonl"
    return _template("run").render(
        name=name, conditions=conditions, comparisons=results.get("comparisons", {}), retrieval=results.get("retrieval"),
        forgetting=results.get("forgetting"), kind_chart=kind_chart(conditions),
        loss_chart=loss_chart(read_jsonl(log_path)) if log_path.exists() else None,
        curve_chart=learning_curve_chart(results["learning_curve"], conditions["tuned"], _epochs(run_dir)) if results.get("learning_curve") else None,
        lineage=lineage(run_dir), closest=_summary(run_dir, "curate").get("closest", []),
        samples=sample_answers(run_dir, list(conditions)))


def _epochs(run_dir: Path) -> float:
    """The run's passes, from its resolved config (the end point of the learning curve)."""
    return load_config(run_dir / "config.yaml").train.epochs


def compare_runs(run_dirs: list[Path]) -> tuple[str, str]:
    """(markdown table, HTML page): each condition's answer-contained per run, and the change
    from the first run."""
    runs = [(d.name, json.loads((d / "eval" / "results.json").read_text())) for d in run_dirs]
    names = list(dict.fromkeys(c for _, r in runs for c in r["conditions"]))
    rows = []
    for condition in names:
        values = [r["conditions"].get(condition, {}).get("contained") for _, r in runs]
        rows.append((condition, values))
    header = "| condition | " + " | ".join(n for n, _ in runs) + " | change |"
    lines = [header, "|---|" + "---:|" * (len(runs) + 1)]
    for condition, values in rows:
        cells = ["-" if v is None else f"{v:.1%}" for v in values]
        change = f"{values[-1] - values[0]:+.1%}" if None not in (values[0], values[-1]) else "-"
        lines.append(f"| {condition} | " + " | ".join(cells) + f" | {change} |")
    forgetting = [(n, r.get("forgetting", {}).get("accuracy_change_points")) for n, r in runs]
    html = _template("compare").render(runs=[n for n, _ in runs], rows=rows, forgetting=forgetting)
    return "\n".join(lines), html


def _template(name: str) -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("steep", "templates"), autoescape=True)
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    return env.get_template(f"{name}.html")
