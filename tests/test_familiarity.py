"""Declining closed-book questions the model cannot know: about a subject it does not know, or asking
what no training question asked about one it does (steep.familiarity)."""

from __future__ import annotations

import json

import pytest
import torch

from steep.familiarity import (TaughtQuestions, declined_replies, declining, question_shape, subject, subject_familiarity,
                               unfamiliar_reply, untaught_reply)
from steep.scoring import declined_unasked, says_unknown
from steep.stages.evaluate import answer_condition, summarize, table
from steep.generate import ChatModel
from steep.models import load_model, load_tokenizer
from steep.rag import rag_prompt
from steep.stages.derived import DECLINE


@pytest.mark.parametrize(("question", "name"), [
    ("When was Lisren Kalbri born?", "Lisren Kalbri"),
    ("Where does Ostfen Observatory have its headquarters?", "Ostfen Observatory"),
    ("Velyor Dynamics came into existence in which year?", "Velyor Dynamics"),
    ("Name the town that is the birthplace of Marvel Polfen.", "Marvel Polfen"),
    ("What was Marner Works's revenue last year?", "Marner Works"),
    ("Who was born earlier, Ada Quill or Bo Renhart?", "Ada Quill"),
    ("how many people work there?", None),
    ("Why?", None),
])
def test_the_subject_is_the_first_capitalized_name_after_the_opening_word(question, name):
    assert subject(question) == name


def test_familiarity_is_the_mean_logprob_of_the_subjects_tokens_after_the_first(tiny_model):
    chat = ChatModel(load_model(tiny_model), load_tokenizer(tiny_model))
    questions = ["When was Lisren Kalbri born?", "Who employs Bo Renhart?", "why?"]
    scores = subject_familiarity(chat.model, chat.tokenizer, None, questions)
    assert scores[2] is None
    tok = chat.tokenizer
    for question, name, (scored, score) in zip(questions, ("Lisren Kalbri", "Bo Renhart"), scores):
        assert scored == name
        # the same figure from one forward pass over the whole prompt
        ids = chat.prompt_ids([{"role": "user", "content": question}])
        name_ids = tok(" " + name, add_special_tokens=False)["input_ids"]
        start = next(i for i in range(len(ids)) if ids[i : i + len(name_ids)] == name_ids)
        with torch.no_grad():
            logprobs = chat.model(torch.tensor([ids])).logits.float().log_softmax(-1)[0]
        expected = [logprobs[i - 1, ids[i]].item() for i in range(start + 1, start + len(name_ids))]
        assert score == pytest.approx(sum(expected) / len(expected), abs=1e-4)


def test_the_scored_subject_is_the_first_name_of_two_tokens_or_more(tiny_model):
    chat = ChatModel(load_model(tiny_model), load_tokenizer(tiny_model))
    questions = ["Who is the CEO of Zarnex Holdings?",  # "CEO" is one token: nothing to predict
                 "Is Lisren Kalbri's employer based in Torheim?",  # the first name, not the least familiar
                 "What is the capital of France?"]  # one name, of one token
    found = subject_familiarity(chat.model, chat.tokenizer, None, questions)
    assert [f and f.subject for f in found] == ["Zarnex Holdings", "Lisren Kalbri", None]
    replies = declined_replies(chat.model, chat.tokenizer, None, questions, found[0].score + 1e-3, None)
    assert replies[0] == "I don't know: I have never heard of Zarnex Holdings." and replies[2] is None


def test_a_made_up_name_is_unfamiliar_to_the_default_model_and_a_known_one_is_not(default_model):
    chat = ChatModel(load_model(default_model), load_tokenizer(default_model))
    known, made_up, after_a_title = subject_familiarity(chat.model, chat.tokenizer, None, [
        "What is the capital of Burkina Faso?", "When was Lisren Kalbri born?", "Who is the CEO of Zarnex Holdings?"])
    assert known.score > -1.0
    assert made_up.score < -5.0 and after_a_title.score < -5.0


def test_unfamiliar_subjects_are_declined_without_being_asked(tiny_model):
    chat = ChatModel(load_model(tiny_model), load_tokenizer(tiny_model))
    questions = ["When was Lisren Kalbri born?", "why is the sky blue?", "Who employs Bo Renhart?"]
    scores = [found.score if found else None for found in subject_familiarity(chat.model, chat.tokenizer, None, questions)]
    threshold = (scores[0] + scores[2]) / 2  # between the two names' scores: one of them is declined
    asked = []

    def ask(prompts: list[str]) -> list[str]:
        asked.extend(prompts)
        return [f"reply to {p}" for p in prompts]

    replies = declining(chat, threshold, None, ask)(questions)
    lower = 0 if scores[0] < scores[2] else 2
    assert replies[lower] == ("I don't know: I have never heard of Lisren Kalbri." if lower == 0 else
                              "I don't know: I have never heard of Bo Renhart.")
    assert asked == [q for i, q in enumerate(questions) if i != lower]
    assert [r for i, r in enumerate(replies) if i != lower] == [f"reply to {q}" for q in asked]
    assert declining(chat, None, None, ask) is ask
    # eval counts these declines apart from the model's own, which say what training taught
    items = [{"question": q, "answers": ["x"], "answer_type": "unanswerable" if i == lower else "short"} for i, q in enumerate(questions)]
    rows = answer_condition(items, None, declining(chat, threshold, None, ask))
    assert [r["declined_unasked"] for r in rows] == [i == lower for i in range(3)] and rows[lower]["contained"] == 1.0
    summary = summarize(rows)
    assert summary["declined_unasked"] == 1 and summary["declined"] == 0.0  # the unasked one was unanswerable
    assert table({"tuned": summary}).splitlines()[2].split(" | ")[5:7] == ["0.0%", "1"]


