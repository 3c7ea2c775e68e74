"""The knowledge benchmark: its world, documents and probes (answerable from the documents, worded
apart from them and from synth), strict scoring, and one tiny run of the bench end to end."""

import json
import re
import runpy
from pathlib import Path

import pytest

from steep.cli import main
from steep.knowledge import corpus, probes
from steep.knowledge.bench import VARIANTS, paired, paired_table, variant_config
from steep.knowledge.corpus import documents, make_world
from steep.knowledge.probes import KINDS
from steep.rundir import write_jsonl
from steep.scoring import normalize, parse_choice, parse_yes_no, says_unknown, score
from steep.stages import synth

STOP = {"a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "is", "was", "did", "does", "do", "which",
        "what", "who", "where", "when", "how", "its", "it", "has", "have", "name", "that", "this", "s", "these", "days"}


def words(template: str) -> set[str]:
    return set(normalize(re.sub(r"\{\w+\}", " ", template)).split()) - STOP


def bigrams(template: str) -> set[tuple[str, str]]:
    w = normalize(re.sub(r"\{\w+\}", " X ", template)).split()
    return {(a, b) for a, b in zip(w, w[1:]) if "x" not in (a, b) and not {a, b} <= STOP}


@pytest.fixture(scope="module")
def world():
    return make_world(40, seed=3)


@pytest.fixture(scope="module")
def docs(world):
    return documents(world, seed=3)


@pytest.fixture(scope="module")
def probe_set(world):
    return probes.probes(world, seed=3)


def section(docs, name: str) -> str:
    """The text under an entity's heading."""
    for _, text in docs:
        m = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        if m:
            return m.group(1)
    raise AssertionError(f"no section for {name}")


def test_the_world_is_seeded_and_sized(world):
    again = make_world(40, seed=3)
    assert again.people == world.people and again.organizations == world.organizations
    assert make_world(40, seed=4).people != world.people
    assert len(world.people) + len(world.organizations) == 40 and world.organizations and world.people
    assert all(len([k for k in p if k not in ("name", "pronoun")]) >= 6 for p in world.people)
    assert len({p["name"] for p in world.people} | {o["name"] for o in world.organizations}) == 40


def test_documents_read_like_documents(world, docs):
    text = "\n".join(t for _, t in docs)
    assert all(t.count("\n## ") >= 2 for _, t in docs[:-1])  # several entities per document
    for p in world.people:  # the name once, pronouns after it, facts spread over two paragraphs
        body = section(docs, p["name"])
        assert body.count(p["name"]) == 1 and re.search(r"\b(He|She|he|she)\b", body)
        assert len([para for para in body.split("\n\n") if para.strip()]) == 2
    assert any(f.format(city=c)[:30] in text for f in corpus.FILLER for c in world.cities)
    first_sentences = {section(docs, p["name"]).split(".")[0].split(p["name"])[-1][:12] for p in world.people}
    assert len(first_sentences) > 1  # more than one wording


