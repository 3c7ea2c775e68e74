"""The whole pipeline on the tiny model: outputs, resume, caching, and errors a user would hit."""

import json
import logging
import shutil

import pytest
import torch
import transformers

import steep
from steep import familiarity, pipeline
from steep.stages import synth
from steep.chat import open_chat
from steep.cli import main
from steep.config import SynthConfig, load_config
from steep.retrieval import cite_id
from steep.rundir import trained_output


def run_cli(*args: str) -> int:
    return main(list(args))


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_full_run_writes_every_stage_with_provenance(project):
    assert run_cli("run", str(project / "steep.yaml")) == 0
    run = project / "runs" / "t"
    chunks = {c["id"]: c for c in read(run / "ingest" / "chunks.jsonl")}
    source_texts = {str(project / "docs" / n): (project / "docs" / n).read_text() for n in ("ada.md", "bo.txt")}
    for c in chunks.values():  # spans point at the words in the user's file
        assert source_texts[c["source"]][c["start"] : c["end"]] == c["text"]
    qa = read(run / "curate" / "qa.jsonl")
    assert qa and all(q["messages"][-1]["role"] == "assistant" and q["metadata"]["chunk_id"] in chunks for q in qa)
    texts = read(run / "curate" / "texts.jsonl")
    assert {t["metadata"]["method"] for t in texts} >= {"original", "full_name", "permutation"}
    assert (run / "train" / "adapter" / "adapter_model.safetensors").exists()
    results = json.loads((run / "eval" / "results.json").read_text())
    conditions = results["conditions"]
    assert list(conditions) == ["base", "base+rag", "tuned", "tuned+rag", "tuned+oracle", "tuned+recite"] and conditions["tuned"]["n"] == 2
    assert set(conditions["base"]["by_kind"]) == {"city", "employer"}
    for c in conditions.values():
        assert 0 <= c["contained_ci"][0] <= c["contained"] <= c["contained_ci"][1] <= 1
    # every question's answer is in some chunk, and with this few chunks the top 5 holds it
    assert results["retrieval"]["n"] == 2 and results["retrieval"]["recall@5"] == 1.0
    rag = read(run / "eval" / "answers_tuned+rag.jsonl")
    assert all(1 <= len(r["context"]) <= 5 and set(r["invalid_citations"]) <= set(r["citations"]) for r in rag)
    by_cite_id = {cite_id(c): c for c in chunks.values()}
    for r in read(run / "eval" / "answers_tuned+oracle.jsonl"):  # the oracle chunk holds the answer
        [given] = r["context"]
        assert any(a in by_cite_id[given]["text"] for a in r["answers"])
    for r in read(run / "eval" / "answers_tuned+recite.jsonl"):  # what the model recited, under the names it was about
        assert set(r["recitals"]) == ({"Ada Quill"} if "Ada Quill" in r["question"] else {"Bo Renhart"})
    assert results["forgetting"]["base"]["capitals_n"] > 200 and "accuracy_change_ci_points" in results["forgetting"]
    assert results["comparisons"]["tuned+oracle vs tuned+rag"]["ci"][0] <= results["comparisons"]["tuned+oracle vs tuned+rag"]["difference"]
    report = (run / "report.md").read_text()
    assert "| base |" in report and "| tuned+rag |" in report and "What is the hometown of Ada Quill?" in report
    assert "## Retrieval" in report and "## General ability (forgetting)" in report
    assert load_config(run / "config.yaml").name == "t" and (run / "steep.log").read_text()


def test_rerun_skips_finished_stages_and_a_changed_setting_reruns_only_what_depends_on_it(project, monkeypatch):
    cfg = str(project / "steep.yaml")
    assert run_cli("run", cfg) == 0
    calls = []
    monkeypatch.setattr(synth, "synthesize", lambda *a: calls.append("synth"))
    monkeypatch.setattr(pipeline, "train", lambda *a: calls.append("train"))
    assert run_cli("run", cfg) == 0 and calls == []
    monkeypatch.chdir(project / "docs")  # the same config named from another folder: nothing reruns
    assert run_cli("run", "../steep.yaml") == 0 and calls == []
    results = project / "runs" / "t" / "eval" / "results.json"
    before = results.stat().st_mtime_ns
    assert run_cli("run", cfg, "eval.max_new_tokens=4") == 0 and calls == []  # only eval reran
    assert results.stat().st_mtime_ns != before
    # a copied run directory uses its own trained model, not the one at the path it was copied from
    moved = project / "moved"
    shutil.copytree(project / "runs" / "t", moved / "t")
    shutil.rmtree(project / "runs" / "t" / "train" / "adapter")
    assert run_cli("run", cfg, f"runs_dir={moved}", "eval.max_new_tokens=5") == 0 and calls == []
    assert trained_output(moved / "t") == moved / "t" / "train" / "adapter"


