import logging
import math

import pytest
import torch

from steep.config import TrainConfig
from steep.models import load_model, load_tokenizer
from steep.stages import train as train_stage
from steep.stages.derived import DRILLS
from steep.replay import NOT_DISTILLED
from steep.stages.train import (COMPILE_MIN_TOKENS, IGNORE, MIN_SHARED_PREFIX, ReplayCollator, ReplayTrainer, build_dataset, chat_opening,
                                compile_blocks, grouping_lengths, lora_targets, replay_loss, row_parts, shared_prefix_length,
                                should_compile, tokenize_chat, tokenize_text, train)

QA = {"messages": [{"role": "user", "content": "Where was Ada Quill born?"},
                   {"role": "assistant", "content": "Ada Quill was born in Norvik."}], "metadata": {}}


def test_loss_mask_covers_the_reply_and_its_end_of_turn_token_only(tiny_model):
    tok = load_tokenizer(tiny_model)
    ex = tokenize_chat(tok, QA["messages"], None)
    trained = [t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != IGNORE]
    text = tok.decode(trained)
    assert text.startswith("Ada Quill was born in Norvik.") and tok.eos_token in text
    assert "Where was" not in text and "system" not in text
    # everything before the reply is masked
    first = ex["labels"].index(next(lab for lab in ex["labels"] if lab != IGNORE))
    assert "assistant" in tok.decode(ex["input_ids"][:first]) and all(lab == IGNORE for lab in ex["labels"][:first])


def test_custom_system_prompt_is_in_the_prompt_not_the_loss(tiny_model):
    tok = load_tokenizer(tiny_model)
    ex = tokenize_chat(tok, QA["messages"], "Be brief.")
    assert "Be brief." in tok.decode(ex["input_ids"])
    assert "Be brief." not in tok.decode([t for t, lab in zip(ex["input_ids"], ex["labels"]) if lab != IGNORE])


def test_dataset_mixes_text_and_qa_with_repeats(tiny_model):
    tok = load_tokenizer(tiny_model)
    texts = [{"text": "Ada Quill was born in Norvik. " * 40, "metadata": {}}]
    data, too_long = build_dataset(tok, texts, [QA], TrainConfig(max_seq_len=64, text_repeats=2, qa_repeats=3, epochs=1), None, [], [], 0)
    windows = len(tok(texts[0]["text"])["input_ids"]) // 64 + 1
    assert len(data) == 2 * windows + 3 and too_long == 0
    assert all(len(e["input_ids"]) <= 64 for e in data)


def test_the_order_seed_reorders_the_same_examples_and_reaches_the_dataset(tiny_model, tmp_path, monkeypatch):
    tok = load_tokenizer(tiny_model)
    texts = [{"text": f"Fact number {i} says that Ada Quill was born in Norvik.", "metadata": {}} for i in range(8)]
    cfg = TrainConfig(compile=False, max_seq_len=64, epochs=2, replay=0)
    first, _ = build_dataset(tok, texts, [QA], cfg, None, [], [], 0)
    other, _ = build_dataset(tok, texts, [QA], cfg, None, [], [], 1)
    assert sorted(e["input_ids"] for e in first) == sorted(e["input_ids"] for e in other)
    assert [e["input_ids"] for e in first] != [e["input_ids"] for e in other]
    seeds = []

    def stop_at_the_dataset(*args):
        seeds.append(args[-1])
        raise RuntimeError("dataset reached")

    monkeypatch.setattr(train_stage, "build_dataset", stop_at_the_dataset)
    for order_seed, expected in ((None, 3), (7, 7)):  # unset: the run's seed
        with pytest.raises(RuntimeError, match="dataset reached"):
            train(tiny_model, tok, texts, [QA], cfg.model_copy(update={"order_seed": order_seed}), tmp_path, "k", 3, None)
    assert seeds == [3, 7]


def test_a_conversation_longer_than_max_seq_len_is_left_out_not_cut(tiny_model, caplog):
    """Cutting it would cut off the answer, the only part with a loss (how RAFT examples once trained nothing)."""
    tok = load_tokenizer(tiny_model)
    long = {"messages": [{"role": "user", "content": "Context: " + "Ada Quill lives in Brask. " * 30 + "Where does she live?"},
                         {"role": "assistant", "content": "Brask."}]}
    data, too_long = build_dataset(tok, [], [QA, long], TrainConfig(max_seq_len=64, epochs=1), None, [], [], 0)
    assert too_long == 1 and len(data) == 1 and any(label != IGNORE for label in data[0]["labels"])
    assert "raise train.max_seq_len" in caplog.text


