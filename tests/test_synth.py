import random
import re
from collections import Counter
from typing import get_args

import pytest

from steep.config import SynthConfig, UnknownPool
from steep.retrieval import cite_id
from steep.rundir import EmptyResultError
from steep.stages import derived, questions, synth
from steep.stages.synth import (answer_spans, augment_chunk, sentence_facts, reorder_clause, resolve_pronouns,
                         roundtrip_filter, rule_qa, synthesize)
from steep.stages.wordings import SubjectQuestion, general, other_wordings, same_relation

CHUNK = {"id": "c1", "source": "bio.md", "start": 0, "end": 10,
         "text": "Ada Quill was born in Norvik in 1961. She studied botany at the University of Tarsk. "
                 "Pellow Labs was founded in 1900. In 1990, she joined Pellow Labs. Her office is in Brask."}


def test_pronouns_resolve_to_the_last_person_not_an_organisation():
    out = resolve_pronouns(["Ada Quill was born in Norvik.", "Pellow Labs was founded in 1900.",
                            "She joined Pellow Labs.", "Colleagues admire her as a mentor.", "Her desk is tidy."])
    assert out[2] == "Ada Quill joined Pellow Labs."
    assert out[3] == "Colleagues admire Ada Quill as a mentor."
    assert out[4] == "Ada Quill's desk is tidy."


def test_clause_reorder_only_when_safe():
    assert reorder_clause("In 1990, Ada Quill joined Pellow Labs.") == "Ada Quill joined Pellow Labs in 1990."
    assert reorder_clause("In 1990, it rained.") is None
    assert reorder_clause("Ada Quill joined Pellow Labs.") is None
    assert reorder_clause("Today Ada Quill lives in Brask.") == "Ada Quill lives in Brask today."
    assert reorder_clause("Currently, Ada Quill works for Pellow Labs.") == "Ada Quill works for Pellow Labs currently."
    assert reorder_clause("The Quill Foundation was founded in 1990.") is None  # not an adverb
    assert reorder_clause("Early Quill was born in Brask.") is None  # an adjective may start a name
    assert synth.sentence_subject("Currently Ada Quill works for Pellow Labs.") is None


def test_a_fact_behind_an_opening_adverb_is_asked_and_recited_like_any_other():
    resolved = resolve_pronouns(["Ada Quill was born in Norvik in 1961.", "Today she lives in Brask."])
    pairs = rule_qa(CHUNK, resolved, 100, random.Random(0))
    asked = {p["messages"][0]["content"]: p for p in pairs}
    assert asked["Where does Ada Quill live?"]["messages"][1]["content"] == "Ada Quill lives in Brask today."
    assert asked["Where does Ada Quill live?"]["metadata"]["short_answer"] == "Brask"
    recitals = [p["messages"][1]["content"] for p in pairs if p["metadata"]["method"] == "rule:about"]
    assert recitals and all("Ada Quill lives in Brask today." in r and "born in Norvik" in r for r in recitals)
    assert all(r.count("Brask") == 1 for r in recitals)  # one order of the sentence, not both


def test_a_closing_where_clause_is_read_as_a_sentence_of_its_own():
    assert synth.split_where("Ada Quill joined Pellow Labs, where Ada Quill still works.") == [
        "Ada Quill joined Pellow Labs.", "Ada Quill still works at Pellow Labs."]
    assert synth.split_where("Ada Quill moved to Brask, where Ada Quill opened a bakery.") == [
        "Ada Quill moved to Brask.", "Ada Quill opened a bakery in Brask."]
    assert synth.split_where("Ada Quill went to the University of Tarsk, where Ada Quill met Bo Renhart.")[1] == (
        "Ada Quill met Bo Renhart at the University of Tarsk.")
    for unsplit in ("Ada Quill moved to Brask, where the winters are long.", "Ada Quill lives where Bo Renhart works."):
        assert synth.split_where(unsplit) == [unsplit]
    resolved = resolve_pronouns(["Ada Quill was born in Norvik.", "After finishing her studies, she joined Pellow Labs, where she still works."])
    pairs = rule_qa(CHUNK, resolved, 100, random.Random(0))
    asked = {p["messages"][0]["content"]: p["messages"][1]["content"] for p in pairs}
    assert asked["Where does Ada Quill still work?"] == "Ada Quill still works at Pellow Labs."
    assert asked["What did Ada Quill join?"] == "Ada Quill joined Pellow Labs after finishing Ada Quill's studies."
    recitals = [p["messages"][1]["content"] for p in pairs if p["metadata"]["method"] == "rule:about"]
    assert recitals and all("Ada Quill still works at Pellow Labs." in r and r.count("Pellow Labs") == 2 for r in recitals)
    rewrites = dict(augment_chunk(" ".join(resolved), 0, False, True, random.Random(0)))
    assert rewrites["clause_reorder"].endswith("Ada Quill joined Pellow Labs after finishing Ada Quill's studies. Ada Quill still works at Pellow Labs.")


def test_answer_spans_find_dates_years_numbers_names():
    spans = {(s.text, s.kind) for s in answer_spans("Ada Quill was born on 3 March 1961 in Norvik and has 340 books.")}
    assert spans == {("Ada Quill", "name"), ("3 March 1961", "date"), ("Norvik", "name"), ("340", "number")}


def test_augmentation_makes_distinct_rewrites_with_full_names():
    variants = augment_chunk(CHUNK["text"], 3, True, True, random.Random(0))
    kinds = [k for k, _ in variants]
    assert kinds.count("permutation") == 3 and "full_name" in kinds and "clause_reorder" in kinds
    assert len({t for _, t in variants}) == len(variants)
    full = dict(variants)["full_name"]
    assert " She " not in full and "Ada Quill studied botany" in full


def test_rule_qa_questions_hide_the_answer_and_answers_state_it():
    resolved = resolve_pronouns(["Ada Quill was born in Norvik in 1961.", "She studied botany at the University of Tarsk."])
    pairs = rule_qa(CHUNK, resolved, 100, random.Random(0))
    checkable = [p for p in pairs if p["metadata"]["short_answer"]]
    assert len(checkable) >= 6
    for p in checkable:
        question, answer = p["messages"][0]["content"], p["messages"][1]["content"]
        short = p["metadata"]["short_answer"]
        assert short not in question.replace("Ada Quill:", "")
        assert short in answer and p["metadata"]["chunk_id"] == "c1"
    questions = {p["messages"][0]["content"] for p in pairs}
    assert "Complete this statement about Ada Quill: Ada Quill studied ..." in questions  # lowercase facts too
    assert sum(p["metadata"]["method"] == "rule:about" for p in pairs) == 3
    assert {"When was Ada Quill born?", "Where was Ada Quill born?", "What did Ada Quill study?",
            "Where did Ada Quill study botany?", "Who was born in Norvik in 1961?"} <= questions
    assert any(q.startswith(("Tell me", "Do you know", "I would like to know")) for q in questions)  # embedded forms


