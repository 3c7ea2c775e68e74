"""`steep serve`: a real uvicorn server over a trained tiny run, called with the official `openai`
client; bad requests fuzzed with schemathesis; the chat page driven in headless Chromium."""

from __future__ import annotations

import asyncio
import shutil
import re
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
import torch

from steep import pipeline
from steep.config import load_config
from steep.generate import ChatModel
from steep.models import load_model, load_tokenizer
from steep.rag import RAG_PROMPT
from steep.recital import RECITAL_REQUEST, RECITAL_TOKENS
from steep.serve import build_app

from conftest import CHROMIUM_FLAGS, serving, write_project


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    project = write_project(tmp_path_factory.mktemp("serve"), tiny_model)
    pipeline.run_train(load_config(project / "steep.yaml"))
    return project / "runs" / "t"


@pytest.fixture(scope="module")
def app(run_dir: Path):
    return build_app([run_dir], max_batch=8, max_tokens=32)  # short answers keep the fuzzing quick


@pytest.fixture(scope="module")
def server(app) -> str:
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


BASE, TUNED = "tiny-llama0", "t"
ASK = [{"role": "user", "content": "Where was Ada Quill born?"}]
DECLINED = "I don't know: I have never heard of Ada Quill."  # decline_unfamiliar's reply to ASK


def test_models_lists_the_base_and_the_tuned_model(client, server):
    ids = {m.id for m in client.models.list().data}
    assert ids == {BASE, TUNED}
    assert httpx.get(f"{server}/health").json() == {"status": "ok", "models": sorted(ids)}


def test_greedy_answers_match_the_models_run_directly_and_adapters_switch_without_reloading(client, run_dir, tiny_model, app):
    served = {r: client.chat.completions.create(model=r, messages=ASK, temperature=0, max_tokens=12) for r in (BASE, TUNED, BASE)}
    direct_base = ChatModel(load_model(tiny_model), load_tokenizer(tiny_model)).generate([ASK], 12)[0]
    direct_tuned = ChatModel(load_model(tiny_model, run_dir / "train" / "adapter"), load_tokenizer(tiny_model)).generate([ASK], 12)[0]
    # ChatModel strips its replies; the API returns the text as generated
    assert served[BASE].choices[0].message.content.strip() == direct_base
    assert served[TUNED].choices[0].message.content.strip() == direct_tuned
    reply = served[TUNED]
    assert reply.object == "chat.completion" and reply.model == TUNED and reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens <= 12 and reply.usage.prompt_tokens > 5
    tuned_logits, base_logits = _logits(client, app)
    assert not torch.allclose(tuned_logits, base_logits), "the adapter changes nothing: switching is not tested"


def _logits(client, app) -> tuple[torch.Tensor, torch.Tensor]:
    """The next-token logits of the served tuned model with its adapter on and off."""
    served = app.state.served
    tuned, base = served[TUNED], served[BASE]
    assert tuned.model is base.model, "base and tuned share one model object (adapters switch, no reload)"
    ids = torch.tensor([tuned.tokenizer.apply_chat_template(ASK, add_generation_prompt=True, tokenize=True, return_dict=False)])
    with torch.inference_mode():
        tuned.model.set_adapter(TUNED)
        on = tuned.model(input_ids=ids).logits[0, -1]
        with tuned.model.disable_adapter():
            off = tuned.model(input_ids=ids).logits[0, -1]
    return on, off