@pytest.mark.parametrize("budget", [10**9, 1])  # batches whole / every batch run one row at a time
def test_lora_training_lowers_the_loss_and_saves_a_loadable_adapter(tiny_model, tmp_path, monkeypatch, budget):
    monkeypatch.setattr(train_stage, "ACTIVATION_TOKEN_BUDGET", budget)
    tok = load_tokenizer(tiny_model)
    cfg = TrainConfig(compile=False, epochs=30, batch_size=4, learning_rate=1e-2, save_steps=1000, max_seq_len=64, replay=0)
    batch = tokenize_chat(tok, QA["messages"], None)

    def loss(model) -> float:
        with torch.no_grad():
            return model(input_ids=torch.tensor([batch["input_ids"]]), labels=torch.tensor([batch["labels"]])).loss.item()

    before = loss(load_model(tiny_model))
    summary = train(tiny_model, tok, [], [QA] * 4, cfg, tmp_path, "k", 0, None)
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "chat_template.jinja").exists()
    after = loss(load_model(tiny_model, adapter))
    assert after < before - 0.5, (before, after)
    assert summary["trainable_parameters"] > 0 and not (tmp_path / "checkpoints").exists()
    assert summary["split_batches"] == (math.ceil(summary["examples"] / cfg.batch_size) if budget == 1 else 0)
    assert (tmp_path / "log.jsonl").read_text().count("loss") >= 2


def test_snapshots_keep_the_model_after_the_asked_passes_with_the_steps_and_tokens_up_to_them(tiny_model, tmp_path):
    tok = load_tokenizer(tiny_model)
    cfg = TrainConfig(compile=False, epochs=4, snapshot_epochs=[2, 1], batch_size=2, learning_rate=1e-2, save_steps=1000, max_seq_len=64, replay=0)
    texts = [{"text": f"Ada Quill was born in Norvik in {1900 + i}. " * (1 + i % 3)} for i in range(6)]
    summary = train(tiny_model, tok, texts, [QA] * 4, cfg, tmp_path, "k", 0, None)
    total_steps = math.ceil(summary["examples"] / cfg.batch_size)
    one, two = summary["snapshots"]
    assert (one["epochs"], two["epochs"]) == (1, 2)
    assert (one["step"], two["step"]) == (round(total_steps / 4), round(total_steps / 2))
    assert 0 < one["tokens_trained"] < two["tokens_trained"] < summary["tokens_trained"]
    assert 0 < one["seconds"] <= two["seconds"] <= summary["seconds"]

    def lora_weights(folder) -> dict:
        from safetensors.torch import load_file
        return load_file(folder / "adapter_model.safetensors")

    final = lora_weights(tmp_path / "adapter")
    for snapshot in (one, two):  # loadable on its own, and the model as it was then, not at the end
        weights = lora_weights(tmp_path / "snapshots" / f"epochs-{snapshot['epochs']:g}")
        assert weights.keys() == final.keys() and any(not torch.equal(weights[k], final[k]) for k in final)
        load_model(tiny_model, tmp_path / "snapshots" / f"epochs-{snapshot['epochs']:g}")


def test_snapshots_must_lie_inside_the_run():
    with pytest.raises(ValueError, match="between 0 and train.epochs=2"):
        TrainConfig(epochs=2, snapshot_epochs=[1, 2])


