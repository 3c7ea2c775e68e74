"""Each fact also asked in the other wordings the corpus uses for its relation.

Documents word one relation in several ways ("Ada Quill studied botany", "Bo Renhart earned a
degree in physics"), and a fact learned under one wording is not recalled when asked in another:
at 100 entities the direct probes were 97.9% right where the entity's own document uses the
probe's words, 72.0% where it words the fact otherwise (docs/knowledge.md, "Where the direct
misses lie"). Rule questions ask a fact only in its own sentence's words; this step finds, from
the corpus alone, which question shapes ask one relation, and asks each fact also in the shapes of
its relation that its subject was not asked in. The reply is the fact's own sentence, so the new
wording is tied to the fact as the documents state it.

Two shapes (a rule question with its subject masked: "What did {subject} study?") are taken as
one relation on distributional evidence, after DIRT (Lin & Pantel, 2001), whose paths are alike
when their slots are filled by the same words:
  - each is asked of at least MIN_SUBJECTS subjects, mostly of the same kind (people, or not);
  - their answers share values: at least MIN_SHARED of them, and MIN_OVERLAP of the smaller set;
  - no subject is asked both with different answers. One person born in one town and living in
    another parts "Where was X born?" from "Where does X live?", whose answers are the same towns.
    MiniLM's nearness of the two shapes cannot part them (docs/knowledge.md, "What is left").
The pairing is not transitive, so a chain of near relations does not merge into one."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations

SUBJECT = "{subject}"
MIN_SUBJECTS = 3  # fewer, and two shapes share values by chance
MIN_SHARED = 2
MIN_OVERLAP = 0.3  # of the smaller shape's distinct answers: a company's head office and base shared 0.33 at 100 entities


@dataclass
class SubjectQuestion:
    """One rule question about one subject, and the sentence that answers it."""
    chunk: dict
    sentence: str
    subject: str
    question: str  # 'What did Ada Quill study?'
    answer: str  # 'botany'
    person: bool

    @property
    def shape(self) -> str:
        return self.question.replace(self.subject, SUBJECT)


def general(asked: list[SubjectQuestion]) -> list[SubjectQuestion]:
    """The questions of one sentence that ask a relation and nothing else: not those that hold
    another of its answers ("Where did X study botany?" names the field), whose shape is one
    subject's, not a relation's."""
    return [a for a in asked if not any(b.answer in a.question for b in asked if b is not a)]


def same_relation(asked: Iterable[SubjectQuestion]) -> dict[str, set[str]]:
    """Each shape that asks one relation with others, and those others."""
    answers: dict[str, dict[str, str]] = defaultdict(dict)  # shape -> subject -> answer
    person: dict[str, dict[str, bool]] = defaultdict(dict)  # shape -> subject -> is a person
    for a in asked:
        answers[a.shape].setdefault(a.subject, a.answer)
        person[a.shape].setdefault(a.subject, a.person)
    shapes = sorted(s for s, by_subject in answers.items() if len(by_subject) >= MIN_SUBJECTS)
    # a majority of subjects, not of questions: one sentence read in two clause orders asks twice
    of_people = {s: 2 * sum(person[s].values()) > len(person[s]) for s in shapes}
    related: dict[str, set[str]] = defaultdict(set)
    for one, other in combinations(shapes, 2):
        a, b = answers[one], answers[other]
        if of_people[one] != of_people[other] or any(a[s] != b[s] for s in a.keys() & b.keys()):
            continue
        shared = set(a.values()) & set(b.values())
        if len(shared) >= MIN_SHARED and len(shared) >= MIN_OVERLAP * min(len(set(a.values())), len(set(b.values()))):
            related[one].add(other)
            related[other].add(one)
    return dict(related)


def other_wordings(asked: list[SubjectQuestion]) -> list[SubjectQuestion]:
    """Each fact asked in the shapes of its relation its subject was not asked in, once each. Where
    two of the subject's sentences could answer it, the one asked in the nearest shape does: "Who
    does X work for?" is answered by "X still works at Y." (asked "Where does X still work?"), not
    by "X joined Y." (asked "What did X join?")."""
    related = same_relation(asked)
    asked_already = {(a.subject, a.shape) for a in asked}
    source: dict[tuple[str, str], SubjectQuestion] = {}  # (subject, shape) -> the question whose sentence answers it
    for a in asked:
        for shape in sorted(related.get(a.shape, ())):
            key = (a.subject, shape)
            if key not in asked_already and (key not in source or shared_words(a.shape, shape) > shared_words(source[key].shape, shape)):
                source[key] = a
    return [SubjectQuestion(a.chunk, a.sentence, subject, shape.replace(SUBJECT, subject), a.answer, a.person)
            for (subject, shape), a in source.items()]


def shared_words(shape: str, other: str) -> int:
    """How many words two shapes have in common: 'work' and 'does' of 'Where does {subject} still
    work?' and 'Who does {subject} work for?'."""
    return len(set(re.findall(r"[a-z]+", shape.lower())) & set(re.findall(r"[a-z]+", other.lower())))
