"""train: continued pretraining on augmented text mixed with QA pairs in chat form, LoRA by default.

The Hugging Face Trainer runs the loop, so the same config runs under `accelerate launch` or
`torchrun` (DDP/FSDP) on GPU machines, and an interrupted run resumes from its last checkpoint."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import math
import os
import random
import shutil
import time
from collections import Counter
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from ..config import LoraSettings, TrainConfig
from ..generate import with_system
from ..models import bf16_supported, load_model, tied_embedding_warnings_hidden
from ..replay import NOT_DISTILLED, TOP_K, anchor_set, cached_samples, replay_set
from ..rundir import write_json, write_jsonl

log = logging.getLogger("steep")
ACTIVATION_TOKEN_BUDGET = 4096  # tokens (padding included) of one forward pass; longer batches run in parts (see training_step)
IGNORE = -100  # label value the loss skips
ELAPSED_FILE = "steep-elapsed.json"  # in each checkpoint: training seconds up to it
SNAPSHOT_FILE = "snapshot.json"  # in each snapshot: the passes, step and tokens trained up to it
MIN_SHARED_PREFIX = 8  # fewer shared leading tokens than this are not worth a forward pass of their own
RECOMPILES_PER_BLOCK = 8  # graphs a compiled block may make (dynamo's default limit for a function)
# train.compile auto: a shorter training runs eager. Measured on 2 CPU cores, SmolLM2-135M: compiling
# costs ~320 s more than eager's first steps with an empty inductor cache (~55 s with a warm one),
# then runs 587 tokens/s against 407, so a training wins it back after ~420k tokens (~75k warm)
COMPILE_MIN_TOKENS = 400_000


def tokenize_chat(tok: PreTrainedTokenizerBase, messages: list[dict], system_prompt: str | None) -> dict:
    """Token ids with labels only on assistant turns, their end-of-turn token included (a model
    never trained on it never learns to stop)."""
    messages = with_system(messages, system_prompt)
    full = tok.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        through_reply = tok.apply_chat_template(messages[: i + 1], tokenize=False)
        if not full.startswith(through_reply):
            raise ValueError("the chat template renders a conversation differently from its prefix; cannot mask the loss")
        spans.append((len(prompt), len(through_reply)))
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    labels = [
        tid if any(s <= a < e for s, e in spans) else IGNORE for tid, (a, _) in zip(enc["input_ids"], enc["offset_mapping"])
    ]
    return {"input_ids": enc["input_ids"], "labels": labels}


def chat_opening(tok: PreTrainedTokenizerBase, system_prompt: str | None) -> list[int]:
    """The tokens every conversation of the run starts with: the chat template's fixed opening,
    its default system turn included, up to the first user's words (the longest prefix two
    conversations that differ only there have in common)."""
    one, other = (tokenize_chat(tok, [{"role": "user", "content": c}], system_prompt)["input_ids"] for c in ("A", "Z"))
    differs_at = next((i for i, (a, b) in enumerate(zip(one, other)) if a != b), min(len(one), len(other)))
    return one[:differs_at]


def tokenize_text(tok: PreTrainedTokenizerBase, text: str, max_len: int) -> list[dict]:
    """Plain text for continued pretraining: loss on every token, split into windows of max_len."""
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return [{"input_ids": ids[i : i + max_len], "labels": ids[i : i + max_len]} for i in range(0, len(ids), max_len)]


def build_dataset(tok: PreTrainedTokenizerBase, texts: list[dict], qa: list[dict], cfg: TrainConfig, system_prompt: str | None,
                  replay: list[dict], anchors: list[dict], seed: int) -> tuple[list[dict], int]:
    """The examples of the whole run, pass by pass, and how many conversations were left out for
    being longer than `max_seq_len` (cutting one would cut off its answer, the only part with a
    loss, so it would train nothing).

    Every pass has each augmented text `text_repeats` times and each QA pair `qa_repeats` times.
    Each QA pair of a method in `once_per_run` (by default RAFT examples, a question with
    retrieved passages, and drills) comes once in the whole run: they teach a skill (reading
    context, comparing numbers), which distinct examples teach better than the same ones again,
    and RAFT examples at ~600 tokens each would otherwise dominate the cost. Replay samples make
    up `replay` times a pass's tokens, the next slice of the replay set in each pass; the anchors
    (short, few tokens) come in every pass, as the names they hold in place do. A fractional
    `epochs` ends with part of a pass."""
    rng = random.Random(seed)
    domain: list[dict] = []
    once: list[dict] = []
    once_by_method: Counter[str] = Counter()
    too_long: list[int] = []
    for record in texts:
        domain.extend(tokenize_text(tok, record["text"], cfg.max_seq_len) * cfg.text_repeats)
    for record in qa:
        example = tokenize_chat(tok, record["messages"], system_prompt)
        if len(example["input_ids"]) > cfg.max_seq_len:
            too_long.append(len(example["input_ids"]))
        elif (method := record.get("metadata", {}).get("method")) in cfg.once_per_run:
            once.append(example)
            once_by_method[method] += 1
        else:
            domain.extend([example] * cfg.qa_repeats)
    if too_long:
        log.warning("%d conversation(s) longer than train.max_seq_len=%d tokens (up to %d) were left out; "
                    "raise train.max_seq_len to train on them", len(too_long), cfg.max_seq_len, max(too_long))
    if cfg.once_per_run:  # a name that matches no method shows as 0
        log.info("trained once in the run (train.once_per_run): %s",
                 ", ".join(f"{m} {once_by_method[m]}" for m in cfg.once_per_run))
    if not domain and not once:
        raise ValueError("nothing to train on: no texts and no QA pairs (check train.text_repeats / train.qa_repeats)")
    passes = math.ceil(cfg.epochs)
    rng.shuffle(once)
    replay = [{k: v[: cfg.max_seq_len] for k, v in r.items()} for r in replay]  # no answer to lose: cut, not left out
    replay_at = 0
    examples: list[dict] = []
    for n in range(passes):
        share = min(1.0, cfg.epochs - n)  # the last pass of a fractional epoch count is partial
        this_pass = rng.sample(domain, math.floor(share * len(domain) + 0.5)) + once[n::passes]
        budget = cfg.replay * sum(len(e["input_ids"]) for e in this_pass)
        this_pass += rng.sample(anchors, math.floor(share * len(anchors) + 0.5))
        while replay and budget > 0:
            example = replay[replay_at % len(replay)]
            this_pass.append(example)
            budget -= len(example["input_ids"])
            replay_at += 1
        examples.extend(this_pass)
    return examples, len(too_long)


class ReplayCollator:
    """Right-padded batches; for replay samples also the base model's top-k distributions."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        def pad(rows: list, value: float) -> torch.Tensor:
            return pad_sequence([torch.as_tensor(r) for r in rows], batch_first=True, padding_value=value)

        batch = {"input_ids": pad([f["input_ids"] for f in features], self.pad_id),
                 "labels": pad([f["labels"] for f in features], IGNORE),
                 "attention_mask": pad([[1] * len(f["input_ids"]) for f in features], 0)}
        if any("teacher_ids" in f for f in features):
            width = batch["input_ids"].shape[1]
            ids = torch.zeros(len(features), width, TOP_K, dtype=torch.long)
            logprobs = torch.full((len(features), width, TOP_K), NOT_DISTILLED)
            for i, f in enumerate(features):
                if "teacher_ids" in f:
                    ids[i, : len(f["teacher_ids"])] = f["teacher_ids"]
                    logprobs[i, : len(f["teacher_logprobs"])] = f["teacher_logprobs"]
            batch |= {"teacher_ids": ids, "teacher_logprobs": logprobs}
        return batch


