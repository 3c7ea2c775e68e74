"""Questions a person would ask, made from declarative sentences by English grammar:

    'Ada Quill studied botany at the University of Tarsk.'
      -> 'What did Ada Quill study?'            (the object)
      -> 'Where did Ada Quill study botany?'    (a name after a place preposition)
      -> 'Tell me what Ada Quill studied.'      (the same question, embedded)
      -> 'Ada Quill studied what?'              (in the statement's own order)
      -> 'Which university did Ada Quill study botany at?'  (the answer named by its kind)
    'Ada Quill was born in Norvik.'
      -> 'What is the place where Ada Quill was born?'  (the answer described by a noun)
    'Pellow Labs was founded in 1990 by Mira Holt.'
      -> 'When was Pellow Labs founded?', 'Who founded Pellow Labs?'

A sentence is read as subject (the name it opens with), verb (with its auxiliary, if passive or
perfect), object (the words up to the first preposition) and prepositional phrases; the question
moves the auxiliary or adds do-support ("did" + the verb's lemma, from `lemminflect`) and asks
for one part with the wh-word its kind calls for. Only the main clause is read, so a sentence's
relative clauses never end up half-quoted in a question. Sentences that do not fit the pattern
make no questions: the other QA kinds (cloze, "about") still cover them."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from lemminflect import getAllLemmas, getInflection

PREPOSITIONS = {"in", "at", "on", "for", "from", "by", "with", "to", "since", "during", "near", "into", "under", "after", "before", "until", "as"}
PLACE_PREPOSITIONS = {"in", "at", "from", "near"}
TIME_PREPOSITIONS = {"in", "on", "since", "during", "until", "after", "before"}
UNASKED_PREPOSITIONS = {"as", "to", "since", "during", "until", "after", "before", "into", "under"}  # "What did X work as?" reads badly
ARTICLE = re.compile(r"^(?:the|a|an) ")
DETERMINER = re.compile(r"^(?:the|a|an|its|his|her|their) ")
AUXILIARIES = {"is", "was", "are", "were", "has", "have", "had"}
NOT_PREVERBAL = {"not", "never", "no", "hardly", "scarcely", "barely", "seldom", "rarely", "almost", "nearly"}
CLAUSE_END = re.compile(r",|;|:| (?:which|who|whose|where|when|while|and|but|because|although|so) ")
# the same question embedded in a request, for variety in how a question is put
EMBEDDED = ("Tell me {clause}.", "Do you know {clause}?", "I would like to know {clause}.")
# the answer described by a noun and a clause ("the place where X was born"), asked for as a thing:
# users ask "What is the date when ...?" as often as "When ...?"
DESCRIBED_FRAMES = ("{What} is {described}?", "Identify {described}.", "Give {described}.")  # "Who is the one X works for?"
PLACE_HEAD, TIME_HEAD, COUNT_HEAD, NAME_HEAD = "the place where {clause}", "the {kind} when {clause}", "the number of {unit} {clause}", "the one {clause}"
# the wh-phrase left where the answer stands in the statement: "X was born in which place?"
IN_PLACE_WH = {"date": "what date", "year": "what year", "place": "which place", "name": "whom", "other": "what"}
FORMS = ("embedded", "described", "in_place")
# every fixed wording these questions use, for tests/test_knowledge.py to keep the benchmark's apart
FRAMES = tuple(f"{wh} {{do}} {{subject}} {{verb}} {{rest}}?" for wh in ("What", "When", "Where", "Who", "How many {unit}")) + tuple(
    f"{wh} {{aux}} {{subject}} {{verb}} {{rest}}?" for wh in ("What", "When", "Where", "Who")) + ("Who {verb} {subject}?",) + EMBEDDED + (
    DESCRIBED_FRAMES + (PLACE_HEAD, TIME_HEAD, COUNT_HEAD, NAME_HEAD) + tuple(f"{{subject}} {{verb}} {{rest}} {{prep}} {wh}?" for wh in IN_PLACE_WH.values())
    + ("{subject} {verb} how many {unit}?", "Which {kind} {do} {subject} {verb} {rest} {prep}?"))


@dataclass
class Clause:
    subject: str
    verb: str  # as written: 'studied', 'born', 'lives'
    lemma: str
    aux: str | None  # 'was' in 'was born'; None for a finite lexical verb
    do: str  # do-support for a finite verb: does / did / do
    object: str  # words between the verb and the first preposition: 'botany', '4560 people', ''
    phrases: list[tuple[str, str]] = field(default_factory=list)  # (preposition, phrase)
    adverb: str = ""  # one before the verb, kept wherever the verb goes: 'still' in 'X still works at Y'

    @property
    def said(self) -> str:
        """Subject and verb in a statement's order: 'X still works', 'X was born'."""
        return " ".join(w for w in (self.subject, self.aux, self.adverb, self.verb) if w)

    @property
    def asked(self) -> str:
        """Subject and verb in a question's order: 'does X still work', 'was X born'."""
        words = (self.aux, self.subject, self.adverb, self.verb) if self.aux else (self.do, self.subject, self.adverb, self.lemma)
        return " ".join(w for w in words if w)


