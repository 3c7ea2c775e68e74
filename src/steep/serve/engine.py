"""Generation for the server: one worker thread owns the models and serves a first-come queue.

Requests waiting behind the head of the queue that want the same model, adapter and sampling ride
along in its batch (left-padded, one `generate` call), so eight clients cost little more than
one; each row streams its own tokens and stops on its own (end of turn, a stop string, its
max_tokens, or a client that went away). A request with a `seed` runs alone, so the same seed
gives the same text whatever else is queued.

Written here rather than taken from vLLM or TGI: neither runs on a CPU-only machine with
transformers models and peft adapters switched per request, which is what steep serves; on GPUs,
`steep export` gives a folder those engines load."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from ..familiarity import SubjectCheck

log = logging.getLogger("steep")
GREEDY_BELOW = 1e-4  # a temperature this small divides logits into inf/nan: it means greedy


@dataclass
class Job:
    """One completion request, as the worker sees it."""

    prompt_ids: list[int]
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    adapter: str | None  # a peft adapter name on `model`, or None for the bare model
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    decline_check: SubjectCheck | None = None  # closed-book: declined instead of generated when it says so
    # filled by the worker
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    cancelled: bool = False
    _loop: asyncio.AbstractEventLoop | None = None
    _events: asyncio.Queue | None = None

    def batch_key(self) -> tuple | None:
        """Jobs with equal keys can share a batch; seeded jobs share with nobody."""
        if self.seed is not None:
            return None
        return (id(self.model), self.adapter, *((self.temperature, self.top_p) if self.sampled else ()))

    @property
    def sampled(self) -> bool:
        return self.temperature >= GREEDY_BELOW

    def emit(self, event: tuple) -> None:
        """Hand an event to the request's coroutine, which lives on the server's event loop."""
        self._loop.call_soon_threadsafe(self._events.put_nowait, event)


class _Rows(BaseStreamer, StoppingCriteria):
    """Streamer and stopping criterion of one batch: sees every step's new tokens, turns each row's
    tokens into text deltas and decides, row by row, when it is finished."""

    def __init__(self, jobs: list[Job]):
        self.jobs = jobs
        self.tokenizer = jobs[0].tokenizer
        self.eos_ids = eos_ids(self.tokenizer)
        self.prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first hands over the prompts
            self.prompt_seen = True
            return
        for job, token in zip(self.jobs, value.reshape(len(self.jobs), -1)[:, -1].tolist()):
            if job.finish_reason is not None:
                continue
            if job.cancelled:
                job.finish_reason = "cancelled"
                continue
            if token in self.eos_ids:
                self._finish(job, "stop")
                continue
            job.tokens.append(token)
            self._advance(job)
            if job.finish_reason is None and len(job.tokens) >= job.max_tokens:
                self._finish(job, "length")

    def _advance(self, job: Job) -> None:
        text = self.tokenizer.decode(job.tokens, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
            return
        for stop in job.stop:
            at = text.find(stop, max(0, len(job.text) - len(stop)))
            if at >= 0:
                self._send(job, text[:at])
                self._finish(job, "stop")
                return
        # hold back a tail that could be the start of a stop string, so a stop is never half-sent
        hold = max((k for s in job.stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        self._send(job, text[: len(text) - hold])

    def _send(self, job: Job, text: str) -> None:
        if len(text) > len(job.text):
            job.emit(("delta", text[len(job.text):]))
            job.text = text

    def _finish(self, job: Job, reason: str) -> None:
        if reason == "length":
            self._send(job, self.tokenizer.decode(job.tokens, skip_special_tokens=True))
        job.finish_reason = reason

    def end(self) -> None:
        for job in self.jobs:
            if job.finish_reason is None:
                self._finish(job, "length")

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.tensor([job.finish_reason is not None for job in self.jobs], device=input_ids.device)


def eos_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [eos])


class Engine:
    """The worker thread and its queue. `submit` is called from the event loop."""

    def __init__(self, max_batch: int = 16, bf16: bool = False):
        self.max_batch = max_batch
        self.bf16 = bf16
        self.queue: deque[Job] = deque()
        self.ready = threading.Condition()
        self.batches = 0  # how many generate calls ran; the tests check that concurrent requests share them
        threading.Thread(target=self._work, name="steep-generate", daemon=True).start()

    def submit(self, job: Job) -> asyncio.Queue:
        job._loop = asyncio.get_running_loop()
        job._events = asyncio.Queue()
        with self.ready:
            self.queue.append(job)
            self.ready.notify()
        return job._events

    def _next_batch(self) -> list[Job]:
        with self.ready:
            while not self.queue:
                self.ready.wait()
            head = self.queue.popleft()
            batch = [head]
            key = head.batch_key()
            if key is not None:
                for job in list(self.queue):
                    if len(batch) == self.max_batch:
                        break
                    if job.batch_key() == key:
                        self.queue.remove(job)
                        batch.append(job)
            return batch

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                self._generate(batch)
            except Exception as e:  # a failed batch must not kill the worker; its requests get the error
                log.exception("generation failed")
                for job in batch:
                    job.emit(("error", f"generation failed: {e}"))
                continue
            for job in batch:
                job.emit(("done", job.finish_reason, len(job.tokens)))

    @torch.inference_mode()
    def _generate(self, jobs: list[Job]) -> None:
        self.batches += 1
        model, adapter, tokenizer = jobs[0].model, jobs[0].adapter, jobs[0].tokenizer
        if any(j.decline_check for j in jobs):
            with _adapter_only(model, adapter):
                jobs = [j for j in jobs if not _declined(j)]
            if not jobs:
                return
        pad = tokenizer.pad_token_id
        width = max(len(j.prompt_ids) for j in jobs)
        ids = torch.tensor([[pad] * (width - len(j.prompt_ids)) + j.prompt_ids for j in jobs])
        mask = torch.tensor([[0] * (width - len(j.prompt_ids)) + [1] * len(j.prompt_ids) for j in jobs])
        rows = _Rows(jobs)
        first = jobs[0]
        sampling = dict(do_sample=True, temperature=first.temperature, top_p=first.top_p) if first.sampled else dict(do_sample=False)
        if first.seed is not None:
            torch.manual_seed(first.seed)
        autocast = torch.autocast(model.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with _adapter_only(model, adapter), autocast:
            model.generate(
                input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                max_new_tokens=max(j.max_tokens for j in jobs), pad_token_id=pad, eos_token_id=list(rows.eos_ids),
                streamer=rows, stopping_criteria=StoppingCriteriaList([rows]), **sampling,
            )


def _adapter_only(model: PreTrainedModel, adapter: str | None) -> AbstractContextManager:
    """`model` answering through `adapter` alone, or through none (the base) when it is None."""
    if adapter is None:
        return model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()
    model.set_adapter(adapter)
    return nullcontext()


def _declined(job: Job) -> bool:
    """Whether `job` is answered with a decline without generating (steep.familiarity)."""
    decline = job.decline_check.decline(job.model, job.tokenizer) if job.decline_check else None
    if decline is None:
        return False
    job.text = decline
    job.tokens = job.tokenizer(job.text, add_special_tokens=False)["input_ids"]
    job.emit(("delta", job.text))
    job.finish_reason = "stop"
    return True
