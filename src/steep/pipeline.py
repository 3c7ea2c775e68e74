"""The pipeline, top to bottom: ingest -> synth -> curate -> train -> eval.

Each stage writes into its own folder of the run directory and finishes by writing `done.json`
with a hash of its inputs and settings. A rerun skips every stage whose hash still matches, so an
interrupted run resumes where it stopped and a changed setting reruns only what depends on it."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import familiarity, forgetting, scoring
from .rag import Oracle
from .recital import recital_subjects, reciting
from .report import html_report
from .retrieval import CANDIDATES, Hit, open_index
from .stages import curate, derived, evaluate, ingest, synth
from .config import RunConfig
from .familiarity import TaughtQuestions, declining
from .generate import ChatModel
from .models import bf16_supported, load_model, load_tokenizer, resolve_model, token_counter
from .rundir import EmptyResultError, InputError, Stage, fingerprint, read_jsonl, recorded_output, setup_logging, write_json, write_jsonl, write_text
from .stages.train import release_memory, train
from .teacher import RecordedChat, RemoteChat

log = logging.getLogger("steep")
STAGES = ("ingest", "synth", "curate", "train", "eval")


@dataclass
class Context:
    """What every stage needs: the config, the run folder, the base model and its tokenizer."""

    cfg: RunConfig
    run_dir: Path
    model_path: Path

    def __post_init__(self) -> None:
        self.tokenizer = load_tokenizer(self.model_path)

    def chat_model(self, path: Path, adapter: Path | None = None) -> ChatModel:
        return ChatModel(load_model(path, adapter), self.tokenizer, self.cfg.system_prompt, bf16=bf16_supported())


def prepare(cfg: RunConfig) -> Context:
    run_dir = cfg.run_dir
    setup_logging(run_dir)
    write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    ctx = Context(cfg, run_dir, resolve_model(cfg.model))
    log.info("run %s: model %s (%s)", cfg.name, cfg.model, ctx.model_path)
    return ctx


def stage_ingest(ctx: Context) -> ingest.Ingested:
    """Incremental by itself: only new or changed files are read again (see stages/ingest)."""
    result = ingest.ingest(ctx.cfg.ingest, token_counter(ctx.tokenizer), str(ctx.model_path), ctx.run_dir / "ingest")
    stage = Stage(ctx.run_dir, "ingest", result.key)
    if not stage.is_done():
        stage.finish(result.summary, seconds=result.summary["seconds"])
    for line in ingest.describe(result.summary, stage.dir):
        log.info(line)
    return result


def stage_synth(ctx: Context, ingested: ingest.Ingested) -> tuple[str, list[dict], list[dict]]:
    """Augmented texts and QA pairs from the chunks; conversations found by ingest join the QA."""
    cfg = ctx.cfg.synth
    teacher_needed = cfg.teacher_qa or cfg.roundtrip
    if cfg.teacher_url:
        teacher_path, teacher_name = None, f"{cfg.teacher} at {cfg.teacher_url}"
    else:
        teacher_path = resolve_model(cfg.teacher) if cfg.teacher else ctx.model_path
        teacher_name = str(teacher_path)
    # the teacher's name stands for its URL, and which variable holds the key changes no output
    settings = cfg.model_dump(exclude={"teacher_url", "teacher_api_key_env"})
    stage = Stage(ctx.run_dir, "synth", fingerprint(ingested.key, settings, ctx.cfg.seed, teacher_name, synth.VERSION))
    texts_path, qa_path = stage.dir / "texts.jsonl", stage.dir / "qa.jsonl"
    if not stage.is_done():
        _one_process_only(stage.name)
        stage.start()
        chunks, conversations = read_jsonl(ingested.chunks), read_jsonl(ingested.conversations)
        texts, qa, stats = [], [], {}
        if chunks:
            teacher = None
            if teacher_needed:
                chat = RemoteChat(cfg.teacher_url, cfg.teacher, cfg.teacher_api_key_env) if cfg.teacher_url else ctx.chat_model(teacher_path)
                teacher = RecordedChat(chat, stage.dir / "teacher_replies.jsonl", teacher_name)
            search = None
            if cfg.raft:  # RAFT distractors are what retrieval shows for the question
                index = open_index(ctx.run_dir, ingested.key, ingested.chunks)
                search = lambda questions: [[h.chunk for h in hits] for hits in index.search(questions, k=cfg.raft_distractors + 1)]  # noqa: E731
            texts, qa, stats = synth.synthesize(chunks, cfg, ctx.cfg.seed, teacher, search)
        stats["ingested_conversations"] = len(conversations)
        write_jsonl(texts_path, texts)
        write_jsonl(qa_path, qa + conversations)
        stage.finish(stats)
    _report(stage.name, stage.summary())
    return _handed_on(texts_path, qa_path)


def _handed_on(texts_path: Path, qa_path: Path) -> tuple[str, list[dict], list[dict]]:
    """What synth or curate wrote, with the hash of it as the next stage's upstream key: the data,
    not the settings that made it, so a rerun that writes the same data (a setting an upgrade adds,
    at a default that changes nothing) does not retrain."""
    return fingerprint(texts_path, qa_path), read_jsonl(texts_path), read_jsonl(qa_path)


def stage_curate(ctx: Context, upstream: str, texts: list[dict], qa: list[dict]) -> tuple[str, list[dict], list[dict]]:
    questions = evaluate.load_questions(ctx.cfg.eval.questions) if ctx.cfg.eval.questions else []
    # a question marked held_out: false may be trained on (it measures memorization); all others are kept out
    eval_items = [{"question": q["question"], "answers": q["answers"]} for q in questions if q.get("held_out", True)]
    stage = Stage(ctx.run_dir, "curate", fingerprint(upstream, eval_items, curate.VERSION, curate.SIMILARITY, curate.NGRAM, curate.MIN_NAMES,
                                                          ctx.cfg.synth.balance_answers, ctx.cfg.seed))
    texts_path, qa_path = stage.dir / "texts.jsonl", stage.dir / "qa.jsonl"
    if not stage.is_done():
        _one_process_only(stage.name)
        stage.start()
        kept_texts, leaked_texts, closest_texts = curate.decontaminate(texts, eval_items)
        kept_qa, leaked_qa, closest_qa = curate.decontaminate(qa, eval_items)
        unbalanced: list[dict] = []
        if ctx.cfg.synth.balance_answers:
            kept_qa, unbalanced = curate.balance_labels(kept_qa, derived.BALANCED, ctx.cfg.seed)
        write_jsonl(texts_path, kept_texts)
        write_jsonl(qa_path, kept_qa)
        write_jsonl(stage.dir / "leaked.jsonl", leaked_texts + leaked_qa)
        write_jsonl(stage.dir / "unbalanced.jsonl", unbalanced)
        closest = sorted(closest_texts + closest_qa, key=lambda c: -c["similarity"])[: curate.CLOSEST_SHOWN]
        if not kept_texts and not kept_qa:
            raise EmptyResultError("curate removed every example as leaking the eval questions; see curate/leaked.jsonl")
        leaked = leaked_texts + leaked_qa
        stage.finish({"texts": len(kept_texts), "qa": len(kept_qa), "removed_leaking_eval": len(leaked),
                      "removed_by_ngram": sum("leaked_ngram" in r["metadata"] for r in leaked),
                      "removed_by_similarity": sum("leaked_similarity" in r["metadata"] for r in leaked),
                      "removed_by_names": sum("leaked_names" in r["metadata"] for r in leaked),
                      "removed_balancing_answers": len(unbalanced), "closest": closest})
    _report(stage.name, stage.summary())
    return _handed_on(texts_path, qa_path)


def stage_train(ctx: Context, upstream: str, texts: list[dict], qa: list[dict]) -> tuple[str, Path, dict]:
    cfg = ctx.cfg.train
    stage = Stage(ctx.run_dir, "train", fingerprint(upstream, cfg.model_dump(), ctx.cfg.seed, ctx.cfg.system_prompt))
    if not stage.is_done():
        stage.start()
        summary = train(ctx.model_path, ctx.tokenizer, texts, qa, cfg, stage.dir, stage.key, ctx.cfg.seed, ctx.cfg.system_prompt)
        release_memory()  # before eval loads two models
        if launched_processes()[0] == 0:  # under torchrun every process trains; the first one records it
            stage.finish(summary, seconds=summary["seconds"])  # includes the sessions before a resume
    else:
        summary = stage.summary()
    _report(stage.name, summary)  # a process other than the first has no record to read
    output = recorded_output(stage.dir, summary)
    return stage.key, output, {**summary, "output": str(output)}


def tuned_model(ctx: Context, output: Path) -> ChatModel:
    """The tuned model from a train stage's output: an adapter on the base, or a full model."""
    if (output / "adapter_config.json").exists():
        return ctx.chat_model(ctx.model_path, adapter=output)
    return ctx.chat_model(output)


