"""Closed-book answers that recall first (eval's `+recite` conditions): the model is asked what it
knows about each name in the question, in the request synth teaches ("Tell me what you know about
X."), and then answers the question with those recitals as its context, in the RAG prompt.
This is recitation-augmented generation (Sun et al., ICLR 2023) on a model that was trained on the
documents: a question worded unlike every training question often misses a fact that the model
states when asked about the subject, and reads back from its own recital (docs/knowledge.md,
round 41). No document is given: the context is the model's own words.

Only questions that ask for a value are recited for: a yes/no question or a choice between options
is answered as it was trained, with a stepwise reply that recalls the facts itself, which a recital
before it made worse (round 41)."""

from __future__ import annotations

from collections.abc import Callable

from .familiarity import name_spans
from .generate import Chat
from .rag import RAG_PROMPT
from .stages.synth import ABOUT_QUESTIONS

RECITAL_REQUEST = ABOUT_QUESTIONS[1]  # "Tell me what you know about {subject}."
RECITAL_TOKENS = 128  # room for a subject's facts, as synth's replies to the request state them
# the words a yes/no question opens with
AUXILIARIES = frozenset("is was are were does did do has have had can could will would should".split())


def asks_for_a_value(question: str) -> bool:
    """Not a yes/no question (it opens with an auxiliary) nor a choice ("..., X or Y?")."""
    words = question.split(maxsplit=1)
    return bool(words) and words[0].lower() not in AUXILIARIES and " or " not in question


def recital_subjects(question: str) -> list[str]:
    """The names to recite about before answering: every name in a question that asks for a value, once each."""
    if not asks_for_a_value(question):
        return []
    return list(dict.fromkeys(question[a:b] for a, b in name_spans(question)))


def recital_request(subject: str) -> list[dict[str, str]]:
    """The conversation that asks the model for its recital about `subject`."""
    return [{"role": "user", "content": RECITAL_REQUEST.format(subject=subject)}]


def recited_prompt(question: str, recitals: list[str]) -> str:
    """The question in the RAG prompt, its context the model's recitals."""
    return RAG_PROMPT.format(context="\n\n".join(recitals), question=question)


def recited_prompts(chat: Chat, questions: list[str], recitals: dict[str, str], batch_size: int = 16, what: str = "") -> list[str]:
    """Each question as it is to be asked: in the RAG prompt over the model's recitals about its
    `recital_subjects`, or as it is when it has none. `recitals` (by subject) is read and filled:
    a subject is recited about once."""
    subjects = [recital_subjects(q) for q in questions]
    new = sorted({s for names in subjects for s in names} - recitals.keys())
    if new:
        said = chat.generate([recital_request(s) for s in new], RECITAL_TOKENS, batch_size, desc=f"{what}: recite" if what else "recite")
        recitals.update(zip(new, said))
    return [recited_prompt(q, [recitals[s] for s in names]) if names else q for q, names in zip(questions, subjects)]


def reciting(chat: Chat, ask: Callable[[list[str]], list[str]], batch_size: int = 16,
             what: str = "") -> tuple[Callable[[list[str]], list[str]], dict[str, str]]:
    """`ask` (questions -> replies) over `recited_prompts`; also returns the recitals, by subject,
    filled as questions are asked (for the answers file)."""
    recitals: dict[str, str] = {}
    return (lambda questions: ask(recited_prompts(chat, questions, recitals, batch_size, what))), recitals
