"""How much memory a finished training keeps, and what `release_memory` gives back.

    python bench/memory_release.py

LoRA (r=32, all linear layers) on the default model for three steps of 16 rows at 600, 128 and 300
tokens, like the demo's RAFT and QA batches; then the model and optimizer go out of scope, and the
process's resident memory is printed after that, after `gc.collect()` alone, and after
`release_memory()` (what the train stage calls before eval)."""

from __future__ import annotations

import gc

import torch
from peft import LoraConfig, get_peft_model

from steep.models import load_model, resolve_model
from steep.stages.train import release_memory


def resident_mib() -> int:
    status = open("/proc/self/status").read()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


def train_a_little() -> None:
    model = get_peft_model(load_model(resolve_model("smollm2-135m-instruct")),
                           LoraConfig(r=32, lora_alpha=64, target_modules="all-linear", task_type="CAUSAL_LM"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    for length in (600, 128, 300):
        ids = torch.randint(0, model.config.vocab_size, (16, length))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        print(f"after a step of 16 x {length:3d} tokens: {resident_mib():6,d} MiB", flush=True)


def main() -> None:
    print(f"at start:                           {resident_mib():6,d} MiB")
    train_a_little()
    print(f"training returned:                  {resident_mib():6,d} MiB")
    gc.collect()
    print(f"after gc.collect():                 {resident_mib():6,d} MiB")
    release_memory()
    print(f"after release_memory():             {resident_mib():6,d} MiB")


if __name__ == "__main__":
    main()