def stage_eval(ctx: Context, ingested: ingest.Ingested, upstream: str, train_summary: dict | None) -> dict:
    """Every condition on the same questions; retrieval recall; general ability before and after.
    `train_summary` is the train stage's (None: nothing was trained)."""
    cfg = ctx.cfg.eval
    if not cfg.questions:
        raise InputError("eval.questions is not set: give a JSONL file of held-out questions")
    questions = evaluate.load_questions(cfg.questions)
    trained = Path(train_summary["output"]) if train_summary else None
    stage = Stage(ctx.run_dir, "eval", fingerprint(upstream, ingested.key, str(ctx.model_path), cfg.model_dump(), Path(cfg.questions),
                                                 ctx.cfg.system_prompt, ctx.cfg.decline_unfamiliar, ctx.cfg.decline_untaught,
                                                 familiarity.VERSION, scoring.VERSION))
    if not stage.is_done():
        _one_process_only(stage.name)
        stage.start()
        results: dict = {"conditions": {}}
        contexts: dict[str, list[list[dict]]] = {}
        if any(c.endswith(("+rag", "+oracle")) for c in cfg.conditions):
            index = open_index(ctx.run_dir, ingested.key, ingested.chunks)
            ranked = [[h.chunk for h in hits] for hits in index.search([q["question"] for q in questions], k=CANDIDATES)]
            oracle = Oracle(index.chunks)
            oracles = [oracle.find(q, r) for q, r in zip(questions, ranked)]
            results["retrieval"] = evaluate.recall_at(questions, ranked, oracles)
            contexts = {"rag": [r[: cfg.rag_k] for r in ranked], "oracle": [[o] if o else [] for o in oracles]}
        rows: dict[str, list[dict]] = {}
        general: dict[str, dict] = {}
        measure_general = cfg.forgetting and trained is not None
        taught = TaughtQuestions.of_run(ctx.run_dir, ctx.cfg.decline_untaught) if trained is not None else None
        for who in ("base", "tuned"):
            wanted = [c for c in cfg.conditions if c.split("+")[0] == who]
            if not wanted and not measure_general:
                continue
            model = ctx.chat_model(ctx.model_path) if who == "base" else tuned_model(ctx, trained)
            for condition in wanted:
                mode = condition.partition("+")[2]
                ask = lambda prompts: model.generate(  # noqa: E731
                    [[{"role": "user", "content": p}] for p in prompts], cfg.max_new_tokens, cfg.batch_size, desc=f"eval {condition}")
                if mode == "recite":
                    ask, recitals = reciting(model, ask, cfg.batch_size, f"eval {condition}")
                if mode in ("", "recite"):  # closed-book
                    ask = declining(model, ctx.cfg.decline_unfamiliar, taught if who == "tuned" else None, ask, f"eval {condition}")
                rows[condition] = evaluate.answer_condition(questions, contexts.get(mode), ask)
                if mode == "recite":  # what the model said before answering, beside each answer
                    for row in rows[condition]:
                        row["recitals"] = {s: recitals[s] for s in recital_subjects(row["question"]) if s in recitals}
                results["conditions"][condition] = evaluate.summarize(rows[condition])
                write_jsonl(stage.dir / f"answers_{condition}.jsonl", rows[condition])
            if measure_general:
                log.info("general ability of the %s model (capitals, perplexity)", who)
                general[who] = forgetting.general_ability(model.model, ctx.tokenizer, bf16=model.bf16)
        if trained is not None and "tuned" in cfg.conditions:
            results["learning_curve"] = learning_curve(ctx, questions, trained.parent / "snapshots", taught)
        results["comparisons"] = {f"{b} vs {a}": evaluate.paired_difference(rows[a], rows[b])
                                  for a, b in COMPARISONS if a in rows and b in rows}
        if len(general) == 2:
            results["forgetting"] = forgetting.compare(general["base"], general["tuned"])
        write_json(stage.dir / "results.json", results)
        context = {"name": ctx.cfg.name, "model": ctx.cfg.model, "questions": f"{cfg.questions} ({len(questions)})"}
        trained_until = {"epochs": ctx.cfg.train.epochs, "tokens_trained": train_summary["tokens_trained"]} if train_summary else None
        write_text(ctx.run_dir / "report.md", evaluate.markdown_report(results, rows, cfg.examples_per_condition, context, trained_until))
        stage.finish({"conditions": {c: r["contained"] for c, r in results["conditions"].items()},
                      **({"recall@5": results["retrieval"]["recall@5"]} if "retrieval" in results else {}),
                      **({"forgetting_points": results["forgetting"]["accuracy_change_points"]} if "forgetting" in results else {})})
    _report(stage.name, stage.summary())
    write_text(ctx.run_dir / "report.html", html_report(ctx.run_dir, ctx.cfg.name))
    results = json.loads((stage.dir / "results.json").read_text())
    _check_forgetting(results.get("forgetting"), cfg.max_forgetting)
    return results


