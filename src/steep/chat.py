"""Open a model for chatting: the built-in default, any model, or a run's base or tuned model."""

from __future__ import annotations

from pathlib import Path

from .config import load_config
from .generate import ChatModel
from .models import bf16_supported, load_model, load_tokenizer, resolve_model
from .rundir import InputError, Stage


def open_chat(run_dir: Path | None = None, model: str | None = None, base: bool = False) -> ChatModel:
    system_prompt = None
    adapter = None
    if run_dir is not None:
        config_file = run_dir / "config.yaml"
        if not config_file.exists():
            raise InputError(f"{run_dir} is not a run directory (no config.yaml)")
        cfg = load_config(config_file)
        model = model or cfg.model
        system_prompt = cfg.system_prompt
        if not base:
            stage = Stage(run_dir, "train", key="")
            if not (stage.dir / "done.json").exists():
                raise InputError(f"{run_dir} has no trained model yet: run `steep train` first (or use --base)")
            adapter = Path(stage.summary()["output"])
    path = resolve_model(model or "smollm2-135m-instruct")
    if adapter is not None and adapter.name == "model":  # full fine-tune: the output is the model
        path, adapter = adapter, None
    return ChatModel(load_model(path, adapter), load_tokenizer(path), system_prompt, bf16=bf16_supported())
