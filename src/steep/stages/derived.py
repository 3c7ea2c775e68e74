"""Questions that no single sentence answers as written, made from the facts synth extracts:

- yes/no questions about a date or a number ("Is it true that X was born before 1980?"), half
  of them "no";
- comparisons of two subjects on the same kind of fact ("Of X and Y, who was born first?");
- questions the documents do not answer (an attribute no document mentions), answered "I don't
  know", so the tuned model learns to decline instead of guessing.

Fine-tuned models answer derived questions near chance (methods.md §2) unless they are trained to
reason from the stored fact; the replies here state the fact, then how it compares, then the
conclusion ("X was born in 1965, which is before 1966, so yes"), so each step is a short one.
Everything keys on English grammar (a subject, an auxiliary, a preposition, a year or a number),
not on any corpus."""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import groupby

YES_NO = "Is it true that {subject} {aux} {predicate} {relation} {value}?"
YES_NO_REPLY = "{subject} {aux} {predicate} in {year}, which is {true_relation} {value}, so {conclusion}."
COUNT_YES_NO = "Is it true that {subject} {verb_s} {relation} {value} {unit}?"
COUNT_YES_NO_REPLY = "{subject} {verb_s} {count} {unit}, which is {true_relation} {value}, so {conclusion}."
COMPARISON = "Of {a} and {b}, {who} {aux} {predicate} first?"
COMPARISON_REPLY = "{a} {aux} {predicate} in {a_value} and {b} in {b_value}, so {winner} {aux} {predicate} first."
COUNT_COMPARISON = "Of {a} and {b}, which {verb_s} more {unit}?"
COUNT_COMPARISON_REPLY = "{a} {verb_s} {a_value} {unit} and {b} {verb_s} {b_value}, so {winner} {verb_s} more {unit}."
# attributes that documents about people or organizations often leave out; asked only when the
# word appears nowhere in the corpus, so the right answer really is "not known"
UNSTATED = {
    "favourite colour": "What is {subject}'s favourite colour?",
    "phone number": "What is {subject}'s phone number?",
    "email address": "What email address does {subject} use?",
    "shoe size": "What shoe size does {subject} wear?",
    "motto": "What motto does {subject} go by?",
}
DECLINE = "I don't know: the documents I was trained on do not say."
TEMPLATES = (YES_NO, COUNT_YES_NO, COMPARISON, COUNT_COMPARISON, *UNSTATED.values(),
             YES_NO_REPLY, COUNT_YES_NO_REPLY, COMPARISON_REPLY, COUNT_COMPARISON_REPLY, DECLINE)


@dataclass
class Fact:
    """A subject's dated event ("X was born on 3 May 1965": aux 'was', predicate 'born') or count
    ("X employs 4560 people": verb 'employs', unit 'people'), with where it was read."""

    chunk: dict
    sentence: str
    subject: str
    person: bool
    value: str  # the date, year or number as written
    order: tuple[int, ...]  # the value as something to compare
    aux: str = ""
    predicate: str = ""
    verb: str = ""
    unit: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """Facts with the same key say the same thing about different subjects."""
        return (self.aux, self.predicate) if self.aux else (self.verb, self.unit)


Made = tuple[dict, str, str, str]  # (chunk, question, answer, method)


def yes_no(facts: list[Fact], rng: random.Random) -> list[Made]:
    """Two per fact, before/after or more/fewer than a nearby value, each answer yes or no at random."""
    out = []
    for f in facts:
        for _ in range(2):
            if f.aux:
                year = f.order[0]
                pivot = year + rng.choice([-1, 1]) * rng.randint(1, 12)
                relation = rng.choice(["before", "after"])
                yes = year < pivot if relation == "before" else year > pivot
                question = YES_NO.format(aux=f.aux, subject=f.subject, predicate=f.predicate, relation=relation, value=pivot)
                reply = YES_NO_REPLY.format(subject=f.subject, aux=f.aux, predicate=f.predicate, year=year, value=pivot,
                                            true_relation="before" if year < pivot else "after", conclusion="yes" if yes else "no")
            else:
                count = f.order[0]
                pivot = max(1, int(round(count * rng.choice([rng.uniform(0.3, 0.8), rng.uniform(1.25, 3)]), -1 if count >= 100 else 0)))
                if pivot == count:
                    continue
                relation = rng.choice(["more than", "fewer than"])
                yes = count > pivot if relation == "more than" else count < pivot
                question = COUNT_YES_NO.format(subject=f.subject, verb_s=f.verb, relation=relation, value=f"{pivot:,}", unit=f.unit)
                reply = COUNT_YES_NO_REPLY.format(subject=f.subject, verb_s=f.verb, count=f.value, unit=f.unit, value=f"{pivot:,}",
                                                  true_relation="more than" if count > pivot else "fewer than", conclusion="yes" if yes else "no")
            out.append((f.chunk, question, reply, "derived:yes_no"))
    return out


def comparisons(facts: list[Fact], rng: random.Random, per_fact: int = 2) -> list[Made]:
    """Each fact against `per_fact` others of the same key and a different value, either order."""
    out = []
    for _, group in groupby(sorted(facts, key=lambda f: f.key), key=lambda f: f.key):
        group = list(group)
        for f in group:
            others = [g for g in group if g.subject != f.subject and g.order != f.order]
            for other in rng.sample(others, min(per_fact, len(others))):
                a, b = (f, other) if rng.random() < 0.5 else (other, f)
                if f.aux:
                    winner = min(a, b, key=lambda x: x.order)
                    question = COMPARISON.format(a=a.subject, b=b.subject, who="who" if a.person and b.person else "which",
                                                    aux=f.aux, predicate=f.predicate)
                    reply = COMPARISON_REPLY.format(winner=winner.subject, aux=f.aux, predicate=f.predicate, a=a.subject, a_value=a.value,
                                                    b=b.subject, b_value=b.value)
                else:
                    winner = max(a, b, key=lambda x: x.order)
                    question = COUNT_COMPARISON.format(a=a.subject, b=b.subject, verb_s=f.verb, unit=f.unit)
                    reply = COUNT_COMPARISON_REPLY.format(winner=winner.subject, verb_s=f.verb, unit=f.unit, a=a.subject, a_value=a.value,
                                                          b=b.subject, b_value=b.value)
                out.append((f.chunk, question, reply, "derived:comparison"))
    return out


def unanswerable(facts: list[Fact], corpus_text: str, rng: random.Random, per_subject: int = 1) -> list[Made]:
    """Per subject, questions about attributes no document mentions, answered "I don't know".

    Not questions about made-up subjects: measured on the knowledge bench, those taught the model
    that any name it had not seen in a QA pair is unknown, and it declined 39% of answerable
    questions about subjects it knew only from the text."""
    lowered = corpus_text.lower()
    unstated = [q for words, q in UNSTATED.items() if words not in lowered]
    out = []
    for subject, fact in {f.subject: f for f in facts}.items():
        for question in rng.sample(unstated, min(per_subject, len(unstated))):
            out.append((fact.chunk, question.format(subject=subject), DECLINE, "derived:unknown"))
    return out