def _verb_forms(word: str) -> tuple[str, set[str]] | None:
    """(lemma, Penn tags the word can be as that verb's form) or None if it is no verb."""
    lemmas = getAllLemmas(word.lower()).get("VERB")
    if not lemmas or not word.islower():
        return None
    lemma = lemmas[0]
    tags = {tag for tag in ("VBZ", "VBD", "VBN", "VBP") if word in getInflection(lemma, tag)}
    return (lemma, tags) if tags else None


def opening_adverb(word: str) -> bool:
    """'Today', 'Currently', 'Later': a word that can open a sentence before its subject (and end
    it, once moved there). One that is also an adjective ('Long', 'Early') may be the first word of
    a name and is not taken."""
    lemmas = getAllLemmas(word.lower())
    return "ADV" in lemmas and word.lower() not in lemmas.get("ADJ", ())


def first_upper(text: str) -> str:
    """The text with its first letter a capital and the rest as written ('str.capitalize' lowers
    the names after it)."""
    return text[:1].upper() + text[1:]


def preverbal_adverb(word: str) -> bool:
    """'still', 'also', 'later' between a subject and its verb. Negations and hedges ('never',
    'almost') are not taken: a question or a yes/no about such a clause says the opposite of
    what a reader takes from it."""
    return word.islower() and "ADV" in getAllLemmas(word) and word not in NOT_PREVERBAL


def do_support(verb: str) -> tuple[str, str] | None:
    """The auxiliary and lemma a question puts in place of a finite lexical verb ('employs' ->
    ('does', 'employ'); 'has' as the main verb -> ('does', 'have')), or None if `verb` is not one."""
    if verb in {"has", "had", "have"}:
        return {"has": "does", "had": "did", "have": "do"}[verb], "have"
    forms = _verb_forms(verb)
    if not forms or verb in AUXILIARIES | {"does", "did", "do"} or not forms[1] & {"VBZ", "VBD", "VBP"}:
        return None
    tag = "VBZ" if "VBZ" in forms[1] else "VBD" if "VBD" in forms[1] else "VBP"
    return {"VBZ": "does", "VBD": "did", "VBP": "do"}[tag], forms[0]


