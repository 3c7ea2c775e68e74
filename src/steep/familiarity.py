"""Declining a closed-book question the model cannot know the answer to: one about a subject it
does not know (`decline_unfamiliar`), or one about a subject it was taught that asks for something
no training question asked (`decline_untaught`).

A tuned model answers a question about a person or an organization that does not exist as readily
as one about a subject it was taught, and its invented answers are as sure as its recalled ones
(bench/reply_confidence.py), so the reply cannot tell the two apart. The question can: a name the
model was trained on is predictable token by token once its first token is there ("Listor" ->
" Fen" -> "mok"), a name it never saw is not, and a name every model knows ("Burkina" -> " Faso")
is predictable before any tuning. So the subject's familiarity is the mean log-probability of its
tokens after the first, where they stand in the prompt; below a threshold the question is declined
without generating. What it measured on the knowledge bench is in docs/knowledge.md (round 26).

A taught subject does not make every question about it answerable: asked for an attribute the
documents never give (a blood type), the tuned model answers with a value of a kind it was taught.
Trained declines key on the wording of the questions taught to decline, not on what they ask
(docs/knowledge.md, rounds 28 and 32). So the question itself is compared with what training asked:
with its names masked, its nearest answerable training question by MiniLM cosine; below a threshold
it is declined without generating (round 36).

Only closed-book: with passages in the prompt, a name they hold is predictable from them, and the
retrieval prompt asks the model itself to say when they do not answer."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .forgetting import continuation_logprobs
from .generate import ChatModel, with_system
from .rag import RAG_PROMPT
from .retrieval import embed
from .rundir import read_jsonl
from .scoring import UNFAMILIAR_REPLY, UNTAUGHT_REPLY, says_unknown

log = logging.getLogger("steep")
# part of the eval stage's key: a change in which questions are declined unasked asks them again
# (3: the subject is the first name of two tokens or more; 2 was every name, reverted)
VERSION = 3

# a run of capitalized words: "Lisren Kalbri", "Ostfen Observatory" (a possessive "'s" ends it)
NAME = re.compile(r"[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*")
# capitalized only because they start the question; a name starting the question is kept whole
OPENERS = frozenset("what who whom whose when where which why how is was are were does did do has have had can could will "
                    "would should name tell list give describe explain in at on for from by".split())


def name_spans(question: str) -> Iterator[tuple[int, int]]:
    """Where the question's names are: its runs of capitalized words, without a capitalized
    opening word ("When", "Name")."""
    for match in NAME.finditer(question):
        start, end = match.span()
        if start == 0 and match.group().split(maxsplit=1)[0].lower() in OPENERS:
            rest = re.match(r"\S+\s+", question[start:end])
            if rest is None:  # the opening word alone
                continue
            start += rest.end()
        yield start, end


def subject(question: str) -> str | None:
    """The question's subject as it writes it: its first name (`name_spans`), or None."""
    span = next(name_spans(question), None)
    return question[span[0] : span[1]] if span else None


def unfamiliar_reply(subject: str) -> str:
    """The decline given without asking the model: "I don't know: I have never heard of <subject>."."""
    return UNFAMILIAR_REPLY.format(subject=subject)


def is_unfamiliar_reply(reply: str) -> bool:
    """Whether a reply is `unfamiliar_reply`'s, not `untaught_reply`'s (both open "I don't know: ")."""
    return reply.startswith(UNFAMILIAR_REPLY.split("{subject}")[0])


def untaught_reply(taught_subject: str) -> str:
    """The decline of a question no training question was like: "... do not say that about <subject>."."""
    return UNTAUGHT_REPLY.format(subject=taught_subject)


def question_shape(question: str) -> str:
    """The question with every name replaced by "X" (an opening question word kept, and "I"): what
    it asks, whoever it is about. "Where was Ada Quill born?" -> "Where was X born?"."""
    def mask(match: re.Match) -> str:
        words = match.group().split()
        kept = words[:1] if match.start() == 0 and words[0].lower() in OPENERS else []
        name = words[len(kept):]
        return " ".join(kept + ([] if not name else ["I"] if name == ["I"] else ["X"]))

    return NAME.sub(mask, question)


def answered_questions(conversations: list[dict]) -> list[tuple[str, str]]:
    """The (question, reply) pairs of training conversations that teach an answer to a question asked
    alone: single-turn, closed-book (no retrieval prompt) and answered (a trained decline teaches
    nothing to answer)."""
    retrieval_prompt = RAG_PROMPT.split("{context}")[0]
    pairs = [(c["messages"][0]["content"], c["messages"][1]["content"]) for c in conversations if len(c["messages"]) == 2]
    return [(q, a) for q, a in pairs if not q.startswith(retrieval_prompt) and not says_unknown(a)]


