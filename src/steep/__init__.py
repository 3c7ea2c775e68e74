"""steep: steep a small open LLM in your own documents.

    import steep
    results = steep.run("steep.yaml")                       # every stage
    ingested = steep.ingest("steep.yaml", ["ingest.chunk_tokens=128"])  # .chunks: a JSONL path
"""

from __future__ import annotations

from pathlib import Path

from . import pipeline
from .config import ConfigError, RunConfig, load_config
from .rundir import InputError

__all__ = ["ConfigError", "InputError", "RunConfig", "load_config", "run", "ingest", "synth", "curate", "train"]


def _config(config: RunConfig | str | Path, overrides: list[str]) -> RunConfig:
    if isinstance(config, RunConfig):
        return load_config(None, overrides, **config.model_dump()) if overrides else config
    return load_config(config, overrides)


def run(config: RunConfig | str | Path, overrides: list[str] = ()) -> dict:
    """All stages; returns eval results per condition."""
    return pipeline.run(_config(config, list(overrides)))


def ingest(config: RunConfig | str | Path, overrides: list[str] = ()) -> pipeline.ingest.Ingested:
    """The corpus: paths of chunks.jsonl and conversations.jsonl, and the summary (counts, failures)."""
    return pipeline.run_ingest(_config(config, list(overrides)))


def synth(config: RunConfig | str | Path, overrides: list[str] = ()) -> tuple[list[dict], list[dict]]:
    """(augmented texts, QA pairs)."""
    return pipeline.run_synth(_config(config, list(overrides)))[1:]


def curate(config: RunConfig | str | Path, overrides: list[str] = ()) -> tuple[list[dict], list[dict]]:
    return pipeline.run_curate(_config(config, list(overrides)))[1:]


def train(config: RunConfig | str | Path, overrides: list[str] = ()) -> Path:
    """The trained adapter (or full model) folder."""
    return pipeline.run_train(_config(config, list(overrides)))[1]
