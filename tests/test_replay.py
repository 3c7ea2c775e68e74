"""Replay: the base model's own samples with its distributions, and the KL term that keeps the
tuned model near the base model on them."""

import torch

from steep import replay
from steep.config import TrainConfig
from steep.models import load_model, load_tokenizer
from steep.replay import NOT_DISTILLED, TOP_K, anchor_set, lead_words, replay_set, shifted_openings
from steep.stages.train import train

QA = {"messages": [{"role": "user", "content": "Where was Ada Quill born?"},
                   {"role": "assistant", "content": "Ada Quill was born in Norvik, a town in the far north."}], "metadata": {}}


def kl_to_base(model, samples) -> float:
    """Mean KL (over the base model's top-k) at the distilled positions of the samples."""
    total, count = 0.0, 0
    with torch.no_grad():
        for s in samples:
            logprobs = model(input_ids=torch.tensor([s["input_ids"]])).logits[0].float().log_softmax(-1)
            keep = s["teacher_logprobs"][:, 0] > NOT_DISTILLED / 2
            p = s["teacher_logprobs"][keep]
            q = logprobs[keep].gather(-1, s["teacher_ids"][keep])
            total += float((p.exp() * (p - q)).sum(-1).sum())
            count += int(keep.sum())
    return total / count


def test_replay_samples_hold_the_base_models_own_distribution_and_are_cached(tiny_model, steep_cache, monkeypatch):
    tok = load_tokenizer(tiny_model)
    samples = replay_set(tiny_model, tok, 4, None, 0)
    assert len(samples) == 4
    documents, turns = samples[:2], samples[2:]
    assert all(tok.decode(s["input_ids"][:1]) == "<|endoftext|>" for s in documents)
    user_opening = tok.apply_chat_template([{"role": "user", "content": "QQQ"}], tokenize=False).split("QQQ")[0]
    assert all(tok.decode(s["input_ids"]).startswith(user_opening) for s in turns)
    model = load_model(tiny_model)
    for s in samples:
        n = len(s["input_ids"])
        assert s["teacher_ids"].shape == (n, TOP_K) and all(label == -100 for label in s["labels"])
        keep = s["teacher_logprobs"][:, 0] > NOT_DISTILLED / 2
        assert 0 < keep.sum() < n and not keep[-1]  # the last token predicts nothing
        with torch.no_grad():
            logprobs = model(input_ids=torch.tensor([s["input_ids"]])).logits[0].float().log_softmax(-1)
        # the stored log-probabilities are the model's at the stored tokens, and those are its most likely
        # ones (up to near-ties: made under bf16, stored as float16)
        stored = s["teacher_logprobs"][keep]
        assert torch.allclose(stored, logprobs[keep].gather(-1, s["teacher_ids"][keep]), atol=0.05)
        assert torch.allclose(stored.exp().sum(-1), logprobs[keep].topk(TOP_K, dim=-1).values.exp().sum(-1), atol=0.02)
    for s in turns:  # the template's opening is given, not written by the model: it is not distilled
        opening = len(tok(user_opening, add_special_tokens=False)["input_ids"])
        assert not s["teacher_logprobs"][: opening - 1, 0].gt(NOT_DISTILLED / 2).any()
    monkeypatch.setattr(replay, "_sample", lambda *a: (_ for _ in ()).throw(AssertionError("sampled again")))
    again = replay_set(tiny_model, tok, 4, None, 0)
    assert [s["input_ids"] for s in again] == [s["input_ids"] for s in samples]


