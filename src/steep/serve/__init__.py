"""`steep serve`: an OpenAI-compatible server and chat page over base and tuned models."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from ..models import bf16_supported
from .api import create_app
from .engine import Engine
from .registry import load_served

log = logging.getLogger("steep")


def build_app(runs: list[Path], base: str | None = None, api_key: str | None = None, max_batch: int = 16,
              max_tokens: int = 512) -> FastAPI:
    """The app serving `runs` (their base and tuned models, with retrieval over their documents)."""
    served = load_served(runs, base)
    app = create_app(served, Engine(max_batch=max_batch, bf16=bf16_supported()), api_key, max_tokens)
    log.info("serving %s", ", ".join(sorted(served)))
    return app


def serve(runs: list[Path], base: str | None, host: str, port: int, api_key: str | None, max_batch: int, max_tokens: int) -> None:
    import uvicorn

    app = build_app(runs, base, api_key, max_batch, max_tokens)
    if host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        log.warning("listening on %s without an API key: anyone who can reach this machine can use the models", host)
    log.info("chat page: http://%s:%d/  API: http://%s:%d/v1", host, port, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning")
