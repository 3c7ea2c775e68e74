"""What tuning cost in general ability, measured offline: (1) country -> capital, four options,
scored by the model's log-likelihood of each option (249 items from the `countryinfo` package,
which the 135M default gets mostly right); (2) perplexity on general English prose that is not the
user's domain (CPython's own help topics, shipped with every Python). Reported for base and tuned
on the same items, so the difference has a paired bootstrap interval."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .stages.evaluate import bootstrap_ci

OPTIONS = 4
PERPLEXITY_PASSAGES = 40
PASSAGE_CHARS = 1200


def capital_items(seed: int = 0) -> list[dict]:
    """{prompt, options, gold} per country with a capital; distractors are other capitals."""
    import countryinfo

    rows = [json.loads(p.read_text()) for p in sorted((Path(countryinfo.__file__).parent / "data").glob("*.json"))]
    # countries with several capitals (a list) are left out: the gold answer must be unambiguous
    pairs = sorted({(r["name"], r["capital"]) for r in rows if r.get("name") and isinstance(r.get("capital"), str) and r["capital"]})
    capitals = sorted({c for _, c in pairs})
    rng = random.Random(seed)
    items = []
    for country, capital in pairs:
        options = rng.sample([c for c in capitals if c != capital], OPTIONS - 1) + [capital]
        rng.shuffle(options)
        items.append({"prompt": f"The capital of {country} is", "options": options, "gold": options.index(capital)})
    return items


def general_passages() -> list[str]:
    """The opening of the first PERPLEXITY_PASSAGES help topics, in a fixed order."""
    from pydoc_data.topics import topics

    return [topics[name][:PASSAGE_CHARS] for name in sorted(topics)[:PERPLEXITY_PASSAGES]]


def piece_logprobs(model: PreTrainedModel, tok: PreTrainedTokenizerBase, prompts: list[str], continuations: list[str],
                   batch_size: int = 32) -> list[list[float]]:
    """Log-probability of each piece of each continuation after its prompt (raw text, no chat
    template: this measures what the model knows, not how it chats)."""
    return continuation_logprobs(model, tok.pad_token_id, [(tok(prompt, add_special_tokens=False)["input_ids"],
                                                            tok(" " + continuation, add_special_tokens=False)["input_ids"])
                                                           for prompt, continuation in zip(prompts, continuations)], batch_size)


@torch.no_grad()
def continuation_logprobs(model: PreTrainedModel, pad_token_id: int, pairs: list[tuple[list[int], list[int]]],
                          batch_size: int = 32) -> list[list[float]]:
    """Log-probability of each token of each continuation after its prompt, both given as token ids."""
    scores = []
    for start in range(0, len(pairs), batch_size):
        batch = [(prompt + continuation, len(prompt)) for prompt, continuation in pairs[start : start + batch_size]]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_token_id)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, (ids, _) in enumerate(batch):
            input_ids[i, : len(ids)], mask[i, : len(ids)] = torch.tensor(ids), 1
        logprobs = torch.log_softmax(model(input_ids=input_ids, attention_mask=mask).logits.float(), dim=-1)
        for i, (ids, prompt_len) in enumerate(batch):
            positions = torch.arange(prompt_len - 1, len(ids) - 1)
            scores.append(logprobs[i, positions, torch.tensor(ids[prompt_len:])].tolist())
    return scores


@torch.no_grad()
def perplexity(model: PreTrainedModel, tok: PreTrainedTokenizerBase, passages: list[str]) -> float:
    total, count = 0.0, 0
    for text in passages:
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
        loss = model(input_ids=ids, labels=ids).loss
        total += float(loss) * (ids.shape[1] - 1)
        count += ids.shape[1] - 1
    return round(float(torch.exp(torch.tensor(total / count))), 3)


def general_ability(model: PreTrainedModel, tok: PreTrainedTokenizerBase, bf16: bool = False) -> dict:
    """Accuracy on the capitals items (per item, for pairing) and perplexity on general prose."""
    items = capital_items()
    prompts = [it["prompt"] for it in items for _ in it["options"]]
    options = [o for it in items for o in it["options"]]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        scores = [sum(pieces) for pieces in piece_logprobs(model, tok, prompts, options)]
    correct = []
    for n, it in enumerate(items):
        own = scores[n * OPTIONS : (n + 1) * OPTIONS]
        correct.append(int(max(range(OPTIONS), key=own.__getitem__) == it["gold"]))
    return {"capitals_accuracy": round(sum(correct) / len(correct), 4), "capitals_n": len(correct),
            "capitals_correct": correct, "perplexity": perplexity(model, tok, general_passages())}


def compare(base: dict, tuned: dict) -> dict:
    """Tuned minus base: accuracy points (with a paired bootstrap interval) and perplexity ratio."""
    diffs = [t - b for b, t in zip(base["capitals_correct"], tuned["capitals_correct"])]
    lo, hi = bootstrap_ci([float(d) for d in diffs])
    return {
        "base": {k: v for k, v in base.items() if k != "capitals_correct"},
        "tuned": {k: v for k, v in tuned.items() if k != "capitals_correct"},
        "accuracy_change_points": round(100 * sum(diffs) / len(diffs), 2),
        "accuracy_change_ci_points": [round(100 * lo, 2), round(100 * hi, 2)],
        "perplexity_ratio": round(tuned["perplexity"] / base["perplexity"], 4),
    }