def test_every_probe_is_answerable_from_the_documents_but_the_unanswerable_ones(world, docs, probe_set):
    everything = normalize("\n".join(t for _, t in docs))
    names = {p["name"] for p in world.people} | {o["name"] for o in world.organizations}
    assert {p["kind"] for p in probe_set} == set(KINDS)
    for p in probe_set:
        if p["kind"] in ("direct", "rephrased"):
            body = normalize(section(docs, p["entity"]))
            assert any(f" {normalize(a)} " in f" {body} " for a in p["answers"]), p
        elif p["kind"] == "yesno" and p["attribute"] != "employer_city":
            # derive the answer again from the document text alone
            body = section(docs, p["entity"])
            number = int(re.findall(r"\d[\d,]*", p["question"])[-1].replace(",", ""))
            if p["attribute"] in ("born_before", "founded_before"):
                year = int(re.search(r"\b(1[89]\d\d|20\d\d)\b", body).group())
                assert p["answers"] == ["yes" if year < number else "no"], p
            elif p["attribute"] == "more_employees":
                staff = int(re.search(r"\b(\d+) (people|employees)\b", body).group(1))
                assert p["answers"] == ["yes" if staff > number else "no"], p
        elif p["kind"] == "comparison":
            a, b = p["options"]
            years = [int(re.search(r"\b(1[89]\d\d|20\d\d)\b", section(docs, n)).group()) for n in (a, b)]
            assert set(p["answers"]) <= {a, b} and len(p["answers"]) == 1
            if p["attribute"] in ("born_earlier", "founded_earlier") and years[0] != years[1]:
                assert p["answers"] == [a if years[0] < years[1] else b], p
    for p in probe_set:
        if p["kind"] == "yesno" and p["attribute"] == "employer_city":
            person = next(x for x in world.people if x["name"] == p["entity"])
            employer = normalize(section(docs, person["employer"]))
            city = re.search(r"based in (\w+)", p["question"]).group(1)
            assert (f" {normalize(city)} " in f" {employer} ") == (p["answers"] == ["yes"]), p
    unknown = [p for p in probe_set if p["kind"] == "unknown"]
    assert unknown and all(p["answers"] == ["unknown"] and p["answer_type"] == "unanswerable" for p in unknown)
    for p in unknown:  # a made-up entity appears nowhere; a missing attribute is never mentioned
        if p["entity"] not in names:
            assert normalize(p["entity"]) not in everything
    for missing in ("spouse", "blood type", "chief financial officer", "revenue", "married", "wife", "husband"):
        assert missing not in everything
    probed = {p["entity"] for p in probe_set if p["kind"] == "direct"}
    assert len(probed) == len(world.people) // 2 + len(world.organizations) // 2  # the rest only teach
    assert all(p["held_out"] == (p["kind"] != "direct") for p in probe_set)  # direct probes measure memorization
    yes = [p for p in probe_set if p["kind"] == "yesno" and p["answers"] == ["yes"]]
    assert 0.35 < len(yes) / sum(p["kind"] == "yesno" for p in probe_set) < 0.65  # balanced


def test_rephrased_and_probe_templates_stay_apart_from_documents_and_synth():
    doc_templates = [t for pool in (corpus.PERSON_SENTENCES, corpus.ORGANIZATION_SENTENCES) for ts in pool.values() for t in ts]
    doc_words = set().union(*(words(t) for t in doc_templates))
    for _, template, _ in probes.REPHRASED_PERSON + probes.REPHRASED_ORGANIZATION:
        assert not words(template) & doc_words, (template, words(template) & doc_words)
    synth_templates = synth.QUESTION_TEMPLATES
    synth_bigrams = set().union(*(bigrams(t) for t in synth_templates))
    probe_templates = ([t for _, t, _ in probes.PERSON_TEMPLATES + probes.ORGANIZATION_TEMPLATES]
                       + list(probes.YESNO.values()) + list(probes.COMPARISON.values()) + list(probes.UNKNOWN.values()))
    for template in probe_templates:
        assert template not in synth_templates
    for _, template, _ in probes.REPHRASED_PERSON + probes.REPHRASED_ORGANIZATION:
        assert not bigrams(template) & synth_bigrams, template
    for template in list(probes.YESNO.values()) + list(probes.COMPARISON.values()) + list(probes.UNKNOWN.values()):
        assert not bigrams(template) & synth_bigrams, (template, bigrams(template) & synth_bigrams)


@pytest.mark.parametrize("reply, expected", [
    ("Yes.", "yes"), ("No, she was born in 1981.", "no"), ("She was born in 1960, so yes.", "yes"),
    ("Yes and no.", "yes"), ("It was founded in 1901.", None), ("I think yes, or maybe no", None), ("", None),
])
def test_yes_no_is_parsed_strictly(reply, expected):
    assert parse_yes_no(reply) == expected


def test_choice_takes_the_option_named_first_and_nothing_else():
    options = ["Ada Quill", "Bo Renhart"]
    assert parse_choice("Bo Renhart was born earlier than Ada Quill.", options) == "Bo Renhart"
    assert parse_choice("Ada Quill.", options) == "Ada Quill"
    assert parse_choice("Ada was born first.", options) is None  # half a name is not a choice
    assert parse_choice("Ada Quill was born in 1961 and Bo Renhart in 1975, so Ada Quill was born first.", options) == "Ada Quill"
    assert parse_choice("Ada Quill was born in 1961 and Bo Renhart in 1955, so Bo Renhart was born first.", options) == "Bo Renhart"
    assert parse_choice("Ada Quill or Bo Renhart, so both.", options) == "Ada Quill"  # no single option concluded: the first
    assert score("Bo Renhart", ["Bo Renhart"], "choice", options)["contained"] == 1.0
    assert score("Ada Quill", ["Bo Renhart"], "choice", options)["contained"] == 0.0


