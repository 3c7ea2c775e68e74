"""What the benchmarks that study a run's training data load first: the run's config, its model
and tokenizer, its curated texts and QA pairs, and the replay samples train would mix in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the scripts import steep late, after parsing their arguments
    from transformers import PreTrainedTokenizerBase

    from steep.config import RunConfig


@dataclass
class CuratedRun:
    cfg: RunConfig
    model_path: Path
    tok: PreTrainedTokenizerBase
    texts: list[dict]
    qa: list[dict]
    replay: list[dict]  # empty when the run's train.replay is 0


def load_curated_run(run: Path) -> CuratedRun:
    """A run directory with curate/ done; a clear error for a folder that is not a run."""
    from steep.config import load_run_config
    from steep.models import load_tokenizer, resolve_model
    from steep.replay import replay_set
    from steep.rundir import read_jsonl

    cfg = load_run_config(run)
    model_path = resolve_model(cfg.model)
    tok = load_tokenizer(model_path)
    replay = replay_set(model_path, tok, cfg.train.replay_samples, cfg.system_prompt, cfg.seed) if cfg.train.replay else []
    return CuratedRun(cfg, model_path, tok, read_jsonl(run / "curate" / "texts.jsonl"), read_jsonl(run / "curate" / "qa.jsonl"), replay)