def replay_loss(model: PreTrainedModel, inputs: dict[str, torch.Tensor], share_prefix: bool = True,
                counts: tuple[int, int] | None = None) -> torch.Tensor:
    """Cross-entropy on the labelled tokens (answers, texts); on replay samples, the KL divergence
    from the base model's distribution (over its top-k tokens) to the tuned model's. Each is a
    mean over its positions: over this batch's, or over `counts` (labelled, distilled) when the
    batch is a part of a larger one (`row_parts`), so that the parts' losses add up to the whole's.
    Logits are made only at the positions a loss is taken (about half: prompts take none), since
    the output layer spans the whole vocabulary; on SmolLM2-135M that makes a step 1.04 times as
    fast (bench/train_speed.py). With `share_prefix`, leading tokens that every row of the batch
    has in common run once for the whole batch (see `forward_sharing_prefix`)."""
    inputs = dict(inputs)
    teacher_ids, teacher_logprobs = inputs.pop("teacher_ids", None), inputs.pop("teacher_logprobs", None)
    labels = inputs.pop("labels")
    targets = labels[:, 1:]
    labelled, distilled = loss_positions(labels, teacher_logprobs)
    n_labelled, n_distilled = counts or (int(labelled.sum()), int(distilled.sum()))
    used = labelled | distilled
    keep = torch.nn.functional.pad(used, (0, 1))  # the last position predicts nothing
    shared = shared_prefix_length(inputs["input_ids"], inputs["attention_mask"], used) if share_prefix else 0
    if shared:
        logits = forward_sharing_prefix(model, inputs, shared, keep)
    else:
        logits = model(**inputs, logits_to_keep=keep).logits  # (used positions, vocab)
    logprobs = logits.float().log_softmax(-1)
    loss = logits.sum() * 0.0  # keeps the graph when a batch has neither kind
    if labelled.any():
        loss = loss - logprobs[labelled[used]].gather(-1, targets[labelled].unsqueeze(-1)).sum() / n_labelled
    if distilled.any():  # KL over the base model's top-k tokens and one bucket for all the rest
        p_log = teacher_logprobs[:, :-1][distilled]
        q_log = logprobs[distilled[used]].gather(-1, teacher_ids[:, :-1][distilled])
        p_rest = (1 - p_log.exp().sum(-1)).clamp(min=1e-6)
        q_rest = (1 - q_log.exp().sum(-1)).clamp(min=1e-6)
        kl = (p_log.exp() * (p_log - q_log)).sum(-1) + p_rest * (p_rest.log() - q_rest.log())
        loss = loss + kl.sum() / n_distilled
    return loss