def learning_curve(ctx: Context, questions: list[dict], folder: Path, taught: TaughtQuestions | None) -> list[dict]:
    """The questions answered closed-book by each snapshot the train stage kept (train.snapshot_epochs):
    what fewer passes had learned, with the tokens trained up to each. `taught`: as the tuned model's."""
    cfg = ctx.cfg.eval
    points = []
    for record in sorted(folder.glob("*/snapshot.json")):
        snapshot = json.loads(record.read_text())
        model = tuned_model(ctx, record.parent)
        ask = lambda prompts: model.generate(  # noqa: E731
            [[{"role": "user", "content": p}] for p in prompts], cfg.max_new_tokens, cfg.batch_size,
            desc=f"eval after {snapshot['epochs']:g} pass{'' if snapshot['epochs'] == 1 else 'es'}")
        ask = declining(model, ctx.cfg.decline_unfamiliar, taught, ask, f"eval after {snapshot['epochs']:g} passes")
        started = time.time()
        rows = evaluate.answer_condition(questions, None, ask)
        write_jsonl(ctx.run_dir / "eval" / f"answers_tuned_after_{snapshot['epochs']:g}_passes.jsonl", rows)
        points.append({"epochs": snapshot["epochs"], "tokens_trained": snapshot["tokens_trained"], "train_seconds": snapshot["seconds"],
                       "eval_seconds": round(time.time() - started, 1), **evaluate.summarize(rows)})
        del model
        release_memory()
    return sorted(points, key=lambda p: p["epochs"])


