import pytest
import torch
from transformers import AutoModelForCausalLM

from steep.models import builtin_gguf, load_model, load_tokenizer, resolve_model
from steep.rundir import InputError


def test_embedded_model_converts_once_and_matches_the_gguf(default_model):
    assert (default_model / "model.safetensors").exists() and resolve_model("smollm2-135m-instruct") == default_model
    tok = load_tokenizer(default_model)
    assert "<|im_start|>" in tok.chat_template
    ids = torch.tensor([tok("The capital of France is")["input_ids"]])
    gguf = builtin_gguf("smollm2-135m-instruct")
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    with torch.no_grad():
        assert torch.allclose(load_model(default_model)(ids).logits, reference(ids).logits, atol=1e-4)


def test_unknown_models_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        resolve_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_a_local_hf_folder_is_used_as_is(tiny_model):
    assert resolve_model(str(tiny_model)) == tiny_model