def test_streaming_sends_the_same_text_as_a_whole_answer(client):
    whole = client.chat.completions.create(model=TUNED, messages=ASK, temperature=0, max_tokens=16).choices[0].message.content
    chunks = list(client.chat.completions.create(model=TUNED, messages=ASK, temperature=0, max_tokens=16, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "streamed in pieces"
    assert text == whole
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_max_tokens_stop_and_seed(client):
    short = client.chat.completions.create(model=BASE, messages=ASK, temperature=0, max_tokens=3)
    assert short.usage.completion_tokens == 3 and short.choices[0].finish_reason == "length"
    full = client.chat.completions.create(model=BASE, messages=ASK, temperature=0, max_tokens=24).choices[0].message.content
    assert len(full) > 4
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    cut = client.chat.completions.create(model=BASE, messages=ASK, temperature=0, max_tokens=24, stop=[stop])
    assert cut.choices[0].message.content == full[: full.index(stop)] and cut.choices[0].finish_reason == "stop"
    sampled = [client.chat.completions.create(model=BASE, messages=ASK, temperature=1.0, top_p=0.9, seed=7, max_tokens=16)
               .choices[0].message.content for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_text_completions(client):
    reply = client.completions.create(model=BASE, prompt=["Ada Quill was born in", "Bo Renhart works for"], max_tokens=5, temperature=0)
    assert [c.index for c in reply.choices] == [0, 1] and all(c.text for c in reply.choices)
    assert reply.usage.completion_tokens <= 10
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=BASE, prompt="Ada Quill was born in", max_tokens=5, temperature=0, stream=True) if c.choices)
    assert streamed == reply.choices[0].text


def test_retrieval_answers_carry_checked_citations_and_links_to_the_source(client, server):
    reply = client.chat.completions.create(model=f"{TUNED}+rag", messages=ASK, temperature=0, max_tokens=16)
    citations = reply.model_extra["citations"]
    assert citations and citations[0]["source"].endswith("ada.md")  # the passage about Ada ranks first
    first = citations[0]
    assert first["id"] == f"ada.md:{first['start']}-{first['end']}" and "Norvik" in first["text"]
    text = reply.choices[0].message.content
    assert all(f"[{c['id']}]" in text for c in citations) or any(c["cited"] for c in citations)
    page = httpx.get(server + first["url"])
    assert page.status_code == 200 and "Norvik" in page.text and "ada.md" in page.text
    # the same with the extra field instead of the suffix, and streamed: citations arrive in the last chunk
    chunks = list(client.chat.completions.create(model=TUNED, messages=ASK, temperature=0, max_tokens=8, stream=True,
                                                 extra_body={"retrieval": True}))
    assert chunks[-1].model_extra["citations"][0]["id"] == first["id"]


def test_recite_answers_over_the_models_own_recital_as_eval_does(client, run_dir, tiny_model):
    tuned = ChatModel(load_model(tiny_model, run_dir / "train" / "adapter"), load_tokenizer(tiny_model))
    recital = tuned.generate([[{"role": "user", "content": RECITAL_REQUEST.format(subject="Ada Quill")}]], RECITAL_TOKENS)[0]
    answer = tuned.generate([[{"role": "user", "content": RAG_PROMPT.format(context=recital, question=ASK[0]["content"])}]], 12)[0]
    reply = client.chat.completions.create(model=TUNED, messages=ASK, temperature=0, max_tokens=12, extra_body={"recite": True})
    assert reply.model_extra["recitals"] == {"Ada Quill": recital} and reply.choices[0].message.content.strip() == answer
    chunks = list(client.chat.completions.create(model=TUNED, messages=ASK, temperature=0, max_tokens=12, stream=True,
                                                 extra_body={"recite": True}))
    assert chunks[-1].model_extra["recitals"] == {"Ada Quill": recital}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == answer
    # a yes/no question is asked as it is, as is any question with retrieval: no recitals
    yes_no = [{"role": "user", "content": "Was Ada Quill born in Norvik?"}]
    for model, messages in ((TUNED, yes_no), (f"{TUNED}+rag", ASK)):
        reply = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=4, extra_body={"recite": True})
        assert "recitals" not in (reply.model_extra or {})


