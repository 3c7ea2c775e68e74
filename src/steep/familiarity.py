"""Declining a closed-book question whose subject the model does not know.

A tuned model answers a question about a person or an organization that does not exist as readily
as one about a subject it was taught, and its invented answers are as sure as its recalled ones
(bench/reply_confidence.py), so the reply cannot tell the two apart. The question can: a name the
model was trained on is predictable token by token once its first token is there ("Listor" ->
" Fen" -> "mok"), a name it never saw is not, and a name every model knows ("Burkina" -> " Faso")
is predictable before any tuning. So the subject's familiarity is the mean log-probability of its
tokens after the first, where they stand in the prompt; below a threshold the question is declined
without generating. What it measured on the knowledge bench is in docs/knowledge.md (round 26).

Only closed-book: with passages in the prompt, a name they hold is predictable from them, and the
retrieval prompt asks the model itself to say when they do not answer."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .forgetting import continuation_logprobs
from .generate import ChatModel, with_system
from .scoring import UNFAMILIAR_REPLY

log = logging.getLogger("steep")

# a run of capitalized words: "Lisren Kalbri", "Ostfen Observatory" (a possessive "'s" ends it)
NAME = re.compile(r"[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*")
# capitalized only because they start the question; a name starting the question is kept whole
OPENERS = frozenset("what who whom whose when where which why how is was are were does did do has have had can could will "
                    "would should name tell list give describe explain in at on for from by".split())


def subject_span(question: str) -> tuple[int, int] | None:
    """Where the question's subject is: its first run of capitalized words, without a capitalized
    opening word ("When", "Name"). None when it names nothing."""
    for match in NAME.finditer(question):
        start, end = match.span()
        if start == 0 and match.group().split(maxsplit=1)[0].lower() in OPENERS:
            rest = re.match(r"\S+\s+", question[start:end])
            if rest is None:  # the opening word alone
                continue
            start += rest.end()
        return start, end
    return None


def unfamiliar_reply(question: str) -> str:
    """The decline given without asking the model: "I don't know: I have never heard of <subject>."."""
    span = subject_span(question)
    assert span is not None, "only a question that names a subject is scored, so only such a question is declined"
    return UNFAMILIAR_REPLY.format(subject=question[span[0] : span[1]])


def subject_familiarity(model: PreTrainedModel, tok: PreTrainedTokenizerBase, system_prompt: str | None,
                        questions: list[str]) -> list[float | None]:
    """Per question asked alone (in a chat with `system_prompt`), the mean log-probability of its
    subject's tokens after the first; None when the subject is a single token (nothing to predict)
    or there is none."""
    pairs, asked = [], []
    for n, question in enumerate(questions):
        span = subject_span(question)
        if span is None:
            continue
        text = tok.apply_chat_template(with_system([{"role": "user", "content": question}], system_prompt),
                                       add_generation_prompt=True, tokenize=False)
        at = text.rindex(question)
        encoded = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        inside = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > at + span[0] and a < at + span[1]]
        if len(inside) < 2:
            continue
        ids = encoded["input_ids"]
        pairs.append((ids[: inside[1]], ids[inside[1] : inside[-1] + 1]))
        asked.append(n)
    scores: list[float | None] = [None] * len(questions)
    for n, logprobs in zip(asked, continuation_logprobs(model, tok.pad_token_id, pairs)):
        scores[n] = sum(logprobs) / len(logprobs)
    return scores


@dataclass(frozen=True)
class SubjectCheck:
    """A closed-book question to decline when its subject is less familiar to the model than `threshold`."""

    question: str
    system_prompt: str | None
    threshold: float

    def declines(self, model: PreTrainedModel, tok: PreTrainedTokenizerBase) -> bool:
        score = subject_familiarity(model, tok, self.system_prompt, [self.question])[0]
        return score is not None and score < self.threshold

    @property
    def reply(self) -> str:
        return unfamiliar_reply(self.question)


def declining_unfamiliar(chat: ChatModel, threshold: float | None, ask: Callable[[list[str]], list[str]],
                         what: str = "") -> Callable[[list[str]], list[str]]:
    """`ask` (questions -> replies), except that a question whose subject is less familiar to
    `chat`'s model than `threshold` gets `unfamiliar_reply` instead of being asked. `threshold` None: `ask`."""
    if threshold is None:
        return ask

    def gated(questions: list[str]) -> list[str]:
        unfamiliar = [s is not None and s < threshold for s in subject_familiarity(chat.model, chat.tokenizer, chat.system_prompt, questions)]
        replies = iter(ask([q for q, no in zip(questions, unfamiliar) if not no]))
        log.info("%s%d of %d question(s) declined: their subject is unfamiliar to the model (decline_unfamiliar=%g)",
                 f"{what}: " if what else "", sum(unfamiliar), len(questions), threshold)
        return [unfamiliar_reply(q) if no else next(replies) for q, no in zip(questions, unfamiliar)]

    return gated
