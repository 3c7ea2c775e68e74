"""Replay: the base model's own text, mixed into training so that the tuned model keeps what it
knew (methods.md §7: replay of general data). No general corpus can be downloaded here, and a
fixed one would not match the user's model anyway, so the base model writes its own
(self-synthesized rehearsal, Huang et al. 2024):

- documents, sampled from the end-of-text token: the model's prior over plain text, which is what
  continued pretraining on the user's documents wears away;
- chat turns, sampled from an empty user turn (Magpie, Xu et al. 2024): the model writes a
  request, then answers it.

- anchors, made per run: the word openings that the user's documents continue in new ways. A
  new name teaches its pieces in every context (measured on the demo: after "Moknal" and
  "Lismok", the tuned model continued " M" with "ok" and " L" with "ism" even in "The capital of
  Belarus is M", and lost the capital). For the openings the domain data shifts most, and for
  the words that lead into them (" in" of "born in Moknal"), the base model continues each one
  inside several of its own sentences, so training sees them used both ways.

With every sample we keep the base model's top-k next-token distribution at each position it
wrote, and training pulls the tuned model's distribution there toward it (a KL term, see
train.py). A whole distribution per token carries far more than the one token that was sampled.

Samples depend only on the base model and these settings, so they are made once per model and
cached beside the converted models (`STEEP_CACHE`)."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .generate import with_system
from .models import bf16_supported, cache_dir, load_model
from .rundir import atomic_path, fingerprint

log = logging.getLogger("steep")

TOP_K = 16  # base probabilities kept per position; the rest of the mass is left out of the KL
DOCUMENT_TOKENS = 128
TURN_TOKENS = 96  # per side of a chat turn: the request, then the answer
BATCH = 64  # on a CPU, generation time is mostly per step, not per row
DOCUMENT_STARTS = ("<|endoftext|>", "<|end_of_text|>", "<eos>", "</s>")  # the separator between pretraining documents
NOT_DISTILLED = -1e4  # log-probability marking a position the KL term skips (exp() is 0)
ANCHOR_LEAD_IN = 24  # tokens of base-written text before an anchored opening
ANCHOR_TOKENS = 8  # what the base model writes after it: the shift is in the next piece or two
ANCHOR_CONTEXTS = 4  # lead-ins per opening
VERSION = 2  # part of the cache key: a change in how samples are made makes new ones


def replay_set(model_path: Path, tok: PreTrainedTokenizerBase, count: int, system_prompt: str | None, seed: int) -> list[dict]:
    """`count` samples (half documents, half chat turns) with the base model's top-k distribution
    at every position it wrote: {input_ids, labels (all ignored), teacher_ids, teacher_logprobs}.
    Made on first use and cached per model, settings and seed."""
    key = fingerprint(str(model_path.resolve()), _model_stamp(model_path), count, system_prompt, seed, TOP_K, DOCUMENT_TOKENS, TURN_TOKENS, VERSION)
    path = cache_dir() / "replay" / f"{model_path.name}-{key}.safetensors"

    def make() -> list[dict]:
        log.info("replay: the base model writes %d samples of its own text (once per model) -> %s", count, path)
        model = load_model(model_path)
        torch.manual_seed(seed)
        sequences = _documents(model, tok, count - count // 2, random.Random(seed)) + _chat_turns(model, tok, count // 2, system_prompt)
        return _with_distributions(model, tok, sequences)

    return cached_samples(path, make)


def cached_samples(path: Path, make: Callable[[], list[dict]]) -> list[dict]:
    """Samples stored at `path`, made (and stored) only when they are not there yet."""
    if not path.exists():
        examples = make()
        with atomic_path(path) as tmp:
            save_file(_pack(examples), str(tmp))
    return _unpack(load_file(str(path)))


def anchor_set(model: PreTrainedModel, tok: PreTrainedTokenizerBase, domain_texts: list[str], replay: list[dict], count: int,
               seed: int) -> list[dict]:
    """Short samples (in the replay format) in which the base model continues, each inside a
    lead-in cut from a replay document (ordinary text rather than the user's domain):
    - `count` of them after the word openings of `domain_texts` whose continuation training will
      shift most (" M" -> "ok" of "Moknal");
    - `count // 2` after the words that lead into those openings there (" in" of "born in
      Moknal"), whose next word training shifts toward the new names: measured on the demo, the
      capitals a run with opening anchors still lost had lost as much in their first piece as in
      the rest (after "The capital of Bahrain is", " Man" fell by 4.2 nats)."""
    openings = shifted_openings(model, tok, domain_texts, max(1, count // ANCHOR_CONTEXTS))
    start = document_start(tok)
    lead_ins = [r["input_ids"] for r in replay if r["input_ids"][0] == start and len(r["input_ids"]) > 2]
    if not openings or not lead_ins:
        return []
    leads = lead_words(model, tok, domain_texts, openings, max(1, count // 2 // ANCHOR_CONTEXTS))
    words = _cycled(openings, count) + _cycled(leads, count // 2)
    starts = _word_start_ids(tok)
    rng = random.Random(seed)
    torch.manual_seed(seed)  # the same anchors on every rerun and every process of a distributed run
    prompts = []
    for word in words:
        doc = rng.choice(lead_ins)
        cuts = [i for i in range(2, len(doc)) if doc[i] in starts] or [len(doc)]
        cut = rng.choice(cuts)
        prompts.append(doc[max(0, cut - ANCHOR_LEAD_IN) : cut] + [word])
    sequences = [(ids, 0) for ids in _sample(model, tok, prompts, ANCHOR_TOKENS, "replay: anchors")]
    return _with_distributions(model, tok, sequences)


def _cycled(items: list[int], count: int) -> list[int]:
    """`count` items, going round `items` in order (none when there are none)."""
    return [items[n % len(items)] for n in range(count)] if items else []


def shifted_openings(model: PreTrainedModel, tok: PreTrainedTokenizerBase, texts: list[str], count: int) -> list[int]:
    """The word-opening pieces (" M" of " Moknal") whose next piece the texts will train hardest:
    ranked by how often a word in them continues the opening with a piece the base model finds
    unlikely there (summed 1 - p(piece | opening) at the start of a document, the expected push of
    each occurrence's loss). Words the base model already completes score near 0."""
    starts = _word_start_ids(tok)
    follows: dict[int, Counter] = {}
    for a, b in _pairs(tok, texts):
        if a in starts and b not in starts and tok.convert_ids_to_tokens(b).isalpha():
            follows.setdefault(a, Counter())[b] += 1
    return _most_pushed(model, tok, follows, count)


def lead_words(model: PreTrainedModel, tok: PreTrainedTokenizerBase, texts: list[str], openings: list[int], count: int) -> list[int]:
    """The words (" in", " born") that the texts follow with one of `openings`, ranked the same
    way: by how unlikely the base model finds that opening after them. Not the openings
    themselves: those have their own anchors."""
    starts, targets = _word_start_ids(tok), set(openings)
    follows: dict[int, Counter] = {}
    for a, b in _pairs(tok, texts):
        if a in starts and a not in targets and b in targets:
            follows.setdefault(a, Counter())[b] += 1
    return _most_pushed(model, tok, follows, count)


def _pairs(tok: PreTrainedTokenizerBase, texts: list[str]) -> list[tuple[int, int]]:
    """Every two neighbouring pieces of the texts, as they will be trained."""
    pairs = []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        pairs.extend(zip(ids, ids[1:]))
    return pairs


@torch.inference_mode()
def _most_pushed(model: PreTrainedModel, tok: PreTrainedTokenizerBase, follows: dict[int, Counter], count: int) -> list[int]:
    """Of the pieces `a` in `follows` (a -> how often each next piece follows it), the `count`
    whose next pieces training pushes most: summed count x (1 - p_base(next | a)) at the start of
    a document, kept from 1.0 up."""
    if not follows:
        return []
    candidates = sorted(follows)
    doc_start = document_start(tok)
    scores = {}
    for i in range(0, len(candidates), BATCH):
        batch = candidates[i : i + BATCH]
        with _autocast(model):
            probs = model(input_ids=torch.tensor([[doc_start, a] for a in batch])).logits[:, -1].float().softmax(-1)
        for row, a in enumerate(batch):
            scores[a] = sum(n * (1 - float(probs[row, b])) for b, n in follows[a].items())
    ranked = sorted(candidates, key=lambda a: (-scores[a], a))
    return [a for a in ranked[:count] if scores[a] >= 1.0]


def _word_start_ids(tok: PreTrainedTokenizerBase) -> set[int]:
    """Ids of the alphabetic pieces that open a word: written with the byte-level BPE space mark
    (GPT-2, Llama 3, SmolLM) or SentencePiece's. Tokenizers keep no flag for it, hence the marks."""
    return {i for piece, i in tok.get_vocab().items() if piece[:1] in ("Ġ", "▁") and piece[1:].isalpha()}


def document_start(tok: PreTrainedTokenizerBase) -> int:
    """The token that separates pretraining documents (what plain text follows)."""
    vocab = tok.get_vocab()
    return next((vocab[t] for t in DOCUMENT_STARTS if t in vocab), tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id)


def _model_stamp(model_path: Path) -> str:
    """Size and time of the weights: a model replaced in place gets new samples."""
    weights = sorted(model_path.glob("*.safetensors")) or sorted(model_path.glob("*.bin"))
    return ";".join(f"{w.name}:{w.stat().st_size}:{w.stat().st_mtime_ns}" for w in weights)


def _sample(model: PreTrainedModel, tok: PreTrainedTokenizerBase, prompts: list[list[int]], max_new_tokens: int, desc: str) -> list[list[int]]:
    """Each prompt followed by what the model samples after it (temperature 1, top-p 0.95), up to
    its end-of-turn token, which is kept."""
    out: list[list[int]] = []
    pad = tok.pad_token_id
    for start in tqdm(range(0, len(prompts), BATCH), desc=desc, unit="batch"):
        batch = prompts[start : start + BATCH]
        width = max(map(len, batch))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
        with torch.inference_mode(), _autocast(model):
            generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=True,
                                       temperature=1.0, top_p=0.95, pad_token_id=pad, eos_token_id=tok.eos_token_id)
        for prompt, row in zip(batch, generated[:, width:].tolist()):
            if tok.eos_token_id in row:
                row = row[: row.index(tok.eos_token_id) + 1]
            out.append(prompt + row)
    return out


def _documents(model: PreTrainedModel, tok: PreTrainedTokenizerBase, count: int, rng: random.Random) -> list[tuple[list[int], int]]:
    """(ids, first position to distill): plain text sampled after the document separator; half
    of it opening with a random capitalized word piece of the vocabulary. Unprompted, the model
    writes about its favourite topics; what tuning on new names wears away most is how it
    continues rare ones (measured: the capitals it lost were the long, rare names), so the
    replay must reach them too."""
    vocab = tok.get_vocab()
    start = document_start(tok)
    capitalized = sorted(i for i in vocab.values() if (piece := tok.decode([i])).startswith(" ") and piece[1:2].isupper() and piece[1:].isalpha())
    prompts = [[start] + ([rng.choice(capitalized)] if capitalized and n % 2 else []) for n in range(count)]
    return [(ids, 0) for ids in _sample(model, tok, prompts, DOCUMENT_TOKENS, "replay: documents")]


def _chat_turns(model: PreTrainedModel, tok: PreTrainedTokenizerBase, count: int, system_prompt: str | None) -> list[tuple[list[int], int]]:
    """(ids, first position to distill): a request the model wrote into an empty user turn, and
    its answer. The turn's opening is the chat template's text before a user message."""
    marker = "\x00request\x00"
    rendered = tok.apply_chat_template(with_system([{"role": "user", "content": marker}], system_prompt), tokenize=False)
    opening = tok(rendered[: rendered.index(marker)], add_special_tokens=False)["input_ids"]
    requests = _sample(model, tok, [opening] * count, TURN_TOKENS, "replay: requests")
    texts = [tok.decode(ids[len(opening) :], skip_special_tokens=True).strip() for ids in requests]
    texts = [t for t in texts if t]
    prompts = [tok.apply_chat_template(with_system([{"role": "user", "content": t}], system_prompt), add_generation_prompt=True,
                                       tokenize=True, return_dict=False) for t in texts]
    return [(ids, len(opening)) for ids in _sample(model, tok, prompts, TURN_TOKENS, "replay: answers")]


@torch.inference_mode()
def _with_distributions(model: PreTrainedModel, tok: PreTrainedTokenizerBase, sequences: list[tuple[list[int], int]]) -> list[dict]:
    """The base model's top-k next-token log-probabilities at each position from `first` on."""
    examples = []
    for start in tqdm(range(0, len(sequences), BATCH), desc="replay: distributions", unit="batch"):
        batch = sequences[start : start + BATCH]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([ids + [tok.pad_token_id] * (width - len(ids)) for ids, _ in batch])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
        with _autocast(model):
            logprobs = model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
        top = logprobs.topk(TOP_K, dim=-1)
        for row, (seq, first) in enumerate(batch):
            n = len(seq)
            values = top.values[row, :n].clone()
            values[: max(first - 1, 0)] = NOT_DISTILLED  # position t predicts token t+1
            values[n - 1] = NOT_DISTILLED  # nothing follows the last token
            examples.append({"input_ids": seq, "teacher_ids": top.indices[row, :n], "teacher_logprobs": values})
    return examples


def _autocast(model: PreTrainedModel) -> torch.autocast:
    return torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16_supported())


def _pack(examples: list[dict]) -> dict[str, torch.Tensor]:
    """One flat tensor per field, with the lengths to cut them apart again."""
    if not examples:
        return {"lengths": torch.zeros(0, dtype=torch.long)}
    return {
        "lengths": torch.tensor([len(e["input_ids"]) for e in examples], dtype=torch.long),
        "input_ids": torch.tensor([t for e in examples for t in e["input_ids"]]),
        "teacher_ids": torch.cat([e["teacher_ids"] for e in examples]).to(torch.int32),
        "teacher_logprobs": torch.cat([e["teacher_logprobs"] for e in examples]).to(torch.float16),
    }


def _unpack(tensors: dict[str, torch.Tensor]) -> list[dict]:
    out, offset = [], 0
    for n in tensors["lengths"].tolist():
        ids = tensors["input_ids"][offset : offset + n].tolist()
        out.append({"input_ids": ids, "labels": [-100] * n,
                    "teacher_ids": tensors["teacher_ids"][offset : offset + n].long(),
                    "teacher_logprobs": tensors["teacher_logprobs"][offset : offset + n].float()})
        offset += n
    return out
