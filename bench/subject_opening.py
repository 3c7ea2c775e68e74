"""Does a closed-book reply that opens with the question's subject recall more? (docs/knowledge.md, round 46)

A tuned model states its facts subject first, as its documents do ("X was born in T."). Asked in a
wording that names the value first ("Name the town that is the birthplace of X."), it often writes
the value first ("T is the birthplace of X."). This asks a run's held-out questions again with
the reply's start given to the model (prefilled): the question's subject, for questions that ask
for a value (`recital.asks_for_a_value`); the rest are asked as they are. The decline gates apply
as in eval. It prints the score per kind, paired with the run's own closed-book answers
(eval/answers_tuned.jsonl), and writes the replies to `answers_tuned+subject.jsonl` in the run's
eval folder.

Usage: python bench/subject_opening.py RUN_DIR [--adapter DIR]
  RUN_DIR: a run whose train and eval stages are done (e.g. a knowledge bench's runs/defaults);
  --adapter: the LoRA adapter to load instead of the one the run's train record names"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--adapter", type=Path)
    args = parser.parse_args()
    from steep.config import load_run_config
    from steep.familiarity import TaughtQuestions, declining, subject
    from steep.pipeline import prepare, tuned_model
    from steep.recital import asks_for_a_value
    from steep.rundir import read_jsonl, trained_output, write_jsonl
    from steep.stages.evaluate import answer_condition, load_questions, paired_difference, summarize

    cfg = load_run_config(args.run_dir)
    ctx = prepare(cfg)
    model = ctx.chat_model(ctx.model_path, adapter=args.adapter) if args.adapter else tuned_model(ctx, trained_output(args.run_dir))

    def ask(prompts: list[str]) -> list[str]:
        openings = [(subject(p) or "") if asks_for_a_value(p) else "" for p in prompts]
        return model.generate([[{"role": "user", "content": p}] for p in prompts], cfg.eval.max_new_tokens, cfg.eval.batch_size,
                              desc="subject first", openings=openings)

    taught = TaughtQuestions.of_run(ctx.run_dir, cfg.decline_untaught)
    rows = answer_condition(load_questions(cfg.eval.questions), None, declining(model, cfg.decline_unfamiliar, taught, ask, "subject first"))
    write_jsonl(ctx.run_dir / "eval" / "answers_tuned+subject.jsonl", rows)
    closed = read_jsonl(ctx.run_dir / "eval" / "answers_tuned.jsonl")
    for kind in sorted({r["kind"] for r in rows if r["kind"]}) + [None]:
        pick = [i for i, r in enumerate(rows) if kind is None or r["kind"] == kind]
        a, b = [closed[i] for i in pick], [rows[i] for i in pick]
        d = paired_difference(a, b)
        print(f"{kind or 'all':11s} closed-book {summarize(a)['contained']:6.1%}  subject first {summarize(b)['contained']:6.1%}  "
              f"paired {d['difference']:+.1%} ({d['ci'][0]:+.1%} to {d['ci'][1]:+.1%})")


if __name__ == "__main__":
    main()
