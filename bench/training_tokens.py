"""Benchmark: where a run's training tokens go, by the kind of text or QA pair that brings them.
Training time is close to proportional to tokens (docs/knowledge.md), so this is the map for
cutting it: each kind's examples are laid out by the train stage's own `build_dataset` (its
passes, repeats and once-per-run kinds), so the counts are what train would run, not a model of it.
Replay and the anchors are what the whole run adds on top of the domain's tokens. Conversations
also show how much of them is the shared chat opening, which train runs once per batch rather
than per row, so they cost less compute than their count.

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
    from steep.config import TrainConfig, load_config
    from steep.models import load_tokenizer, resolve_model
    from steep.replay import replay_set
    from steep.rundir import read_jsonl
    from steep.stages.train import build_dataset, chat_opening

    cfg = load_config(args.run / "config.yaml")
    model_path = resolve_model(cfg.model)
    tok = load_tokenizer(model_path)
    texts, qa = read_jsonl(args.run / "curate" / "texts.jsonl"), read_jsonl(args.run / "curate" / "qa.jsonl")
    groups: dict[str, tuple[list[dict], list[dict]]] = defaultdict(lambda: ([], []))
    for record in texts:
        groups["text: " + record["metadata"]["method"]][0].append(record)
    for record in qa:
        groups["QA: " + record["metadata"]["method"]][1].append(record)
    domain_only = cfg.train.model_copy(update={"replay": 0.0})

    def tokens(texts: list[dict], qa: list[dict], train_cfg: TrainConfig = domain_only, replay: list[dict] = ()) -> int:
        examples, _ = build_dataset(tok, texts, qa, train_cfg, cfg.system_prompt, list(replay), [], cfg.seed)
        return sum(len(e["input_ids"]) for e in examples)

    by_kind = {name: (len(t) + len(q), tokens(t, q)) for name, (t, q) in groups.items()}
    domain = tokens(texts, qa)
    replay = replay_set(model_path, tok, cfg.train.replay_samples, cfg.system_prompt, cfg.seed) if cfg.train.replay else []
    whole = tokens(texts, qa, cfg.train, replay)
    opening = len(chat_opening(tok, cfg.system_prompt))
    print(f"{cfg.train.epochs:g} passes, text_repeats {cfg.train.text_repeats}, qa_repeats {cfg.train.qa_repeats}, "
          f"replay {cfg.train.replay:g}; anchors (a few short samples per pass) not counted")
    print("| kind | items | tokens | share of the run |\n|---|---:|---:|---:|")
    for name, (items, count) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        print(f"| {name} | {items:,} | {count:,} | {count / whole:.1%} |")
    print(f"| replay | {len(replay):,} samples | {whole - domain:,} | {(whole - domain) / whole:.1%} |")
    print(f"| **run** | | **{whole:,}** | |")
    conversations = sum(count for name, (_, count) in by_kind.items() if name.startswith("QA: "))
    if conversations:
        rows = len(build_dataset(tok, [], qa, domain_only, cfg.system_prompt, [], [], cfg.seed)[0])
        print(f"the chat opening ({opening} tokens) is {opening * rows:,} of the conversations' {conversations:,} tokens "
              f"({opening * rows / conversations:.1%}); train runs it once per batch")


if __name__ == "__main__":
    main()
