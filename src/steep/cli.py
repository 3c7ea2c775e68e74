"""The `steep` command: one subcommand per stage, `run` for all of them, and `init`, `search`,
`report`, `chat`, `serve`, `export`, `demo`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from . import pipeline
from .config import STARTER_CONFIG, ConfigError, load_config, load_run_config
from .knowledge.bench import DEFAULT_VARIANTS, VARIANTS, run_benchmark
from .retrieval import format_hits
from .rundir import EmptyResultError, InputError, setup_logging, write_text

log = logging.getLogger("steep")

STAGE_HELP = {
    "ingest": "read documents into chunks with provenance",
    "synth": "make augmented text and QA pairs from the chunks (runs ingest first if needed)",
    "curate": "remove training examples that leak the eval questions (runs earlier stages if needed)",
    "train": "fine-tune the model (LoRA by default) on the curated data (runs earlier stages if needed)",
    "eval": "answer the held-out questions with the base and the tuned model, and score them",
    "run": "all stages, skipping those whose inputs and settings are unchanged",
}


def _stage_parser(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help=STAGE_HELP[name], description=STAGE_HELP[name] + ".", epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="the run's YAML config (see `steep init`)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override config keys, e.g. train.epochs=2")
    p.add_argument("--strict", action="store_true", help="stop at the first input file that cannot be read (ingest.strict=true)")


EXIT_CODES = """exit status: 0 done; 1 system error (disk full, ...); 2 bad config or input, nothing usable;
3 done, but some input files or rows could not be read (listed in <run>/ingest/errors.jsonl);
4 done, but the tuned model forgot more than eval.max_forgetting allows; 130 interrupted (rerun to resume)."""
INCOMPLETE_INPUT = 3
FAILED_GATE = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="steep", description="Steep a small LLM in your documents: ingest, synth, curate, train, eval.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init", help="write a commented starter config", description="Write a commented starter config.")
    p.add_argument("path", nargs="?", default="steep.yaml")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    for name in STAGE_HELP:
        _stage_parser(sub, name)
    p = sub.add_parser("chat", help="ask a base or tuned model from the terminal",
                       description="Ask a model questions. With --run, the run's tuned model (add --base for its base model).")
    p.add_argument("prompt", nargs="*", help="a single question; without one, an interactive session starts")
    p.add_argument("--run", type=Path, help="a run directory (runs/<name>) whose tuned model to use")
    p.add_argument("--base", action="store_true", help="with --run: the base model, not the tuned one")
    p.add_argument("--model", help="a model (built-in name, HF folder, .gguf); default: the run's or the built-in default")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--recite", action="store_true",
                   help="first ask the model what it knows about the question's names, then the question over that (steep.recital)")
    p = sub.add_parser("search", help="the chunks of a run that best match a query (BM25 + MiniLM, fused)",
                       description="Print the top-k chunks for a query, with source file, section, page and span. Ingests first if needed.")
    p.add_argument("config", help="the run's YAML config")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=5, help="how many chunks (default 5)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p = sub.add_parser("report", help="write a run's HTML report, or compare runs side by side",
                       description="One run directory: (re)write its report.html. Several: print a table comparing them and write an HTML page.")
    p.add_argument("runs", nargs="+", type=Path, help="run directories (runs/<name>)")
    p.add_argument("-o", "--output", type=Path, help="with several runs: where to write the comparison (default: compare.html)")
    p = sub.add_parser("serve", help="an OpenAI-compatible API and chat page over base and tuned models",
                       description="Serve the base model and the tuned model of each run (model id: the run's name; add '+rag' "
                                   "for answers retrieved from the run's documents, with citations). Chat page at /.")
    p.add_argument("runs", nargs="*", type=Path, help="run directories (runs/<name>); none: only the base model")
    p.add_argument("--model", help="with no runs: the model to serve (default: the built-in model)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("STEEP_API_KEY"), help="require 'Authorization: Bearer KEY' (default: $STEEP_API_KEY)")
    p.add_argument("--max-batch", type=int, default=16, help="requests answered together in one batch")
    p.add_argument("--max-tokens", type=int, default=512, help="default and cap of new tokens per answer")
    p = sub.add_parser("export", help="write a run's tuned model as a merged HF folder or a GGUF file, and check it",
                       description="Export the tuned model of a run: --format hf (merged safetensors, tokenizer, chat template) or "
                                   "gguf (for llama.cpp/Ollama). Then answer the run's eval questions greedily with the export and the "
                                   "checkpoint, and report how many answers agree and the accuracy of each.")
    p.add_argument("run", type=Path, help="a run directory (runs/<name>)")
    p.add_argument("--format", choices=["hf", "gguf"], default="hf")
    p.add_argument("--type", dest="outtype", choices=["f32", "f16", "q8_0"], default="f16", help="GGUF weight type (default f16)")
    p.add_argument("-o", "--output", type=Path, help="where to write (default: <run>/export/)")
    p.add_argument("--no-check", action="store_true", help="skip answering the eval questions with the export")
    p = sub.add_parser("bench", help="benchmarks of the whole pipeline", description="Benchmarks of the whole pipeline.")
    benches = p.add_subparsers(dest="bench", required=True)
    p = benches.add_parser("knowledge", help="fictional people and organizations: does the tuned model know them?",
                           description="Generate a world of fictional people and organizations, write it as documents, run the "
                                       "pipeline in several variants and score five probe kinds per entity: direct, rephrased, "
                                       "derived yes/no, comparison, unanswerable. Prints a table; writes knowledge.json/.md.")
    p.add_argument("--entities", type=int, default=100, help="people and organizations in the world (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--probed-share", type=float, default=0.5, help="share of the entities asked about (default 0.5; the rest only teach)")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS), metavar="VARIANT",
                   help="which runs, from: " + ", ".join(VARIANTS) + f" (default: {' '.join(DEFAULT_VARIANTS)})")
    p.add_argument("--dir", type=Path, default=Path("knowledge-bench"), help="where to write the corpus and runs (default: knowledge-bench/)")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides applied to every variant")
    p = sub.add_parser("demo", help="write the demo corpus and run the whole pipeline on it",
                       description="Generate fictional biographies and held-out questions, then run every stage.")
    p.add_argument("--dir", type=Path, default=Path("demo"), help="where to write the corpus and runs (default: demo/)")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        return _dispatch(args)
    except (ConfigError, InputError, EmptyResultError) as e:
        log.error("error: %s", e)
        return 2
    except pipeline.ForgettingError as e:
        log.error("failed: %s", e)
        return FAILED_GATE
    except KeyboardInterrupt:
        log.error("interrupted: finished stages are kept; rerun the same command to resume")
        return 130
    except OSError as e:  # disk full, permissions: say which file
        log.error("error: %s", e)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "init":
        path = Path(args.path)
        if path.exists() and not args.force:
            raise InputError(f"{path} exists; use --force to overwrite")
        path.write_text(STARTER_CONFIG)
        log.info("wrote %s: edit ingest.inputs and eval.questions, then `steep run %s`", path, path)
        return 0
    if args.command == "chat":
        return _chat(args)
    if args.command == "report":
        return _report(args)
    if args.command == "export":
        from .export import export

        result = export(args.run, args.format, args.output, args.outtype, check=not args.no_check)
        log.info("wrote %s (%.0f s)", result["path"], result["seconds"])
        if "check" in result:
            c = result["check"]
            log.info("check on %d eval questions (%s): %d identical answers (%.1f%%); accuracy %.1f%% export vs %.1f%% checkpoint",
                     c["questions"], c["runtime"], c["identical_answers"], c["agreement"], c["export_accuracy"], c["checkpoint_accuracy"])
        return 0
    if args.command == "serve":
        from .serve import serve

        serve(args.runs, args.model, args.host, args.port, args.api_key, args.max_batch, args.max_tokens)
        return 0
    if args.command == "bench":
        run_benchmark(args.dir, args.entities, args.seed, args.variants, args.model, args.overrides, args.probed_share)
        return 0
    if args.command == "demo":
        from .demo import write_demo

        config_path = write_demo(args.dir)
        log.info("demo corpus written to %s", args.dir)
        pipeline.run(load_config(config_path, args.overrides))
        return 0
    cfg = load_config(args.config, args.overrides + (["ingest.strict=true"] if getattr(args, "strict", False) else []))
    if args.command == "ingest":
        pipeline.run_ingest(cfg)
    elif args.command == "search":
        print(format_hits(pipeline.run_search(cfg, args.query, args.k)))
    elif args.command == "synth":
        _, texts, qa = pipeline.run_synth(cfg)
        log.info("%d texts, %d QA pairs in %s", len(texts), len(qa), cfg.run_dir / "synth")
    elif args.command == "curate":
        _, texts, qa = pipeline.run_curate(cfg)
        log.info("%d texts, %d QA pairs in %s", len(texts), len(qa), cfg.run_dir / "curate")
    elif args.command == "train":
        _, output, _ = pipeline.run_train(cfg)
        log.info("trained model in %s", output)
    else:  # eval and run: eval needs everything before it
        pipeline.run(cfg)
    return _input_status(cfg.run_dir / "ingest" / "summary.json")


def _input_status(summary_path: Path) -> int:
    """INCOMPLETE_INPUT when some files or rows were skipped: the run is usable, but not all of it."""
    summary = json.loads(summary_path.read_text())
    problems = summary["files_failed"] + summary["files_with_bad_rows"]
    if problems:
        log.warning("%d input file(s) could not be fully read; see %s", problems, summary_path.with_name("errors.jsonl"))
        return INCOMPLETE_INPUT
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import compare_runs, html_report

    for run in args.runs:
        if not (run / "eval" / "results.json").exists():
            raise InputError(f"{run}: no eval results (run `steep eval` or `steep run` for it first)")
    if len(args.runs) == 1:
        out = args.runs[0] / "report.html"
        write_text(out, html_report(args.runs[0], args.runs[0].name))
    else:
        table, html = compare_runs(args.runs)
        print(table)
        out = args.output or Path("compare.html")
        write_text(out, html)
    log.info("wrote %s", out)
    return 0


def _chat(args: argparse.Namespace) -> int:
    from .chat import open_chat
    from .familiarity import TaughtQuestions, declined_replies
    from .recital import recital_subjects, recited_prompts

    model = open_chat(run_dir=args.run, model=args.model, base=args.base)
    cfg = load_run_config(args.run) if args.run else None
    unfamiliar = cfg.decline_unfamiliar if cfg else None
    taught = TaughtQuestions.of_run(args.run, cfg.decline_untaught) if cfg and not args.base else None

    recitals: dict[str, str] = {}

    def reply_to(history: list[dict]) -> str:
        question = history[-1]["content"]
        declined = declined_replies(model.model, model.tokenizer, model.system_prompt, [question], unfamiliar, taught)[0]
        if declined:
            return declined
        if args.recite:  # the question over what the model says about its names; the recitals shown first
            prompt = recited_prompts(model, [question], recitals)[0]
            for name in recital_subjects(question):
                print(f"(recalled first about {name}: {recitals[name]})")
            history = [*history[:-1], {"role": "user", "content": prompt}]
        return model.generate([history], args.max_new_tokens)[0]

    if args.prompt:
        print(reply_to([{"role": "user", "content": " ".join(args.prompt)}]))
        return 0
    history: list[dict] = []
    print("steep chat: empty line or Ctrl-D to quit")
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            return 0
        if not line:
            return 0
        history.append({"role": "user", "content": line})
        reply = reply_to(history)
        history.append({"role": "assistant", "content": reply})
        print(reply)


if __name__ == "__main__":
    sys.exit(main())
