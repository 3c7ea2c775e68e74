"""Open a model for chatting: the built-in default, any model, or a run's base or tuned model."""

from __future__ import annotations

from pathlib import Path

from .config import load_run_config
from .generate import ChatModel
from .models import bf16_supported, load_model, load_tokenizer, resolve_model
from .rundir import trained_output


def open_chat(run_dir: Path | None = None, model: str | None = None, base: bool = False) -> ChatModel:
    system_prompt = None
    adapter = None
    if run_dir is not None:
        cfg = load_run_config(run_dir)
        model = model or cfg.model
        system_prompt = cfg.system_prompt
        if not base:
            adapter = trained_output(run_dir)
    path = resolve_model(model or "smollm2-135m-instruct")
    if adapter is not None and adapter.name == "model":  # full fine-tune: the output is the model
        path, adapter = adapter, None
    return ChatModel(load_model(path, adapter), load_tokenizer(path), system_prompt, bf16=bf16_supported())