# the comparisons a user deciding "was tuning worth it?" asks for, as (a, b): b - a with an interval
COMPARISONS = [("base", "tuned"), ("base+rag", "tuned+rag"), ("base+rag", "tuned"), ("tuned", "tuned+rag"), ("tuned+rag", "tuned+oracle"),
               ("tuned", "tuned+recite")]


class ForgettingError(RuntimeError):
    """The tuned model lost more general ability than eval.max_forgetting allows."""


def _check_forgetting(result: dict | None, limit: float | None) -> None:
    if result is None or limit is None:
        return
    drop = -result["accuracy_change_points"]
    if drop > limit:
        raise ForgettingError(f"general-knowledge accuracy fell {drop:.1f} points (interval {result['accuracy_change_ci_points']}), "
                              f"more than eval.max_forgetting={limit}; the report is written, the run counts as failed")


def launched_processes() -> tuple[int, int]:
    """This process's rank and how many processes torchrun or `accelerate launch` started (the
    variables they set; (0, 1) in a plain run)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _one_process_only(stage: str) -> None:
    """Under torchrun or `accelerate launch` every process runs the pipeline, and only training is
    work for several: each would redo another stage, and race the others to write its files."""
    processes = launched_processes()[1]
    if processes > 1:
        step = "steep run CONFIG` after it" if stage == "eval" else "steep curate CONFIG` before it"
        raise InputError(f"stage {stage} has to run, but in a launch of {processes} processes only train runs: "
                         f"run `{step}, in one process")


def _report(stage: str, summary: dict) -> None:
    log.info("[%s] %s", stage, _flat(summary))


def _flat(summary: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in summary.items() if k not in ("by_kind", "output", "closest"))


# --- the pipeline, stage by stage: each call runs that stage and all before it --------------------


def run_ingest(cfg: RunConfig) -> ingest.Ingested:
    return stage_ingest(prepare(cfg))


def run_search(cfg: RunConfig, query: str, k: int) -> list[Hit]:
    ctx = prepare(cfg)
    ingested = stage_ingest(ctx)
    return open_index(ctx.run_dir, ingested.key, ingested.chunks).search([query], k)[0]


def run_synth(cfg: RunConfig, ctx: Context | None = None) -> tuple[str, list[dict], list[dict]]:
    ctx = ctx or prepare(cfg)
    return stage_synth(ctx, stage_ingest(ctx))


def run_curate(cfg: RunConfig, ctx: Context | None = None) -> tuple[str, list[dict], list[dict]]:
    ctx = ctx or prepare(cfg)
    return stage_curate(ctx, *run_synth(cfg, ctx))


def run_train(cfg: RunConfig, ctx: Context | None = None) -> tuple[str, Path, dict]:
    ctx = ctx or prepare(cfg)
    return stage_train(ctx, *run_curate(cfg, ctx))


def run(cfg: RunConfig) -> dict:
    """All stages; returns the eval results."""
    started = time.time()
    ctx = prepare(cfg)
    ingested = stage_ingest(ctx)
    key, train_summary = "untrained", None
    if any(c.startswith("tuned") for c in cfg.eval.conditions):
        key, _, train_summary = stage_train(ctx, *stage_curate(ctx, *stage_synth(ctx, ingested)))
    results = stage_eval(ctx, ingested, key, train_summary)
    log.info("\n%s\n", evaluate.table(results["conditions"]))
    log.info("run %s finished in %.0f s: report %s", cfg.name, time.time() - started, ctx.run_dir / "report.html")
    return results
