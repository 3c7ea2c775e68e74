"""The OpenAI-compatible HTTP API and the chat page (FastAPI).

Endpoints: /v1/models, /v1/chat/completions (with `stream` as server-sent events),
/v1/completions, /health, the chat page at /, and /sources/<run>/<chunk> for cited passages.
Retrieval is asked for with a `+rag` suffix on the model id or `"retrieval": true` in the body;
the answer then carries `citations` (passage id, file, page, section, span, link) beside the text.
Every error, bad input included, is a 4xx with OpenAI's error body."""

from __future__ import annotations

import html
import json
import time
import uuid
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ..familiarity import SubjectCheck
from ..generate import with_system
from ..rag import check_citations, rag_prompt
from ..recital import RECITAL_TOKENS, recital_request, recital_subjects, recited_prompt
from ..retrieval import cite_id
from .engine import Engine, Job
from .registry import Served

RAG_SUFFIX = "+rag"
CHARS_PER_TOKEN_LIMIT = 32  # a body this far beyond the window is refused before it is tokenized


class APIError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 type: str = "invalid_request_error"):
        self.status, self.message, self.code, self.param, self.type = status, message, code, param, type


def _error(status: int, message: str, type: str = "invalid_request_error", code: str | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type, "param": param, "code": code}}, status_code=status)


# --- request bodies ------------------------------------------------------------------------------

Seed = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]  # what torch.manual_seed accepts


def _encodable(text: str) -> str:
    """JSON can carry lone UTF-16 surrogates that no tokenizer and no UTF-8 response can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("text is not valid Unicode (a lone surrogate)") from e
    return text


Text = Annotated[str, AfterValidator(_encodable)]


class TextPart(BaseModel):
    type: Literal["text"]
    text: Text


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(BaseModel):
    """The fields chat and text completions share. Unknown fields are ignored, as OpenAI clients
    send fields (user, metadata, ...) that do not change a local model's answer."""

    model_config = ConfigDict(extra="ignore")
    model: Text = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, description="at most this many new tokens (default and cap: the server's --max-tokens)")
    temperature: float = Field(1.0, ge=0, le=2, description="0: greedy, deterministic")
    top_p: float = Field(1.0, gt=0, le=1)
    stop: Text | Annotated[list[Annotated[Text, Field(min_length=1)]], Field(max_length=4)] | None = Field(
        None, description="up to 4 stop strings")
    seed: Seed | None = None
    n: int = Field(1, ge=1, le=1, description="only one choice per prompt")
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    retrieval: bool = Field(False, description="steep: answer from the run's documents, with citations (same as the +rag suffix)")
    retrieval_k: int = Field(5, ge=1, le=20, description="steep: passages retrieved into the prompt")
    recite: bool = Field(False, description="steep, closed-book: first have the model say what it knows about each name in "
                         "the question (greedy), then answer over that (steep.recital); the recitals come back in `recitals`")


class CompletionRequest(Sampling):
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=32)] = Field(
        description="a prompt, or a list of up to 32 prompts (one choice each)")
    echo: bool = False


# --- the app -------------------------------------------------------------------------------------