def test_a_stage_that_reruns_and_writes_the_same_data_does_not_rerun_training(project, monkeypatch):
    cfg = str(project / "steep.yaml")
    assert run_cli("run", cfg) == 0
    # an upgrade adds a synth setting, at a default that changes no data: synth's settings differ
    settings = SynthConfig.model_dump
    monkeypatch.setattr(SynthConfig, "model_dump", lambda self, **kw: {**settings(self, **kw), "added_by_an_upgrade": 0})
    calls, real_synthesize = [], synth.synthesize
    monkeypatch.setattr(synth, "synthesize", lambda *a: calls.append("synth") or real_synthesize(*a))

    def retrain(*args):
        raise AssertionError("trained again")

    monkeypatch.setattr(pipeline, "train", retrain)
    assert run_cli("run", cfg) == 0 and calls == ["synth"]
    monkeypatch.setattr(synth, "VERSION", synth.VERSION + 1)  # an upgrade changes what synth's code writes
    assert run_cli("run", cfg) == 0 and calls == ["synth", "synth"]
    monkeypatch.setattr(familiarity, "VERSION", familiarity.VERSION + 1)  # other questions declined unasked: eval asks again
    evals, real_answer = [], pipeline.evaluate.answer_condition
    monkeypatch.setattr(pipeline.evaluate, "answer_condition", lambda *a: evals.append("eval") or real_answer(*a))
    assert run_cli("run", cfg) == 0 and evals
    evals.clear()
    assert run_cli("run", cfg) == 0 and not evals  # and keeps that eval after
    with pytest.raises(AssertionError, match="trained again"):  # data that differs does reach training
        pipeline.run(load_config(project / "steep.yaml", ["synth.number_drills=12"]))


def test_interrupted_training_resumes_from_its_checkpoint(project, monkeypatch, caplog):
    cfg = str(project / "steep.yaml")
    real_step = transformers.Trainer.training_step
    steps = []

    def interrupt_after_three(self, *args, **kwargs):
        steps.append(1)
        if len(steps) == 3:
            raise KeyboardInterrupt
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "training_step", interrupt_after_three)
    assert run_cli("run", cfg, "train.epochs=3") == 130
    run = project / "runs" / "t"
    assert (run / "synth" / "done.json").exists() and not (run / "train" / "done.json").exists()
    elapsed = run / "train" / "checkpoints" / "checkpoint-2" / "steep-elapsed.json"
    assert json.loads(elapsed.read_text())["seconds"] > 0
    elapsed.write_text(json.dumps({"seconds": 1000.0}))  # as if the first session had trained that long
    monkeypatch.setattr(transformers.Trainer, "training_step", real_step)
    monkeypatch.setattr(synth, "synthesize", lambda *a: pytest.fail("synth must not rerun"))
    with caplog.at_level(logging.INFO, logger="steep"):
        assert run_cli("run", cfg, "train.epochs=3") == 0
    assert "resuming training from" in caplog.text and "checkpoint-2" in caplog.text
    assert json.loads((run / "train" / "done.json").read_text())["seconds"] >= 1000  # both sessions counted