@dataclass(frozen=True, eq=False)  # an array field: compared by identity
class TaughtQuestions:
    """The closed-book questions a model was trained to answer: the subjects they name, and their
    shapes embedded (MiniLM, unit length). A question about one of those subjects is untaught when
    no shape is within `threshold` cosine of its own."""

    subjects: frozenset[str]
    shapes: np.ndarray
    threshold: float

    @classmethod
    def of_training(cls, conversations: list[dict], threshold: float) -> TaughtQuestions:
        """From training conversations' answered closed-book questions (`answered_questions`)."""
        questions = [question for question, _ in answered_questions(conversations)]
        shapes = sorted({question_shape(q) for q in questions})
        return cls(frozenset(filter(None, map(subject, questions))), embed(shapes), threshold)

    @classmethod
    def of_run(cls, run_dir: Path, threshold: float | None) -> TaughtQuestions | None:
        """The questions a run's curate stage handed to training; None when `threshold` is None or
        the run has no curate output (a model trained elsewhere)."""
        path = run_dir / "curate" / "qa.jsonl"
        if threshold is None:
            return None
        if not path.exists():
            log.warning("%s: no curate output, so no questions are declined as untaught (decline_untaught)", run_dir)
            return None
        return cls.of_training(read_jsonl(path), threshold)

    def taught_subject(self, question: str) -> str | None:
        """The question's first name that training questions name: not always its first name
        ("Who is the CEO of Pellow Labs?")."""
        return next((question[a:b] for a, b in name_spans(question) if question[a:b] in self.subjects), None)

    def untaught(self, questions: list[str]) -> list[str | None]:
        """Per question, its taught subject when no training question is like it, else None."""
        about = [self.taught_subject(q) for q in questions]
        asked = [q for q, name in zip(questions, about) if name]
        nearest = iter((embed([question_shape(q) for q in asked]) @ self.shapes.T).max(1) if asked else [])
        return [name if name and next(nearest) < self.threshold else None for name in about]


class Familiarity(NamedTuple):
    """How predictable a question's subject is to a model."""

    subject: str  # the name scored, as the question writes it
    score: float  # the mean log-probability of its tokens after the first


def subject_familiarity(model: PreTrainedModel, tok: PreTrainedTokenizerBase, system_prompt: str | None,
                        questions: list[str]) -> list[Familiarity | None]:
    """Per question asked alone (in a chat with `system_prompt`), the familiarity of its subject: its
    first name (`name_spans`) of two tokens or more. A name of one token has nothing to predict, and
    the one-token ones are titles and names every model knows ("CEO", "France"), so the subject
    after one is what gets scored: "Who is the CEO of Zarnex Holdings?" -> "Zarnex Holdings". None
    when the question has no such name."""
    pairs, asked = [], []
    for n, question in enumerate(questions):
        spans = list(name_spans(question))
        if not spans:
            continue
        text = tok.apply_chat_template(with_system([{"role": "user", "content": question}], system_prompt),
                                       add_generation_prompt=True, tokenize=False)
        at = text.rindex(question)
        encoded = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded["input_ids"]
        for start, end in spans:
            inside = [i for i, (a, b) in enumerate(encoded["offset_mapping"]) if b > at + start and a < at + end]
            if len(inside) >= 2:
                pairs.append((ids[: inside[1]], ids[inside[1] : inside[-1] + 1]))
                asked.append((n, question[start:end]))
                break
    found: list[Familiarity | None] = [None] * len(questions)
    for (n, name), logprobs in zip(asked, continuation_logprobs(model, tok.pad_token_id, pairs)):
        found[n] = Familiarity(name, sum(logprobs) / len(logprobs))
    return found


def declined_replies(model: PreTrainedModel, tok: PreTrainedTokenizerBase, system_prompt: str | None, questions: list[str],
                     unfamiliar: float | None, taught: TaughtQuestions | None) -> list[str | None]:
    """Per question, the reply it is declined with without asking the model, or None: its subject
    less familiar than `unfamiliar`, or a taught subject asked what no training question asked.
    None for a check: that check is off."""
    replies: list[str | None] = [None] * len(questions)
    if unfamiliar is not None:
        for n, familiarity in enumerate(subject_familiarity(model, tok, system_prompt, questions)):
            if familiarity is not None and familiarity.score < unfamiliar:
                replies[n] = unfamiliar_reply(familiarity.subject)
    if taught is not None:
        rest = [n for n, reply in enumerate(replies) if reply is None]
        for n, name in zip(rest, taught.untaught([questions[n] for n in rest])):
            if name:
                replies[n] = untaught_reply(name)
    return replies


@dataclass(frozen=True)
class SubjectCheck:
    """One closed-book question, to decline when `declined_replies` says so (serve and chat)."""

    question: str
    system_prompt: str | None
    unfamiliar: float | None
    taught: TaughtQuestions | None = None

    def decline(self, model: PreTrainedModel, tok: PreTrainedTokenizerBase) -> str | None:
        """The decline, or None: the model is to be asked."""
        return declined_replies(model, tok, self.system_prompt, [self.question], self.unfamiliar, self.taught)[0]


def declining(chat: ChatModel, unfamiliar: float | None, taught: TaughtQuestions | None, ask: Callable[[list[str]], list[str]],
              what: str = "") -> Callable[[list[str]], list[str]]:
    """`ask` (questions -> replies), except for the questions `declined_replies` declines, which
    get their decline instead of being asked. Both checks off: `ask`."""
    if unfamiliar is None and taught is None:
        return ask

    def gated(questions: list[str]) -> list[str]:
        declined = declined_replies(chat.model, chat.tokenizer, chat.system_prompt, questions, unfamiliar, taught)
        replies = iter(ask([q for q, no in zip(questions, declined) if no is None]))
        n_declined = len(questions) - declined.count(None)
        untaught = sum(reply is not None and not is_unfamiliar_reply(reply) for reply in declined)
        log.info("%s%d of %d question(s) declined unasked: %d about a subject unfamiliar to the model (decline_unfamiliar=%s), "
                 "%d asking what no training question asked (decline_untaught=%s)", f"{what}: " if what else "", n_declined,
                 len(questions), n_declined - untaught, unfamiliar, untaught, taught and taught.threshold)
        return [next(replies) if no is None else no for no in declined]

    return gated