def test_each_raft_example_and_drill_comes_once_in_the_run_and_replay_and_anchors_fill_every_pass(tiny_model):
    tok = load_tokenizer(tiny_model)
    raft = [{"messages": [{"role": "user", "content": f"Context: passage {i}. Where was Ada Quill born?"},
                          {"role": "assistant", "content": "Norvik."}], "metadata": {"method": "raft"}} for i in range(5)]
    raft += [{"messages": [{"role": "user", "content": f"Context: passage {i}. Is {1940 + i} before or after 1960?"},
                           {"role": "assistant", "content": "Before."}], "metadata": {"method": ("derived:drill", "derived:given_comparison")[i % 2]}} for i in range(5, 9)]
    replay = [{"input_ids": [7] * 20, "labels": [IGNORE] * 20, "teacher_ids": torch.zeros(20, 16, dtype=torch.long),
               "teacher_logprobs": torch.zeros(20, 16)} for _ in range(3)]
    anchors = [{"input_ids": [9] * 6, "labels": [IGNORE] * 6, "teacher_ids": torch.zeros(6, 16, dtype=torch.long),
                "teacher_logprobs": torch.zeros(6, 16)} for _ in range(4)]
    data, _ = build_dataset(tok, [], [QA] + raft, TrainConfig(epochs=2.5, replay=0.5), None, replay, anchors, 0)
    prompts = [tok.decode(e["input_ids"]) for e in data if "teacher_ids" not in e]
    assert sum("Context: passage" in p for p in prompts) == 9  # each RAFT example and drill once, not once per pass
    assert sum("Context" not in p for p in prompts) == 3  # the QA pair in 2.5 passes: 1 + 1 + the half pass rounded
    assert sum(e["input_ids"] == [9] * 6 for e in data) == 4 + 4 + 2  # every anchor in each pass, half of them in the half pass
    replayed = [e for e in data if "teacher_ids" in e and e["input_ids"] != [9] * 6]
    per_pass_tokens = len(tokenize_chat(tok, QA["messages"], None)["input_ids"])
    assert len(replayed) >= 3 * math.ceil(0.5 * per_pass_tokens / 20)  # every pass gets its share of replay


def test_once_per_run_names_the_methods_trained_once_and_by_default_holds_raft_and_every_drill(tiny_model, caplog):
    assert {"raft", *DRILLS} <= set(TrainConfig().once_per_run)
    caplog.set_level(logging.INFO, logger="steep")
    tok = load_tokenizer(tiny_model)
    declines = [{"messages": [{"role": "user", "content": f"What is the blood type of Ada Quill {i}?"},
                              {"role": "assistant", "content": "I don't know."}], "metadata": {"method": "derived:unknown"}} for i in range(6)]
    for once_per_run, expected in ((["raft"], 6 * 3), (["raft", "derived:unknown"], 6)):
        data, _ = build_dataset(tok, [], [QA] + declines, TrainConfig(epochs=3, replay=0, once_per_run=once_per_run), None, [], [], 0)
        prompts = [tok.decode(e["input_ids"]) for e in data]
        assert sum("blood type" in p for p in prompts) == expected
        assert sum("blood type" not in p for p in prompts) == 3  # the other pair still comes in every pass
    assert "train.once_per_run): raft 0, derived:unknown 6" in caplog.text  # a name that matched nothing shows as 0


def test_the_loss_is_the_models_own_cross_entropy_and_the_output_layer_sees_only_the_positions_with_a_loss(tiny_model):
    tok = load_tokenizer(tiny_model)
    model = load_model(tiny_model)
    short = tokenize_chat(tok, QA["messages"][:1] + [{"role": "assistant", "content": "Norvik."}], None)
    batch = ReplayCollator(tok.pad_token_id)([tokenize_chat(tok, QA["messages"], None), short])
    rows = []
    model.lm_head.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    with torch.no_grad():
        ours = replay_loss(model, batch).item()
        assert sum(rows) == (batch["labels"][:, 1:] != IGNORE).sum()  # one row per labelled token, not per position
        theirs = model(**batch).loss.item()  # transformers' causal-LM loss: mean over the labelled tokens
    assert ours == pytest.approx(theirs, rel=1e-4)


def test_replay_samples_cost_nothing_where_the_model_matches_the_base_distribution_and_more_where_it_does_not(tiny_model):
    tok = load_tokenizer(tiny_model)
    model = load_model(tiny_model)
    ids = tok("The capital of France is Paris, and the capital of Spain is Madrid.")["input_ids"]
    with torch.no_grad():
        top = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1).topk(16)
    sample = {"input_ids": ids, "labels": [IGNORE] * len(ids), "teacher_ids": top.indices, "teacher_logprobs": top.values}
    sample["teacher_logprobs"][:3] = NOT_DISTILLED  # the prompt: no distribution given, no loss
    matched = ReplayCollator(tok.pad_token_id)([sample])
    peaked = sample["teacher_logprobs"].clone()
    peaked[3:] = torch.tensor([0.99] + [0.01 / 15] * 15).log()  # a base model sure of one token, which this one is not
    shifted = ReplayCollator(tok.pad_token_id)([sample | {"teacher_logprobs": peaked}])
    with torch.no_grad():
        assert replay_loss(model, matched).item() == pytest.approx(0.0, abs=1e-4)
        assert replay_loss(model, shifted).item() > 0.1


