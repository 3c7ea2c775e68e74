"""Batched chat generation with a local model: used by the teacher (synth), eval and chat."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Protocol

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

Messages = list[dict[str, str]]


class Chat(Protocol):
    """Anything that answers a batch of conversations greedily, one reply each, in order: a
    ChatModel here or a teacher behind a server (teacher.RemoteChat)."""

    def generate(self, conversations: list[Messages], max_new_tokens: int = 48, batch_size: int = 16,
                 desc: str | None = None) -> list[str]: ...


def with_system(messages: Messages, system_prompt: str | None) -> Messages:
    """Prepend the run's system prompt, if it sets one (else the chat template's default applies)."""
    if system_prompt is None or (messages and messages[0]["role"] == "system"):
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


class ChatModel:
    """A model and its tokenizer, answering batches of conversations."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, system_prompt: str | None = None, bf16: bool = False):
        self.model = model
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.bf16 = bf16

    def prompt_ids(self, messages: Messages) -> list[int]:
        return self.tokenizer.apply_chat_template(
            with_system(messages, self.system_prompt), add_generation_prompt=True, tokenize=True, return_dict=False
        )

    @torch.inference_mode()
    def generate(
        self,
        conversations: list[Messages],
        max_new_tokens: int = 48,
        batch_size: int = 16,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        desc: str | None = None,
        openings: list[str] | None = None,
    ) -> list[str]:
        """One reply per conversation, in order. Greedy unless `temperature` > 0. `openings` (one per
        conversation, "" for none): text the reply starts with, given to the model as the start of its
        turn, which it goes on from; the reply includes it."""
        openings = openings or [""] * len(conversations)
        prompts = [self.prompt_ids(c) + (self.tokenizer.encode(o, add_special_tokens=False) if o else []) for c, o in zip(conversations, openings)]
        # similar lengths together: less padding, and the order is restored at the end
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        replies: list[str] = [""] * len(prompts)
        pad = self.tokenizer.pad_token_id
        torch.manual_seed(seed)
        autocast = torch.autocast(self.model.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with tqdm(total=len(prompts), desc=desc, unit="q", disable=desc is None) as bar:
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                width = max(len(prompts[i]) for i in idx)
                # left padding, so every prompt ends where generation starts
                ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in idx])
                mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in idx])
                sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else dict(do_sample=False)
                with autocast:
                    out = self.model.generate(
                        input_ids=ids.to(self.model.device),
                        attention_mask=mask.to(self.model.device),
                        max_new_tokens=max_new_tokens,
                        pad_token_id=pad,
                        eos_token_id=self.tokenizer.eos_token_id,
                        **sampling,
                    )
                for row, i in enumerate(idx):
                    # the decoded text keeps its leading space: it goes on from the opening
                    replies[i] = (openings[i] + self.tokenizer.decode(out[row, width:], skip_special_tokens=True)).strip()
                bar.update(len(idx))
        return replies