def parse(sentence: str, subject: str, atoms: list[tuple[int, int]]) -> Clause | None:
    """The main clause of `sentence`, which opens with `subject`. `atoms` are character spans
    (names, dates, numbers) that stay whole even when they hold a preposition ('University of X')."""
    rest = sentence[len(subject) :].rstrip(" .!?")
    end = CLAUSE_END.search(rest)
    rest = rest[: end.start()] if end else rest
    offset = len(subject)
    tokens: list[str] = []  # words, with each atom as one token
    pos = 0
    for a, b in sorted(atoms):
        a, b = a - offset, b - offset
        if a < pos or b > len(rest):
            continue
        tokens += rest[pos:a].split() + [rest[a:b]]
        pos = b
    tokens += rest[pos:].split()
    adverb = ""
    at = 1 if tokens and tokens[0] in AUXILIARIES else 0  # 'X still works', 'X is still based'
    if len(tokens) > at + 1 and preverbal_adverb(tokens[at]) and (at or tokens[1] in AUXILIARIES or do_support(tokens[1])):
        adverb = tokens.pop(at)
    if len(tokens) < 2:
        return None
    if tokens[0] in AUXILIARIES and (participle := _verb_forms(tokens[1])) and "VBN" in participle[1]:
        clause = Clause(subject, tokens[1], participle[0], tokens[0], "", "", adverb=adverb)
        tail = tokens[2:]
    elif support := do_support(tokens[0]):
        clause = Clause(subject, tokens[0], support[1], None, support[0], "", adverb=adverb)
        tail = tokens[1:]
    else:
        return None
    if len(tail) > 1 and tail[-1].islower() and opening_adverb(tail[-1]):
        tail = tail[:-1]  # "lives in Nervik today": the adverb is no part of the place
    words: list[str] = []
    for token in tail:
        if token.lower() in PREPOSITIONS:
            clause.phrases.append((token.lower(), ""))
        elif clause.phrases:
            prep, text = clause.phrases[-1]
            clause.phrases[-1] = (prep, f"{text} {token}".strip())
        else:
            words.append(token)
    clause.object = " ".join(words)
    clause.phrases = [(p, t) for p, t in clause.phrases if t]
    return clause


def statement(clause: Clause, phrases: list[tuple[str, str]]) -> str:
    """The clause said with only `phrases` after its object: 'X was born in Mokvik' of 'X was born
    in Mokvik on 3 May 1951'."""
    return " ".join(w for w in (clause.said, clause.object, *(f"{p} {t}" for p, t in phrases)) if w)


def yes_no_question(clause: Clause, phrases: list[tuple[str, str]]) -> str:
    """The statement asked as a yes/no question: 'Does X have its headquarters in Y?'."""
    words = [first_upper(clause.asked), clause.object, *(f"{p} {t}" for p, t in phrases)]
    return " ".join(w for w in words if w) + "?"


@dataclass(frozen=True)
class Asked:
    """One part of a clause asked about, in each form a question about it can take."""
    question: str  # 'Where was X born?'
    embedded: str  # 'where X was born', for 'Tell me ...'
    answer: str  # 'Norvik'
    in_place: str | None = None  # 'X was born in which place?'; None where the question already is in place
    described: str | None = None  # 'the place where X was born'; None where no noun fits ('what X studied')
    which: str | None = None  # 'Which university did X study botany at?'; None where the answer's name says no kind

    @property
    def forms(self) -> tuple[str, ...]:
        """The FORMS this question can be put in: every question embeds, not every one has a noun."""
        return tuple(form for form in FORMS if form == "embedded" or getattr(self, form))

    def put(self, form: str, rng: random.Random) -> str:
        """The question in `form`, one of `self.forms`."""
        if form == "embedded":
            return rng.choice(EMBEDDED).format(clause=self.embedded)
        if form == "described":
            what = "Who" if self.described.startswith(NAME_HEAD.format(clause="")) else "What"
            return rng.choice(DESCRIBED_FRAMES).format(What=what, described=self.described)
        return self.in_place


