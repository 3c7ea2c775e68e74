"""Questions that no single sentence answers as written, made from the facts synth extracts:

- yes/no questions about a date or a number ("Was X born before 1980?", "Is it true that X
  was born before 1980?"), half of them "no";
- yes/no questions about a place, asked of the subject or, through a clause that names it, of
  "the one" that clause describes ("Does the one X works for have its headquarters in Brask?");
- comparisons of two subjects on the same kind of fact ("Of X and Y, who was born first?",
  "Who was born first, X or Y?"), and, as practice in naming the winner, comparisons whose
  question states both facts;
- questions the documents do not answer (an attribute no document mentions, or a subject no
  document names), answered "I don't know", so the tuned model learns to decline instead of
  guessing.

Fine-tuned models answer derived questions near chance (methods.md §2) unless they are trained to
reason from the stored fact; the replies here state the fact, then how it compares, then the
conclusion ("X was born in 1965, which is before 1966, so yes"), so each step is a short one.
With number drills on, the comparing step is written as its own sentence, the way a drill's reply
says it ("X was born in 1965. 1965 is before 1966, so yes."), so what the drills teach is the step
the reply takes.
Everything keys on English grammar (a subject, an auxiliary, a preposition, a year or a number),
not on any corpus."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from itertools import combinations, groupby
from typing import TYPE_CHECKING

from .questions import NAME_HEAD, Clause, do_support, first_upper, statement, yes_no_question

if TYPE_CHECKING:
    from ..config import UnknownPool

# Each derived question is asked in one of a few frames, drawn at random: trained on one frame
# ("Is it true that ...?") the tuned model answered other yes/no questions ("Was X born before
# 1970?") as plain questions, stating the fact and no yes or no (docs/knowledge.md, anchors).
YES_NO = "Is it true that {subject} {aux} {predicate} {relation} {value}?"
YES_NO_FRAMES = (YES_NO, "{Aux} {subject} {predicate} {relation} {value}?",
                 "Am I right that {subject} {aux} {predicate} {relation} {value}?")
YES_NO_REPLY = "{subject} {aux} {predicate} {when}, which is {relation} {y}, so {conclusion}."
COUNT_YES_NO = "Is it true that {subject} {verb_s} {relation} {value} {unit}?"
COUNT_YES_NO_FRAMES = (COUNT_YES_NO, "{Do} {subject} {verb} {relation} {value} {unit}?",
                       "Am I right that {subject} {verb_s} {relation} {value} {unit}?")
COUNT_YES_NO_REPLY = "{subject} {verb_s} {x} {unit}, which is {relation} {y}, so {conclusion}."
COMPARISON = "Of {a} and {b}, {who} {aux} {predicate} first?"
COMPARISON_FRAMES = (COMPARISON, "{Who} {aux} {predicate} first, {a} or {b}?")
COMPARED = "{a} {aux} {predicate} {a_when} and {b} {b_when}"  # the two facts a comparison reply states
WINNER = "{winner} {aux} {predicate} first"
COMPARISON_REPLY = COMPARED + ", so " + WINNER + "."
COUNT_COMPARISON = "Of {a} and {b}, which {verb_s} more {unit}?"
COUNT_COMPARISON_FRAMES = (COUNT_COMPARISON, "Which {verb_s} more {unit}, {a} or {b}?")
COUNT_COMPARED = "{a} {verb_s} {a_value} {unit} and {b} {verb_s} {b_value}"
COUNT_WINNER = "{winner} {verb_s} more {unit}"
COUNT_COMPARISON_REPLY = COUNT_COMPARED + ", so " + COUNT_WINNER + "."
# the one step a derived reply turns on ("1951 is before 1960"), said the same way in the drills
# that practise it on bare numbers and in the stepwise replies that take it
STEP = "{x} is {relation} {y}"
# or, with yes_no_step="asked", the step of a yes/no reply says the question's own relation, and
# "not" where it does not hold ("1992 is not before 1984, so no"): the yes or no then repeats the
# step's words instead of matching two relations
ASKED_STEP = "{x} is {negation}{asked} {y}"
# measured, the model then copies the asked relation into the step whatever the numbers ("1992 is
# before 1984, so yes"); with yes_no_step="contrast" the step says the relation that holds and,
# where the question asked the other one, denies it next to the answer ("1992 is after 1984, not
# before, so no"), as place replies deny the place asked ("..., not Brask, so no")
CONTRAST = ", not {asked}"
YES_NO_STEP_REPLY = "{subject} {aux} {predicate} {when}. {step}, so {conclusion}."
COUNT_YES_NO_STEP_REPLY = "{subject} {verb_s} {x} {unit}. {step}, so {conclusion}."
COMPARISON_STEP_REPLY = COMPARED + ". {step}, so " + WINNER + "."
COUNT_COMPARISON_STEP_REPLY = COUNT_COMPARED + ". {step}, so " + COUNT_WINNER + "."
# a comparison whose question states the two facts, so that the reply is the step and the name
# alone: which name goes with the winning value is read from the question, not recalled, and
# practised on many pairs (round 13: the replies recalled both values, said the step, then named
# the first option whatever the step said)
GIVEN = "{compared}. {question}"
GIVEN_REPLY = "{step}, so {winner}."
# a place asked about: the fact said, and where the question names another place, that place denied
PLACE_YES_NO_FRAMES = ("Is it true that {statement}?", "{question}", "Am I right that {statement}?")
PLACE_YES_REPLY = "{fact}, so yes."
PLACE_NO_REPLY = "{fact}, not {asked}, so no."
# the subject a place question asks about through another clause: "the one X works for"
DESCRIBED = NAME_HEAD
TWO_HOP_REPLY = "{link}. {reply}"
# the first hop said as the answer to the question's own description: "The one X works for is Y"
DESCRIPTION_IS = "{Description} is {name}"
DRILL_ORDER = "Is {x} before or after {y}?"
DRILL_SIZE = "Is {x} more or fewer than {y}?"
DRILL_STEP_REPLY = STEP + "."
DRILL_FIRST = "Of {x} and {y}, which comes first?"
FIRST = "{first} comes first"
DRILL_FIRST_REPLY = FIRST + "."
DRILL_LARGER = "Of {x} and {y}, which number is larger?"
LARGER = "{larger} is larger"
DRILL_LARGER_REPLY = LARGER + "."
# or, with comparison_step="pick", a comparison's step picks the winning value as those drills do
# ("Of 1971 and 1953, 1953 comes first"): the name that follows is the one the reply has just
# stated beside that value. Measured with the relation step, replies said "1971 is after 1953"
# and then named the first option anyway (docs/knowledge.md, round 13)
PICK_FIRST_STEP = "Of {x} and {y}, " + FIRST
PICK_LARGER_STEP = "Of {x} and {y}, " + LARGER
DRILL_YES_NO = "Is {x} {asked} {y}?"
DRILL_YES_NO_REPLY = "{step}, so {conclusion}."
# attributes that documents about people or organizations often leave out, each asked only when
# its word appears nowhere in the corpus, so the right answer really is "not known"; several per
# subject, in many wordings, so that declining is learned as a reply to any attribute the documents
# never state, not to a few phrasings. The model also learns their frames: asked with a verb
# ("What logo does X use?") instead of "What is X's logo?", the declines moved to answerable
# questions in the new frame ("At which university did X study?", 21 of 30; docs/knowledge.md,
# round 28), so the frames here are a trade, not a fix
UNSTATED_PERSON = {
    "favourite colour": "What is {subject}'s favourite colour?",
    "phone number": "What is {subject}'s phone number?",
    "email address": "What email address does {subject} use?",
    "shoe size": "What shoe size does {subject} wear?",
    "nickname": "What nickname do friends use for {subject}?",
    "favourite food": "Which food does {subject} like best?",
    "hobby": "What is {subject}'s hobby?",
    "tall": "How tall is {subject}?",
    "pet": "What kind of pet does {subject} keep?",
    "middle name": "What is {subject}'s middle name?",
}
UNSTATED_ORGANIZATION = {
    "motto": "What motto does {subject} go by?",
    "phone number": "What phone number does {subject} answer on?",
    "email address": "What email address does {subject} give its customers?",
    "website": "What is the address of {subject}'s website?",
    "ticker symbol": "Under which ticker symbol does {subject} trade?",
    "slogan": "Which slogan does {subject} advertise with?",
    "logo": "What does {subject}'s logo look like?",
    "mascot": "What is {subject}'s mascot?",
    "opening hours": "What are {subject}'s opening hours?",
    "dress code": "What dress code does {subject} have?",
}
# The same, about everyday things, each asked in an opening that answerable questions have too
# ("What does", "Where did", "Who is", ...): the pools above ask in frames of their own, and round
# 28 of docs/knowledge.md found that the model declines by the frame of the question. Sharing the
# openings was to leave the asked thing to tell answerable from not; measured (round 32), the
# declines moved to these openings instead, so this pool is not the default. Keyed by the first
# distinctive word.
EVERYDAY_PERSON = {
    "wedding": "Who was the best man at the wedding of {subject}?",
    "breakfast": "What does {subject} eat for breakfast?",
    "collect": "What does {subject} collect?",
    "holiday": "When was {subject} last on holiday?",
    "dinner": "What did {subject} have for dinner yesterday?",
    "swim": "Where did {subject} learn to swim?",
    "weekend": "Where was {subject} last weekend?",
    "dentist": "Who is the dentist of {subject}?",
    "tennis": "Where does {subject} play tennis?",
    "hiking": "Who does {subject} go hiking with?",
}
EVERYDAY_ORGANIZATION = {
    "logo": "Who was the designer of the logo of {subject}?",
    "canteen": "What does {subject} serve in its canteen?",
    "charity": "What does {subject} give to charity?",
    "staff party": "When was the last staff party of {subject}?",
    "sponsor": "What did {subject} sponsor last season?",
    "advertis": "Where did {subject} advertise?",
    "trade fair": "Where was the last trade fair of {subject}?",
    "mascot": "Who is the mascot of {subject}?",
    "recycl": "Where does {subject} recycle its waste?",
    "coffee": "Who does {subject} buy its coffee from?",
}
UNSTATED_POOLS = {"attributes": (UNSTATED_PERSON, UNSTATED_ORGANIZATION), "everyday": (EVERYDAY_PERSON, EVERYDAY_ORGANIZATION)}
# what a fact's kind calls for, asked about a subject that does not exist
NONEXISTENT_DATED = "When {aux} {subject} {predicate}?"
NONEXISTENT_COUNT = "How many {unit} does {subject} {verb}?"
DECLINE = "I don't know: the documents I was trained on do not say."
TEMPLATES = (*YES_NO_FRAMES, *COUNT_YES_NO_FRAMES, *COMPARISON_FRAMES, *COUNT_COMPARISON_FRAMES, *UNSTATED_PERSON.values(),
             *UNSTATED_ORGANIZATION.values(), *EVERYDAY_PERSON.values(), *EVERYDAY_ORGANIZATION.values(),
             NONEXISTENT_DATED, NONEXISTENT_COUNT, DRILL_ORDER, DRILL_FIRST, DRILL_SIZE, DRILL_LARGER, DRILL_YES_NO,
             *PLACE_YES_NO_FRAMES, PLACE_YES_REPLY, PLACE_NO_REPLY, DESCRIBED, TWO_HOP_REPLY, DESCRIPTION_IS,
             YES_NO_REPLY, COUNT_YES_NO_REPLY, COMPARISON_REPLY, COUNT_COMPARISON_REPLY, YES_NO_STEP_REPLY, COUNT_YES_NO_STEP_REPLY,
             COMPARISON_STEP_REPLY, COUNT_COMPARISON_STEP_REPLY, GIVEN, GIVEN_REPLY, DRILL_STEP_REPLY, DRILL_FIRST_REPLY, DRILL_LARGER_REPLY,
             DRILL_YES_NO_REPLY, STEP, ASKED_STEP, CONTRAST, DECLINE)


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
    preposition: str = "in"  # the one before a date in the sentence: "on 3 May 1965", "until 1990"

    def when(self, year_only: bool = False) -> str:
        """The date after its preposition ("on 3 May 1965"); `year_only`: the year alone, after
        "in" where a day took "on" ("in 1965")."""
        if year_only:
            return f"{'in' if self.preposition == 'on' else self.preposition} {self.order[0]}"
        return f"{self.preposition} {self.value}"

    @property
    def key(self) -> tuple[str, ...]:
        """Facts with the same key say the same thing about different subjects."""
        return (self.aux, self.predicate) if self.aux else (self.verb, self.unit)


@dataclass
class Placed:
    """A clause that puts its subject at a named place ("X has its headquarters in Vesgrad"),
    read by questions.parse, with the one phrase that names the place."""

    chunk: dict
    clause: Clause
    preposition: str
    place: str  # as written, with its article: "the University of Tarsk"

    @property
    def key(self) -> tuple[str, str]:
        """Facts with the same key put different subjects at places the same way ("born in")."""
        return self.clause.lemma, self.preposition


@dataclass
class Link:
    """A clause whose answer is a name: "X works for Y" says that Y is "the one X works for"."""

    chunk: dict
    said: str  # "X works for Y"
    description: str  # "the one X works for"
    name: str  # "Y"


Made = tuple[dict, str, str, str, str]  # (chunk, question, answer, method, label: which of a closed set of answers, or "")
BALANCED = ("derived:yes_no", "derived:comparison")  # methods whose labels curate keeps in equal numbers
# methods whose questions carry all they need: each trained once in the run, as a skill is, and
# not asked again with passages retrieved for them (RAFT)
DRILLS = ("derived:drill", "derived:given_comparison")


def _step(x: object, y: object, holds: str, asked: str, how: str) -> str:
    """A yes/no reply's comparing step: the relation that `holds`; or (`how` = "asked") the one
    `asked`, with "not" when it does not hold; or (`how` = "contrast") the one that holds, followed
    by the one asked, denied, when they differ."""
    if how == "asked":
        return ASKED_STEP.format(x=x, y=y, asked=asked, negation="" if asked == holds else "not ")
    contrast = CONTRAST.format(asked=asked) if how == "contrast" and asked != holds else ""
    return STEP.format(x=x, y=y, relation=holds) + contrast


def yes_no(facts: list[Fact], rng: random.Random, stepwise: bool = False, step: str = "holds") -> list[Made]:
    """Two per fact, before/after or more/fewer than a nearby value, each answer yes or no at random;
    `stepwise`: the comparing step is a sentence of its own, as in a drill, saying the relation that
    holds or the question's own (`step`: see `_step`)."""
    dated_reply, count_reply = (YES_NO_STEP_REPLY, COUNT_YES_NO_STEP_REPLY) if stepwise else (YES_NO_REPLY, COUNT_YES_NO_REPLY)
    out = []
    for f in facts:
        for _ in range(2):
            if f.aux:
                year = f.order[0]
                pivot = year + rng.choice([-1, 1]) * rng.randint(1, 12)
                relation = rng.choice(["before", "after"])
                yes = year < pivot if relation == "before" else year > pivot
                question = rng.choice(YES_NO_FRAMES).format(aux=f.aux, Aux=f.aux.capitalize(), subject=f.subject, predicate=f.predicate,
                                                            relation=relation, value=pivot)
                holds = "before" if year < pivot else "after"
                reply = dated_reply.format(subject=f.subject, aux=f.aux, predicate=f.predicate, when=f.when(year_only=True), x=year,
                                           y=pivot, relation=holds, step=_step(year, pivot, holds, relation, step),
                                           conclusion="yes" if yes else "no")
            else:
                count = f.order[0]
                pivot = max(1, int(round(count * rng.choice([rng.uniform(0.3, 0.8), rng.uniform(1.25, 3)]), -1 if count >= 100 else 0)))
                if pivot == count:
                    continue
                relation = rng.choice(["more than", "fewer than"])
                yes = count > pivot if relation == "more than" else count < pivot
                do, lemma = do_support(f.verb) or ("", "")
                frames = COUNT_YES_NO_FRAMES if do else (COUNT_YES_NO,)
                question = rng.choice(frames).format(subject=f.subject, verb_s=f.verb, Do=do.capitalize(), verb=lemma, relation=relation,
                                                     value=f"{pivot:,}", unit=f.unit)
                holds = "more than" if count > pivot else "fewer than"
                reply = count_reply.format(subject=f.subject, verb_s=f.verb, unit=f.unit, x=f.value, y=f"{pivot:,}", relation=holds,
                                           step=_step(f.value, f"{pivot:,}", holds, relation, step), conclusion="yes" if yes else "no")
            out.append((f.chunk, question, reply, "derived:yes_no", "yes" if yes else "no"))
    return out


