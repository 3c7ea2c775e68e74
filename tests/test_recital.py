"""Closed-book answers that recall first: recitals about the question's names, then the question over them (steep.recital)."""

from __future__ import annotations

import pytest

from steep.rag import RAG_PROMPT
from steep.recital import RECITAL_REQUEST, recital_subjects, reciting


@pytest.mark.parametrize(("question", "subjects"), [
    ("What is the alma mater of Lisren Kalbri?", ["Lisren Kalbri"]),
    ("Which town do Ada Quill and Bo Renhart share, Ada Quill's or another?", []),  # a choice
    ("Who was born earlier, Ada Quill or Bo Renhart?", []),
    ("Was Ada Quill born before 1970?", []),
    ("Does Ostfen Observatory employ more than 500 people?", []),
    ("Where do Ada Quill and Bo Renhart both work?", ["Ada Quill", "Bo Renhart"]),
    ("How many people work there?", []),
])
def test_value_questions_are_recited_for_by_each_name_once(question, subjects):
    assert recital_subjects(question) == subjects


class RecordingChat:
    """Replies "said about <name>." to a recital request and keeps the last message of every conversation it was given."""

    def __init__(self):
        self.asked: list[str] = []

    def generate(self, conversations, max_new_tokens=48, batch_size=16, desc=None):
        self.asked += [c[-1]["content"] for c in conversations]
        return [f"said about {c[-1]['content'].removeprefix('Tell me what you know about ')}" for c in conversations]


def test_the_question_is_put_over_the_models_own_recitals_and_each_name_is_recited_once():
    chat = RecordingChat()
    prompts: list[str] = []
    ask, recitals = reciting(chat, lambda ps: prompts.extend(ps) or [f"reply {i}" for i in range(len(ps))])
    questions = ["What is the alma mater of Ada Quill?", "Was Ada Quill born before 1970?", "Where do Ada Quill and Bo Renhart both work?"]
    assert ask(questions) == ["reply 0", "reply 1", "reply 2"]
    assert chat.asked == [RECITAL_REQUEST.format(subject="Ada Quill"), RECITAL_REQUEST.format(subject="Bo Renhart")]
    assert prompts == [RAG_PROMPT.format(context="said about Ada Quill.", question=questions[0]), questions[1],
                       RAG_PROMPT.format(context="said about Ada Quill.\n\nsaid about Bo Renhart.", question=questions[2])]
    assert recitals == {"Ada Quill": "said about Ada Quill.", "Bo Renhart": "said about Bo Renhart."}
    ask(["Who employs Ada Quill?"])  # recited before: not asked again
    assert len(chat.asked) == 2 and prompts[-1] == RAG_PROMPT.format(context="said about Ada Quill.", question="Who employs Ada Quill?")