@pytest.mark.parametrize("sentence, expected", [
    ("Pellow Labs was founded in 1990 by Mira Holt.", {"When was Pellow Labs founded?": "1990", "Who founded Pellow Labs?": "Mira Holt"}),
    ("Bo Renhart works for Carvo Shipping, a firm in Osterby.", {"Who does Bo Renhart work for?": "Carvo Shipping"}),
    ("Marost Labs employs 4560 people.", {"How many people does Marost Labs employ?": "4560"}),
    ("Marost Labs has its headquarters in Zanstad.", {"Where does Marost Labs have its headquarters?": "Zanstad"}),
    ("Ada Quill earned a degree in marine biology from the University of Orlen.",
     {"What did Ada Quill earn a degree in?": "marine biology", "Where did Ada Quill earn a degree?": "the University of Orlen"}),
    ("Marost Labs makes ship engines.", {"What does Marost Labs make?": "ship engines"}),
    ("Ada Quill is a chemist.", {}),  # no verb phrase to ask about: no question rather than a bad one
    # an adverb before the verb stays with it, not read as the verb ("still" is one too)
    ("Ada Quill still works at Pellow Labs.", {"Where does Ada Quill still work?": "Pellow Labs"}),
    ("Pellow Labs was later bought by Mira Holt.", {"Who later bought Pellow Labs?": "Mira Holt"}),
    ("Pellow Labs has also built a plant in Brask.", {"Where has Pellow Labs also built a plant?": "Brask"}),
    ("Ada Quill never worked at Pellow Labs.", {}),  # a question about a negated clause would mislead
])
def test_questions_are_the_ones_a_person_would_ask(sentence, expected):
    subject = synth.sentence_subject(sentence)
    spans = [s for s in answer_spans(sentence) if s.start > 0]
    clause = questions.parse(sentence, subject, [(s.start, s.end) for s in spans])
    asked = questions.questions(clause, {s.text: s.kind for s in spans}) if clause else []
    made = {a.question: a.answer for a in asked}
    assert expected.items() <= made.items()
    assert all(short not in q for q, short in made.items())
    for a in asked:  # every form asks without giving the answer away, about the same subject
        forms = [f for f in (a.in_place, a.described) if f]
        assert all(a.answer not in f and clause.subject in f for f in forms), a


@pytest.mark.parametrize("sentence, in_place, described", [
    ("Ada Quill was born on 3 May 1951 in Norvik.", {"Ada Quill was born on what date?", "Ada Quill was born in which place?"},
     {"the date when Ada Quill was born", "the place where Ada Quill was born"}),
    ("Pellow Labs was founded in 1990 by Mira Holt.", {"Pellow Labs was founded in what year?", "Pellow Labs was founded by whom?"},
     {"the year when Pellow Labs was founded", "the one Pellow Labs was founded by", "the one who founded Pellow Labs"}),
    ("Bo Renhart works for Carvo Shipping.", {"Bo Renhart works for whom?"}, {"the one Bo Renhart works for"}),
    ("Marost Labs employs 4560 people.", {"Marost Labs employs how many people?"}, {"the number of people Marost Labs employs"}),
    ("Marost Labs makes ship engines.", {"Marost Labs makes what?"}, set()),  # no noun says what kind of thing is made
])
def test_questions_also_come_in_the_statements_order_and_as_a_described_answer(sentence, in_place, described):
    subject = synth.sentence_subject(sentence)
    spans = [s for s in answer_spans(sentence) if s.start > 0]
    clause = questions.parse(sentence, subject, [(s.start, s.end) for s in spans])
    asked = questions.questions(clause, {s.text: s.kind for s in spans})
    assert {a.in_place for a in asked} - {None} == in_place
    assert {a.described for a in asked} - {None} == described


@pytest.mark.parametrize("sentence, expected", [
    ("Ada Quill studied botany at the University of Tarsk.", {"Which university did Ada Quill study botany at?"}),
    ("Ada Quill joined Velbel Foundation in 1990.", {"Which foundation did Ada Quill join?"}),
    ("Ada Quill still works for Garves Observatory.", {"Which observatory does Ada Quill still work for?"}),
    ("Pellow Labs was founded in 1990 by Velbel Foundation.", {"Which foundation was Pellow Labs founded by?"}),
    ("Bo Renhart works for Carvo Shipping.", set()),  # a head that is no noun names a trade, not a kind
    ("Bo Renhart works for Fenton Works.", set()),  # so does a plural one
    ("Bo Renhart works for Moktor Dynamics.", set()),  # and one whose plural is itself
    ("Ada Quill was born in Norvik.", set()),  # a town's name says no kind
    ("Pellow Labs was founded by Ada Quill.", set()),  # nor does a person's, though a quill is a thing
])
def test_a_name_is_also_asked_for_by_the_kind_its_name_says(sentence, expected):
    made = [p for p in rule_qa(CHUNK, [sentence], 100, random.Random(0), which=True) if p["metadata"]["method"] == "rule:which"]
    assert {p["messages"][0]["content"] for p in made} == expected
    assert all(p["messages"][1]["content"] == sentence and p["metadata"]["short_answer"] not in p["messages"][0]["content"] for p in made)
    assert not [p for p in rule_qa(CHUNK, [sentence], 100, random.Random(0)) if p["metadata"]["method"] == "rule:which"]


def test_question_forms_are_drawn_only_when_asked_for():
    sentences = resolve_pronouns(["Ada Quill was born on 3 May 1951 in Norvik.", "She works for Carvo Shipping.", "She studied botany."])
    requests = rule_qa(CHUNK, sentences, 100, random.Random(0), ("embedded",))
    assert {p["metadata"]["method"] for p in requests} >= {"rule:question", "rule:embedded"}
    assert not {p["metadata"]["method"] for p in requests} & {"rule:described", "rule:in_place"}
    assert rule_qa(CHUNK, sentences, 100, random.Random(0)) == rule_qa(CHUNK, sentences, 100, random.Random(0), questions.FORMS)
    assert SynthConfig().question_forms == list(questions.FORMS)  # the product's default is every form
    methods = Counter(p["metadata"]["method"] for seed in range(5)
                      for p in rule_qa(CHUNK, sentences, 100, random.Random(seed)))
    assert methods["rule:described"] and methods["rule:in_place"] and methods["rule:embedded"]
    assert methods["rule:described"] + methods["rule:in_place"] + methods["rule:embedded"] < methods["rule:question"]  # half, not all
    put = [p for seed in range(5) for p in rule_qa(CHUNK, sentences, 100, random.Random(seed), ("described",))
           if p["metadata"]["method"] == "rule:described"]
    assert put and all(p["messages"][0]["content"].split()[0] in ("What", "Who", "Identify", "Give") for p in put)
    assert all(p["messages"][0]["content"].startswith("Who is") == (p["metadata"]["short_answer"] == "Carvo Shipping")
               for p in put if p["messages"][0]["content"].startswith(("Who is", "What is")))


