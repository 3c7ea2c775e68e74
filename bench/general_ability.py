"""General ability of several runs' tuned models against their base, as `steep eval` measures it
(capitals accuracy with a paired bootstrap interval, perplexity on general prose). The knowledge
bench leaves this out of its variants to save time; this measures it after the fact.

    python bench/general_ability.py RUN_DIR [RUN_DIR ...]

All runs must share a base model (it is measured once)."""

from __future__ import annotations

import argparse
from pathlib import Path

from steep.config import load_run_config
from steep.export import tuned_checkpoint
from steep.forgetting import compare, general_ability
from steep.models import bf16_supported, load_model, load_tokenizer, resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    bases = {resolve_model(load_run_config(run).model) for run in args.runs}
    if len(bases) != 1:
        raise SystemExit(f"the runs have different base models: {sorted(map(str, bases))}")
    base_path = bases.pop()
    bf16 = bf16_supported()
    base = general_ability(load_model(base_path), load_tokenizer(base_path), bf16)
    print(f"base {base_path.name}: capitals {base['capitals_accuracy']:.1%}, perplexity {base['perplexity']:.2f}")
    print("| run | capitals | change, points (95% interval) | perplexity (ratio) |\n|---|---:|---:|---:|")
    for run in args.runs:
        change = compare(base, general_ability(*tuned_checkpoint(run), bf16))
        lo, hi = change["accuracy_change_ci_points"]
        print(f"| {run} | {change['tuned']['capitals_accuracy']:.1%} | {change['accuracy_change_points']:+.1f} ({lo:+.1f}, {hi:+.1f}) "
              f"| {change['tuned']['perplexity']:.2f} ({change['perplexity_ratio']:.3f}) |", flush=True)


if __name__ == "__main__":
    main()
