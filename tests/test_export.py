"""`steep export`: the merged Hugging Face folder answers exactly as the checkpoint; the GGUF file
holds the same weights (read back by transformers) and runs in llama.cpp itself with the same
tokens and logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from steep import pipeline
from steep.cli import main
from steep.config import load_config
from steep.export import export_gguf, export_hf, tuned_checkpoint

from conftest import write_project

TEXT = "Ada Quill studied botany at the University of Tarsk, and she joined Pellow Labs."


# LoRA on the tied embedding makes a merged model with an output head of its own (train.lora.embeddings)
@pytest.fixture(scope="module", params=[[], ["train.lora.embeddings=true"]], ids=["default", "untied-head"])
def run_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    project = write_project(tmp_path_factory.mktemp("export"), tiny_model)
    pipeline.run_train(load_config(project / "steep.yaml", request.param))
    run = project / "runs" / "t"
    assert tuned_checkpoint(run)[0].config.tie_word_embeddings == (not request.param)
    return run


def test_hf_export_is_standalone_and_answers_like_the_checkpoint(run_dir, caplog):
    assert main(["export", str(run_dir), "--format", "hf"]) == 0
    out = run_dir / "export" / "hf"
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    assert "im_start" in (out / "chat_template.jinja").read_text()
    check = json.loads((run_dir / "export" / "check-hf.json").read_text())["check"]
    assert check["questions"] == 2 and check["agreement"] == 100.0 and check["runtime"] == "transformers"
    merged, _ = tuned_checkpoint(run_dir)
    exported = AutoModelForCausalLM.from_pretrained(out)
    for name, tensor in merged.state_dict().items():
        assert torch.equal(tensor, exported.state_dict()[name]), name


@pytest.fixture(scope="module")
def gguf_file(run_dir: Path) -> Path:
    hf = export_hf(run_dir, run_dir / "export" / "hf-for-gguf")
    return export_gguf(hf, run_dir / "export" / "t-f32.gguf", "f32")


def test_gguf_holds_the_same_weights(run_dir, gguf_file):
    merged, tokenizer = tuned_checkpoint(run_dir)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    ids = torch.tensor([tokenizer(TEXT)["input_ids"]])
    with torch.inference_mode():
        assert torch.allclose(merged(ids).logits, loaded(ids).logits, atol=1e-4)


def test_gguf_runs_in_llama_cpp_with_the_same_tokens_and_logits(run_dir, gguf_file):
    from llama_cpp import Llama

    merged, tokenizer = tuned_checkpoint(run_dir)
    llm = Llama(model_path=str(gguf_file), n_ctx=256, logits_all=True, verbose=False, n_threads=2)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    assert llm.tokenize(TEXT.encode(), add_bos=False, special=False) == ids
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False)
    assert llm.tokenize(chat.encode(), add_bos=False, special=True) == tokenizer(chat, add_special_tokens=False)["input_ids"]
    llm.eval(ids)
    with torch.inference_mode():
        reference = merged(torch.tensor([ids])).logits[0].numpy()
    assert np.allclose(np.asarray(llm.scores[: len(ids)]), reference, atol=1e-3)
    assert "im_start" in llm.metadata["tokenizer.chat_template"]


def test_gguf_q8_0_is_smaller_and_close(run_dir, gguf_file):
    q8 = export_gguf(run_dir / "export" / "hf-for-gguf", run_dir / "export" / "t-q8_0.gguf", "q8_0")
    assert q8.stat().st_size < 0.6 * gguf_file.stat().st_size
    merged, tokenizer = tuned_checkpoint(run_dir)
    loaded = AutoModelForCausalLM.from_pretrained(q8.parent, gguf_file=q8.name, dtype=torch.float32)
    ids = torch.tensor([tokenizer(TEXT)["input_ids"]])
    with torch.inference_mode():
        a, b = merged(ids).logits, loaded(ids).logits
    assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.05)