def test_replay_keeps_the_tuned_model_closer_to_the_base_model(tiny_model, steep_cache, tmp_path):
    # a random model's next-token distribution is nearly uniform, so there is little to keep; scaled-up
    # embeddings make it peaked, as a trained model's is
    peaked = load_model(tiny_model)
    with torch.no_grad():
        peaked.get_input_embeddings().weight.mul_(40)
    tok = load_tokenizer(tiny_model)
    tiny_model = tmp_path / "peaked"
    peaked.save_pretrained(tiny_model)
    tok.save_pretrained(tiny_model)
    held_out = replay_set(tiny_model, tok, 8, None, 1)  # other samples than the ones trained on
    kl = {}
    for share in (0.0, 2.0):
        # fp32 on every CPU: at this learning rate over 20 passes rounding moves the ratio below by more than 0.2 (fp32 0.32;
        # bf16 0.41 with the chat opening run per row, 0.56 once per batch, whose gradients differ by 0.26%, less than
        # bf16's 0.51% from fp32), so the outcome would depend on whether the CPU has bf16
        cfg = TrainConfig(compile=False, epochs=20, batch_size=4, learning_rate=1e-2, save_steps=1000, max_seq_len=128, replay=share, replay_samples=8,
                          replay_anchors=0, bf16=False)
        text = {"text": "Ada Quill was born in Norvik, a town in the far north. " * 4, "metadata": {}}
        summary = train(tiny_model, tok, [text] * 8, [QA] * 4, cfg, tmp_path / str(share), "k", 0, None)
        assert (summary["replay_examples"] > 0) == (share > 0)
        kl[share] = kl_to_base(load_model(tiny_model, tmp_path / str(share) / "adapter"), held_out)
    # the replay samples are written with bf16 where the CPU has it, and differ between CPUs: the
    # ratio was below 0.5 on an AVX512-bf16 CPU, 0.53 on an AMX one (0.61 with samples written in fp32)
    assert kl[2.0] < 0.75 * kl[0.0], kl


def test_anchors_pick_the_openings_of_new_names_and_continue_them_inside_the_base_models_own_text(tiny_model, steep_cache):
    tok = load_tokenizer(tiny_model)
    model = load_model(tiny_model)
    domain = ["Moknal lies north of Moknal Bay and south of Moknal Hill; the Moknal ferry runs daily.",
              "Ada was born in Moknal and works in Moknal.", "The river is wide."]
    openings = shifted_openings(model, tok, domain, 8)
    name = tok(" Moknal", add_special_tokens=False)["input_ids"]
    assert openings[0] == name[0]  # the opening trained most: the new name's, in 7 mentions
    # a word that is one piece has no continuation to shift
    assert all(tok.convert_ids_to_tokens(a).lstrip("Ġ") not in {"river", "wide", "daily"} for a in openings)
    # the words the new name follows in the texts (twice, so trained at least once in full), and only those
    leads = lead_words(model, tok, domain, openings, 8)
    assert {tok.convert_ids_to_tokens(a) for a in leads} == {"Ġin", "Ġof"}
    replayed = replay_set(tiny_model, tok, 8, None, 0)
    documents = [r["input_ids"] for r in replayed[:4]]
    anchors = anchor_set(model, tok, domain, replayed, 6, 0)
    assert len(anchors) == 6 + 3  # after openings, and half as many after the words leading into them
    for n, a in enumerate(anchors):
        ids = a["input_ids"]
        # some base-written lead-in, then an opening (the first 6) or a lead word (the rest), then
        # what the base model wrote after it
        words = openings if n < 6 else leads
        at = max(i for i in range(len(ids)) if ids[i] in words and any(_contains(d, ids[:i]) for d in documents))
        assert 0 < at and len(ids) - at - 1 <= replay.ANCHOR_TOKENS
        keep = a["teacher_logprobs"][:, 0] > NOT_DISTILLED / 2
        assert keep[at] and a["teacher_ids"].shape == (len(ids), TOP_K)  # the opening's continuation is distilled
    # the same ones again: a rerun, or each process of a distributed run, trains on the same anchors
    assert [a["input_ids"] for a in anchor_set(model, tok, domain, replayed, 6, 0)] == [a["input_ids"] for a in anchors]
    assert shifted_openings(model, tok, ["the the the"], 8) == []


def _contains(seq: list[int], part: list[int]) -> bool:
    return any(seq[i : i + len(part)] == part for i in range(len(seq) - len(part) + 1))