def conversation(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def test_a_batch_of_conversations_runs_its_shared_opening_once_with_the_loss_and_gradients_of_a_full_pass(tiny_model):
    tok = load_tokenizer(tiny_model)
    model = load_model(tiny_model)
    model.train()
    rows = [tokenize_chat(tok, conversation(q, a), None) for q, a in
            [("Where was Ada Quill born?", "In Norvik."), ("Who employs Bo Renhart?", "Carvo Shipping employs him."),
             ("When was Pellow Labs founded, and by whom?", "In 1990.")]]
    batch = ReplayCollator(tok.pad_token_id)(rows)
    opening = chat_opening(tok, None)
    assert tok.decode(opening).startswith("<|im_start|>system") and tok.decode(opening).endswith("<|im_start|>user\n")
    used = batch["labels"][:, 1:] != IGNORE
    assert shared_prefix_length(batch["input_ids"], batch["attention_mask"], used) == len(opening)
    results = {}
    for share in (False, True):
        seen = []
        hook = model.model.embed_tokens.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
        loss = replay_loss(model, batch, share_prefix=share)
        loss.backward()
        hook.remove()
        results[share] = (loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}, seen)
        model.zero_grad()
    assert results[True][2] == [(1, len(opening)), (3, batch["input_ids"].shape[1] - len(opening))]  # the opening once, then the rows
    assert results[False][2] == [tuple(batch["input_ids"].shape)]
    assert results[True][0] == pytest.approx(results[False][0], rel=1e-5)
    for name, full in results[False][1].items():
        assert torch.allclose(results[True][1][name], full, rtol=1e-4, atol=1e-6), name