def test_snapshots_answer_the_questions_and_the_report_shows_the_learning_curve(project):
    # a question about a taught subject unlike every training question: declined unasked (decline_untaught) by each snapshot
    blood_type = {"question": "What is the blood type of Ada Quill?", "answers": ["unknown"], "answer_type": "unanswerable", "kind": "unknown"}
    with (project / "questions.jsonl").open("a") as questions:
        questions.write(json.dumps(blood_type) + "\n")
    assert run_cli("run", str(project / "steep.yaml"), "train.epochs=2", "train.snapshot_epochs=[1]", "eval.conditions=[tuned]", "eval.forgetting=false") == 0
    run = project / "runs" / "t"
    [point] = json.loads((run / "eval" / "results.json").read_text())["learning_curve"]
    assert point["epochs"] == 1 and point["n"] == 3 and set(point["by_kind"]) == {"city", "employer", "unknown"}
    assert 0 < point["tokens_trained"] < json.loads((run / "train" / "done.json").read_text())["summary"]["tokens_trained"]
    answers = read(run / "eval" / "answers_tuned_after_1_passes.jsonl")
    assert [a["question"] for a in answers] == [a["question"] for a in read(run / "eval" / "answers_tuned.jsonl")]
    for rows in (answers, read(run / "eval" / "answers_tuned.jsonl")):
        assert [r["declined_unasked"] for r in rows] == [False, False, True] and rows[2]["contained"] == 1.0
    report = (run / "report.md").read_text()
    trained = json.loads((run / "train" / "done.json").read_text())["summary"]["tokens_trained"]
    assert "## Learning curve" in report and f"| 1 | {point['tokens_trained']:,} | " in report and f"| 2 | {trained:,} | " in report
    page = (run / "report.html").read_text()
    curve = page[page.index('<h2 id="curve">') :]
    assert "<svg" in curve[: curve.index("<h2", 5)]  # the chart sits under its heading


def test_bad_inputs_get_clear_errors(project, caplog):
    cfg = str(project / "steep.yaml")
    cases = [
        (["ingest.inputs=[nowhere]"], "input not found"),
        (["eval.questions=missing.jsonl"], "questions file not found"),
        (["train.epocs=1"], "did you mean 'epochs'"),
        (["train.snapshot_epochs=[1]"], "snapshot_epochs [1.0] must lie between 0 and train.epochs=1"),
        (["model=/no/such/model"], "not found"),
    ]
    for overrides, message in cases:
        caplog.clear()
        assert run_cli("run", cfg, *overrides) == 2, overrides
        assert message in caplog.text
    (project / "questions.jsonl").write_text('{"question": "q?", "answers": ["a"]}\nnot json\n')
    caplog.clear()
    assert run_cli("eval", cfg) == 2 and "questions.jsonl:2: malformed JSON" in caplog.text
    empty = project / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("\n\n")
    caplog.clear()
    assert run_cli("ingest", cfg, f"ingest.inputs=[{empty}]") == 2 and "corpus is empty" in caplog.text


def test_python_api_and_chat(project, capsys):
    ingested = steep.ingest(project / "steep.yaml")
    chunks = read(ingested.chunks)
    assert len(chunks) == ingested.summary["chunks"] >= 2 and all("source" in c for c in chunks)
    texts, qa = steep.synth(project / "steep.yaml")
    assert texts and qa
    adapter = steep.train(project / "steep.yaml")
    assert adapter.name == "adapter"
    run = project / "runs" / "t"
    assert run_cli("chat", "--run", str(run), "--max-new-tokens", "3", "Where", "is", "Norvik?") == 0
    assert capsys.readouterr().out.endswith("\n")
    # a taught subject asked what no training question asked is declined (decline_untaught), by the tuned model only
    blood_type = ["What", "is", "the", "blood", "type", "of", "Ada", "Quill?"]
    assert run_cli("chat", "--run", str(run), "--max-new-tokens", "3", *blood_type) == 0
    assert capsys.readouterr().out == "I don't know: the documents I was trained on do not say that about Ada Quill.\n"
    assert run_cli("chat", "--run", str(run), "--base", "--max-new-tokens", "3", *blood_type) == 0
    assert "I don't know" not in capsys.readouterr().out
    # --recite: what the model says about the question's name is shown, then the answer over it
    assert run_cli("chat", "--run", str(run), "--recite", "--max-new-tokens", "3", "Where", "was", "Ada", "Quill", "born?") == 0
    assert capsys.readouterr().out.startswith("(recalled first about Ada Quill: ")
    # with decline_unfamiliar on, a name the (random) model does not know is declined, not answered
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("decline_unfamiliar: null", "decline_unfamiliar: -1.0"))
    assert run_cli("chat", "--run", str(run), "--max-new-tokens", "3", "Where", "was", "Ada", "Quill", "born?") == 0
    assert capsys.readouterr().out == "I don't know: I have never heard of Ada Quill.\n"
    # --run gives the tuned model, --base the untouched one
    ids = torch.tensor([[1, 2, 3, 4]])
    tuned, base = open_chat(run_dir=run).model, open_chat(run_dir=run, base=True).model
    with torch.no_grad():
        assert not torch.allclose(tuned(ids).logits, base(ids).logits)