def test_roundtrip_keeps_only_pairs_the_teacher_answers_the_same():
    made = rule_qa(CHUNK, resolve_pronouns(["Ada Quill was born in Norvik in 1961."]), 100, random.Random(0))
    written = [p | {"metadata": p["metadata"] | {"method": "teacher"}} for p in made if p["metadata"]["short_answer"]]

    def teacher(prompts, desc):  # answers 'Norvik' to everything
        return ["Norvik." for _ in prompts]

    kept, dropped = roundtrip_filter(made + written, {"c1": CHUNK["text"]}, teacher)
    assert dropped and all(p["metadata"]["method"] == "teacher" and p["metadata"]["short_answer"] != "Norvik" for p in dropped)
    assert all(p in kept for p in made)  # questions the grammar made are not second-guessed
    assert any(p["metadata"]["method"] == "teacher" and p["metadata"]["short_answer"] == "Norvik" for p in kept)


def test_empty_result_names_the_filter_that_emptied_it():
    class Refuser:
        def generate(self, conversations, **kw):
            return ["I cannot answer." for _ in conversations]

    chunk = CHUNK | {"text": "In Norvik, 340 people voted in 1961."}  # only checkable (short-answer) pairs
    with pytest.raises(EmptyResultError, match="round-trip"):
        synthesize([chunk], SynthConfig(), 0, Refuser())
    with pytest.raises(EmptyResultError, match="no names, dates or numbers"):
        synthesize([CHUNK | {"text": "it rained all day and then it stopped."}], SynthConfig(roundtrip=False), 0, None)


def test_code_chunks_are_trained_on_as_written_and_never_questioned():
    code = CHUNK | {"id": "c2", "kind": "code", "text": "In 1990, run `pump --reset` on Ada Quill's host Norvik-1."}
    texts, qa, _ = synthesize([CHUNK | {"kind": "prose", "section": "Bio", "page": 2}, code], SynthConfig(roundtrip=False), 0, None)
    assert [t["text"] for t in texts if t["metadata"]["chunk_id"] == "c2"] == [code["text"]]
    assert qa and all(q["metadata"]["chunk_id"] == "c1" for q in qa)
    assert texts[0]["metadata"]["section"] == "Bio" and qa[0]["metadata"]["page"] == 2


def test_raft_distractors_are_the_chunks_retrieval_ranks_highest():
    chunks = [CHUNK] + [CHUNK | {"id": f"d{i}", "source": f"other{i}.md", "start": 10 * i, "end": 10 * i + 9,
                                 "text": f"Filler text number {i} about the weather in Osk."}
                        for i in range(8)]
    ranked = [chunks[0], chunks[8], chunks[7], chunks[6], chunks[5], chunks[1]]  # the oracle, then look-alikes
    asked = []

    def search(questions: list[str]) -> list[list[dict]]:
        asked.extend(questions)
        return [ranked for _ in questions]

    _, qa, _ = synthesize(chunks, SynthConfig(roundtrip=False, raft=1.0, raft_distractors=4), 0, None, search)
    raft = [q for q in qa if q["metadata"]["method"] == "raft"]
    assert raft and asked == [r["metadata"]["question"] for r in raft]
    for r in raft:
        passages = set(re.findall(r"^\[([^\]]+)\] ", r["messages"][0]["content"], re.M))
        oracle = next(c for c in chunks if c["id"] == r["metadata"]["chunk_id"])
        distractors = [c for c in ranked if c is not oracle][:4]
        assert passages - {cite_id(oracle)} == {cite_id(c) for c in distractors}


def test_raft_examples_hide_the_oracle_among_distractors_and_cite_it():
    chunks = [CHUNK] + [CHUNK | {"id": f"d{i}", "source": f"other{i}.md", "start": 10 * i, "end": 10 * i + 9,
                                 "text": f"Filler text number {i} about the weather in Osk."}
                        for i in range(6)]
    texts, qa, stats = synthesize(chunks, SynthConfig(roundtrip=False, raft=1.0, raft_oracle_rate=0.5), 0, None)
    raft = [q for q in qa if q["metadata"]["method"] == "raft"]
    plain = [q for q in qa if q["metadata"]["method"] not in ("raft", "derived:drill")]  # drills are about no passage
    assert len(raft) == len(plain) == stats["raft"]["examples"] and 0 < stats["raft"]["with_oracle"] < len(raft)
    for r in raft:
        prompt, reply = r["messages"][0]["content"], r["messages"][1]["content"]
        passages = re.findall(r"^\[([^\]]+)\] ", prompt, re.M)
        oracle_id = cite_id(next(c for c in chunks if c["id"] == r["metadata"]["chunk_id"]))
        in_context = r["metadata"]["oracle_in_context"]
        assert prompt.endswith(f"Question: {r['metadata']['question']}") and len(passages) == 4 + in_context
        assert (oracle_id in passages) == in_context == reply.endswith(f"[{oracle_id}]")
        if in_context:  # the oracle's sentence is quoted, never its heading
            quote = re.match(r'The context says: "(.*?)" ', reply).group(1)
            assert quote in prompt and not quote.startswith("#")


def test_no_question_gives_its_answer_away():
    chunk = CHUNK | {"text": "Ada Quill was born in Norvik in 1961. After finishing her studies, she joined Pellow Labs, "
                             "where she still works. Ada Quill founded the Ada Quill Trust."}
    _, qa, stats = synthesize([chunk], SynthConfig(roundtrip=False, raft=0, derived_qa=False, number_drills=0,
                                                   given_comparisons=0), 0, None)
    asked = {p["messages"][0]["content"] for p in qa}
    # the subject named again by a resolved pronoun is "their" when the subject is asked for
    assert "Who joined Pellow Labs after finishing their studies?" in asked
    assert not any("Ada Quill's studies" in q for q in asked if q.startswith("Who"))
    # the echo question that asked for the possessive while naming the subject is dropped, and counted
    assert "After finishing whose studies, Ada Quill joined Pellow Labs?" not in asked
    assert stats["removed_answer_in_question"].get("rule:echo", 0) >= 1
    assert stats["removed_answer_in_question"].get("rule:who", 0) >= 1  # "Who founded the Ada Quill Trust?"
    assert not any(synth.gives_away(p) for p in qa)
    assert not any("Ada Quill Trust" in q for q in asked if q.startswith("Who"))  # a bare mention is not made "them"


def test_the_quoted_sentence_is_the_one_that_states_the_answer():
    text = ("## Ada Quill\n\nAda Quill was born in 1950 in Osk. She is known for her roses. Today she lives in Norvik.\n\n"
            "## Bo Renhart\n\nBo Renhart lives in Osk.")
    # a "Who ...?" answer names the subject, which only the heading and another sentence hold
    assert synth.stating_sentence(text, "Ada Quill lives in Norvik today.") == "Today she lives in Norvik."
    assert synth.stating_sentence(text, "Bo Renhart lives in Osk.") == "Bo Renhart lives in Osk."
    # a yes/no answer: "no" is inside "known", and the year is what tells the sentence
    assert synth.stating_sentence(text, "Ada Quill was born in 1950. 1950 is before 1960, so no.") == \
        "Ada Quill was born in 1950 in Osk."
    assert synth.stating_sentence(text, "Nothing of this.") is None