@pytest.mark.parametrize("reply, expected", [
    ("Ada Quill was not born earlier than Bo Renhart.", "Bo Renhart"),  # its statement negated: the other of two
    ("Ada Quill wasn't born first.", "Bo Renhart"),
    ("1971 is after 1953, so Ada Quill was not born earlier.", "Bo Renhart"),
    ("Not Ada Quill but Bo Renhart.", "Bo Renhart"),  # a denied option is passed over
    ("Neither Ada Quill nor Bo Renhart.", None),
    ("Ada Quill was born first and Bo Renhart was not.", "Ada Quill"),  # the negation is Bo Renhart's statement
    ("Ada Quill, not Bo Renhart, was born first.", "Ada Quill"),
    ("Ada Quill was born in 1961 and Bo Renhart was not born until 1975.", "Ada Quill"),
    ("Ada Quill's company was not founded earlier than Bo Renhart's.", "Bo Renhart"),
])
def test_a_choice_reads_the_negations_around_the_option(reply, expected):
    assert parse_choice(reply, ["Ada Quill", "Bo Renhart"]) == expected


def test_a_negated_statement_chooses_nothing_among_three():
    assert parse_choice("Ada Quill was not born first.", ["Ada Quill", "Bo Renhart", "Cy Dunn"]) is None


@pytest.mark.parametrize("reply", ["I don't know.", "The documents do not say.", "Unknown.", "There is no information about her spouse.",
                                   "That is not mentioned in the text.", "I’m not sure, I cannot tell."])
def test_declining_to_answer_is_recognised(reply):
    assert says_unknown(reply)
    assert score(reply, ["unknown"], "unanswerable")["contained"] == 1.0


@pytest.mark.parametrize("reply", ["Her spouse is Ada Quill.", "The company knows its market.", "Nobody knows 42.",
                                   "The name of her spouse is not known, but it is believed to be Elena.",
                                   "Her birth date is unknown. However, the most widely accepted date is 2018-01-01."])
def test_an_answer_is_not_taken_for_declining(reply):
    assert score(reply, ["unknown"], "unanswerable")["contained"] == 0.0


def test_bench_runs_variants_end_to_end_and_tabulates_every_probe_kind(tmp_path, tiny_model, capsys):
    code = main(["bench", "knowledge", "--entities", "4", "--seed", "1", "--variants", "base", "qa-only", "--dir", str(tmp_path),
                 "--model", str(tiny_model), "train.epochs=1", "train.batch_size=8", "eval.max_new_tokens=4", "synth.batch_size=8",
                 "synth.number_drills=24", "train.snapshot_epochs=[0.5]"])
    assert code == 0
    result = json.loads((tmp_path / "knowledge.json").read_text())
    assert [r["variant"] for r in result["variants"]] == ["base", "qa-only after 0.5 passes", "qa-only", "qa-only+recite"]
    base, half, tuned, recited = result["variants"]
    # the same run answering again, over its recitals (steep.recital): its training and minutes, its own scores
    assert (recited["tokens_trained"], recited["seconds"], recited["n"]) == (tuned["tokens_trained"], tuned["seconds"], tuned["n"])
    assert recited["by_kind"] == json.loads((tmp_path / "runs" / "qa-only" / "eval" / "results.json").read_text())["conditions"]["tuned+recite"]["by_kind"]
    assert 0 < half["tokens_trained"] < tuned["tokens_trained"] and half["n"] == tuned["n"] and half["seconds"] > 0
    assert result["machine"]["cores"] >= 1 and isinstance(result["machine"]["bf16"], bool)
    assert set(base["by_kind"]) == set(KINDS) and all(base["by_kind"][k] is not None for k in KINDS)
    assert base["tokens_trained"] == 0 and tuned["tokens_trained"] > 0
    assert tuned["n"] == sum(1 for _ in (tmp_path / "probes.jsonl").open())
    answers = [json.loads(line) for line in (tmp_path / "runs" / "qa-only" / "eval" / "answers_tuned.jsonl").open()]
    assert {a["answer_type"] for a in answers} == {"short", "yes_no", "choice", "unanswerable"}
    base_answers = [json.loads(line) for line in (tmp_path / "runs" / "base" / "eval" / "answers_base.jsonl").open()]
    [pair] = result["paired"]  # without the defaults, the first variant is the reference
    assert (pair["variant"], pair["against"]) == ("qa-only", "base")
    diffs = [a["contained"] - b["contained"] for a, b in zip(answers, base_answers)]
    assert pair["difference"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-4) and pair["ci"][0] <= pair["difference"] <= pair["ci"][1]
    assert pair["n"] == len(answers)
    for kind in KINDS:
        kind_diffs = [d for d, a in zip(diffs, answers) if a["kind"] == kind]
        assert (pair["by_kind"][kind]["gained"], pair["by_kind"][kind]["lost"]) == (kind_diffs.count(1.0), kind_diffs.count(-1.0))
    out = capsys.readouterr().out
    assert "| base |" in out and "| qa-only |" in out and "| qa-only after 0.5 passes |" in out and "rephrased" in out
    assert "| qa-only | base |" in (tmp_path / "knowledge.md").read_text()
    with pytest.raises(SystemExit):
        main(["bench", "knowledge", "--variants", "nonsense", "--dir", str(tmp_path / "x")])