def test_init_writes_a_config_that_loads(tmp_path):
    path = tmp_path / "steep.yaml"
    assert run_cli("init", str(path)) == 0
    assert load_config(path).train.method == "lora"
    assert run_cli("init", str(path)) == 2  # never overwrites silently


def test_chat_data_among_the_inputs_joins_the_training_set(project):
    chat = project / "docs" / "chat.jsonl"
    chat.write_text(json.dumps({"conversations": [{"from": "human", "value": "Which ship does Carvo run?"},
                                                  {"from": "gpt", "value": "The Carvo Star."}]}) + "\n")
    assert run_cli("curate", str(project / "steep.yaml"), "synth.roundtrip=false") == 0
    qa = read(project / "runs" / "t" / "curate" / "qa.jsonl")
    ingested = [q for q in qa if q["metadata"]["method"] == "ingested"]
    assert [q["messages"][1]["content"] for q in ingested] == ["The Carvo Star."]
    assert ingested[0]["metadata"]["source"] == str(chat) and len(qa) > 1
    # chat data alone is a corpus too: nothing to synthesize, the conversations are the training set
    assert run_cli("curate", str(project / "steep.yaml"), f"ingest.inputs=[{chat}]", "name=chatonly") == 0
    assert [q["metadata"]["method"] for q in read(project / "runs" / "chatonly" / "curate" / "qa.jsonl")] == ["ingested"]


def test_only_held_out_questions_decontaminate_the_training_set(project):
    chat = project / "docs" / "chat.jsonl"
    chat.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
                            for q, a in [("Which ship does Carvo run?", "The Carvo Star."), ("Who owns the Carvo Star?", "Bo Renhart.")]))
    questions = [{"question": "Which ship does Carvo run?", "answers": ["The Carvo Star"], "held_out": False},
                 {"question": "Who owns the Carvo Star?", "answers": ["Bo Renhart"]}]
    (project / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    assert run_cli("curate", str(project / "steep.yaml"), "synth.roundtrip=false") == 0
    kept = [q["messages"][0]["content"] for q in read(project / "runs" / "t" / "curate" / "qa.jsonl")]
    leaked = [q["messages"][0]["content"] for q in read(project / "runs" / "t" / "curate" / "leaked.jsonl")]
    assert "Which ship does Carvo run?" in kept and "Who owns the Carvo Star?" in leaked
    (project / "questions.jsonl").write_text(json.dumps(questions[0] | {"held_out": "no"}) + "\n")
    assert run_cli("curate", str(project / "steep.yaml")) == 2


def test_max_forgetting_fails_the_run_after_writing_the_report(project, monkeypatch, caplog):
    cfg = str(project / "steep.yaml")
    assert run_cli("run", cfg) == 0
    dropped = {"accuracy_change_points": -3.0, "accuracy_change_ci_points": [-5.0, -1.0]}
    real_compare = pipeline.forgetting.compare
    monkeypatch.setattr(pipeline.forgetting, "compare", lambda base, tuned: real_compare(base, tuned) | dropped)
    assert run_cli("eval", cfg, "eval.max_forgetting=4") == 0  # a 3-point drop is allowed
    assert run_cli("eval", cfg, "eval.max_forgetting=2") == 4
    assert "fell 3.0 points" in caplog.text and (project / "runs" / "t" / "report.md").exists()


def test_search_prints_the_best_chunks_with_provenance_and_reuses_its_index(project, capsys):
    cfg = str(project / "steep.yaml")
    assert run_cli("search", cfg, "Which company employs Bo Renhart?", "-k", "2") == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("1. [bo.txt:") and str(project / "docs" / "bo.txt") in first and "\n2. [" in out
    marker = project / "runs" / "t" / "index" / "done.json"
    built = marker.stat().st_mtime_ns
    assert run_cli("search", cfg, "Where was Ada Quill born?") == 0
    assert capsys.readouterr().out.startswith("1. [ada.md:") and marker.stat().st_mtime_ns == built
    (project / "docs" / "bo.txt").write_text((project / "docs" / "bo.txt").read_text() + "\n\nBo Renhart keeps bees in the garden behind his house.")
    assert run_cli("search", cfg, "Who keeps bees?", "-k", "1") == 0
    assert "keeps bees" in capsys.readouterr().out and marker.stat().st_mtime_ns != built  # chunks changed: rebuilt