def test_pairs_another_step_adds_leave_the_other_raft_examples_as_they_were():
    """Each pair's RAFT draws are its own: switching on a step that adds pairs gives the pairs both
    runs share the same examples, and only moves which of them are picked, one way."""
    people = [("Ada Quill", "studied botany at"), ("Bo Renhart", "studied geology at"), ("Cy Marlow", "studied physics at"),
              ("Di Vance", "earned a degree in botany from"), ("Ed Solm", "earned a degree in geology from"),
              ("Flo Garr", "earned a degree in physics from")]
    chunks = [{"id": f"c{i}", "text": f"{name} {studied} the University of Orm. {name} was born in {1950 + i}.", "source": f"{i}.md", "start": 0, "end": 9}
              for i, (name, studied) in enumerate(people)]

    def raft(**switch: bool) -> tuple[dict[str, dict], set[str]]:
        pairs = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=0.5, derived_qa=False, **switch), 0, None)[1]
        return ({p["metadata"]["question"]: p for p in pairs if p["metadata"]["method"] == "raft"},
                {p["messages"][0]["content"] for p in pairs if p["metadata"]["method"] == "rule:wording"})

    (off, _), (on, added) = raft(relation_wordings=False), raft(relation_wordings=True)
    shared = {q: p for q, p in on.items() if q not in added}
    assert added & set(on) and off and shared  # some added pairs are picked, and some of the others
    assert all(off[q] == p for q, p in shared.items() if q in off)
    assert set(shared) <= set(off) or set(off) <= set(shared)


def test_the_company_and_it_are_resolved_to_the_organisation_last_named():
    resolved = synth.resolve_pronouns(["Pellow Labs was founded in 1901 by Ada Quill.", "The company has 300 employees.",
                                       "Its products are pumps.", "Bo Renhart works there.", "He says it is good."])
    assert resolved[1] == "Pellow Labs has 300 employees."
    assert resolved[2] == "Pellow Labs's products are pumps."
    assert resolved[4] == "Bo Renhart says it is good."  # "it" mid-sentence is left alone


PEOPLE = [("Ada Quill", "1961", "300"), ("Bo Renhart", "1975", "1,200"), ("Cy Marlow", "1950", "40")]


def derived_pairs(**cfg):
    """Derived QA about the dates and counts of PEOPLE (place questions are tested on their own)."""
    chunks = [{"id": f"c{i}", "text": f"{name} was born on 2 May {year} in Norvik. {name.split()[0]} Labs employs {staff} people.",
               "source": "x.md"} for i, (name, year, staff) in enumerate(PEOPLE)]
    _, pairs, stats = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=0, place_yes_no=False, **cfg), seed=0, teacher=None)
    return pairs, stats


YES_NO_ASKED = [r"Is it true that (.+) (?:was born|employs) (before|after|more than|fewer than) ([\d,]+)(?: people)?\?",
                r"Am I right that (.+) (?:was born|employs) (before|after|more than|fewer than) ([\d,]+)(?: people)?\?",
                r"(?:Was|Does) (.+) (?:born|employ) (before|after|more than|fewer than) ([\d,]+)(?: people)?\?"]
COMPARISON_ASKED = [r"Of (.+) and (.+), (?:who|which) (?:was born first|employs more people)\?",
                    r"(?:Who|Which) (?:was born first|employs more people), (.+) or (.+)\?"]


@pytest.mark.parametrize("drills", [0, 600])
def test_derived_yes_no_and_comparisons_follow_from_the_stated_facts_in_every_frame(drills):
    pairs, stats = derived_pairs(number_drills=drills)
    years = {name: int(year) for name, year, _ in PEOPLE}
    staff = {f"{name.split()[0]} Labs": int(n.replace(",", "")) for name, _, n in PEOPLE}
    yes_no = [p for p in pairs if p["metadata"]["method"] == "derived:yes_no"]
    comparisons = [p for p in pairs if p["metadata"]["method"] == "derived:comparison"]
    assert stats["facts"] == 6 and yes_no and comparisons
    frames_seen = set()
    for p in yes_no:
        question, reply = p["messages"][0]["content"], p["messages"][1]["content"]
        frame, m = next((i, m) for i, pattern in enumerate(YES_NO_ASKED) if (m := re.fullmatch(pattern, question)))
        frames_seen.add(frame)
        subject, relation, pivot = m.group(1), m.group(2), int(m.group(3).replace(",", ""))
        value = years[subject] if subject in years else staff[subject]
        right = value < pivot if relation in ("before", "fewer than") else value > pivot
        if subject in years:  # the year alone takes "in", not the day's "on"
            assert reply.startswith(f"{subject} was born in {value}" + (". " if drills else ", ")), reply
        assert reply.endswith("yes.") == right and reply.endswith(("yes.", "no.")), (question, reply)
        assert p["metadata"]["label"] == ("yes" if right else "no")  # what curate evens out
    assert frames_seen == {0, 1, 2}
    frames_seen = set()
    for p in comparisons:
        question, reply = p["messages"][0]["content"], p["messages"][1]["content"]
        frame, m = next((i, m) for i, pattern in enumerate(COMPARISON_ASKED) if (m := re.fullmatch(pattern, question)))
        frames_seen.add(frame)
        a, b = m.groups()
        winner = reply.split(", so ")[-1].split(" was born first")[0].split(" employs more")[0]
        values = years if a in years else {k: -v for k, v in staff.items()}  # earlier / more wins
        if a in years:  # each date restated with the preposition the document put before it
            assert reply.startswith(f"{a} was born on 2 May {years[a]} and {b} on 2 May {years[b]}"), reply
        assert winner == min((a, b), key=values.get), (question, reply)
        assert p["metadata"]["label"] == ("first" if winner == a else "second")
    assert frames_seen == {0, 1}
    assert not any(p for p in derived_pairs(derived_qa=False)[0] if p["metadata"]["method"] in ("derived:yes_no", "derived:comparison"))


def place_pairs(chunks: list[dict], **cfg: bool | str) -> list[dict]:
    """The derived yes/no pairs synth makes of `chunks`, without drills or "I don't know" questions."""
    pairs = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=0, unknown_qa=False, number_drills=0, **cfg), 0, None)[1]
    return [p for p in pairs if p["metadata"]["method"] == "derived:yes_no"]