def loss_positions(labels: torch.Tensor, teacher_logprobs: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Where `replay_loss` takes a loss, as (labelled, distilled) masks over positions 0..L-2:
    position t predicts token t + 1, which has a label or the base model's distribution."""
    labelled = labels[:, 1:] != IGNORE
    distilled = teacher_logprobs[:, :-1, 0] > NOT_DISTILLED / 2 if teacher_logprobs is not None else torch.zeros_like(labelled)
    return labelled, distilled


def loss_counts(batch: dict[str, torch.Tensor]) -> tuple[int, int]:
    """How many positions of a batch `replay_loss` takes each loss at: (labelled, distilled)."""
    labelled, distilled = loss_positions(batch["labels"], batch.get("teacher_logprobs"))
    return int(labelled.sum()), int(distilled.sum())


def row_parts(batch: dict[str, torch.Tensor], budget: int) -> list[dict[str, torch.Tensor]]:
    """A batch cut into runs of consecutive rows of at most `budget` tokens each, padded to their
    own longest row (at least one row per part, however long)."""
    lengths = batch["attention_mask"].sum(1).tolist()
    parts, start = [], 0
    while start < len(lengths):
        end = start + 1
        while end < len(lengths) and (end + 1 - start) * max(lengths[start : end + 1]) <= budget:
            end += 1
        width = max(lengths[start:end])
        parts.append({k: v[start:end, :width] for k, v in batch.items()})
        start = end
    return parts


def shared_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor, used: torch.Tensor) -> int:
    """How many leading positions all rows of a batch have in common, none of them padding or
    predicting a token a loss is taken on (`used`: position t predicts token t + 1). In a batch of
    conversations that is the chat template's opening, a default system turn included (24 of a
    QA example's ~60 tokens on SmolLM2). 0 when it is too short to be worth a pass of its own, or
    when there is no second row to share it with; the last position is always left to the rows."""
    if len(input_ids) < 2:
        return 0
    common = (input_ids == input_ids[:1]).all(0) & attention_mask.bool().all(0)
    n = int((common[:-1] & ~used.any(0)).int().cumprod(0).sum())
    return n if n >= MIN_SHARED_PREFIX else 0


