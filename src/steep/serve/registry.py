"""What a server serves: base models and the tuned models of runs, each under a model id.

Each base model is loaded once. A run's LoRA adapter is attached to its base under the run's name,
so switching between tuned models is `set_adapter`, not a reload; a full fine-tune is a model of
its own. A run also brings its documents' retrieval index, for answers with citations."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..config import RunConfig, load_run_config
from ..familiarity import TaughtQuestions
from ..models import BUILTIN, load_model, load_tokenizer, resolve_model
from ..retrieval import Index, open_index
from ..rundir import InputError, trained_output

log = logging.getLogger("steep")


@dataclass
class Served:
    """One model id: which weights answer, and which documents it can retrieve from."""

    id: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    adapter: str | None  # peft adapter name on `model`; None: the model as loaded (base or full fine-tune)
    system_prompt: str | None
    decline_unfamiliar: float | None  # the run's setting (steep.familiarity), for closed-book chat
    index: Index | None
    run: str | None
    created: int
    taught: TaughtQuestions | None = None  # a tuned model's, with the run's decline_untaught (steep.familiarity)

    @property
    def context_window(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @cached_property
    def chunks_by_id(self) -> dict[str, dict]:
        return {c["id"]: c for c in self.index.chunks} if self.index else {}


def _run_index(run_dir: Path) -> Index | None:
    marker = run_dir / "ingest" / "done.json"
    if not marker.exists():
        return None
    return open_index(run_dir, json.loads(marker.read_text())["key"], run_dir / "ingest" / "chunks.jsonl")


def load_served(runs: list[Path], base: str | None = None) -> dict[str, Served]:
    """Model ids -> served models: each run's base model (under its config's model name) and the
    run's tuned model (under the run's name). With no runs, `base` (default: the built-in model)."""
    served: dict[str, Served] = {}
    bases: dict[Path, tuple[PreTrainedModel, PreTrainedTokenizerBase]] = {}
    now = int(time.time())

    def base_model(spec: str, cfg: RunConfig | None, index: Index | None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        path = resolve_model(spec)
        if path not in bases:
            log.info("loading base model %s", spec)
            bases[path] = (load_model(path), load_tokenizer(path))
            name = spec if spec in BUILTIN else path.name  # a model id, not a path on this machine
            served[name] = Served(name, *bases[path], None, *_asking(cfg), index, cfg.name if cfg else None, now)
        return bases[path]

    for run_dir in runs:
        cfg = load_run_config(run_dir)
        output = trained_output(run_dir)
        index = _run_index(run_dir)
        taught = TaughtQuestions.of_run(run_dir, cfg.decline_untaught)
        model, tokenizer = base_model(cfg.model, cfg, index)
        if cfg.name in served:
            raise InputError(f"two served models would be called '{cfg.name}'; runs need distinct names")
        if output.name == "adapter":
            from peft import PeftModel

            log.info("attaching adapter of run %s", cfg.name)
            if isinstance(model, PeftModel):
                model.load_adapter(str(output), adapter_name=cfg.name)
            else:
                model = PeftModel.from_pretrained(model, str(output), adapter_name=cfg.name)
                model.eval()
                bases[resolve_model(cfg.model)] = (model, tokenizer)
                for s in served.values():  # the base id now answers through the adapter-free path
                    if s.model is model.base_model.model:
                        s.model = model
            served[cfg.name] = Served(cfg.name, model, tokenizer, cfg.name, *_asking(cfg), index, cfg.name, now, taught)
        else:  # a full fine-tune is a model of its own
            served[cfg.name] = Served(cfg.name, load_model(output), load_tokenizer(output), None, *_asking(cfg), index, cfg.name, now, taught)
    if not runs:
        base_model(base or "smollm2-135m-instruct", None, None)
    return served


def _asking(cfg: RunConfig | None) -> tuple[str | None, float | None]:
    """(system prompt, decline_unfamiliar) of a run's models; a model served without a run has neither."""
    return (cfg.system_prompt, cfg.decline_unfamiliar) if cfg else (None, None)