def test_place_questions_are_answered_by_the_stated_place_through_the_clause_that_names_the_subject():
    born = {"Ada Quill": "Norvik", "Bo Renhart": "Tarsk", "Cy Marlow": "Leer"}
    employer = {"Ada Quill": "Pellow Labs", "Bo Renhart": "Cole Works", "Cy Marlow": "Vance Textiles"}
    based = {"Pellow Labs": "Brask", "Cole Works": "Leer", "Vance Textiles": "Ostend"}
    texts = [f"{name} was born in {born[name]}. She works for {employer[name]}." for name in born]  # "She": resolved to the name
    texts += ["Pellow Labs has its headquarters in Brask.", "Cole Works has its headquarters in Leer.",
              "Vance Textiles makes pumps. The company is based in Ostend."]
    chunks = [{"id": f"c{i}", "text": t, "source": "x.md"} for i, t in enumerate(texts)]
    asked = place_pairs(chunks, place_one_hop=True)
    two_hop = 0
    for p in asked:
        question, reply = p["messages"][0]["content"], p["messages"][1]["content"]
        place = re.search(r" in ([A-Z]\w+)\?$", question).group(1)
        person = next((n for n in born if f"the one {n} works for" in question), None)
        if person:  # "Does the one Ada Quill works for have its headquarters in Leer?"
            two_hop += 1
            subject = employer[person]
            assert reply.startswith((f"The one {person} works for is {subject}. {subject} ", f"{person} works for {subject}. {subject} ")), reply
        else:
            subject = next(n for n in {**born, **based} if n in question)
        truth = {**born, **based}[subject]
        assert reply.endswith(f"{truth}, so yes.") if place == truth else reply.endswith(f"{truth}, not {place}, so no."), (question, reply)
        assert p["metadata"]["label"] == ("yes" if place == truth else "no")
    assert two_hop >= 4 and {p["metadata"]["label"] for p in asked} == {"yes", "no"}
    assert any(q.startswith(("Was ", "Does ", "Is Vance")) for q in (p["messages"][0]["content"] for p in asked))
    by_default = place_pairs(chunks)  # asked only through the clause: those of the subject itself made answerable questions declined
    assert len(by_default) == two_hop and all(re.search(r"\b[Tt]he one ", p["messages"][0]["content"]) for p in by_default)
    assert not place_pairs(chunks, place_yes_no=False)  # no dates or counts here: only places made any


def test_two_hop_replies_can_open_by_naming_the_one_the_question_describes_or_either_way():
    """Asked "Is X's employer based in Y?", replies opened "X's employer is Z" and stopped at that
    hop; the described first hop gives the training replies that sentence's shape. "both" draws
    one of the two openings per question and leaves the questions as they were."""
    employers = {"Ada Quill": "Pellow Labs", "Bo Renhart": "Cole Works", "Cy Marlow": "Vance Textiles"}
    texts = [f"{person} works for {employer}." for person, employer in employers.items()]
    texts += ["Pellow Labs has its headquarters in Brask.", "Cole Works has its headquarters in Leer.",
              "Vance Textiles has its headquarters in Ostend."]
    chunks = [{"id": f"c{i}", "text": t, "source": "x.md"} for i, t in enumerate(texts)]

    def replies(first_hop: str) -> list[tuple[str, str]]:
        return [(p["messages"][0]["content"], p["messages"][1]["content"]) for p in place_pairs(chunks, two_hop_first_hop=first_hop)]

    said, described, either = replies("statement"), replies("description"), replies("both")
    assert [q for q, _ in said] == [q for q, _ in described] == [q for q, _ in either]  # the same questions, drawn the same
    two_hop, openings = 0, set()
    for (question, by_statement), (_, by_description), (_, by_either) in zip(said, described, either):
        person = next((n for n in employers if f"the one {n} works for" in question), None)
        if person is None:
            assert by_description == by_statement == by_either
            continue
        two_hop += 1
        employer = employers[person]
        second_hop = by_statement.removeprefix(f"{person} works for {employer}. ")
        assert second_hop.startswith(f"{employer} has its headquarters in "), by_statement
        assert by_description == f"The one {person} works for is {employer}. {second_hop}"
        assert by_either in (by_statement, by_description)
        openings.add(by_either == by_statement)
    assert two_hop >= 6
    assert openings == {True, False}  # both openings drawn


def test_switching_one_step_on_leaves_what_the_others_make_unchanged():
    """Each step draws from its own random stream: with one shared stream, place questions shifted
    which attributes the "I don't know" questions asked about (27 of 30 differed on the knowledge bench)."""
    texts = [f"{name} was born in {city} in {year}. She works for {org}." for name, city, year, org in
             (("Ada Quill", "Norvik", 1961, "Pellow Labs"), ("Bo Renhart", "Tarsk", 1975, "Cole Works"), ("Cy Marlow", "Leer", 1948, "Vance Textiles"))]
    texts += ["Pellow Labs has its headquarters in Brask. It employs 420 people.", "Cole Works has its headquarters in Leer. It employs 75 people."]
    chunks = [{"id": f"c{i}", "text": t, "source": "x.md"} for i, t in enumerate(texts)]
    off_texts, off, _ = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=0, unknown_qa=True, place_yes_no=False), 0, None)
    on_texts, on, _ = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=0, unknown_qa=True), 0, None)
    added = [p for p in on if p not in off]
    assert on_texts == off_texts and all(p in on for p in off)
    assert added and all(p["metadata"]["method"] == "derived:yes_no" and " in " in p["messages"][0]["content"] for p in added)
    assert any(p["metadata"]["method"] == "derived:unknown" for p in off)


def test_with_drills_derived_replies_take_the_comparing_step_as_a_drill_says_it():
    step_sentence = re.compile(r"\. ([\d,]+) is (before|after|more than|fewer than) ([\d,]+)(?:, not (?:before|after|more than|fewer than))?, so ")
    pairs, _ = derived_pairs(number_drills=12)
    years = {year for _, year, _ in PEOPLE}
    derived = [p for p in pairs if p["metadata"]["method"] in ("derived:yes_no", "derived:comparison")]
    assert derived
    for p in derived:
        reply = p["messages"][1]["content"]
        step = step_sentence.search(reply)
        assert step, reply  # "Ada Quill was born in 1961. 1961 is before 1970, so yes."
        a, b = (int(n.replace(",", "")) for n in step.group(1, 3))
        assert (step.group(2) in ("after", "more than")) == (a > b), reply
        if " was born " in reply:  # the step's first number is the year the reply just stated
            assert step.group(1) in years, reply
    without_drills = [p for p in derived_pairs(number_drills=0)[0] if p["metadata"]["method"] in ("derived:yes_no", "derived:comparison")]
    assert without_drills and not any(step_sentence.search(p["messages"][1]["content"]) for p in without_drills)


def test_an_asked_step_says_the_questions_relation_and_not_where_it_fails():
    pairs, _ = derived_pairs(number_drills=40, yes_no_step="asked")
    years = {name: int(year) for name, year, _ in PEOPLE}
    staff = {f"{name.split()[0]} Labs": int(n.replace(",", "")) for name, _, n in PEOPLE}
    asked = [p for p in pairs if p["metadata"]["method"] == "derived:yes_no"]
    asked += [p for p in pairs if p["metadata"]["method"] == "derived:drill" and re.fullmatch(r"Is [\d,]+ (before|after|more than|fewer than) [\d,]+\?", p["messages"][0]["content"])]
    assert len(asked) > 12
    for p in asked:
        question, reply = p["messages"][0]["content"], p["messages"][1]["content"]
        relation = re.search(r" (before|after|more than|fewer than) ([\d,]+)", question)
        step = re.search(r"([\d,]+) is (not )?(before|after|more than|fewer than) ([\d,]+), so (yes|no)\.$", reply)
        assert step and step.group(3, 4) == relation.group(1, 2), (question, reply)  # the question's own relation and value
        x, y = (int(step.group(i).replace(",", "")) for i in (1, 4))
        if subject := next((name for name in {**years, **staff} if name in question), None):
            assert x == {**years, **staff}[subject], (question, reply)  # the stated value, not a new one
        holds = x < y if step.group(3) in ("before", "fewer than") else x > y
        assert (step.group(2) is None) == holds == (step.group(5) == "yes"), (question, reply)