def test_variants_are_paired_with_the_defaults_probe_by_probe(tmp_path, caplog):
    def answered(variant: str, kinds_right: list[tuple[str, int]], question: str = "Q{}") -> None:
        rows = [{"question": question.format(i), "kind": kind, "contained": float(right)} for i, (kind, right) in enumerate(kinds_right)]
        write_jsonl(tmp_path / "runs" / variant / "eval" / "answers_tuned.jsonl", rows)

    answered("defaults", [("direct", 1), ("direct", 0), ("yesno", 1), ("yesno", 0)])
    answered("better", [("direct", 1), ("direct", 1), ("yesno", 0), ("yesno", 1)])
    answered("other-probes", [("direct", 1)] * 4, question="R{}")
    [pair] = paired(tmp_path, ["better", "defaults", "other-probes"])
    assert (pair["variant"], pair["against"], pair["n"]) == ("better", "defaults", 4)
    assert pair["by_kind"]["direct"] == {"gained": 1, "lost": 0} and pair["by_kind"]["yesno"] == {"gained": 1, "lost": 1}
    assert pair["difference"] == 0.25 and pair["by_kind"]["comparison"] == {"gained": 0, "lost": 0}
    assert "other-probes" in caplog.text  # not paired, and the bench's table is still written
    assert "| better | defaults | +1 of 4 | +25.0% (" in paired_table([pair])


def test_two_answer_files_are_paired_by_kind_and_by_attribute(tmp_path, monkeypatch, capsys):
    """bench/pair_answers.py, for runs in different folders: counts per kind and per attribute."""
    probes_asked = [("Q0", "direct", "birth_city"), ("Q1", "direct", "employer"), ("Q2", "direct", "employer"), ("Q3", "yesno", "born_before")]
    write_jsonl(tmp_path / "probes.jsonl", [{"question": q, "kind": k, "attribute": a} for q, k, a in probes_asked])
    for name, right in (("before", [1, 0, 1, 1]), ("after", [1, 1, 0, 0])):
        write_jsonl(tmp_path / f"{name}.jsonl", [{"question": q, "kind": k, "contained": float(r)} for (q, k, _), r in zip(probes_asked, right)])
    script = str(Path(__file__).parents[1] / "bench" / "pair_answers.py")
    monkeypatch.setattr("sys.argv", [script, str(tmp_path / "before.jsonl"), str(tmp_path / "after.jsonl"), "--probes", str(tmp_path / "probes.jsonl")])
    runpy.run_path(script, run_name="__main__")
    out = capsys.readouterr().out
    assert "4 probes: -25.0%" in out
    assert "| direct | 2 of 3 | 2 of 3 | +1 | -1 |" in out and "| yesno | 1 of 1 | 0 of 1 | +0 | -1 |" in out
    assert "| direct / employer | 1 of 2 | 1 of 2 | +1 | -1 |" in out and "| direct / birth_city | 1 of 1 | 1 of 1 | +0 | -0 |" in out
    write_jsonl(tmp_path / "after.jsonl", [{"question": "R", "kind": "direct", "contained": 1.0}])
    with pytest.raises(SystemExit, match="different probes"):
        runpy.run_path(script, run_name="__main__")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_makes_a_valid_run_config(tmp_path, variant):
    # a variant's name is its run's name, and its overrides are config keys: either wrong fails only when the bench reaches it
    cfg = variant_config(tmp_path, variant, "smollm2-135m-instruct", 0, [])
    assert cfg.name == variant