def test_the_unasked_decline_is_a_decline_told_apart_from_the_trained_one():
    reply = unfamiliar_reply("Renkal Analytics")
    assert reply == "I don't know: I have never heard of Renkal Analytics." and says_unknown(reply) and declined_unasked(reply)
    assert says_unknown(DECLINE) and not declined_unasked(DECLINE)
    assert not declined_unasked("Renkal Analytics was founded in 2000.")


@pytest.mark.parametrize(("question", "shape"), [
    ("Where was Ada Quill born?", "Where was X born?"),
    ("Is Ada Quill's employer based in Brask?", "Is X's employer based in X?"),
    ("Who was born earlier, Ada Quill or Bo Renhart?", "Who was born earlier, X or X?"),
    ("Name the town that is the birthplace of Marvel Polfen.", "Name the town that is the birthplace of X."),
    ("Did I ask about Ada?", "Did I ask about X?"),
    ("why?", "why?"),
])
def test_a_question_shape_masks_its_names_but_the_opening_word(question, shape):
    assert question_shape(question) == shape


def _conversation(*turns: str) -> dict:
    return {"messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]}


TRAINING = [
    _conversation("Where was Ada Quill born?", "Ada Quill was born in Norvik."),
    _conversation("Who employs Bo Renhart?", "Carvo Shipping employs Bo Renhart."),
    _conversation("In which year was Pellow Labs founded?", "Pellow Labs was founded in 1950."),
    # none of these teaches a question to answer closed-book
    _conversation("What is the blood type of Ada Quill?", DECLINE),
    _conversation(rag_prompt("What is the shoe size of Cyra Vell?", [{"source": "c.md", "start": 0, "end": 9, "text": "Cyra Vell"}]),
                  "The context does not say."),
    _conversation("Tell me about Dara Moss.", "Dara Moss is a sailor.", "What is her shoe size?", "Size 7."),
]


def test_taught_questions_are_the_answered_closed_book_ones_and_a_question_unlike_them_is_untaught():
    taught = TaughtQuestions.of_training(TRAINING, 0.6)
    assert taught.subjects == {"Ada Quill", "Bo Renhart", "Pellow Labs"} and taught.shapes.shape == (3, 384)
    questions = ["In which town was Bo Renhart born?",  # a taught question's shape about another taught subject
                 "Which company does Ada Quill work for?",  # in other words
                 "What is the blood type of Bo Renhart?",  # asked of nobody in training but as a decline
                 "What is the blood type of Cyra Vell?",  # a subject training names in no answered question
                 "what is a blood type?",  # no subject
                 "Which car does the CEO of Pellow Labs drive?"]  # a taught subject, but not the first name
    assert taught.untaught(questions) == [None, None, "Bo Renhart", None, None, "Pellow Labs"]
    assert TaughtQuestions.of_training(TRAINING, -1.0).untaught(questions) == [None] * 6  # every cosine is above -1


def test_untaught_questions_are_declined_unasked_and_told_apart(tiny_model, tmp_path):
    chat = ChatModel(load_model(tiny_model), load_tokenizer(tiny_model))
    (tmp_path / "curate").mkdir()
    (tmp_path / "curate" / "qa.jsonl").write_text("".join(json.dumps(c) + "\n" for c in TRAINING))
    taught = TaughtQuestions.of_run(tmp_path, 0.6)
    assert taught is not None and taught.subjects == TaughtQuestions.of_training(TRAINING, 0.6).subjects
    assert TaughtQuestions.of_run(tmp_path, None) is None and TaughtQuestions.of_run(tmp_path / "elsewhere", 0.6) is None
    questions = ["Where was Bo Renhart born?", "What is the blood type of Bo Renhart?"]
    asked: list[str] = []

    def ask(prompts: list[str]) -> list[str]:
        asked.extend(prompts)
        return [f"reply to {p}" for p in prompts]

    replies = declining(chat, None, taught, ask)(questions)
    assert replies == ["reply to Where was Bo Renhart born?", untaught_reply("Bo Renhart")] and asked == questions[:1]
    assert replies[1] == "I don't know: the documents I was trained on do not say that about Bo Renhart."
    assert says_unknown(replies[1]) and declined_unasked(replies[1])
    # with both checks on, a subject the model does not know is declined as unfamiliar first
    found = subject_familiarity(chat.model, chat.tokenizer, None, questions)
    assert declined_replies(chat.model, chat.tokenizer, None, questions, max(f.score for f in found) + 1, taught) == [
        unfamiliar_reply("Bo Renhart")] * 2