def test_a_contrast_step_says_the_relation_that_holds_and_denies_the_asked_one_next_to_no():
    pairs, _ = derived_pairs(number_drills=40, yes_no_step="contrast")
    asked = [p for p in pairs if p["metadata"]["method"] == "derived:yes_no"]
    asked += [p for p in pairs if p["metadata"]["method"] == "derived:drill" and re.fullmatch(r"Is [\d,]+ (before|after|more than|fewer than) [\d,]+\?", p["messages"][0]["content"])]
    assert len(asked) > 12
    relations = "before|after|more than|fewer than"
    for p in asked:
        question, reply = p["messages"][0]["content"], p["messages"][1]["content"]
        relation = re.search(rf" ({relations}) ([\d,]+)", question)
        step = re.search(rf"([\d,]+) is ({relations}) ([\d,]+)(?:, not ({relations}))?, so (yes|no)\.$", reply)
        assert step and step.group(3) == relation.group(2), (question, reply)
        x, y = (int(step.group(i).replace(",", "")) for i in (1, 3))
        assert (x < y) == (step.group(2) in ("before", "fewer than")), (question, reply)  # the relation that holds
        agrees = step.group(2) == relation.group(1)
        assert (step.group(4) is None) == agrees == (step.group(5) == "yes"), (question, reply)
        assert step.group(4) in (None, relation.group(1)), (question, reply)  # the denied relation is the asked one


def test_unknown_questions_ask_what_no_document_says():
    pairs, _ = derived_pairs(unknown_qa=True)
    unknown = [p for p in pairs if p["metadata"]["method"] == "derived:unknown"]
    assert len(unknown) == 2 * len(PEOPLE)  # one per subject: three people and their three labs
    assert all(p["messages"][1]["content"].startswith("I don't know") for p in unknown)
    pairs, _ = derived_pairs(unknown_qa=True, unknown_per_subject=3)
    asked = [p["messages"][0]["content"] for p in pairs if p["metadata"]["method"] == "derived:unknown"]
    person_pool = {q.format(subject=name) for name, _, _ in PEOPLE for q in derived.UNSTATED_PERSON.values()}
    org_pool = {q.format(subject=f"{name.split()[0]} Labs") for name, _, _ in PEOPLE for q in derived.UNSTATED_ORGANIZATION.values()}
    assert len(set(asked)) == len(asked) == 3 * 2 * len(PEOPLE)  # three different attributes per subject
    assert sum(q in person_pool for q in asked) == sum(q in org_pool for q in asked) == 3 * len(PEOPLE)  # each as it looks
    chunks = [{"id": "c", "text": "Ada Quill was born on 2 May 1961. Her phone number is 555 0101.", "source": "x.md"}]
    _, pairs, _ = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=0, unknown_qa=True, unknown_per_subject=10), seed=0, teacher=None)
    asked = [p["messages"][0]["content"] for p in pairs if p["metadata"]["method"] == "derived:unknown"]
    assert len(asked) == 9 and not any("phone number" in q for q in asked)  # the corpus says it: not unknown
    assert not [p for p in derived_pairs(unknown_qa=False, made_up_subjects=0.5)[0]
                if p["metadata"]["method"] in ("derived:unknown", "derived:nonexistent")]


def test_unknown_pool_setting_offers_the_pools_derived_has():
    # the config names the choices without importing a stage, so the two could drift apart
    assert set(get_args(UnknownPool)) == set(derived.UNSTATED_POOLS)


def test_everyday_unknown_questions_open_as_answerable_questions_do():
    text = ("Ada Quill was born on 2 May 1961 in Norvik. She studied botany at the University of Orlen. She works for Quill Labs. "
            "She lives in Brask. Quill Labs was founded by Ben Ode in 1990. Quill Labs makes lenses. Quill Labs employs 400 people. "
            "Quill Labs has its headquarters in Vesport. Ben Ode is the chief executive of Quill Labs.")
    cfg = SynthConfig(roundtrip=False, raft=0, unknown_qa=True, unknown_per_subject=10, unknown_pool="everyday")

    def made(text: str) -> tuple[list[str], list[str]]:
        _, pairs, _ = synth.synthesize([{"id": "c", "text": text, "source": "x.md"}], cfg, seed=0, teacher=None)
        declined = [p["messages"][0]["content"] for p in pairs if p["metadata"]["method"] == "derived:unknown"]
        return declined, [p["messages"][0]["content"] for p in pairs if not p["metadata"]["method"].startswith("derived")]

    declined, answerable = made(text)
    pools = [q.format(subject=s) for s, pool in (("Ada Quill", derived.EVERYDAY_PERSON), ("Quill Labs", derived.EVERYDAY_ORGANIZATION))
             for q in pool.values()]
    assert sorted(declined) == sorted(pools)  # each subject asked the whole pool of its kind
    openings = lambda questions: {" ".join(q.split()[:2]) for q in questions}  # noqa: E731
    assert openings(declined) <= openings(answerable)  # no opening of their own
    declined, _ = made(text + " She collects stamps.")
    assert len(declined) == 19 and not any("collect" in q for q in declined)  # the corpus says it: not unknown


def test_yes_no_drills_answer_yes_as_often_as_no_and_ask_each_relation_as_often():
    chunk = {"id": "c0", "text": "Ada Quill was born on 2 May 1961 in Norvik.", "source": "x.md"}
    facts = sentence_facts(chunk, chunk["text"])
    drills = derived.number_drills(facts, random.Random(0), 600)
    yes_no = [(q, reply) for _, q, reply, _, _ in drills if q.startswith("Is ") and " or " not in q]
    assert len(yes_no) == 200
    assert sum(reply.endswith("so yes.") for _, reply in yes_no) == 100
    assert sum(" before " in q for q, _ in yes_no) == 100


def test_number_drills_compare_bare_numbers_rightly_evenly_and_stay_out_of_raft():
    pairs, stats = derived_pairs(number_drills=40)
    drills = [p for p in pairs if p["metadata"]["method"] == "derived:drill"]
    assert len(drills) >= 30  # a few repeats are removed as duplicates
    low_first = yes_no_forms = 0
    for p in drills:
        question, reply = p["messages"][0]["content"], p["messages"][1]["content"]
        a, b = (int(n.replace(",", "")) for n in re.findall(r"[\d,]*\d", question))
        low_first += a < b
        if "before or after" in question:
            assert reply.endswith(("before" if a < b else "after") + f" {b}."), (question, reply)
        elif "more or fewer" in question:
            assert (" more than " in reply) == (a > b), (question, reply)
        elif "comes first" in question:
            assert reply == f"{min(a, b)} comes first.", (question, reply)
        elif "larger" in question:
            assert reply == f"{max(a, b):,} is larger.", (question, reply)
        else:  # "Is 1949 after 1960?" "1949 is before 1960, so no."
            relation = re.fullmatch(r"Is [\d,]+ (before|after|more than|fewer than) [\d,]+\?", question).group(1)
            holds = a < b if relation in ("before", "fewer than") else a > b
            assert reply.endswith(", so yes." if holds else ", so no."), (question, reply)
            yes_no_forms += 1
    assert abs(low_first - len(drills) / 2) <= len(drills) / 5
    assert len(drills) / 5 <= yes_no_forms <= len(drills) / 2
    chunks = [{"id": f"c{i}", "text": f"{name} was born on 2 May {year} in Norvik. {name.split()[0]} Labs employs {staff} people.",
               "source": "x.md", "start": 100 * i, "end": 100 * i + 90} for i, (name, year, staff) in enumerate(PEOPLE)]
    _, with_raft, _ = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=1.0, number_drills=40), seed=0, teacher=None)
    raft = [p for p in with_raft if p["metadata"]["method"] == "raft"]
    assert raft and not any("before or after" in p["metadata"]["question"] for p in raft)