def _ask(clause: Clause, wh: str, rest: str, answer: str, stranded: str = "", in_place_wh: str = "",
         head: str = "", named_as: str | None = None, prep: str = "", **noun: str) -> Asked:
    """`wh` asked about the clause; `rest` follows the verb. `in_place_wh` is the wh-phrase that
    stands where the answer stood, with its preposition unless that is `stranded`; `head` describes
    the answer, with the clause after the wh-phrase ("X was born") in its {clause} and `noun`'s
    fields in the rest ("the {kind} when {clause}"). `named_as` is the noun the answer's name says
    it is, asked for with "which" and the answer's preposition `prep` left at the end."""
    tail = " ".join(w for w in (rest, stranded) if w)
    direct = f"{wh} {clause.asked} {tail}"
    bare = " ".join(w for w in (clause.said, tail) if w)  # 'X was born', 'X still works for'
    in_place = f"{bare} {in_place_wh}?" if in_place_wh else None
    which = " ".join(f"Which {named_as} {clause.asked} {rest} {prep}".split()) + "?" if named_as else None
    return Asked(" ".join(direct.split()) + "?", f"{wh.lower()} {bare}", answer, in_place,
                 head.format(clause=bare, **noun) if head else None, which)


def questions(clause: Clause, kind_of: dict[str, str], named_kind: dict[str, str] | None = None) -> list[Asked]:
    """Each part of the clause that can be asked about. `kind_of` maps answer-span texts to their
    kind (date, year, number, name); `named_kind` maps names to the noun they say their bearer is
    ('the University of Tarsk' -> 'university'), for the questions that ask for one by it."""
    named_kind = named_kind or {}
    out = []
    obj = clause.object
    if obj and not clause.aux and not (clause.phrases and DETERMINER.match(obj)):  # not 'What does X have?' of 'has its office in Y'
        count = re.match(r"^(\d[\d,]*) (\w+)$", obj)  # 'employs 4560 people' -> 'How many people does X employ?'
        if count:
            unit = count.group(2)
            out.append(_ask(clause, f"How many {unit}", "", count.group(1), in_place_wh=f"how many {unit}",
                            head=COUNT_HEAD, unit=unit))
        else:
            out.append(_ask(clause, "What", "", obj, in_place_wh=IN_PLACE_WH["other"], named_as=named_kind.get(ARTICLE.sub("", obj))))
    passive_by = None
    for prep, text in clause.phrases:
        bare_name = ARTICLE.sub("", text)
        kind = kind_of.get(bare_name)
        named = {"named_as": named_kind.get(bare_name), "prep": prep}
        if kind in ("date", "year"):
            if prep in TIME_PREPOSITIONS:
                out.append(_ask(clause, "When", obj, text, "", f"{prep} {IN_PLACE_WH[kind]}", TIME_HEAD, kind=kind))
        elif kind == "number" or prep in UNASKED_PREPOSITIONS:
            continue
        elif kind == "name" and prep in PLACE_PREPOSITIONS:
            out.append(_ask(clause, "Where", obj, text, "", f"{prep} {IN_PLACE_WH['place']}", PLACE_HEAD, **named))
        elif kind == "name" and prep == "by" and clause.aux in {"was", "is", "were", "are"}:
            passive_by = text
            out.append(_ask(clause, "Who", obj, text, "by", IN_PLACE_WH["name"], NAME_HEAD, **named))
        elif kind == "name" and prep in {"for", "with"}:  # 'works for Y' -> 'Who does X work for?'
            out.append(_ask(clause, "Who", obj, text, prep, IN_PLACE_WH["name"], NAME_HEAD, **named))
        else:  # 'a degree in physics' -> 'What did X earn a degree in?'
            out.append(_ask(clause, "What", obj, text, prep, IN_PLACE_WH["other"], **named))
    if passive_by:  # 'was founded by Z' -> 'Who founded X?', already in the statement's order
        past = getInflection(clause.lemma, "VBD")
        if past:
            embedded = " ".join(w for w in ("who", clause.adverb, past[0], clause.subject) if w)
            out.append(Asked(f"{first_upper(embedded)}?", embedded, passive_by, None, f"the one {embedded}"))
    return out