def place_yes_no(placed: list[Placed], links: list[Link], rng: random.Random, first_hop: str, one_hop: bool) -> list[Made]:
    """Per link to a placed subject, one yes/no question about its place asked of "the one" the
    link describes and one about another place the corpus puts the same way (another birthplace,
    another headquarters), the reply saying both facts; with `one_hop`, the same two of each placed
    fact asked of its own subject. A fact about a place needs no number to compare, but the tuned
    model, asked "Is X's employer based in Y?", stated the employer and never said yes or no
    (docs/knowledge.md, round 2). With them asked of the subject itself too ("Did X study botany at
    the University of Y?"), the tuned demo model declined all 16 questions about a field of study
    (round 19).
    `first_hop`: the reply's first fact is the link's own sentence ("statement": "X works for Z.")
    or names the one the question describes ("description": "The one X works for is Z."), or
    either, drawn per question ("both"). Asked "Is X's employer based in Y?", a model trained on
    the first kind wrote "X's employer is Z" and mostly stopped there (round 16); trained on the
    second, whose opening has that shape, it went on to Z's place (round 18). Trained also on
    questions in their relation's other wordings, it opened some replies "X works for Z." and went
    on as the document does, not to Z's place (round 44): "both" teaches the second hop after
    either opening."""
    # a sentence read in both clause orders places its subject twice
    placed = list({(p.clause.subject, p.key, p.place): p for p in placed}.values())
    links = list({(link.description, link.name): link for link in links}.values())
    places: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_subject: dict[str, list[Placed]] = defaultdict(list)
    for p in placed:
        places[p.key].add(p.place)
        by_subject[p.clause.subject].append(p)
    asked: list[tuple[dict, Placed, Clause, Link | None]] = [(p.chunk, p, p.clause, None) for p in placed] if one_hop else []
    asked += [(link.chunk, p, replace(p.clause, subject=link.description), link) for link in links for p in by_subject.get(link.name, [])]
    out = []
    for chunk, p, clause, link in asked:
        fact = statement(p.clause, [(p.preposition, p.place)])
        wrong = sorted(places[p.key] - {p.place})
        for place in [p.place] + ([rng.choice(wrong)] if wrong else []):
            phrase = [(p.preposition, place)]
            question = rng.choice(PLACE_YES_NO_FRAMES).format(statement=statement(clause, phrase), question=yes_no_question(clause, phrase))
            reply = PLACE_YES_REPLY.format(fact=fact) if place == p.place else PLACE_NO_REPLY.format(fact=fact, asked=place)
            if link:
                reply = TWO_HOP_REPLY.format(link=_first_hop(link, first_hop, question), reply=reply)
            out.append((chunk, question, reply, "derived:yes_no", "yes" if place == p.place else "no"))
    return out


