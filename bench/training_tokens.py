"""Benchmark: where a run's training tokens go, by the kind of text or QA pair that brings them.
Training time is close to proportional to tokens (docs/knowledge.md), so this is the map for
cutting it: each kind's examples are laid out by the train stage's own `build_dataset` (its
passes, repeats and once-per-run kinds), so the counts are what train would run, not a model of it.
Replay is counted in the whole run's layout (its samples carry the base model's distributions);
the anchors, a few short samples per pass, are left out. Conversations also show how much of them
is the shared chat opening, which train runs once per batch rather than per row, so they cost
less compute than their count.

Usage: python bench/training_tokens.py RUN_DIR
(RUN_DIR: a run with curate/ done, e.g. from `steep bench knowledge`)"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory with curate/ done")
    args = parser.parse_args()
    from curated import load_curated_run
    from steep.config import TrainConfig
    from steep.stages.train import build_dataset, chat_opening

    run = load_curated_run(args.run)
    cfg, tok, texts, qa = run.cfg, run.tok, run.texts, run.qa
    groups: dict[str, tuple[list[dict], list[dict]]] = defaultdict(lambda: ([], []))
    for record in texts:
        groups["text: " + record["metadata"]["method"]][0].append(record)
    for record in qa:
        groups["QA: " + record["metadata"]["method"]][1].append(record)
    domain_only = cfg.train.model_copy(update={"replay": 0.0})

    def laid_out(texts: list[dict], qa: list[dict], train_cfg: TrainConfig = domain_only, replay: tuple[dict, ...] = ()) -> list[dict]:
        return build_dataset(tok, texts, qa, train_cfg, cfg.system_prompt, list(replay), [], cfg.seed)[0]

    def tokens(examples: list[dict]) -> int:
        return sum(len(e["input_ids"]) for e in examples)

    by_kind = {name: (len(t) + len(q), laid_out(t, q)) for name, (t, q) in groups.items()}
    whole_run = laid_out(texts, qa, cfg.train, run.replay)
    # replay samples carry the base model's distributions
    whole, replayed = tokens(whole_run), tokens([e for e in whole_run if "teacher_ids" in e])
    print(f"{cfg.train.epochs:g} passes, text_repeats {cfg.train.text_repeats}, qa_repeats {cfg.train.qa_repeats}, "
          f"replay {cfg.train.replay:g}; anchors (a few short samples per pass) not counted")
    print("| kind | items | tokens | share of the run |\n|---|---:|---:|---:|")
    for name, (items, examples) in sorted(by_kind.items(), key=lambda kv: -tokens(kv[1][1])):
        print(f"| {name} | {items:,} | {tokens(examples):,} | {tokens(examples) / whole:.1%} |")
    print(f"| replay | {len(run.replay):,} samples | {replayed:,} | {replayed / whole:.1%} |")
    print(f"| **run** | | **{whole:,}** | |")
    conversations = [e for name, (_, examples) in by_kind.items() if name.startswith("QA: ") for e in examples]
    if conversations:
        opening = len(chat_opening(tok, cfg.system_prompt))
        shared = opening * len(conversations)
        print(f"the chat opening ({opening} tokens) is {shared:,} of the conversations' {tokens(conversations):,} tokens "
              f"({shared / tokens(conversations):.1%}); train runs it once per batch")


if __name__ == "__main__":
    main()