def forward_sharing_prefix(model: PreTrainedModel, inputs: dict[str, torch.Tensor], shared: int, keep: torch.Tensor) -> torch.Tensor:
    """The logits at `keep`, as one forward pass over the batch gives them, with the first `shared`
    positions (the same in every row) run once: their keys and values are repeated for every row
    and the rows go on from there. The repeat is differentiable, so gradients are the full pass's
    too (tested); only the cost changes."""
    ids = inputs["input_ids"]
    prefix = model(input_ids=ids[:1, :shared], use_cache=True, logits_to_keep=torch.zeros_like(ids[:1, :shared], dtype=torch.bool))
    prefix.cache.batch_repeat_interleave(len(ids))
    return model(input_ids=ids[:, shared:], attention_mask=inputs["attention_mask"], cache=prefix.cache,
                 logits_to_keep=keep[:, shared:]).logits


def grouping_lengths(examples: list[dict], opening: list[int]) -> list[int]:
    """Lengths for the Trainer's group_by_length sampler, which sorts each group of batches by
    them: an offset on the examples that start with the chat template's `opening` keeps those
    apart from the rest, so their batches share it."""
    apart = 10 * max(len(e["input_ids"]) for e in examples)
    return [len(e["input_ids"]) + (apart if e["input_ids"][: len(opening)] == opening else 0) for e in examples]


class ReplayTrainer(Trainer):
    """The Trainer with `replay_loss` (it has no loss for soft targets), batches in which
    conversations keep apart from plain text, so that they share their chat template's opening,
    and long batches run in parts."""

    def __init__(self, *args, chat_opening: list[int], **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.chat_opening = chat_opening
        self.split_batches = 0  # steps run in parts (`training_step`)

    def _get_train_sampler(self, train_dataset=None) -> LengthGroupedSampler:  # noqa: ANN001
        """group_by_length, with conversations and plain text in separate batches (`grouping_lengths`)."""
        lengths = grouping_lengths(train_dataset or self.train_dataset, self.chat_opening)
        return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=lengths)

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:  # noqa: ANN001
        """A batch over `ACTIVATION_TOKEN_BUDGET` runs as several parts (`row_parts`), each with its
        own forward and backward pass, weighted so that the gradients add up to the whole batch's.
        Activations grow with rows x length (the knowledge bench's longest batches, RAFT examples
        and long texts, in one pass: 17.8 GB peak; in parts of 4,096 tokens: 10.2 GB). Recomputing
        them in the backward pass instead
        (gradient checkpointing, as train did before) costs a second forward pass: on those batches
        84 tokens/s against 123 in parts (bench/train_speed.py --compare row-parts)."""
        if inputs["input_ids"].numel() <= ACTIVATION_TOKEN_BUDGET:
            return super().training_step(model, inputs, num_items_in_batch)
        self.split_batches += 1
        counts = loss_counts(inputs)
        parts = row_parts(inputs, ACTIVATION_TOKEN_BUDGET)
        losses = []
        for i, part in enumerate(parts):
            # on several processes, gradients are synchronized once, after the last part
            with self.accelerator.no_sync(model) if i < len(parts) - 1 else contextlib.nullcontext():
                losses.append(super().training_step(model, part | {"loss_counts": counts}, num_items_in_batch))
        return torch.stack(losses).sum()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001, ARG002
        if return_outputs:
            raise NotImplementedError("replay_loss makes logits only where a loss is taken; there are no outputs to return")
        inputs = dict(inputs)
        counts = inputs.pop("loss_counts", None)
        # Not on several processes: DDP and FSDP wrappers expect one forward per backward.
        return replay_loss(model, inputs, share_prefix=self.args.world_size == 1, counts=counts)