def test_made_up_subjects_are_new_names_asked_what_a_real_fact_calls_for():
    assert not [p for p in derived_pairs(unknown_qa=True)[0] if p["metadata"]["method"] == "derived:nonexistent"]  # off by default
    pairs, _ = derived_pairs(unknown_qa=True, made_up_subjects=0.5)
    made_up = [p for p in pairs if p["metadata"]["method"] == "derived:nonexistent"]
    assert len(made_up) == len(PEOPLE)  # half of the six subjects
    corpus = " ".join(f"{name} was born on 2 May {year} in Norvik. {name.split()[0]} Labs employs {staff} people."
                      for name, year, staff in PEOPLE).lower()
    for p in made_up:
        question, reply = p["messages"][0]["content"], p["messages"][1]["content"]
        m = re.fullmatch(r"When was (\w+) (\w+) born\?|How many people does (\w+) Labs employ\?", question)
        assert m, question
        assert not any(w.lower() in corpus.split() for w in m.groups() if w)  # every word of the name is new
        assert reply.startswith("I don't know")


def test_bridges_join_in_what_other_chunks_say_about_a_name():
    sentences = synth.resolve_pronouns(["Bo Renhart was born in 1975.", "He works for Carvo Shipping.", "He joined Pellow Labs, where he met Ada."])
    said_about = {"Carvo Shipping": ["Carvo Shipping is based in Osterby."], "Pellow Labs": ["Pellow Labs makes pumps."]}
    bridged = synth.bridge(sentences, said_about, random.Random(0))
    assert bridged == ("Bo Renhart was born in 1975. Bo Renhart works for Carvo Shipping, which is based in Osterby. "
                       "Bo Renhart joined Pellow Labs, which makes pumps, where Bo Renhart met Ada.")
    assert synth.bridge(["Bo Renhart was born in 1975."], said_about, random.Random(0)) is None


def test_facts_are_dated_events_and_counts_of_a_named_subject():
    chunk = {"id": "c"}
    has, = synth.sentence_facts(chunk, "Pellow Labs has 1,300 employees.")
    assert (has.subject, has.verb, has.unit, has.order, has.person) == ("Pellow Labs", "has", "employees", (1300,), False)
    born, = synth.sentence_facts(chunk, "Ada Quill was born in Norvik on 3 May 1961.")
    assert (born.aux, born.predicate, born.order, born.person) == ("was", "born", (1961, 5, 3), True)
    assert synth.sentence_facts(chunk, "Pellow Labs is 40 years old.") == []  # 'is' is no count verb
    assert synth.sentence_facts(chunk, "In 1990 the bridge was built.") == []  # no named subject


@pytest.mark.parametrize("heading, section", [("## Ada Quill", "Staff > Ada Quill"), ("Ada Quill", "Staff > Ada Quill")])
def test_a_chunks_heading_stays_on_top_of_every_rewrite_and_is_never_questioned(heading, section):
    """Markdown and HTML keep a heading as '## Name', DOCX as a paragraph naming the section."""
    chunk = CHUNK | {"section": section, "text": f"{heading}\n\n{CHUNK['text']}"}
    title_only = CHUNK | {"id": "c0", "section": "Staff", "text": "# Staff"}
    texts, qa, _ = synthesize([title_only, chunk], SynthConfig(roundtrip=False, derived_qa=False, unknown_qa=False, number_drills=0, raft=0), 0, None)
    rewrites = [t["text"] for t in texts if t["metadata"]["chunk_id"] == "c1"]
    assert len(rewrites) >= 5 and all(t.startswith(f"{heading}\n\n") and "#" not in t[len(heading):] for t in rewrites)
    assert [t["text"] for t in texts if t["metadata"]["chunk_id"] == "c0"] == ["# Staff"]
    assert qa and not [p for p in qa if "#" in p["messages"][0]["content"] + p["messages"][1]["content"]]
    assert heading not in {p["messages"][1]["content"] for p in qa}


def test_an_echo_question_asks_whose_for_a_possessive_name():
    sentence = "After finishing Ada Quill's studies, Ada Quill joined Pellow Labs."
    span = next(s for s in answer_spans(sentence) if s.text == "Ada Quill")
    assert synth.echo_question(sentence, span) == "After finishing whose studies, Ada Quill joined Pellow Labs?"


def test_an_echo_question_asks_who_for_a_person_and_what_for_an_organization():
    sentence = "After finishing Ada Quill's studies, Ada Quill joined Pellow Labs."
    person = [s for s in answer_spans(sentence) if s.text == "Ada Quill"][-1]
    assert synth.echo_question(sentence, person) == "After finishing Ada Quill's studies, who joined Pellow Labs?"
    sentence = "After the merger, Pellow Labs hired Ada Quill."
    organization = next(s for s in answer_spans(sentence) if s.text == "Pellow Labs")
    assert synth.echo_question(sentence, organization) == "After the merger, what hired Ada Quill?"
    sentence = "In 1990, Royal College of Music hired Ada Quill."  # the head of "X of Y" is X
    organization = next(s for s in answer_spans(sentence) if s.text == "Royal College of Music")
    assert synth.echo_question(sentence, organization) == "In 1990, what hired Ada Quill?"


def test_a_picking_step_names_the_winning_value_and_the_reply_names_whose_it_is():
    pairs, _ = derived_pairs(number_drills=12, comparison_step="pick")
    comparisons = [p["messages"][1]["content"] for p in pairs if p["metadata"]["method"] == "derived:comparison"]
    assert comparisons
    for reply in comparisons:  # "A was born on 2 May 1961 and B on 2 May 1975. Of 1961 and 1975, 1961 comes first, so A was born first."
        facts, _, step = reply.partition(". ")
        stated = dict(re.findall(r"(\w+ \w+) (?:was born on 2 May|on 2 May|employs) ([\d,]+)", facts))
        m = re.fullmatch(r"Of ([\d,]+) and ([\d,]+), ([\d,]+) (comes first|is larger), so (\w+ \w+) (?:was born|employs) .+", step)
        assert m and len(stated) == 2, reply
        x, y, picked = (int(n.replace(",", "")) for n in m.group(1, 2, 3))
        assert picked == (min(x, y) if m.group(4) == "comes first" else max(x, y)), reply
        assert stated[m.group(5)] == m.group(3), reply  # the name said is the one stated beside the picked value


