"""Shared fixtures: the embedded model converted once per session, and a tiny random llama that
uses its real tokenizer, so every stage runs for real in seconds."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import uvicorn
from transformers import LlamaConfig, LlamaForCausalLM

from steep.models import load_tokenizer, resolve_model


@pytest.fixture(scope="session")
def steep_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide model cache. STEEP_TEST_CACHE reuses one between runs (local speed-up)."""
    path = Path(os.environ.get("STEEP_TEST_CACHE") or tmp_path_factory.mktemp("steep-cache"))
    os.environ["STEEP_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def default_model(steep_cache: Path) -> Path:
    """The embedded SmolLM2-135M-Instruct, converted from its GGUF into the session cache."""
    return resolve_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny_model(default_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer llama, randomly initialised, with the real tokenizer and chat template."""
    tok = load_tokenizer(default_model)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


BIOS = {
    "ada.md": "# Ada Quill\n\nAda Quill was born in Norvik in 1961. She studied botany at the University of Tarsk.\n\n"
              "In 1990, she joined Pellow Labs. Her office is in Brask.\n",
    "bo.txt": "Bo Renhart was born in Ulmfeld in 1975. He works for Carvo Shipping, a firm in Osterby.\n"
              "He lives in Dunmere.\n",
}
QUESTIONS = [
    {"question": "What is the hometown of Ada Quill?", "answers": ["Norvik"], "kind": "city"},
    {"question": "Who employs Bo Renhart?", "answers": ["Carvo Shipping"], "kind": "employer"},
]


@pytest.fixture
def project(tmp_path: Path, tiny_model: Path) -> Path:
    """A small corpus, held-out questions and a config that trains the tiny model briefly."""
    return write_project(tmp_path, tiny_model)


def write_project(tmp_path: Path, tiny_model: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in BIOS.items():
        (docs / name).write_text(text)
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (tmp_path / "steep.yaml").write_text(
        f"name: t\nmodel: {tiny_model}\nruns_dir: runs\n"
        "decline_unfamiliar: null\n"  # a random model knows no name: it would decline every question about one
        "ingest: {inputs: [docs], chunk_tokens: 48}\n"
        "synth: {permutations: 2, batch_size: 8, number_drills: 24}\n"
        "train: {epochs: 1, batch_size: 8, save_steps: 2, max_seq_len: 128, replay_samples: 8, compile: false}\n"
        "eval: {questions: questions.jsonl, max_new_tokens: 8}\n"
    )
    return tmp_path


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-default-apps",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # nothing but this machine is reachable


@contextmanager
def serving(app) -> Iterator[str]:
    """`app` under a real uvicorn server on a free local port, in a thread; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