def test_compiled_layers_give_the_loss_and_gradients_of_eager_ones_and_train_an_adapter_that_saves_as_usual(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model

    tok = load_tokenizer(tiny_model)
    rows = [tokenize_chat(tok, conversation(q, a), None) for q, a in [("Where was Ada Quill born?", "In Norvik."),
                                                                      ("Who employs Bo Renhart?", "Carvo Shipping employs him.")]]
    conversations = ReplayCollator(tok.pad_token_id)(rows)
    text = ReplayCollator(tok.pad_token_id)(tokenize_text(tok, "Ada Quill was born in Norvik in 1961.", 64))
    model = get_peft_model(load_model(tiny_model), LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    names = [n for n, _ in model.named_parameters()]
    assert compile_blocks(model) == 2 and [n for n, _ in model.named_parameters()] == names  # in place: the same names
    results = {}
    for stance in ("force_eager", "default"):
        for name, batch in (("conversations", conversations), ("text", text)):
            with torch.compiler.set_stance(stance):
                loss = replay_loss(model, batch, share_prefix=True)  # the opening's pass with a cache, then the rows
                loss.backward()
            results[stance, name] = (loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
            model.zero_grad()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2  # the default stance ran compiled graphs, not eager ones
    for name in ("conversations", "text"):
        (eager_loss, eager_grads), (compiled_loss, compiled_grads) = results["force_eager", name], results["default", name]
        assert compiled_loss == pytest.approx(eager_loss, rel=1e-4)
        for param, grad in eager_grads.items():
            assert torch.allclose(compiled_grads[param], grad, rtol=1e-3, atol=1e-5), (name, param)
    cfg = TrainConfig(epochs=2, batch_size=2, learning_rate=1e-2, save_steps=1000, max_seq_len=64, replay=0, compile=True)
    summary = train(tiny_model, tok, [], [QA] * 4, cfg, tmp_path, "k", 0, None)
    assert summary["compiled_blocks"] == 2
    load_model(tiny_model, tmp_path / "adapter")  # the adapter's names are the uncompiled model's


def test_auto_compiles_on_cpu_with_a_compiler_and_only_a_training_long_enough_to_win_back_compiling(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(train_stage.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert should_compile("auto", COMPILE_MIN_TOKENS) and not should_compile("auto", COMPILE_MIN_TOKENS - 1)
    assert should_compile(True, 10) and not should_compile(False, 10 * COMPILE_MIN_TOKENS)  # a setting is obeyed
    monkeypatch.setattr(train_stage.shutil, "which", lambda name: None)
    assert not should_compile("auto", 10 * COMPILE_MIN_TOKENS)  # inductor cannot build its kernels
    monkeypatch.setattr(train_stage.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert not should_compile("auto", 10 * COMPILE_MIN_TOKENS)  # not measured on GPUs: left eager


def test_the_shared_prefix_stops_where_a_row_differs_a_loss_is_taken_or_padding_starts():
    ids = torch.tensor([[5] * 12 + [6, 7], [5] * 12 + [8, 9]])
    mask = torch.ones_like(ids)
    no_loss = torch.zeros(2, 13, dtype=torch.bool)
    assert shared_prefix_length(ids, mask, no_loss) == 12
    assert shared_prefix_length(ids[:1], mask[:1], no_loss[:1]) == 0  # nothing to share it with
    loss_inside = no_loss.clone()
    loss_inside[1, 9] = True  # position 9 predicts token 10, which takes a loss: its logits are made with the rows
    assert shared_prefix_length(ids, mask, loss_inside) == 9
    padded = mask.clone()
    padded[0, 10:] = 0
    assert shared_prefix_length(ids, padded, no_loss) == 10
    assert shared_prefix_length(torch.tensor([[5] * 20, [5] * 20]), torch.ones(2, 20), torch.zeros(2, 19, dtype=torch.bool)) == 19  # the last position stays with the rows
    short = torch.tensor([[5] * (MIN_SHARED_PREFIX - 1) + [6], [5] * (MIN_SHARED_PREFIX - 1) + [7]])
    assert shared_prefix_length(short, torch.ones_like(short), torch.zeros(2, MIN_SHARED_PREFIX - 1, dtype=torch.bool)) == 0


def test_conversations_and_plain_text_are_batched_apart(tiny_model):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    tok = load_tokenizer(tiny_model)
    chats = [tokenize_chat(tok, conversation(f"Where was person {i} born?", f"In town {i}."), None) for i in range(200)]
    texts = [tokenize_text(tok, f"Person {i} was born in town {i}" + ", far away" * (i % 12) + ".", 64)[0] for i in range(200)]
    examples = chats + texts  # lengths overlap, so grouping by length alone mixes the two kinds

    def mixed_batches(lengths: list[int]) -> int:
        order = list(LengthGroupedSampler(4, lengths=lengths, generator=torch.Generator().manual_seed(0)))
        assert sorted(order) == list(range(len(examples)))
        return sum(len({i < len(chats) for i in order[at : at + 4]}) > 1 for at in range(0, len(order), 4))

    groups = 4  # the sampler sorts 4 groups of 100 here; the kinds meet once in each, and the longest batch moves first
    assert mixed_batches(grouping_lengths(examples, chat_opening(tok, None))) <= groups + 1
    assert mixed_batches([len(e["input_ids"]) for e in examples]) > groups + 1


def test_a_batch_over_the_activation_budget_runs_in_parts_with_the_loss_and_gradients_of_the_whole(tiny_model, tmp_path, monkeypatch):
    from transformers import TrainingArguments

    tok = load_tokenizer(tiny_model)
    model = load_model(tiny_model)
    model.train()
    rows = [tokenize_chat(tok, conversation(q, a), None) for q, a in
            [("Where was Ada Quill born, and when did she move to the coast?", "In Norvik; she moved in 1990."),
             ("Who employs Bo Renhart?", "Carvo Shipping employs him."), ("When was Pellow Labs founded?", "In 1990."),
             ("Where is it?", "Brask.")]]
    ids = tok("The capital of France is Paris, and the capital of Spain is Madrid.")["input_ids"]
    peaked = torch.tensor([0.9] + [0.1 / 15] * 15).log().expand(len(ids), 16).clone()  # a base model the tiny one does not match
    peaked[-1] = NOT_DISTILLED  # nothing follows the last token (as replay.py marks it)
    rows.append({"input_ids": ids, "labels": [IGNORE] * len(ids), "teacher_ids": torch.arange(16).expand(len(ids), 16).clone(),
                 "teacher_logprobs": peaked})  # a replay sample: the KL term must be weighted across the parts too
    batch = ReplayCollator(tok.pad_token_id)(rows)
    trainer = ReplayTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none"),
                            chat_opening=chat_opening(tok, None))
    trainer.current_gradient_accumulation_steps = 1  # the training loop sets it; one batch per step
    budget = 2 * batch["input_ids"].shape[1]
    results = {}
    for whole in (True, False):
        monkeypatch.setattr(train_stage, "ACTIVATION_TOKEN_BUDGET", 10**9 if whole else budget)
        seen = []
        hook = model.model.embed_tokens.register_forward_hook(lambda module, args, out: seen.append(args[0].numel()))
        loss = trainer.training_step(model, batch)
        hook.remove()
        results[whole] = (loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}, seen)
        model.zero_grad()
    assert trainer.split_batches == 1 and len(row_parts(batch, budget)) >= 2
    assert max(results[False][2]) <= budget < sum(results[False][2])  # no pass over the budget, the batch all the same
    assert len(chat_opening(tok, None)) in results[False][2]  # a part of conversations runs their opening once
    assert results[False][0] == pytest.approx(results[True][0], rel=1e-5)
    for name, full in results[True][1].items():
        assert torch.allclose(results[False][1][name], full, rtol=1e-4, atol=1e-6), name


def test_a_long_batch_is_cut_into_runs_of_rows_within_the_budget_each_padded_to_its_own_longest():
    lengths = [10, 8, 8, 3, 30]
    batch = {"input_ids": torch.ones(5, 30, dtype=torch.long),
             "attention_mask": torch.tensor([[1] * n + [0] * (30 - n) for n in lengths])}
    parts = row_parts(batch, 20)
    assert [tuple(p["input_ids"].shape) for p in parts] == [(2, 10), (2, 8), (1, 30)]  # a row over the budget alone
    assert torch.equal(torch.cat([p["attention_mask"].sum(1) for p in parts]), torch.tensor(lengths))


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def test_lora_on_a_tied_embedding_adapts_the_input_side_and_merges_into_the_model_it_trained(tiny_model, tmp_path):
    tok = load_tokenizer(tiny_model)
    cfg = TrainConfig(compile=False, epochs=4, batch_size=4, learning_rate=1e-2, save_steps=1000, max_seq_len=64, replay=0, lora={"embeddings": True})
    base = load_model(tiny_model)
    assert lora_targets(base, cfg.lora) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj", "model.embed_tokens"]
    train(tiny_model, tok, [], [QA] * 4, cfg, tmp_path, "k", 0, None)
    ids = torch.tensor([tokenize_chat(tok, QA["messages"], None)["input_ids"]])
    trained, merged = load_model(tiny_model, tmp_path / "adapter", merge=False), load_model(tiny_model, tmp_path / "adapter")
    # peft 0.21 merged the embedding's update into the head that shares its weight, which training never adapted
    assert torch.allclose(logits(merged, ids), logits(trained, ids), atol=1e-4)
    assert not torch.allclose(merged.get_input_embeddings().weight, base.get_input_embeddings().weight)
    assert torch.equal(merged.get_output_embeddings().weight, base.get_output_embeddings().weight)
    assert not merged.config.tie_word_embeddings
    merged.save_pretrained(tmp_path / "merged")  # with the head of its own, which a tied model would leave out
    assert torch.allclose(logits(load_model(tmp_path / "merged"), ids), logits(merged, ids), atol=1e-5)


def test_an_adapter_tied_across_embedding_and_head_merges_once(tiny_model, tmp_path):
    """Adapters made elsewhere with peft's ensure_weight_tying: peft 0.21 merged their update twice."""
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(load_model(tiny_model), LoraConfig(r=4, target_modules=["embed_tokens"], ensure_weight_tying=True))
    for name, weight in peft_model.named_parameters():
        if "lora_embedding" in name:
            torch.nn.init.normal_(weight, std=0.1)  # a fresh adapter is the identity; give it an update
    peft_model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    merged = load_model(tiny_model, tmp_path / "adapter")
    assert torch.allclose(logits(merged, ids), logits(load_model(tiny_model, tmp_path / "adapter", merge=False), ids), atol=1e-4)
    assert merged.get_output_embeddings().weight is merged.get_input_embeddings().weight and merged.config.tie_word_embeddings


def test_the_embedding_adapter_takes_its_own_alpha_and_keeps_it_when_loaded(tiny_model, tmp_path):
    from peft.tuners.lora import LoraLayer

    tok = load_tokenizer(tiny_model)
    cfg = TrainConfig(compile=False, epochs=1, batch_size=4, save_steps=1000, max_seq_len=64, replay=0,
                      lora={"r": 8, "alpha": 16, "embeddings": True, "embedding_alpha": 2})
    train(tiny_model, tok, [], [QA] * 4, cfg, tmp_path, "k", 0, None)
    trained = load_model(tiny_model, tmp_path / "adapter", merge=False)
    scalings = {name.rsplit(".", 1)[-1]: module.scaling["default"] for name, module in trained.named_modules() if isinstance(module, LoraLayer)}
    assert scalings.pop("embed_tokens") == 2 / 8
    assert set(scalings.values()) == {16 / 8} and "q_proj" in scalings
