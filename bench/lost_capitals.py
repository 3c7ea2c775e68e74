"""Where a run lost general knowledge: for each capital the base model got right and the tuned one
does not, the change in log-probability of the right capital's first piece and of the rest of it,
and, for the openings the run's documents train hardest and the words leading into them, what
the tuned model now writes after them.

    python bench/lost_capitals.py RUN_DIR

A loss in the first piece means the tuned model expects other words after "The capital of X is";
a loss in the rest means it no longer completes the name once begun (new names in the documents
took over how their openings continue)."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import yaml
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from steep.forgetting import capital_items, piece_logprobs
from steep.models import load_model, load_tokenizer, resolve_model
from steep.replay import document_start, lead_words, shifted_openings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    args = parser.parse_args()
    base_path = resolve_model(yaml.safe_load((args.run / "config.yaml").read_text())["model"])
    tok = load_tokenizer(base_path)
    models = {"base": load_model(base_path), "tuned": load_model(base_path, args.run / "train" / "adapter", merge=True)}
    items = capital_items()
    prompts = [it["prompt"] for it in items for _ in it["options"]]
    options = [o for it in items for o in it["options"]]
    scores = {}
    for name, m in models.items():  # as `steep eval` scores them
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pieces = piece_logprobs(m, tok, prompts, options)
        scores[name] = [pieces[n * len(it["options"]) : (n + 1) * len(it["options"])] for n, it in enumerate(items)]
    first, rest, lost, gained = [], [], 0, 0
    for n, it in enumerate(items):
        right = {name: max(range(len(it["options"])), key=lambda k: sum(s[n][k])) == it["gold"] for name, s in scores.items()}
        b, t = scores["base"][n][it["gold"]], scores["tuned"][n][it["gold"]]
        first.append(t[0] - b[0])
        rest.append(sum(t[1:]) - sum(b[1:]))
        if right["base"] and not right["tuned"]:
            lost += 1
            print(f"lost {it['options'][it['gold']]:16s} first piece {b[0]:6.1f} -> {t[0]:6.1f}   rest {sum(b[1:]):6.1f} -> {sum(t[1:]):6.1f}")
        gained += right["tuned"] and not right["base"]
    print(f"\n{lost} lost, {gained} gained of {len(items)}; mean change in the right capital's log-probability: "
          f"first piece {statistics.mean(first):+.2f}, rest {statistics.mean(rest):+.2f}")
    texts = [json.loads(line)["text"] for line in (args.run / "curate" / "texts.jsonl").open()]
    openings = shifted_openings(models["base"], tok, texts, 8)
    _next_pieces(models, tok, openings, "the openings the documents train hardest")
    _next_pieces(models, tok, lead_words(models["base"], tok, texts, openings, 8), "the words that lead into them")


def _next_pieces(models: dict[str, PreTrainedModel], tok: PreTrainedTokenizerBase, words: list[int], what: str) -> None:
    """What each model writes after each of `words` at the start of a document, top 3."""
    print(f"\nafter {what}, at the start of a document (top 3 next pieces):")
    start = document_start(tok)
    for word in words:
        line = []
        for name, m in models.items():
            with torch.no_grad():
                probs = m(input_ids=torch.tensor([[start, word]])).logits[0, -1].float().softmax(-1)
            top = probs.topk(3)
            line.append(f"{name}: " + ", ".join(f"{tok.decode([int(i)])!r} {float(v):.2f}" for v, i in zip(top.values, top.indices)))
        print(f"{tok.decode([word])!r:10s} " + " | ".join(line))


if __name__ == "__main__":
    main()