def train(
    model_path: Path,
    tok: PreTrainedTokenizerBase,
    texts: list[dict],
    qa: list[dict],
    cfg: TrainConfig,
    out_dir: Path,
    key: str,
    seed: int,
    system_prompt: str | None,
) -> dict:
    """Train and save to out_dir/'adapter' (LoRA) or out_dir/'model' (full); returns a summary.
    Under torchrun or `accelerate launch` every process runs this: the main process prepares the
    shared files first (checkpoints, replay set, anchors) so the others read them rather than race
    to write them, and it alone writes the outputs."""
    started = time.time()
    ckpt_dir = out_dir / "checkpoints"
    order_seed = seed if cfg.order_seed is None else cfg.order_seed  # the replay set and anchors are data: they keep `seed`
    bf16 = bf16_supported() if cfg.bf16 == "auto" else cfg.bf16
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=1,  # build_dataset lays out every pass
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_ratio,
        weight_decay=0.0,
        logging_steps=5,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length",  # less padding: similar lengths share a batch
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",  # the tokens trained up to a snapshot
        ddp_find_unused_parameters=False,  # every trainable parameter is used; the search costs a graph walk per step
        report_to="none",
        seed=order_seed,
        disable_tqdm=False,
    )
    with args.main_process_first(desc="checkpoints, replay set and anchors"):
        _discard_foreign_checkpoints(ckpt_dir, key)
        replay = replay_set(model_path, tok, cfg.replay_samples, system_prompt, seed) if cfg.replay else []
        model = load_model(model_path)
        anchors = _anchors(model, tok, texts, qa, replay, cfg, ckpt_dir, seed) if replay and cfg.replay_anchors else []
    examples, too_long = build_dataset(tok, texts, qa, cfg, system_prompt, replay, anchors, order_seed)
    model.train()
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model

        with tied_embedding_warnings_hidden():
            model = get_peft_model(
                model,
                LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                           target_modules=lora_targets(model, cfg.lora), alpha_pattern=lora_alphas(model, cfg.lora),
                           task_type="CAUSAL_LM"),
            )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tokens = sum(len(e["input_ids"]) for e in examples)
    compiled = compile_blocks(model) if should_compile(cfg.compile, tokens) else 0
    trainer = ReplayTrainer(model=model, args=args, train_dataset=examples, data_collator=ReplayCollator(tok.pad_token_id),
                            chat_opening=chat_opening(tok, system_prompt))
    resume = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.exists() else None
    if resume:
        log.info("resuming training from %s", resume)
    elapsed = ElapsedTime(resume, started)
    trainer.add_callback(elapsed)
    if not resume:  # snapshots belong to the checkpoints they were taken beside
        shutil.rmtree(out_dir / "snapshots", ignore_errors=True)
    snapshots = Snapshots(trainer, cfg.snapshot_epochs, cfg.epochs, out_dir / "snapshots", elapsed)
    trainer.add_callback(snapshots)
    # each block keeps its own graphs (its layer index is a constant in them), a few per kind of batch
    with torch._dynamo.config.patch(recompile_limit=RECOMPILES_PER_BLOCK * max(1, compiled),
                                    accumulated_recompile_limit=RECOMPILES_PER_BLOCK * max(1, compiled)):
        try:
            result = trainer.train(resume_from_checkpoint=resume)
        except torch._dynamo.exc.BackendCompilerFailed as error:
            raise RuntimeError(f"compiling the model's layers failed ({error}); set train.compile: false to train uncompiled, "
                               "the run resumes from its last checkpoint") from error
    target = out_dir / ("adapter" if cfg.method == "lora" else "model")
    if args.should_save:
        shutil.rmtree(target, ignore_errors=True)
    trainer.save_model(str(target))  # on every process (FSDP gathers the weights), written by the main one
    if args.should_save:
        tok.save_pretrained(str(target))  # with the chat template, so the output loads on its own
        write_jsonl(out_dir / "log.jsonl", trainer.state.log_history)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()  # no process goes on before the outputs are written
    replayed = [e for e in examples if "teacher_ids" in e]
    return {
        "method": cfg.method,
        "examples": len(examples),
        "conversations_too_long": too_long,
        "tokens_trained": tokens,
        "loss_tokens": sum(sum(1 for x in e["labels"] if x != IGNORE) for e in examples),
        "replay_examples": len(replayed),
        "replay_tokens": sum(len(e["input_ids"]) for e in replayed),
        "anchors": len(anchors),
        "trainable_parameters": trainable,
        "final_train_loss": round(result.training_loss, 4),
        "seconds": round(elapsed.seconds(), 1),
        "bf16": bf16,
        "compiled_blocks": compiled,
        "split_batches": trainer.split_batches,  # steps over the activation budget, run in parts
        "output": str(target),
        "snapshots": snapshots.saved(),
    }


