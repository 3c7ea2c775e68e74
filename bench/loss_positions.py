"""Benchmark: what making logits only where a loss is taken saves in training. Times forward and
backward passes of the LoRA-wrapped default model on the same batches of a run's training data
(its curated texts and QA, and replay samples, laid out as the train stage lays them out), with
`steep.stages.train.replay_loss` as it is and with the output layer run over every position (as
before: the model's full logits, then the used positions picked out). The two take turns, batch
by batch, so the machine's drift falls on both; prints tokens per second for each and the ratio.

Usage: python bench/loss_positions.py RUN_DIR [--batches 40]   (RUN_DIR: a finished run, e.g.
from `steep bench knowledge` or `python bench/demo_bench.py --keep DIR`)"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory with curate/ done")
    parser.add_argument("--batches", type=int, default=40)
    args = parser.parse_args()
    import torch
    from peft import LoraConfig, get_peft_model

    from steep.config import load_config
    from steep.models import bf16_supported, load_model, load_tokenizer, resolve_model
    from steep.replay import replay_set
    from steep.rundir import read_jsonl
    from steep.stages.train import ReplayCollator, build_dataset, replay_loss

    cfg = load_config(args.run / "config.yaml")
    model_path = resolve_model(cfg.model)
    tok = load_tokenizer(model_path)
    texts, qa = read_jsonl(args.run / "curate" / "texts.jsonl"), read_jsonl(args.run / "curate" / "qa.jsonl")
    replay = replay_set(model_path, tok, cfg.train.replay_samples, cfg.system_prompt, cfg.seed) if cfg.train.replay else []
    examples, _ = build_dataset(tok, texts, qa, cfg.train, cfg.system_prompt, replay, [], cfg.seed)
    rng = random.Random(0)
    collate = ReplayCollator(tok.pad_token_id)
    batches = [collate(rng.sample(examples, cfg.train.batch_size)) for _ in range(args.batches)]
    lora = cfg.train.lora
    model = get_peft_model(load_model(model_path), LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                               target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    model.train()

    def every_position(**inputs):  # noqa: ANN003, ANN202
        keep = inputs.pop("logits_to_keep")
        outputs = model(**inputs)
        outputs.logits = outputs.logits[keep]
        return outputs

    seconds = {"used positions": 0.0, "every position": 0.0}
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_supported()):
        replay_loss(model, batches[0]).backward()  # warm-up
        for batch in batches:
            for name, forward in (("used positions", model), ("every position", every_position)):
                started = time.perf_counter()
                replay_loss(forward, batch).backward()
                seconds[name] += time.perf_counter() - started
                model.zero_grad()
    for name, s in seconds.items():
        print(f"{name}: {tokens / s:,.0f} tokens/s ({s:.1f} s for {args.batches} batches, {tokens:,} tokens)")
    print(f"speed-up: {seconds['every position'] / seconds['used positions']:.2f}x")


if __name__ == "__main__":
    main()
