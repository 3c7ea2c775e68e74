"""A teacher behind an OpenAI-compatible server (synth.teacher_url): `steep serve` over the tiny
model, asked by synth through the `openai` client; the pairs match the same model run here, an
interrupted synth asks only what it had not, and each way of getting it wrong says what."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.responses import JSONResponse

from steep.cli import main
from steep.rundir import read_jsonl
from steep.serve import build_app

from conftest import serving

KEY_ENV = "STEEP_TEST_TEACHER_KEY"


@pytest.fixture(scope="module")
def server(tiny_model: Path):
    """The tiny model served one request at a time (as the local teacher's batches of one, so
    greedy replies match token for token), behind an API key; counts the completions asked, and
    answers 500 to those past `fail_after`."""
    app = build_app([], base=str(tiny_model), api_key="sesame", max_batch=1, max_tokens=64)
    app.state.asked, app.state.fail_after = 0, None

    @app.middleware("http")
    async def count_and_fail(request, call_next):
        if request.url.path == "/v1/chat/completions":
            app.state.asked += 1
            if app.state.fail_after is not None and app.state.asked > app.state.fail_after:
                return JSONResponse({"error": {"message": "overloaded", "type": "server_error"}}, status_code=500)
        return await call_next(request)

    with serving(app) as url:
        yield app, url


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sesame")


def synth(project: Path, name: str, *overrides: str) -> int:
    # batches of one: the same batching on both sides, and a set order of replies
    return main(["synth", str(project / "steep.yaml"), f"name={name}", "synth.teacher_qa=true", "synth.batch_size=1", *overrides])


def served_teacher(url: str, model: str) -> list[str]:
    return [f"synth.teacher_url={url}/v1", f"synth.teacher={model}", f"synth.teacher_api_key_env={KEY_ENV}"]


def outputs(project: Path, name: str) -> tuple[list[dict], list[str], dict]:
    """A synth's QA pairs, its teacher's replies in the order given, and its counts."""
    folder = project / "runs" / name / "synth"
    qa = read_jsonl(folder / "qa.jsonl")
    replies = [json.loads(line)["reply"] for line in (folder / "teacher_replies.jsonl").read_text().splitlines()
               if not line.startswith('{"key": "a line cut')]
    summary = json.loads((folder / "done.json").read_text())["summary"]
    return qa, replies, summary


def test_a_served_teacher_writes_and_checks_the_pairs_the_same_model_does_here(project, server, tiny_model, key):
    app, url = server
    assert synth(project, "here") == 0
    app.state.asked = 0
    assert synth(project, "served", *served_teacher(url, tiny_model.name)) == 0
    qa, replies, summary = outputs(project, "served")
    assert app.state.asked == len(replies) > 0, "every teacher prompt went to the server, once"
    chunks, checked = 3, 4  # the teacher writes a pair per chunk, then checks the echo pairs (none of them of the heading)
    assert summary["teacher_unparsed"] + summary["qa_made"].get("teacher", 0) == chunks
    assert len(replies) == chunks + checked + summary["qa_made"].get("teacher", 0)
    assert (qa, replies, summary) == outputs(project, "here")


def test_an_interrupted_synth_asks_the_server_only_what_it_had_not(project, server, tiny_model, key, caplog):
    app, url = server
    teacher = served_teacher(url, tiny_model.name)
    # 3 pairs written, then 5 checks in a part of 8: the writing is kept, the checks fail
    app.state.asked, app.state.fail_after = 0, 6
    try:
        with caplog.at_level(logging.ERROR, logger="steep"):
            assert synth(project, "cut", *teacher) == 2
    finally:
        app.state.fail_after = None
    assert "answered 500" in caplog.text and "overloaded" in caplog.text
    recorded = project / "runs" / "cut" / "synth" / "teacher_replies.jsonl"
    assert len(recorded.read_text().splitlines()) == 3
    assert not (recorded.parent / "done.json").exists()
    with recorded.open("a") as f:
        f.write('{"key": "a line cut sh')  # stopped while writing
    app.state.asked = 0
    assert synth(project, "cut", *teacher) == 0
    qa, replies, summary = outputs(project, "cut")
    assert app.state.asked == len(replies) - 3, "the three replies written down were not asked again"
    assert synth(project, "whole", *teacher) == 0
    assert (qa, replies, summary) == outputs(project, "whole")


@pytest.mark.parametrize("case, message", [
    ("model", "does not serve 'nope' (synth.teacher); it serves: tiny-llama"),
    ("key", f"refused the API key read from ${KEY_ENV}"),
    ("down", "could not be reached"),
    ("unnamed", "teacher_url needs teacher"),
])
def test_a_teacher_that_cannot_be_asked_is_named_before_any_synth_is_written(project, server, tiny_model, key, monkeypatch, caplog, case, message):
    app, url = server
    teacher = {"model": served_teacher(url, "nope"),
               "key": served_teacher(url, tiny_model.name),
               "down": served_teacher("http://127.0.0.1:9", tiny_model.name),  # the discard port: nothing listens
               "unnamed": [f"synth.teacher_url={url}/v1"]}[case]
    if case == "key":
        monkeypatch.setenv(KEY_ENV, "wrong")
    with caplog.at_level(logging.ERROR, logger="steep"):
        assert synth(project, "bad", *teacher) == 2
    assert message in caplog.text
    assert not (project / "runs" / "bad" / "synth" / "done.json").exists()