def should_compile(setting: bool | str, tokens: int) -> bool:
    """train.compile: auto compiles on CPU, where it was measured, when there is a C++ compiler
    for inductor's kernels and the training is long enough to win back compiling with an empty
    inductor cache (COMPILE_MIN_TOKENS): a first run is not made slower by it."""
    if setting != "auto":
        return bool(setting)
    if torch.cuda.is_available() or not any(shutil.which(name) for name in (os.environ.get("CXX", "c++"), "g++", "clang++")):
        return False
    if tokens < COMPILE_MIN_TOKENS:
        log.info("train.compile auto: %d tokens to train, fewer than the %d it takes to win back compiling; layers run eager",
                 tokens, COMPILE_MIN_TOKENS)
        return False
    return True


def compile_blocks(model: PreTrainedModel) -> int:
    """Compiles, in place, each of the model's repeated blocks (the classes it names in
    `_no_split_modules`, the units FSDP wraps too); returns how many. Block by block rather than
    the whole model, as torchtune does: the model's own forward builds masks and a cache, which
    break a graph, while a block is one small graph. Compiling in place keeps the parameter names,
    so adapters, checkpoints and snapshots save as uncompiled ones do. dynamic: every batch has
    another width."""
    kinds = set(getattr(model, "_no_split_modules", None) or [])
    blocks = [module for module in model.modules() if type(module).__name__ in kinds]
    for block in blocks:
        block.compile(dynamic=True)
    return len(blocks)


def lora_targets(model: PreTrainedModel, lora: LoraSettings) -> list[str] | str:
    """The modules LoRA adapts: `target_modules`, and the input token embedding if asked for. The
    adapter on the embedding is not tied to a head that shares its weight (peft's
    ensure_weight_tying): on the knowledge bench the tied one recalled less (docs/knowledge.md,
    round 12)."""
    if not lora.embeddings:
        return lora.target_modules
    names = lora.target_modules
    if names == "all-linear":  # spelled out as peft reads it: every linear layer but the output head
        head = model.get_output_embeddings()
        names = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                        if isinstance(module, torch.nn.Linear) and module is not head})
    return [*names, _input_embedding_name(model)]


def lora_alphas(model: PreTrainedModel, lora: LoraSettings) -> dict[str, int]:
    """peft's alpha_pattern: the embedding adapter's own alpha, where one is set."""
    if not lora.embeddings or lora.embedding_alpha is None:
        return {}
    return {_input_embedding_name(model): lora.embedding_alpha}


