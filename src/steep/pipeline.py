"""The pipeline, top to bottom: ingest -> synth -> curate -> train -> eval.

Each stage writes into its own folder of the run directory and finishes by writing `done.json`
with a hash of its inputs and settings. A rerun skips every stage whose hash still matches, so an
interrupted run resumes where it stopped and a changed setting reruns only what depends on it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .stages import curate, evaluate, ingest, synth
from .config import RunConfig
from .generate import ChatModel
from .models import bf16_supported, load_model, load_tokenizer, resolve_model, token_counter
from .rundir import EmptyResultError, InputError, Stage, fingerprint, read_jsonl, setup_logging, write_json, write_jsonl, write_text
from .stages.train import train

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
    teacher_path = resolve_model(cfg.teacher) if cfg.teacher else ctx.model_path
    stage = Stage(ctx.run_dir, "synth", fingerprint(ingested.key, cfg.model_dump(), ctx.cfg.seed, str(teacher_path)))
    texts_path, qa_path = stage.dir / "texts.jsonl", stage.dir / "qa.jsonl"
    if not stage.is_done():
        stage.start()
        chunks, conversations = read_jsonl(ingested.chunks), read_jsonl(ingested.conversations)
        texts, qa, stats = [], [], {}
        if chunks:
            teacher = ctx.chat_model(teacher_path) if teacher_needed else None
            texts, qa, stats = synth.synthesize(chunks, cfg, ctx.cfg.seed, teacher)
        stats["ingested_conversations"] = len(conversations)
        write_jsonl(texts_path, texts)
        write_jsonl(qa_path, qa + conversations)
        stage.finish(stats)
    _report(stage)
    return stage.key, read_jsonl(texts_path), read_jsonl(qa_path)


def stage_curate(ctx: Context, upstream: str, texts: list[dict], qa: list[dict]) -> tuple[str, list[dict], list[dict]]:
    questions_file = Path(ctx.cfg.eval.questions) if ctx.cfg.eval.questions else None
    questions = evaluate.load_questions(questions_file) if questions_file else []
    stage = Stage(ctx.run_dir, "curate", fingerprint(upstream, [q["question"] for q in questions]))
    texts_path, qa_path = stage.dir / "texts.jsonl", stage.dir / "qa.jsonl"
    if not stage.is_done():
        stage.start()
        eval_questions = [q["question"] for q in questions]
        kept_texts, leaked_texts = curate.decontaminate(texts, eval_questions)
        kept_qa, leaked_qa = curate.decontaminate(qa, eval_questions)
        write_jsonl(texts_path, kept_texts)
        write_jsonl(qa_path, kept_qa)
        write_jsonl(stage.dir / "leaked.jsonl", leaked_texts + leaked_qa)
        if not kept_texts and not kept_qa:
            raise EmptyResultError("curate removed every example as leaking the eval questions; see curate/leaked.jsonl")
        stage.finish({"texts": len(kept_texts), "qa": len(kept_qa), "removed_leaking_eval": len(leaked_texts) + len(leaked_qa)})
    _report(stage)
    return stage.key, read_jsonl(texts_path), read_jsonl(qa_path)


def stage_train(ctx: Context, upstream: str, texts: list[dict], qa: list[dict]) -> tuple[str, Path, dict]:
    cfg = ctx.cfg.train
    stage = Stage(ctx.run_dir, "train", fingerprint(upstream, cfg.model_dump(), ctx.cfg.seed, ctx.cfg.system_prompt))
    if not stage.is_done():
        stage.start()
        summary = train(ctx.model_path, ctx.tokenizer, texts, qa, cfg, stage.dir, stage.key, ctx.cfg.seed, ctx.cfg.system_prompt)
        stage.finish(summary)
    _report(stage)
    summary = stage.summary()
    return stage.key, Path(summary["output"]), summary


def tuned_model(ctx: Context, output: Path) -> ChatModel:
    """The tuned model from a train stage's output: an adapter on the base, or a full model."""
    if output.name == "adapter":
        return ctx.chat_model(ctx.model_path, adapter=output)
    return ctx.chat_model(output)


def stage_eval(ctx: Context, upstream: str, trained: Path | None) -> dict:
    cfg = ctx.cfg.eval
    if not cfg.questions:
        raise InputError("eval.questions is not set: give a JSONL file of held-out questions")
    questions = evaluate.load_questions(cfg.questions)
    stage = Stage(ctx.run_dir, "eval", fingerprint(upstream, str(ctx.model_path), cfg.model_dump(), Path(cfg.questions), ctx.cfg.system_prompt))
    if not stage.is_done():
        stage.start()
        results, rows = {}, {}
        for condition in cfg.conditions:
            model = ctx.chat_model(ctx.model_path) if condition == "base" else tuned_model(ctx, trained)
            answer = lambda qs: model.generate(  # noqa: E731
                [[{"role": "user", "content": q}] for q in qs], cfg.max_new_tokens, cfg.batch_size, desc=f"eval {condition}"
            )
            results[condition], rows[condition] = evaluate.evaluate_condition(questions, answer)
            write_jsonl(stage.dir / f"answers_{condition}.jsonl", rows[condition])
        write_json(stage.dir / "results.json", results)
        context = {"name": ctx.cfg.name, "model": ctx.cfg.model, "questions": f"{cfg.questions} ({len(questions)})"}
        write_text(ctx.run_dir / "report.md", evaluate.markdown_report(results, rows, cfg.examples_per_condition, context))
        stage.finish(results)
    _report(stage)
    return stage.summary()


def _report(stage: Stage) -> None:
    log.info("[%s] %s", stage.name, _flat(stage.summary()))


def _flat(summary: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in summary.items() if k not in ("by_kind", "output"))


# --- the pipeline, stage by stage: each call runs that stage and all before it --------------------


def run_ingest(cfg: RunConfig) -> ingest.Ingested:
    return stage_ingest(prepare(cfg))


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
    """All stages; returns the eval results per condition."""
    started = time.time()
    ctx = prepare(cfg)
    key, trained, _ = run_train(cfg, ctx) if "tuned" in cfg.eval.conditions else ("untrained", None, {})
    results = stage_eval(ctx, key, trained)
    log.info("\n%s\n", evaluate.table(results))
    log.info("run %s finished in %.0f s: report %s", cfg.name, time.time() - started, ctx.run_dir / "report.md")
    return results
