"""Benchmark: can a model compare two years? The step derived yes/no and comparison replies turn
on ("born in 1951, which is before 1960, so yes"). Asks 40 random year pairs two ways, greedy:
"Is A before B? Answer yes or no." and "Is A before or after B?" (the wordings of synth's number
drills come close to both), and prints how many it gets right. Yes/no replies are read as the
knowledge bench reads them (steep.scoring.parse_yes_no), so a reply may reason first.

Usage: python bench/number_comparison.py [RUN_DIR]   (no run: the base default model)"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

PAIRS = 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", nargs="?", type=Path, help="a run directory whose tuned model to ask")
    args = parser.parse_args()
    from steep.generate import ChatModel
    from steep.models import bf16_supported, load_model, load_tokenizer, resolve_model
    from steep.scoring import parse_yes_no

    model_path = resolve_model("smollm2-135m-instruct")
    adapter = args.run / "train" / "adapter" if args.run else None
    chat = ChatModel(load_model(model_path, adapter), load_tokenizer(model_path), bf16=bf16_supported())
    rng = random.Random(0)
    pairs = [tuple(rng.sample(range(1900, 2000), 2)) for _ in range(PAIRS)]
    yes_no = chat.generate([[{"role": "user", "content": f"Is {a} before {b}? Answer yes or no."}] for a, b in pairs], max_new_tokens=16)
    said = [parse_yes_no(reply) for reply in yes_no]
    right = sum(s == ("yes" if a < b else "no") for s, (a, b) in zip(said, pairs))
    print(f"'Is A before B? Answer yes or no.': {right}/{PAIRS} right, said yes {said.count('yes')}, no {said.count('no')} "
          f"(answer yes {sum(a < b for a, b in pairs)})")
    order = chat.generate([[{"role": "user", "content": f"Is {a} before or after {b}?"}] for a, b in pairs], max_new_tokens=10)
    said = [("before" if " before " in f" {r} " else "after" if " after " in f" {r} " else None) for r in order]
    right = sum(s == ("before" if a < b else "after") for s, (a, b) in zip(said, pairs))
    print(f"'Is A before or after B?': {right}/{PAIRS} right, said before {said.count('before')}, after {said.count('after')}")


if __name__ == "__main__":
    main()