def _first_hop(link: Link, how: str, question: str) -> str:
    """The sentence a two-hop reply opens with (see `place_yes_no`); "both" draws it from a stream
    seeded by the question, so the questions and the other draws stay those of the other settings."""
    if how == "both":
        how = random.Random(question).choice(("statement", "description"))
    if how == "statement":
        return link.said
    return DESCRIPTION_IS.format(Description=first_upper(link.description), name=link.name)


def _by_key(facts: list[Fact]) -> list[list[Fact]]:
    """The facts in groups that say the same thing about different subjects."""
    return [list(group) for _, group in groupby(sorted(facts, key=lambda f: f.key), key=lambda f: f.key)]


def _winner(a: Fact, b: Fact) -> Fact:
    """Of two facts of one key, the earlier date or the larger count."""
    return min(a, b, key=lambda x: x.order) if a.aux else max(a, b, key=lambda x: x.order)


def _comparison(a: Fact, b: Fact, step: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """The frames a comparison of `a` and `b` (facts of one key) is asked in, and the fields its
    templates take: the names, the values, the winner and the comparing step, which says the
    values' relation or (`step` = "pick") picks the winning value, on years unless the two share one."""
    winner = _winner(a, b)
    if a.aux:
        who = "who" if a.person and b.person else "which"
        x, y = (a.value, b.value) if a.order[0] == b.order[0] else (a.order[0], b.order[0])
        said = (PICK_FIRST_STEP.format(x=x, y=y, first=x if winner is a else y) if step == "pick"
                else STEP.format(x=x, y=y, relation="before" if winner is a else "after"))
        return COMPARISON_FRAMES, {"a": a.subject, "b": b.subject, "who": who, "Who": who.capitalize(), "aux": a.aux,
                                   "predicate": a.predicate, "a_when": a.when(), "b_when": b.when(), "winner": winner.subject, "step": said}
    said = (PICK_LARGER_STEP.format(x=a.value, y=b.value, larger=winner.value) if step == "pick"
            else STEP.format(x=a.value, y=b.value, relation="more than" if winner is a else "fewer than"))
    return COUNT_COMPARISON_FRAMES, {"a": a.subject, "b": b.subject, "verb_s": a.verb, "unit": a.unit, "a_value": a.value,
                                     "b_value": b.value, "winner": winner.subject, "step": said}


def comparisons(facts: list[Fact], rng: random.Random, per_fact: int = 2, stepwise: bool = False, step: str = "relation") -> list[Made]:
    """Each fact against `per_fact` others of the same key and a different value, either order;
    `stepwise`: the comparing step is a sentence of its own, as in a drill (`step`: see `_comparison`)."""
    out = []
    for group in _by_key(facts):
        for f in group:
            others = [g for g in group if g.subject != f.subject and g.order != f.order]
            for other in rng.sample(others, min(per_fact, len(others))):
                a, b = (f, other) if rng.random() < 0.5 else (other, f)
                frames, fields = _comparison(a, b, step)
                question = rng.choice(frames).format(**fields)
                if f.aux:
                    reply = (COMPARISON_STEP_REPLY if stepwise else COMPARISON_REPLY).format(**fields)
                else:
                    reply = (COUNT_COMPARISON_STEP_REPLY if stepwise else COUNT_COMPARISON_REPLY).format(**fields)
                out.append((f.chunk, question, reply, "derived:comparison", "first" if fields["winner"] == a.subject else "second"))
    return out


def given_comparisons(facts: list[Fact], rng: random.Random, count: int, step: str = "relation") -> list[Made]:
    """`count` comparisons of two subjects whose question states both facts ("X was born on 3 May
    1971 and Y on 9 June 1953. Of X and Y, who was born first?"), replied with the step and the
    winner ("1971 is after 1953, so Y was born first."), the winner named first in half of them.
    Each is trained once in the run, as a drill is: what is taught is going from the step to the
    name that goes with the winning value, which the comparisons otherwise practise on a few dozen
    pairs. The facts stated are the documents' own, so nothing untrue is taught about a name."""
    pairs = {(f.key, *sorted((f.subject, g.subject))): (f, g) for group in _by_key(facts)
             for f, g in combinations(group, 2) if f.subject != g.subject and f.order != g.order}
    out = []
    for n, key in enumerate(rng.sample(sorted(pairs), min(count, len(pairs)))):
        f, g = pairs[key]
        winner = _winner(f, g)
        a, b = (f, g) if (winner is f) == (n % 2 == 0) else (g, f)
        frames, fields = _comparison(a, b, step)
        compared, won = (COMPARED, WINNER) if a.aux else (COUNT_COMPARED, COUNT_WINNER)
        question = GIVEN.format(compared=compared.format(**fields), question=rng.choice(frames).format(**fields))
        reply = GIVEN_REPLY.format(step=fields["step"], winner=won.format(**fields))
        out.append((a.chunk, question, reply, "derived:given_comparison", "first" if a is winner else "second"))
    return out


def number_drills(facts: list[Fact], rng: random.Random, count: int, step: str = "holds") -> list[Made]:
    """`count` questions comparing two bare numbers near the facts' own years and counts, the
    answers even between the two orders, in three forms: which relation holds, which number comes
    first (or is larger), and yes or no ("Is 1949 after 1960?" "1949 is before 1960, so no."), as
    many yes as no. A derived reply turns on that step, and the 135M default gets it wrong without
    practice: asked "Is 1949 before 1960?" it says "no" to all 40 such questions. Each drill is
    different, and each is trained once in the run (see train.py): the skill, not the numbers, is
    what is taught.
    `step`: how the yes/no form says its step, as in `yes_no`."""
    out = []
    for n in range(count if facts else 0):
        f = rng.choice(facts)
        lower_first = n % 2 == 0  # half the questions name the smaller number first
        form = n % 3  # with n % 2 above, every form meets both orders equally often
        if f.aux:
            low = f.order[0] + rng.randint(-15, 15)
            a, b = (low, low + rng.randint(1, 20)) if lower_first else (low + rng.randint(1, 20), low)
            a_text, b_text, relations = str(a), str(b), ("before", "after")
        else:
            low = max(1, round(f.order[0] * rng.uniform(0.3, 1.5)))
            a, b = (low, round(low * rng.uniform(1.1, 3))) if lower_first else (round(low * rng.uniform(1.1, 3)), low)
            if a == b:
                continue
            a_text, b_text, relations = f"{a:,}", f"{b:,}", ("fewer than", "more than")
        numbers = {"x": a_text, "y": b_text, "relation": relations[a > b]}
        if form == 0:
            question, reply = (DRILL_ORDER if f.aux else DRILL_SIZE).format(**numbers), DRILL_STEP_REPLY.format(**numbers)
        elif form == 1 and f.aux:
            question, reply = DRILL_FIRST.format(**numbers), DRILL_FIRST_REPLY.format(first=min(a, b))
        elif form == 1:
            question, reply = DRILL_LARGER.format(**numbers), DRILL_LARGER_REPLY.format(larger=f"{max(a, b):,}")
        else:
            # the asked relation turns every other pair of yes/no drills; with the orders above that
            # answers yes, no, no, yes: each answer and each asked relation as common as the other
            asked = relations[n // 6 % 2]
            question = DRILL_YES_NO.format(asked=asked, **numbers)
            reply = DRILL_YES_NO_REPLY.format(step=_step(a_text, b_text, numbers["relation"], asked, step),
                                              conclusion="yes" if asked == numbers["relation"] else "no")
        out.append((f.chunk, question, reply, "derived:drill", ""))
    return out


def unanswerable(facts: list[Fact], corpus_text: str, rng: random.Random, per_subject: int = 1,
                 pool: UnknownPool = "attributes") -> list[Made]:
    """Per subject, `per_subject` questions about attributes no document mentions (a person's or
    an organization's, as the subject looks), answered "I don't know". `pool` names the questions
    drawn from (UNSTATED_POOLS).

    Not questions about made-up subjects: measured on the knowledge bench, those taught the model
    that any name it had not seen in a QA pair is unknown, and it declined 39% of answerable
    questions about subjects it knew only from the text."""
    lowered = corpus_text.lower()
    person_pool, organization_pool = UNSTATED_POOLS[pool]
    out = []
    for subject, fact in {f.subject: f for f in facts}.items():
        asked = person_pool if fact.person else organization_pool
        unstated = [q for words, q in asked.items() if words not in lowered]
        for question in rng.sample(unstated, min(per_subject, len(unstated))):
            out.append((fact.chunk, question.format(subject=subject), DECLINE, "derived:unknown", ""))
    return out


def nonexistent(facts: list[Fact], corpus_text: str, rng: random.Random, share: float) -> list[Made]:
    """For `share` of the subjects, the question one of its facts calls for ("When was X born?",
    "How many people does X employ?") about a name that occurs nowhere, answered "I don't know".

    Round 1 of the knowledge bench made such names from parts of real ones (one subject's first
    name, another's surname), and the model learned to decline any name it had seen only in text,
    the real ones included. These names are new words throughout, spelled like the corpus's own
    names, so what tells them apart is only whether the documents ever mention them; an
    organization keeps its last word ("Labs"), which says what kind of subject it is."""
    seen = set(re.findall(r"[a-z]+", corpus_text.lower()))
    speller = Speller([w for f in facts for w in f.subject.split() if w.isalpha() and w[:1].isupper()])
    subjects = sorted({f.subject: f for f in facts}.items())
    out = []
    for subject, fact in rng.sample(subjects, round(share * len(subjects))):
        words = subject.split()
        kept = [] if fact.person or len(words) == 1 else words[-1:]
        made: list[str] = []
        for _ in words[: len(words) - len(kept)]:
            if not (word := speller.word(rng, seen)):
                break
            made.append(word)
            seen.add(word.lower())  # used once: no name repeats a word, no two share one
        if len(made) + len(kept) < len(words):
            continue
        name = " ".join(made + kept)
        if fact.aux:
            question = NONEXISTENT_DATED.format(aux=fact.aux, subject=name, predicate=fact.predicate)
        else:
            lemma = (do_support(fact.verb) or ("does", fact.verb))[1]
            question = NONEXISTENT_COUNT.format(unit=fact.unit, subject=name, verb=lemma)
        out.append((fact.chunk, question, DECLINE, "derived:nonexistent", ""))
    return out


class Speller:
    """New words in the style of some given ones: each letter is drawn given the two before it, as
    in the given words, or (one time in three, so that a few dozen names still give many new
    words) given only the one before it. Written here because it is a dozen lines and the name
    generators on PyPI draw from fixed lists of real names, not from the user's corpus."""

    def __init__(self, words: list[str]) -> None:
        self.following: dict[str, list[str]] = defaultdict(list)
        for word in words:
            padded = "^^" + word.lower() + "$"
            for i in range(2, len(padded)):
                self.following[padded[i - 2 : i]].append(padded[i])
                self.following[padded[i - 1]].append(padded[i])

    def word(self, rng: random.Random, avoid: set[str], tries: int = 200) -> str | None:
        """A capitalized word of 4 to 10 letters not in `avoid` (lower case), or None."""
        for _ in range(tries):
            text = "^^"
            while len(text) < 14:
                context = text[-1] if rng.random() < 1 / 3 else text[-2:]
                text += rng.choice(self.following.get(context) or self.following[text[-1]])
                if text.endswith("$"):
                    word = text[2:-1]
                    if 4 <= len(word) <= 10 and word not in avoid:
                        return word.capitalize()
                    break
        return None