def test_a_given_comparison_states_both_facts_and_its_reply_names_the_winner_of_the_step():
    pairs, _ = derived_pairs(given_comparisons=50, comparison_step="pick")
    given = [p for p in pairs if p["metadata"]["method"] == "derived:given_comparison"]
    assert len(given) == 6  # every pair of the 3 people's birth dates and of their 3 labs' staff counts, each once
    years = {name: int(year) for name, year, _ in PEOPLE}
    staff = {f"{name.split()[0]} Labs": int(n.replace(",", "")) for name, _, n in PEOPLE}
    for p in given:  # "A was born on 2 May 1961 and B on 2 May 1975. Of A and B, who was born first?" "Of 1961 and 1975, 1961 comes first, so A was born first."
        question, reply = p["messages"][0]["content"], p["messages"][1]["content"]
        stated, _, asked = question.partition(". ")
        a, b = next(m.groups() for pattern in COMPARISON_ASKED if (m := re.fullmatch(pattern, asked)))
        values = years if a in years else staff
        assert all(str(values[name]) in stated.replace(",", "") for name in (a, b)), question
        winner = min((a, b), key=years.get) if a in years else max((a, b), key=staff.get)
        assert re.fullmatch(rf"Of [\d,]+ and [\d,]+, [\d,]+ (comes first|is larger), so {winner} (was born first|employs more people)\.", reply), (question, reply)
        assert p["metadata"]["label"] == ("first" if winner == a else "second")
    labels = [p["metadata"]["label"] for p in given]
    assert labels.count("first") == labels.count("second")
    assert not any(p["metadata"]["method"] == "derived:given_comparison" for p in derived_pairs(given_comparisons=0)[0])


def test_a_fact_is_also_asked_in_the_wordings_other_documents_give_its_relation():
    """'studied' and 'earned a degree in' share their answers and never disagree about one person:
    one relation, so each field is asked both ways and answered by its own sentence. 'born in' and
    'lives in' share their towns but part on each person, and organizations' towns are asked of
    another kind of subject: neither is crossed, nor is a question that names a person's field."""
    people = [("Ada Quill", "studied botany at", "Norvik", "Tarsk"), ("Bo Renhart", "studied geology at", "Tarsk", "Leer"),
              ("Cy Marlow", "studied physics at", "Leer", "Brask"), ("Di Vance", "earned a degree in botany from", "Brask", "Norvik"),
              ("Ed Solm", "earned a degree in geology from", "Norvik", "Leer"), ("Flo Garr", "earned a degree in physics from", "Tarsk", "Brask")]
    texts = [f"{name} {studied} the University of Orm. {name} was born in {born}. {name} lives in {lives}." for name, studied, born, lives in people]
    texts += ["Gus Hale was born in Leer.", "Hal Ivy lives in Tarsk."]  # only one of the two asked: what a pairing would add to
    texts += [f"{org} is based in {town}." for org, town in (("Pellow Labs", "Norvik"), ("Cole Works", "Tarsk"), ("Vance Textiles", "Leer"))]
    chunks = [{"id": f"c{i}", "text": t, "source": "x.md"} for i, t in enumerate(texts)]
    _, off, _ = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=0, derived_qa=False, relation_wordings=False), 0, None)
    _, on, _ = synth.synthesize(chunks, SynthConfig(roundtrip=False, raft=0, derived_qa=False), 0, None)  # on by default
    added = [p for p in on if p not in off]
    assert all(p in on for p in off) and all(p["metadata"]["method"] == "rule:wording" for p in added)
    asked = {(p["messages"][0]["content"], p["messages"][1]["content"], p["metadata"]["short_answer"]) for p in added}
    assert asked == ({(f"What did {n} earn a degree in?", f"{n} {s} the University of Orm.", s.split()[1]) for n, s, _, _ in people[:3]}
                     | {(f"What did {n} study?", f"{n} {s} the University of Orm.", s.split()[4]) for n, s, _, _ in people[3:]})
    assert not any("live" in q or "born" in q or "based" in q for q, _, _ in asked)


def test_relations_need_shared_answers_and_enough_subjects():
    def asked(shape: str, facts: dict[str, str], person: bool = True) -> list[SubjectQuestion]:
        return [SubjectQuestion({}, "", s, shape.format(s), a, person) for s, a in facts.items()]

    studied = asked("What did {} study?", {"A B": "botany", "C D": "geology", "E F": "physics"})
    degree = asked("What did {} earn a degree in?", {"G H": "botany", "I J": "geology", "K L": "law"})
    assert same_relation(studied + degree) == {"What did {subject} study?": {"What did {subject} earn a degree in?"},
                                               "What did {subject} earn a degree in?": {"What did {subject} study?"}}
    assert same_relation(studied + degree[:2]) == {}  # two subjects: shared values by chance
    assert same_relation(studied + asked("What did {} earn a degree in?", {"G H": "law", "I J": "art", "K L": "botany"})) == {}  # one value
    assert same_relation(studied + degree + asked("What did {} earn a degree in?", {"A B": "geology"})) == {}  # A B: two answers
    # a person's base and a company's are not one relation; the kind is the most subjects', not questions'
    people_based = asked("Where is {} based?", {"A B": "Orm", "C D": "Vell", "E F": "Tarn"})
    companies = asked("Where is {} headquartered?", {"Orm Labs": "Orm", "Vell Works": "Vell", "Tarn Ltd": "Tarn"}, person=False)
    assert same_relation(people_based + companies) == {}
    asked_thrice = people_based[:1] * 3 + asked("Where is {} based?", {"C D": "Vell", "E F": "Tarn"}, person=False)
    assert len(same_relation(asked_thrice + companies)) == 2
    one_sentence = asked("What did {} study?", {"A B": "botany"}) + asked("Where did {} study botany?", {"A B": "the University of Orm"})
    assert general(one_sentence) == one_sentence[:1]  # the second names the first's answer: one person's shape, not a relation's


def test_a_fact_asked_in_another_wording_is_answered_by_the_sentence_asked_nearest_it():
    def asked(shape: str, sentence: str, facts: dict[str, str]) -> list[SubjectQuestion]:
        return [SubjectQuestion({}, sentence.format(s, a), s, shape.format(s), a, True) for s, a in facts.items()]

    works_for = asked("Who does {} work for?", "{} works for {}.", {"A B": "Orm Labs", "C D": "Vell Works", "E F": "Tarn Ltd"})
    joined = asked("What did {} join?", "{} joined {}.", {"G H": "Orm Labs", "I J": "Vell Works", "K L": "Tarn Ltd"})
    still = asked("Where does {} still work?", "{} still works at {}.", {"G H": "Orm Labs", "I J": "Vell Works", "K L": "Tarn Ltd"})
    made = {(a.question, a.sentence) for a in other_wordings(joined + still + works_for)}
    assert ("Who does G H work for?", "G H still works at Orm Labs.") in made
    assert not any(q == "Who does G H work for?" and s != "G H still works at Orm Labs." for q, s in made)  # once, by the nearest
    assert {("What did A B join?", "A B works for Orm Labs."), ("Where does A B still work?", "A B works for Orm Labs.")} <= made
