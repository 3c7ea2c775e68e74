"""The teacher synth asks to write and check question/answer pairs: a model loaded here (the run's
own, or `synth.teacher`), or one behind an OpenAI-compatible server (`synth.teacher_url`: vLLM,
llama.cpp, Ollama, `steep serve`, OpenAI), so a large teacher on a GPU machine can write the data
a small model is steeped in here.

Its replies are written down as they come: a synth stopped half way (a dropped connection, Ctrl-C)
asks only the rest when rerun, since a large teacher's replies are the slow and costly part."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from tqdm.auto import tqdm

from .generate import Chat, Messages
from .rundir import InputError

RETRIES = 3  # the client's own, with backoff, on connection errors, 429 and 5xx


class RemoteChat:
    """A model served by an OpenAI-compatible server, asked greedily, `batch_size` requests at once
    (a server like vLLM batches concurrent requests itself)."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 300.0):
        # local servers take any key, but the client insists on one
        self.client = openai.OpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "unused",
                                    max_retries=RETRIES, timeout=timeout)
        self.base_url, self.model, self.api_key_env = base_url, model, api_key_env
        self._check_served()

    def _check_served(self) -> None:
        """Fail before any work if the server is down or does not serve the model."""
        try:
            served = [m.id for m in self.client.models.list()]
        except openai.NotFoundError:
            return  # a server without /models: the first request will tell
        except openai.OpenAIError as e:
            raise self._explain(e) from None
        if self.model not in served:
            raise InputError(f"the teacher server at {self.base_url} does not serve '{self.model}' (synth.teacher); "
                             f"it serves: {', '.join(served) or 'nothing'}")

    def _explain(self, error: openai.OpenAIError) -> InputError:
        where = f"the teacher server at {self.base_url} (synth.teacher_url)"
        if isinstance(error, (openai.AuthenticationError, openai.PermissionDeniedError)):
            return InputError(f"{where} refused the API key read from ${self.api_key_env}: {error.message}")
        if isinstance(error, openai.APIStatusError):
            return InputError(f"{where} answered {error.status_code} for model '{self.model}': {error.message}")
        return InputError(f"{where} could not be reached ({error}); is it running?")

    def _ask(self, conversation: Messages, max_new_tokens: int) -> str:
        try:
            reply = self.client.chat.completions.create(model=self.model, messages=conversation, max_tokens=max_new_tokens, temperature=0)
        except openai.OpenAIError as e:
            raise self._explain(e) from None
        return (reply.choices[0].message.content or "").strip() if reply.choices else ""

    def generate(self, conversations: list[Messages], max_new_tokens: int = 48, batch_size: int = 16,
                 desc: str | None = None) -> list[str]:
        failed = threading.Event()

        def ask(conversation: Messages) -> str:
            if failed.is_set():  # a worker may take the next request before the error reaches the caller
                return ""
            try:
                return self._ask(conversation, max_new_tokens)
            except BaseException:
                failed.set()
                raise

        pool = ThreadPoolExecutor(batch_size)
        try:
            return list(tqdm(pool.map(ask, conversations), total=len(conversations), desc=desc, unit="q", disable=desc is None))
        finally:  # on an error, requests not yet sent are not sent
            pool.shutdown(wait=False, cancel_futures=True)


class RecordedChat:
    """`chat` with each reply appended to `path` as soon as its part is answered; a conversation
    that `teacher` already answered there is not asked again."""

    def __init__(self, chat: Chat, path: Path, teacher: str):
        self.chat, self.path, self.teacher = chat, path, teacher
        self.replies = self._read()

    def _read(self) -> dict[str, str]:
        replies: dict[str, str] = {}
        text = self.path.read_text() if self.path.exists() else ""
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the run was stopped
            replies[record["key"]] = record["reply"]
        if text and not text.endswith("\n"):  # so the next reply does not join that cut line
            with self.path.open("a") as out:
                out.write("\n")
        return replies

    def _key(self, conversation: Messages, max_new_tokens: int) -> str:
        return hashlib.sha256(json.dumps([self.teacher, conversation, max_new_tokens]).encode()).hexdigest()

    def generate(self, conversations: list[Messages], max_new_tokens: int = 48, batch_size: int = 16,
                 desc: str | None = None) -> list[str]:
        keys = [self._key(c, max_new_tokens) for c in conversations]
        pending = list({k: c for k, c in zip(keys, conversations) if k not in self.replies}.items())  # each asked once
        part_size = 8 * batch_size  # what an interruption can lose; a local model sorts each part into batches by length
        distinct = len(set(keys))
        with tqdm(total=distinct, initial=distinct - len(pending), desc=desc, unit="q", disable=desc is None) as bar:
            for start in range(0, len(pending), part_size):
                part = pending[start : start + part_size]
                answered = self.chat.generate([c for _, c in part], max_new_tokens=max_new_tokens, batch_size=batch_size)
                with self.path.open("a") as out:
                    for (key, _), reply in zip(part, answered):
                        out.write(json.dumps({"key": key, "reply": reply}) + "\n")
                        self.replies[key] = reply
                bar.update(len(part))
        return [self.replies[k] for k in keys]