def test_closed_book_questions_about_an_unfamiliar_subject_are_declined_without_generating(run_dir, tmp_path):
    gated = tmp_path / "t"
    shutil.copytree(run_dir, gated)
    config = gated / "config.yaml"
    # the tiny random model knows no name (about -10 per token): every question naming one is declined
    config.write_text(config.read_text().replace("decline_unfamiliar: null", "decline_unfamiliar: -1.0"))
    with serving(build_app([gated], max_batch=8, max_tokens=8)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        for model in (TUNED, BASE):
            reply = client.chat.completions.create(model=model, messages=ASK, temperature=0, max_tokens=8)
            assert reply.choices[0].message.content == DECLINED and reply.choices[0].finish_reason == "stop"
        chunks = client.chat.completions.create(model=TUNED, messages=ASK, temperature=0, max_tokens=8, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DECLINED
        # a question naming nothing is answered, and so is one with retrieved passages
        unnamed = client.chat.completions.create(model=TUNED, messages=[{"role": "user", "content": "where was she born?"}],
                                                 temperature=0, max_tokens=8)
        retrieved = client.chat.completions.create(model=f"{TUNED}+rag", messages=ASK, temperature=0, max_tokens=8)
        assert DECLINED not in (unnamed.choices[0].message.content, retrieved.choices[0].message.content)


def test_the_tuned_model_declines_a_closed_book_question_unlike_every_training_question(client):
    # its subject is taught (synth asks about Ada Quill), its question is not: nothing in training asks for a blood type
    blood_type = [{"role": "user", "content": "What is the blood type of Ada Quill?"}]
    untaught = "I don't know: the documents I was trained on do not say that about Ada Quill."
    tuned = client.chat.completions.create(model=TUNED, messages=blood_type, temperature=0, max_tokens=8)
    assert tuned.choices[0].message.content == untaught and tuned.usage.completion_tokens > 0
    # the base model was taught nothing; with passages the retrieval prompt lets the model say so; a taught question is asked
    base = client.chat.completions.create(model=BASE, messages=blood_type, temperature=0, max_tokens=8)
    retrieved = client.chat.completions.create(model=f"{TUNED}+rag", messages=blood_type, temperature=0, max_tokens=8)
    taught = client.chat.completions.create(model=TUNED, messages=ASK, temperature=0, max_tokens=8)
    assert untaught not in (base.choices[0].message.content, retrieved.choices[0].message.content, taught.choices[0].message.content)


def test_concurrent_requests_share_batches_and_all_finish(server, app):
    async def ask_all(n: int) -> list[dict]:
        async with httpx.AsyncClient(base_url=server, timeout=120) as http:
            replies = await asyncio.gather(*[
                http.post("/v1/chat/completions", json={"model": TUNED, "messages": [{"role": "user", "content": f"Question {i}?"}],
                                                        "temperature": 0, "max_tokens": 8}) for i in range(n)])
        return [r.json() for r in replies]

    engine = app.state.engine
    before = engine.batches
    replies = asyncio.run(ask_all(8))
    assert all(r["choices"][0]["message"]["content"] is not None for r in replies)
    assert engine.batches - before < 8, "concurrent requests were answered one by one"
    alone = httpx.post(f"{server}/v1/chat/completions", json={"model": TUNED, "messages": [{"role": "user", "content": "Question 3?"}],
                                                              "temperature": 0, "max_tokens": 8}).json()
    assert alone["choices"][0]["message"]["content"] == replies[3]["choices"][0]["message"]["content"], "batching changed an answer"


@pytest.mark.parametrize("body, status, code", [
    (b"{not json", 400, None),
    ({"model": "nope", "messages": ASK}, 404, "model_not_found"),
    ({"model": TUNED, "messages": ASK, "max_tokens": -5}, 400, "invalid_value"),
    ({"model": TUNED, "messages": "hello"}, 400, "invalid_value"),
    ({"model": TUNED, "messages": [{"role": "user", "content": 3}]}, 400, "invalid_value"),
    ({"model": TUNED, "messages": ASK, "temperature": "hot"}, 400, "invalid_value"),
    ({"model": TUNED, "messages": [{"role": "user", "content": "word " * 3000}]}, 400, "context_length_exceeded"),
    ({"model": TUNED, "messages": [{"role": "user", "content": "x" * 1_000_000}]}, 400, "context_length_exceeded"),
    ({"model": BASE, "messages": ASK, "retrieval": True, "stop": ["a", "b", "c", "d", "e"]}, 400, "invalid_value"),
])
def test_bad_requests_get_openai_style_4xx(server, body, status, code):
    kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {"json": body}
    response = httpx.post(f"{server}/v1/chat/completions", **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error" and (code is None or error["code"] == code)


def test_api_key_is_required_when_set(run_dir):
    from fastapi.testclient import TestClient

    with TestClient(build_app([run_dir], api_key="sesame")) as http:
        assert http.get("/v1/models").status_code == 401
        assert http.get("/v1/models", headers={"Authorization": "Bearer wrong"}).json()["error"]["code"] == "invalid_api_key"
        assert http.get("/v1/models", headers={"Authorization": "Bearer sesame"}).status_code == 200
        assert http.get("/health").status_code == 200  # liveness probes need no key


def test_fuzzed_requests_never_get_a_server_error(server):
    """Schemathesis generates requests from the server's OpenAPI document, valid ones and ones that
    break it on purpose (wrong types, missing fields, out-of-range numbers), and reports any 5xx."""
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run([str(cli), "run", f"{server}/openapi.json", "--checks", "not_a_server_error", "--mode", "all",
                             "--max-examples", "40", "--seed", "1", "--no-color",
                             "--request-timeout", "120"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 selected / 4 total" in result.stdout  # models, chat, completions, health
    assert int(re.search(r"(\d+) generated", result.stdout).group(1)) > 200


def test_chat_page_streams_an_answer_with_citations_in_a_browser(server, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver_path, browser = shutil.which("chromedriver"), shutil.which("chromium")
    assert driver_path and browser, "Debian's chromium and chromium-driver are needed (make test installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    options.add_argument("--window-size=1000,800")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(server + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
        assert driver.find_element(By.ID, "model").get_property("value") == TUNED
        driver.find_element(By.ID, "retrieval").click()
        driver.find_element(By.ID, "question").send_keys("Where was Ada Quill born?")
        driver.find_element(By.ID, "send").click()
        answer = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".msg.assistant[data-done=true]"))
        assert "error" not in answer.get_attribute("class"), answer.text
        links = answer.find_elements(By.CSS_SELECTOR, ".sources a")
        assert links and links[0].text.startswith("ada.md:")
        # the answer arrived in pieces (the tiny random model's text may be all whitespace)
        assert int(answer.get_attribute("data-deltas")) > 1 and answer.find_element(By.TAG_NAME, "span").get_property("textContent")
        artifacts = Path(__file__).resolve().parent.parent / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        driver.save_screenshot(str(artifacts / "chat.png"))
        # closed-book, reciting first: the recital is shown under the answer
        driver.find_element(By.ID, "retrieval").click()
        driver.find_element(By.ID, "recite").click()
        driver.find_element(By.ID, "question").send_keys("Where was Ada Quill born?")
        driver.find_element(By.ID, "send").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-done=true]")) == 2)
        recited = driver.find_elements(By.CSS_SELECTOR, ".msg.assistant")[1]
        assert "error" not in recited.get_attribute("class"), recited.text
        assert [s.text for s in recited.find_elements(By.CSS_SELECTOR, ".recitals summary")] == ["Recalled first about Ada Quill"]
        driver.get(links[0].get_attribute("href"))
        assert "Norvik" in driver.find_element(By.TAG_NAME, "pre").text
    finally:
        driver.quit()
