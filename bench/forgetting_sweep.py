"""What scaling a trained LoRA update buys back in general ability, and what it costs in learned facts.

    python bench/forgetting_sweep.py RUN_DIR QUESTIONS.jsonl

For a run with a LoRA adapter, scales each layer's update (lora_B) and measures, per setting, the
held-out questions (closed-book answer-contained) and general ability (capitals accuracy and
perplexity, as `steep eval` measures them). Settings: unchanged; LiNeS (update of layer l scaled
by a + (1 - a) * l / (L - 1), shallow layers moving least) for a = 0.5 and 0; a uniform 0.5; the
update kept only in the attention projections, or only in the MLP ones."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from steep.forgetting import general_ability
from steep.generate import ChatModel
from steep.models import bf16_supported, load_model, load_tokenizer, resolve_model
from steep.stages.evaluate import answer_condition, load_questions, summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("questions", type=Path)
    args = parser.parse_args()
    adapter = args.run / "train" / "adapter"
    base = resolve_model(yaml.safe_load((args.run / "config.yaml").read_text())["model"])
    tok = load_tokenizer(base)
    questions = load_questions(args.questions)
    model = load_model(base, adapter, merge=False)
    original = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    layer = {n: int(re.search(r"layers\.(\d+)\.", n).group(1)) for n in original}
    last = max(layer.values())
    settings = {  # parameter name -> factor on its update
        "unchanged": lambda n: 1.0,
        "LiNeS a=0.5": lambda n: 0.5 + 0.5 * layer[n] / last,
        "LiNeS a=0": lambda n: layer[n] / last,
        "uniform 0.5": lambda n: 0.5,
        "attention only": lambda n: float(".self_attn." in n),
        "MLP only": lambda n: float(".mlp." in n),
    }
    chat = ChatModel(model, tok, None, bf16=bf16_supported())
    print(f"{'setting':14s} {'questions':>9s} {'capitals':>9s} {'perplexity':>10s}")
    for name, factor in settings.items():
        for n, p in model.named_parameters():
            if n in original:
                p.data.copy_(original[n] * factor(n))
        rows = answer_condition(questions, None, lambda ps: chat.generate([[{"role": "user", "content": p}] for p in ps], 48, 16, desc=name))
        general = general_ability(model, tok, bf16=chat.bf16)
        print(f"{name:14s} {summarize(rows)['contained']:9.1%} {general['capitals_accuracy']:9.1%} {general['perplexity']:10.2f}", flush=True)


if __name__ == "__main__":
    main()