def create_app(served: dict[str, Served], engine: Engine, api_key: str | None = None, max_tokens: int = 512) -> FastAPI:
    """`max_tokens` is the default and the cap of new tokens per answer: OpenAI's default, "up to the
    context window", is a runaway request on a CPU."""
    app = FastAPI(title="steep", summary="OpenAI-compatible API over base and tuned models", version="1")
    app.state.served, app.state.engine = served, engine

    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError) -> JSONResponse:
        return _error(e.status, e.message, e.type, e.code, e.param)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body")
        return _error(400, f"{where or 'body'}: {first['msg']}", code="invalid_value", param=where or None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return _error(e.status_code, str(e.detail), code="not_found" if e.status_code == 404 else None)

    def authorize(request: Request) -> None:
        if api_key is not None and request.headers.get("authorization") != f"Bearer {api_key}":
            raise APIError(401, "missing or wrong API key (send 'Authorization: Bearer <key>')", "invalid_api_key",
                           type="authentication_error")

    def find(model_id: str, retrieval: bool) -> tuple[Served, bool]:
        if model_id.endswith(RAG_SUFFIX):
            model_id, retrieval = model_id[: -len(RAG_SUFFIX)], True
        if model_id not in served:
            raise APIError(404, f"model '{model_id}' is not served; GET /v1/models lists them", "model_not_found", "model")
        target = served[model_id]
        if retrieval and target.index is None:
            raise APIError(400, f"model '{model_id}' has no documents to retrieve from (serve a run that ingested some)",
                           "retrieval_unavailable", "model")
        return target, retrieval

    def budget(target: Served, prompt_ids: list[int], body: Sampling, asked: int | None) -> int:
        room = target.context_window - len(prompt_ids)
        if room < 1:
            raise APIError(400, f"the prompt is {len(prompt_ids)} tokens; this model's context window is "
                                f"{target.context_window}", "context_length_exceeded", "messages")
        return min(asked or max_tokens, max_tokens, room)

    def too_long(target: Served, texts: list[str]) -> None:
        if sum(len(t) for t in texts) > target.context_window * CHARS_PER_TOKEN_LIMIT:
            raise APIError(400, f"the prompt is far longer than this model's context window ({target.context_window} tokens)",
                           "context_length_exceeded", "messages")

    def job(target: Served, prompt_ids: list[int], body: Sampling, max_tokens: int) -> Job:
        return Job(prompt_ids, target.model, target.tokenizer, target.adapter, max_tokens,
                   body.temperature, body.top_p, body.seed, body.stops())

    def in_place_of_question(messages: list[dict], content: str) -> list[dict]:
        """The messages with the last user message's text replaced (by a prompt that holds it)."""
        last = max(i for i, m in enumerate(messages) if m["role"] == "user")
        return [*messages[:last], {"role": "user", "content": content}, *messages[last + 1 :]]

    def chat_ids(target: Served, messages: list[dict]) -> list[int]:
        try:
            return target.tokenizer.apply_chat_template(
                with_system(messages, target.system_prompt), add_generation_prompt=True, tokenize=True, return_dict=False)
        except Exception as e:  # templates raise on what they cannot render (roles out of order, ...)
            raise APIError(400, f"messages: the model's chat template refused them: {e}", "invalid_value", "messages") from e

    async def recite(target: Served, question: str, check: SubjectCheck | None) -> dict[str, str]:
        """The model's recitals about the question's names (`recital_subjects`), generated greedily and
        side by side. A question the subject check declines gets its decline for each, without generating."""
        subjects = recital_subjects(question)
        requests = []
        for subject in subjects:
            ids = chat_ids(target, recital_request(subject))
            requests.append(Job(ids, target.model, target.tokenizer, target.adapter, RECITAL_TOKENS, decline_check=check))
        for events in [engine.submit(r) for r in requests]:
            await _drain(events)
        return {subject: r.text.strip() for subject, r in zip(subjects, requests)}

    def openapi() -> dict:
        """The generated document, with the served model ids as the allowed `model` values."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            schemas = schema["components"]["schemas"]
            schemas["CompletionRequest"]["properties"]["model"]["enum"] = sorted(served)
            schemas["ChatRequest"]["properties"]["model"]["enum"] = sorted(served) + sorted(
                i + RAG_SUFFIX for i, s in served.items() if s.index is not None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "models": sorted(served)}

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    def list_models() -> dict:
        data = []
        for s in served.values():
            data.append({"id": s.id, "object": "model", "created": s.created, "owned_by": "steep", "retrieval": s.index is not None})
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat_completions(body: ChatRequest) -> object:
        target, retrieval = find(body.model, body.retrieval)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
        too_long(target, [m["content"] for m in messages])
        passages: list[dict] = []
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        asked = question  # the last user message as the model gets it: over passages or recitals when there are any
        if retrieval:
            passages = [h.chunk for h in target.index.search([question], body.retrieval_k)[0]] if question.strip() else []
            if passages:
                asked = rag_prompt(question, passages)
        check = None
        if not retrieval and question and (target.decline_unfamiliar is not None or target.taught is not None):
            check = SubjectCheck(question, target.system_prompt, target.decline_unfamiliar, target.taught)
        recitals: dict[str, str] = {}
        if body.recite and not retrieval:
            chat_ids(target, messages)  # messages the template refuses are refused before the recitals are generated
            recitals = await recite(target, question, check)
            if recitals:
                asked = recited_prompt(question, list(recitals.values()))
        prompt_ids = chat_ids(target, messages if asked == question else in_place_of_question(messages, asked))
        request = job(target, prompt_ids, body, budget(target, prompt_ids, body, body.max_completion_tokens or body.max_tokens))
        request.decline_check = check
        events = engine.submit(request)
        reply = Reply("chatcmpl", body.model, target, passages, recitals)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _sse(reply.chat_stream(request, events, include_usage), request)
        await _drain(events)
        return reply.chat(request)

    @app.post("/v1/completions", dependencies=[Depends(authorize)])
    async def completions(body: CompletionRequest) -> object:
        target, _ = find(body.model, False)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        too_long(target, prompts)
        ids = [target.tokenizer(p, add_special_tokens=False)["input_ids"] or [target.tokenizer.bos_token_id or 0] for p in prompts]
        requests = [job(target, i, body, budget(target, i, body, body.max_tokens)) for i in ids]
        if body.stream and len(requests) > 1:
            raise APIError(400, "stream: only with a single prompt", "invalid_value", "stream")
        queues = [engine.submit(r) for r in requests]
        reply = Reply("cmpl", body.model, target, [])
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _sse(reply.text_stream(requests[0], queues[0], include_usage), requests[0])
        for q in queues:
            await _drain(q)
        echo = prompts if body.echo else [""] * len(prompts)
        return reply.text([(e, r) for e, r in zip(echo, requests)])

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def chat_page() -> str:
        return files("steep").joinpath("templates/chat.html").read_text(encoding="utf-8")

    @app.get("/sources/{run}/{chunk_id}", response_class=HTMLResponse, include_in_schema=False)
    def source(run: str, chunk_id: str) -> str:
        chunk = next((s.chunks_by_id[chunk_id] for s in served.values() if s.run == run and chunk_id in s.chunks_by_id), None)
        if chunk is None:
            raise HTTPException(404, f"no passage {chunk_id} in run {run}")
        where = ", ".join(x for x in (chunk["source"], chunk.get("section") or "", f"page {chunk['page']}" if chunk.get("page") else "",
                                      f"row {chunk['row']}" if chunk.get("row") else "", f"characters {chunk['start']}-{chunk['end']}") if x)
        return (f"<!doctype html><meta charset=utf-8><title>{html.escape(cite_id(chunk))}</title>"
                f"<body style='font-family:sans-serif;max-width:48rem;margin:2rem auto'><h1>{html.escape(cite_id(chunk))}</h1>"
                f"<p class=where>{html.escape(where)}</p><pre style='white-space:pre-wrap'>{html.escape(chunk['text'])}</pre>")

    return app


async def _drain(events) -> None:
    while True:
        event = await events.get()
        if event[0] == "error":
            raise APIError(500, event[1], type="server_error")  # the worker failed: not the client's fault
        if event[0] == "done":
            return


def _sse(chunks: AsyncIterator[dict], request: Job) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        try:
            async for chunk in chunks:
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
        except RuntimeError as e:  # the worker failed mid-answer; the status line is already sent
            yield f"data: {json.dumps({'error': {'message': str(e), 'type': 'server_error', 'param': None, 'code': None}})}\n\n"
        finally:  # the client went away (or we are done): stop generating for it
            request.cancelled = True
        yield "data: [DONE]\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


class Reply:
    """Builds response bodies, whole or as stream chunks, in OpenAI's shapes."""

    def __init__(self, prefix: str, model: str, target: Served, passages: list[dict], recitals: dict[str, str] | None = None):
        self.id = f"{prefix}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model
        self.target = target
        self.passages = passages
        self.recitals = recitals or {}  # what the model said about the question's names before answering (`recite`)

    def _citations(self, answer: str) -> tuple[str, list[dict]]:
        """A sources line to append when the model itself cited none of the passages (small models
        often don't), so the text always says where it came from; and the passages, structured."""
        if not self.passages:
            return "", []
        cited = set(check_citations(answer, self.passages)["citations"])
        listed = [{"id": cite_id(c), "source": c["source"], "section": c.get("section"), "page": c.get("page"),
                   "row": c.get("row"), "start": c["start"], "end": c["end"], "text": c["text"],
                   "url": f"/sources/{self.target.run}/{c['id']}", "cited": cite_id(c) in cited} for c in self.passages]
        footer = "" if cited else "\n\nSources: " + " ".join(f"[{c['id']}]" for c in listed)
        return footer, listed

    def _usage(self, request: Job) -> dict:
        return {"prompt_tokens": len(request.prompt_ids), "completion_tokens": len(request.tokens),
                "total_tokens": len(request.prompt_ids) + len(request.tokens)}

    def _head(self, object: str) -> dict:
        return {"id": self.id, "object": object, "created": self.created, "model": self.model}

    def chat(self, request: Job) -> dict:
        footer, citations = self._citations(request.text)
        body = {**self._head("chat.completion"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": request.text + footer},
                             "finish_reason": _finish(request), "logprobs": None}],
                "usage": self._usage(request)}
        if self.passages:
            body["citations"] = citations
        if self.recitals:
            body["recitals"] = self.recitals
        return body

    async def chat_stream(self, request: Job, events, include_usage: bool) -> AsyncIterator[dict]:
        head = self._head("chat.completion.chunk")
        yield {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        async for delta in _deltas(events):
            yield {**head, "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": None}]}
        footer, citations = self._citations(request.text)
        last = {**head, "choices": [{"index": 0, "delta": {"content": footer} if footer else {}, "finish_reason": _finish(request)}]}
        if self.passages:
            last["citations"] = citations
        if self.recitals:
            last["recitals"] = self.recitals
        yield last
        if include_usage:
            yield {**head, "choices": [], "usage": self._usage(request)}

    def text(self, answers: list[tuple[str, Job]]) -> dict:
        usage = [self._usage(r) for _, r in answers]
        return {**self._head("text_completion"),
                "choices": [{"index": i, "text": echo + r.text, "finish_reason": _finish(r), "logprobs": None}
                            for i, (echo, r) in enumerate(answers)],
                "usage": {k: sum(u[k] for u in usage) for k in usage[0]}}

    async def text_stream(self, request: Job, events, include_usage: bool) -> AsyncIterator[dict]:
        head = self._head("text_completion")
        async for delta in _deltas(events):
            yield {**head, "choices": [{"index": 0, "text": delta, "finish_reason": None, "logprobs": None}]}
        yield {**head, "choices": [{"index": 0, "text": "", "finish_reason": _finish(request), "logprobs": None}]}
        if include_usage:
            yield {**head, "choices": [], "usage": self._usage(request)}


async def _deltas(events) -> AsyncIterator[str]:
    while True:
        event = await events.get()
        if event[0] == "delta":
            yield event[1]
        elif event[0] == "error":
            raise RuntimeError(event[1])
        else:
            return


def _finish(request: Job) -> str:
    return "length" if request.finish_reason == "length" else "stop"
