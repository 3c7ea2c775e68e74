"""Benchmark: what two savings in the train stage's loss are worth, on a run's own training data
(its curated texts and QA, and replay samples, laid out and batched as the train stage does).
Times forward and backward passes of the LoRA-wrapped model, the old way and the new way taking
turns batch by batch, so the machine's drift falls on both; prints tokens per second for each
and the ratio.

--compare loss-positions: logits only where a loss is taken (`replay_loss` as it is), against
    the output layer run over every position (the model's full logits, then the used ones picked).
--compare shared-prefix: batches that keep conversations apart from plain text and run their
    shared opening (the chat template's system turn) once (`grouping_lengths`, `share_prefix`),
    against length-grouped batches that mix the two, every row run whole. Also prints, over all
    of the run's batches each way, the share of tokens run once for their batch and of padding.
--compare row-parts: the batches over the activation budget (RAFT examples, long texts), run in
    parts of rows within it (`row_parts`), against run whole with activations recomputed
    (gradient checkpointing, as train did before). Also prints those batches' share of the run's
    tokens.
--compare compile: the run's batches as train runs them (opening shared, long ones in parts),
    the model's decoder layers compiled (`compile_blocks`, train.compile) against eager. Also prints
    the first compiled pass over the timed batches, compiling included, and the graphs made.

Usage: python bench/train_speed.py RUN_DIR [--compare loss-positions|shared-prefix|row-parts|compile] [--batches 20]
(RUN_DIR: a run with curate/ done, e.g. from `steep bench knowledge` or
`python bench/demo_bench.py --keep DIR`)"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run directory with curate/ done")
    parser.add_argument("--compare", choices=["loss-positions", "shared-prefix", "row-parts", "compile"], default="shared-prefix")
    parser.add_argument("--batches", type=int, default=20, help="batches timed each way, spread over the whole run")
    args = parser.parse_args()
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from curated import load_curated_run
    from steep.models import bf16_supported, load_model
    from steep.stages.train import (ACTIVATION_TOKEN_BUDGET, RECOMPILES_PER_BLOCK, ReplayCollator, build_dataset, chat_opening,
                                    compile_blocks, grouping_lengths, loss_counts, loss_positions, replay_loss, row_parts,
                                    shared_prefix_length)

    run = load_curated_run(args.run)
    cfg, model_path, tok = run.cfg, run.model_path, run.tok
    examples, _ = build_dataset(tok, run.texts, run.qa, cfg.train, cfg.system_prompt, run.replay, [], cfg.seed)
    collate = ReplayCollator(tok.pad_token_id)

    def run_batches(lengths: list[int]) -> list[dict]:
        """Every batch of a run, in the order the sampler gives them these lengths."""
        order = list(LengthGroupedSampler(cfg.train.batch_size, lengths=lengths, generator=torch.Generator().manual_seed(cfg.seed)))
        return [collate([examples[i] for i in order[at : at + cfg.train.batch_size]]) for at in range(0, len(order), cfg.train.batch_size)]

    def spread(every: list[dict]) -> list[dict]:
        """`--batches` batches spread evenly over a run; not the first, which the sampler makes the
        longest (the run recomputes its activations)."""
        return every[1:][:: max(1, (len(every) - 1) // args.batches)][: args.batches]

    def shares(every: list[dict]) -> str:
        """Of a run's tokens: those its batches run once instead of per row, and the padding."""
        tokens = sum(int(b["attention_mask"].sum()) for b in every)
        once = sum((len(b["input_ids"]) - 1) * shared_prefix_length(b["input_ids"], b["attention_mask"], used(b)) for b in every)
        padding = 1 - tokens / sum(b["input_ids"].numel() for b in every)
        return f"{once / tokens:.1%} of the run's {tokens:,} tokens run once for their batch, padding {padding:.1%}"

    def used(b: dict) -> torch.Tensor:
        labelled, distilled = loss_positions(b["labels"], b.get("teacher_logprobs"))
        return labelled | distilled

    lora = cfg.train.lora
    model = get_peft_model(load_model(model_path), LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                               target_modules=lora.target_modules, task_type="CAUSAL_LM"))
    model.train()

    def every_position(**inputs):  # noqa: ANN003, ANN202
        keep = inputs.pop("logits_to_keep")
        outputs = model(**inputs)
        outputs.logits = outputs.logits[keep]
        return outputs

    plain = run_batches([len(e["input_ids"]) for e in examples])
    if args.compare == "loss-positions":
        same = spread(plain)
        ways = {"every position": (same, lambda b: replay_loss(every_position, b, share_prefix=False).backward()),
                "used positions": (same, lambda b: replay_loss(model, b, share_prefix=False).backward())}
    elif args.compare == "row-parts":
        apart = run_batches(grouping_lengths(examples, chat_opening(tok, cfg.system_prompt)))
        long = [b for b in apart if b["input_ids"].numel() > ACTIVATION_TOKEN_BUDGET]
        share = sum(int(b["attention_mask"].sum()) for b in long) / sum(int(b["attention_mask"].sum()) for b in apart)
        print(f"{len(long)} of the run's {len(apart)} batches are over the budget ({ACTIVATION_TOKEN_BUDGET:,} tokens), "
              f"{share:.1%} of its tokens")
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

        def recompute(on: bool) -> None:
            for module in model.modules():
                if isinstance(getattr(module, "gradient_checkpointing", None), bool):
                    module.gradient_checkpointing = on

        def whole_recomputed(b: dict) -> None:
            recompute(True)
            replay_loss(model, b, share_prefix=False).backward()
            recompute(False)

        def in_parts(b: dict) -> None:
            counts = loss_counts(b)
            for part in row_parts(b, ACTIVATION_TOKEN_BUDGET):
                replay_loss(model, part, counts=counts).backward()

        args.batches = min(args.batches, len(long))
        same = long[:: max(1, len(long) // args.batches)][: args.batches]
        ways = {"whole, activations recomputed": (same, whole_recomputed), "in parts": (same, in_parts)}
    elif args.compare == "compile":
        same = spread(run_batches(grouping_lengths(examples, chat_opening(tok, cfg.system_prompt))))
        blocks = compile_blocks(model)
        torch._dynamo.config.recompile_limit = torch._dynamo.config.accumulated_recompile_limit = RECOMPILES_PER_BLOCK * blocks

        def as_trained(b: dict) -> tuple[float, float]:
            """One training step's forward and backward passes, as ReplayTrainer runs them: (loss, gradient norm)."""
            counts, loss = loss_counts(b), 0.0
            for part in row_parts(b, ACTIVATION_TOKEN_BUDGET) if b["input_ids"].numel() > ACTIVATION_TOKEN_BUDGET else [b]:
                part_loss = replay_loss(model, part, share_prefix=True, counts=counts)
                part_loss.backward()
                loss += part_loss.item()
            return loss, torch.norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])).item()

        measured: dict[str, list[tuple[float, float]]] = {"force_eager": [], "default": []}

        def in_stance(stance: str):  # noqa: ANN202
            def step(b: dict) -> None:
                with torch.compiler.set_stance(stance):
                    measured[stance].append(as_trained(b))
            return step

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_supported()):
            started = time.perf_counter()
            for b in same:
                in_stance("default")(b)
                model.zero_grad()
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        print(f"{blocks} blocks compiled; first compiled pass over the {len(same)} batches, compiling included: "
              f"{time.perf_counter() - started:.1f} s, {graphs} graphs")
        ways = {"eager": (same, in_stance("force_eager")), "compiled layers": (same, in_stance("default"))}
    else:
        opening = chat_opening(tok, cfg.system_prompt)
        apart = run_batches(grouping_lengths(examples, opening))
        in_conversations = sum(len(opening) for e in examples if e["input_ids"][: len(opening)] == opening)
        print(f"the chat opening ({len(opening)} tokens) is {in_conversations / sum(len(e['input_ids']) for e in examples):.1%} "
              "of the run's tokens")
        print(f"mixed batches: {shares(plain)}")
        print(f"apart: {shares(apart)}")
        ways = {"mixed batches, rows run whole": (spread(plain), lambda b: replay_loss(model, b, share_prefix=False).backward()),
                "apart, opening shared": (spread(apart), lambda b: replay_loss(model, b, share_prefix=True).backward())}
    seconds = dict.fromkeys(ways, 0.0)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_supported()):
        for name, (some, step) in ways.items():
            step(some[0])  # warm-up: forward and backward
            model.zero_grad()
        for i in range(args.batches):
            for name, (some, step) in ways.items():
                started = time.perf_counter()
                step(some[i])
                seconds[name] += time.perf_counter() - started
                model.zero_grad()
    rate = {}
    for name, (some, _) in ways.items():
        tokens = sum(int(b["attention_mask"].sum()) for b in some)
        rate[name] = tokens / seconds[name]
        print(f"{name}: {rate[name]:,.0f} tokens/s ({seconds[name]:.1f} s for {args.batches} batches, {tokens:,} tokens)")
    old, new = rate.values()
    print(f"speed-up: {new / old:.2f}x (bf16 autocast: {bf16_supported()})")
    if args.compare == "compile":  # the same batches, the same weights: how far compiled numerics drift from eager ones
        eager, compiled = measured["force_eager"], measured["default"][-len(measured["force_eager"]):]
        for i, what in enumerate(("loss", "gradient norm")):
            gaps = [abs(c[i] - e[i]) / abs(e[i]) for e, c in zip(eager, compiled)]
            print(f"{what}, compiled against eager: mean relative difference {sum(gaps) / len(gaps):.2%}, largest {max(gaps):.2%}")


if __name__ == "__main__":
    main()