def _input_embedding_name(model: PreTrainedModel) -> str:
    return next(name for name, module in model.named_modules() if module is model.get_input_embeddings())


def _anchors(model: PreTrainedModel, tok: PreTrainedTokenizerBase, texts: list[dict], qa: list[dict], replay: list[dict],
             cfg: TrainConfig, ckpt_dir: Path, seed: int) -> list[dict]:
    """The run's anchor samples (replay.anchor_set), kept with its checkpoints so that a resumed
    run trains on the same ones (and discarded with them)."""
    domain = [r["text"] for r in texts] + [m["content"] for r in qa for m in r["messages"] if m["role"] == "assistant"]
    return cached_samples(ckpt_dir / "anchors.safetensors", lambda: anchor_set(model, tok, domain, replay, cfg.replay_anchors, seed))


def release_memory() -> None:
    """Give the memory a finished training freed back to the OS. glibc keeps freed heap for reuse,
    so after a run whose activations took ~14 GB the process kept them through eval, and a job
    beside it ran out; malloc_trim is glibc's call for handing them back. Elsewhere a no-op."""
    gc.collect()  # the Trainer, its model and its optimizer sit in reference cycles
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl)
        pass


class ElapsedTime(TrainerCallback):
    """Wall time of the train stage across interruptions (the Trainer's train_runtime restarts at a
    resume): each checkpoint records the seconds spent up to it, and a resumed run adds them."""

    def __init__(self, resume: str | None, started: float) -> None:
        record = Path(resume) / ELAPSED_FILE if resume else None
        self.before = json.loads(record.read_text())["seconds"] if record and record.exists() else 0.0
        self.started = started

    def seconds(self) -> float:
        return self.before + time.time() - self.started

    def on_save(self, args, state, control, **kwargs) -> None:
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if state.is_world_process_zero and folder.exists():
            write_json(folder / ELAPSED_FILE, {"seconds": round(self.seconds(), 1)})


class Snapshots(TrainerCallback):
    """Saves the model as it is after each of `epochs` passes (train.snapshot_epochs) into
    folder/epochs-N, with the step, tokens and seconds trained up to it, so that eval can show how
    recall grows with training from a single run. Those saved before an interruption are kept."""

    def __init__(self, trainer: Trainer, epochs: list[float], total_epochs: float, folder: Path, elapsed: ElapsedTime) -> None:
        self.trainer, self.epochs, self.total_epochs, self.folder, self.elapsed = trainer, sorted(epochs), total_epochs, folder, elapsed

    def on_step_end(self, args, state, control, **kwargs) -> None:
        for epochs in self.epochs:
            target = self.folder / f"epochs-{epochs:g}"
            # the passes are shuffled together (length-grouped batches), so a pass is a share of the steps
            if state.global_step == max(1, round(epochs / self.total_epochs * state.max_steps)) and not (target / SNAPSHOT_FILE).exists():
                self.trainer.save_model(str(target))  # on every process: DDP/FSDP gather inside
                if state.is_world_process_zero:
                    write_json(target / SNAPSHOT_FILE, {"epochs": epochs, "step": state.global_step,
                                                        "tokens_trained": int(state.num_input_tokens_seen),
                                                        "seconds": round(self.elapsed.seconds(), 1), "output": str(target)})

    def saved(self) -> list[dict]:
        return [json.loads(p.read_text()) for e in self.epochs if (p := self.folder / f"epochs-{e:g}" / SNAPSHOT_FILE).exists()]


def _discard_foreign_checkpoints(ckpt_dir: Path, key: str) -> None:
    """Checkpoints from a run with other inputs or settings must not be resumed from."""
    stamp = ckpt_dir / "steep-key.json"
    if ckpt_dir.exists() and (not stamp.exists() or json.loads(stamp.read_text()).get("key") != key):
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"key": key}))
