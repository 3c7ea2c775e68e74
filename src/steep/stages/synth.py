"""synth: chunks of unannotated text -> training data, after Physics of LMs 3.1 (methods.md §1).

Two kinds of output, each record naming the chunk it came from:
- augmented text for continued pretraining: each fact restated with the full name instead of a
  pronoun, in several sentence orders and clause orders, so it is stored in a retrievable way;
- question/answer pairs in chat form, made by rules from answer spans (names, dates, numbers)
  and optionally by the teacher model, kept only when the teacher, reading the chunk, agrees;
  with `relation_wordings`, each fact also asked in the wordings other documents give its
  relation (stages/wordings.py).

The rules are deliberately about English grammar (pronouns, prepositions, auxiliaries), never
about a particular corpus, so they carry over to documents nobody here has seen."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from typing import TYPE_CHECKING

from lemminflect import getAllLemmas, getInflection

from . import derived, questions, wordings
from .derived import Fact
from ..rag import rag_prompt
from ..retrieval import cite_id
from .ingest import split_sentences
from ..rundir import EmptyResultError
from ..scoring import answer_matches, normalize

Search = Callable[[list[str]], list[list[dict]]]  # questions -> chunks, best first

if TYPE_CHECKING:
    from ..config import SynthConfig
    from ..generate import Chat


# bumped when a change here or in derived.py changes what synth writes for the same settings, so
# that runs made before it synthesize again (2: the questions to decline asked with a verb; 3: as
# before 2, since the declines followed the frame: docs/knowledge.md, round 28; 4: sentences that
# open with one adverb, "Today X lives in Y.", read and recited as "X lives in Y today."; 5: a
# closing "where" clause read as a sentence of its own, an adverb before the verb read as one, a
# fact asked in another wording answered by the sentence asked nearest it; 6: a name answer asked
# for by the kind its name says it is; 7: a RAFT reply quotes the sentence that states its answer,
# not the first sentence holding its short part, which for "Who ...?" was the section's heading; a
# question that holds its own answer dropped, and "Who ...?" says "their" for the subject's "X's")
VERSION = 7
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
DATE_RE = re.compile(rf"\b(?:\d{{1,2}} (?:{MONTHS}) \d{{4}}|(?:{MONTHS}) \d{{1,2}}, \d{{4}}|(?:{MONTHS}) \d{{4}})\b")
YEAR_RE = re.compile(r"\b(?:1[5-9]\d\d|20\d\d)\b")
NUMBER_RE = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
# A run of capitalized words, allowing short lowercase joiners inside: "University of Orlen"
PROPER_RE = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:(?:of|de|del|da|la|le|von|van|the|and|for|on)\s+)?[A-Z][\w'’-]*)*")
# Capitalized words that start sentences without naming anything
FUNCTION_WORDS = {
    "The", "A", "An", "In", "On", "At", "He", "She", "It", "They", "His", "Her", "Its", "Their", "This", "That",
    "These", "Those", "After", "Before", "During", "Since", "From", "When", "While", "As", "Although", "But",
    "And", "Or", "Today", "Later", "Also", "However", "There", "Then", "Once", "By", "With", "For", "Of", "To",
    "We", "You", "I", "Some", "Many", "Most", "Every", "Each", "One", "Two", "Both", "Besides", "Outside",
}
# Head nouns of organisation and place names (general English, not any one corpus's)
ORGANISATION_HEADS = {
    "Inc", "Ltd", "LLC", "Corp", "Corporation", "Company", "Co", "Group", "Holdings", "Foundation", "Trust",
    "University", "Institute", "College", "School", "Academy", "Society", "Association", "Union", "Council",
    "Ministry", "Agency", "Department", "Bank", "Museum", "Hospital", "Clinic", "Library", "Labs", "Laboratory",
    "Laboratories", "Works", "Systems", "Technologies", "Industries", "Partners", "Dynamics", "Analytics",
    "Shipping", "Textiles", "Observatory", "Studio", "Studios", "Press", "Media", "Motors", "Airlines",
}
PLACE_HEADS = {"City", "County", "River", "Lake", "Mount", "Street", "Road", "Square", "Park", "Valley", "Island"}
NON_PERSON_HEADS = ORGANISATION_HEADS | PLACE_HEADS
# "The company ..." at the start of a sentence refers back to the organisation last named
DEFINITE_REFERENCE = re.compile(r"^The (?:company|firm|organi[sz]ation|business|corporation|group|institute|agency|society|foundation)\b")
IT_REFERENCE = re.compile(r"^Its?\b")
PLACE_PREPOSITIONS = {"in", "at", "from", "near", "to", "outside", "inside"}
TIME_PREPOSITIONS = {"in", "on", "since", "until", "by", "around"}
SUBJECT_PRONOUNS = {"he", "she"}
# words that follow object "her" ("met her at ...") but never possessive "her" ("her thesis")
NOT_AFTER_POSSESSIVE = {"and", "or", "as", "in", "at", "to", "for", "with", "on", "about", "from", "by", "that", "when", "into", "after", "before"}
# The fixed wordings of rule questions (the rest of each question is the document's own words).
# tests/test_knowledge.py keeps the benchmark's probe wordings apart from these.
ABOUT_QUESTIONS = ("What does the text say about {subject}?", "Tell me what you know about {subject}.", "Give the facts about {subject}.")
WHO = "Who {rest}?"
CLOZE = "Complete this statement about {subject}: {opening} ..."
WH_PHRASES = {"date": "what date", "year": "what year", "number": "what number", "place": "which place", "other": "what"}
MARKDOWN_HEADING = re.compile(r"#{1,6} ")
LEADING_PHRASE_RE = re.compile(
    r"^(?P<phrase>(?:In|On|At|During|After|Before|Since|By|Around|Until) [^,]{2,40}), (?P<rest>[A-Z].*?)(?P<end>[.!])$"
)
LEADING_WORD_RE = re.compile(r"^(?P<phrase>[A-Z][a-z]+),? (?P<rest>[A-Z].*?)(?P<end>[.!])$")  # "Today X lives in Y."
WHERE_CLAUSE_RE = re.compile(r", where (?P<clause>[^,;]+?)(?P<end>[.!])$")  # "..., where X still works."


@dataclass
class Span:
    text: str
    kind: str  # date | year | number | name
    start: int
    end: int


def proper_spans(sentence: str) -> list[Span]:
    spans = []
    for m in PROPER_RE.finditer(sentence):
        words = m.group().split()
        while words and words[0] in FUNCTION_WORDS:  # "In Velmora" -> "Velmora"
            words.pop(0)
        if m.start() == 0 and len(words) > 2 and questions.opening_adverb(words[0]):  # "Currently Ada Quill" -> "Ada Quill"
            words.pop(0)
        if words:
            words[-1] = re.sub(r"['’]s$", "", words[-1])  # "Quandt's colleagues" names "Quandt"
        if not words or not words[-1]:
            continue
        text = " ".join(words)
        start = m.start() + m.group().index(words[0])
        spans.append(Span(text, "name", start, start + len(text)))
    return spans


def answer_spans(sentence: str) -> list[Span]:
    """Candidate answers in a sentence: dates, years, other numbers, names; non-overlapping."""
    found: list[Span] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s.start or a >= s.end for s in found)

    for regex, kind in ((DATE_RE, "date"), (YEAR_RE, "year"), (NUMBER_RE, "number")):
        for m in regex.finditer(sentence):
            if free(m.start(), m.end()):
                found.append(Span(m.group(), kind, m.start(), m.end()))
    for span in proper_spans(sentence):
        if free(span.start, span.end):
            found.append(span)
    return sorted(found, key=lambda s: s.start)


def sentence_subject(sentence: str) -> str | None:
    """The name a sentence opens with, if any: 'Mirela Quandt was born ...' -> 'Mirela Quandt'."""
    spans = proper_spans(sentence)
    if spans and spans[0].start == 0 and len(spans[0].text.split()) >= 2:
        return spans[0].text
    return None


def head_noun(name: str) -> str:
    """The word a name is a kind of: 'Labs' of 'Pellow Labs', 'University' of 'University of Tarsk'."""
    return name.split(" of ")[0].split()[-1]


def looks_like_person(name: str) -> bool:
    """he/she refer to people: a name headed by an organisation or place noun is not one."""
    return head_noun(name) not in NON_PERSON_HEADS


def named_kind(name: str) -> str | None:
    """The noun a name says its bearer is: 'university' of 'University of Tarsk', 'observatory' of
    'Garves Observatory'. Only for a head taken as no person's (NON_PERSON_HEADS: 'Ada Quill' is
    not a quill) and one singular noun with a plural of its own: a plural head ('Fenton Works',
    'Moktor Dynamics') names a trade, not what the bearer is, and 'Inc' is no noun."""
    if looks_like_person(name):
        return None
    noun = head_noun(name).lower()
    plural = getInflection(noun, "NNS")
    return noun if noun in getAllLemmas(noun).get("NOUN", ()) and plural and plural[0] != noun else None


def resolve_pronouns(sentences: list[str]) -> list[str]:
    """Replace he/she/his/her/him by the full name of the most recent sentence subject that can be
    a person, and a sentence-opening "It"/"Its"/"The company" (or firm, organization, ...) by the
    most recent one that cannot (Physics 3.1: the full name in every sentence made facts far more
    extractable)."""
    person: str | None = None
    thing: str | None = None
    last: str | None = None
    out = []
    for sent in sentences:
        named = sentence_subject(sent)
        if named:
            last = named
            if looks_like_person(named):
                person = named
            else:
                thing = named
        else:
            if thing:
                sent = _replace_reference(sent, thing, it_allowed=last == thing)
            if person:
                sent = _replace_pronouns(sent, person)
        out.append(sent)
    return out


def _replace_reference(sentence: str, name: str, it_allowed: bool) -> str:
    """'The company has ...' -> 'Pellow Labs has ...'; 'It/Its' only right after that subject was named."""
    m = DEFINITE_REFERENCE.match(sentence) or (it_allowed and IT_REFERENCE.match(sentence))
    if not m:
        return sentence
    return (f"{name}'s" if m.group(0).lower().startswith("its") else name) + sentence[m.end() :]


def _replace_pronouns(sentence: str, name: str) -> str:
    def repl(m: re.Match) -> str:
        lower = m.group(1).lower()
        if lower in SUBJECT_PRONOUNS or lower == "him":
            return name
        if lower == "his":
            return f"{name}'s"
        # "her": possessive before a word ("her thesis"), object otherwise ("met her.")
        following = sentence[m.end() :].split()[:1]
        possessive = following and following[0][:1].isalpha() and following[0].lower() not in NOT_AFTER_POSSESSIVE
        return f"{name}'s" if possessive else name

    return re.sub(r"\b(he|she|his|her|him|He|She|His|Her|Him)\b", repl, sentence)


def reorder_clause(sentence: str) -> str | None:
    """'In 1990, X joined Y.' -> 'X joined Y in 1990.' and 'Today X lives in Y.' -> 'X lives in Y
    today.' when the sentence opens with a short adverbial phrase and a comma, or with one adverb,
    before a name; None when no such safe move exists. The grammar questions and the recital of a
    subject read sentences that open with the name, so an opening adverb would hide the fact from both."""
    m = LEADING_PHRASE_RE.match(sentence)
    if not m:
        m = LEADING_WORD_RE.match(sentence)
        if m and not questions.opening_adverb(m.group("phrase")):
            m = None
    if not m or not sentence_subject(m.group("rest")):
        return None
    phrase = m.group("phrase")
    return f"{m.group('rest')} {phrase[0].lower()}{phrase[1:]}{m.group('end')}"


def split_where(sentence: str) -> list[str]:
    """'X joined Pellow Labs, where X still works.' -> ['X joined Pellow Labs.', 'X still works at
    Pellow Labs.']: a closing "where" clause about a name, put as a sentence of its own that says
    the place ("at" an organisation, "in" a town). A question reads only a sentence's main clause,
    so the fact in such a clause was asked of nobody (docs/knowledge.md, round 51). [sentence]
    when it has none, or the clause does not open with a name."""
    m = WHERE_CLAUSE_RE.search(sentence)
    head = sentence[: m.start()] if m else ""
    names = proper_spans(head)
    if not m or not names or names[-1].end != len(head) or not sentence_subject(m.group("clause")):
        return [sentence]
    name = names[-1].text
    article = "the " if head[: names[-1].start].endswith(" the ") else ""  # "at the University of Tarsk"
    preposition = "at" if head_noun(name) in ORGANISATION_HEADS else "in"
    return [head + m.group("end"), f"{m.group('clause')} {preposition} {article}{name}{m.group('end')}"]


def restated(sentence: str) -> list[str]:
    """The sentence as the grammar questions read it best: its "where" clause a sentence of its
    own, and each part opening with its name where a move allows."""
    return [reorder_clause(part) or part for part in split_where(sentence)]


def title_and_body(chunk: dict) -> tuple[str, str]:
    """The heading a chunk opens with and the prose under it. Ingest keeps a section's heading as
    its first line (Markdown and HTML as '## Name', DOCX as a paragraph that is the section's last
    name). It is a title, not a sentence: shuffled in with the sentences it ran into the text
    ("... studies. ## Ada Quill The winters ..."), and questions were made of it ("# what
    register, part 1?")."""
    first, _, rest = chunk["text"].partition("\n")
    section = (chunk.get("section") or "").rsplit(" > ", 1)[-1]
    if MARKDOWN_HEADING.match(first) or (section and first.strip() == section):
        return first.strip(), rest.strip()
    return "", chunk["text"]


def augment_chunk(text: str, permutations: int, name_substitution: bool, clause_reorder: bool, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, text) rewrites of one chunk's prose; the original is included once."""
    sentences = [s.text for s in split_sentences(text)]
    variants = [("original", text)]
    if name_substitution:
        sentences = resolve_pronouns(sentences)
        variants.append(("full_name", " ".join(sentences)))
    if clause_reorder:
        moved = [part for s in sentences for part in restated(s)]
        if moved != sentences:
            variants.append(("clause_reorder", " ".join(moved)))
    seen = {v for _, v in variants}
    for _ in range(permutations if len(sentences) > 1 else 0):
        order = sentences[:]
        for _ in range(5):  # a few tries to find an order not produced yet
            rng.shuffle(order)
            if clause_reorder:
                order = [" ".join(restated(s)) if rng.random() < 0.5 else s for s in order]
            joined = " ".join(order)
            if joined not in seen:
                seen.add(joined)
                variants.append(("permutation", joined))
                break
    return variants


def bridge(sentences: list[str], said_about: dict[str, list[str]], rng: random.Random) -> str | None:
    """The chunk with what other chunks say about a name that ends a clause, as a relative clause:
    'X works for Pellow Labs, which has its headquarters in Brask.' A fact then sits beside the
    facts it joins with, so a question that needs both ("Is X's employer in Brask?") has something
    to recall. None when no sentence names such a subject."""
    out, changed = [], False
    for sent in sentences:
        for span in reversed(proper_spans(sent)):  # the last name that ends a clause and is described elsewhere
            elsewhere = [e for e in said_about.get(span.text, []) if e != sent and e[len(span.text) + 1 :][:1].islower()]
            if span.start > 0 and sent[span.end :][:1] in (".", "!", ",") and elsewhere:
                clause = rng.choice(elsewhere)[len(span.text) + 1 :].rstrip(".!")
                sent = f"{sent[: span.end]}, {'who' if looks_like_person(span.text) else 'which'} {clause}{sent[span.end :]}"
                changed = True
                break
        out.append(sent)
    return " ".join(out) if changed else None


def echo_question(sentence: str, span: Span) -> str:
    """The sentence with the answer replaced by a wh-phrase, word order kept: 'In Norvik, what
    number of people voted in 1961?'. For sentences the question grammar cannot read."""
    before, after = sentence[: span.start], sentence[span.end :].rstrip(" .!")
    if span.kind == "name" and before.endswith(("the ", "The ")):
        before = before[:-4]  # "at the University of X" -> "at which place"
    prep = before.split()[-1].lower() if before.split() else ""
    wh = WH_PHRASES.get(span.kind) or WH_PHRASES["place" if prep in PLACE_PREPOSITIONS else "other"]
    if wh == "what" and span.kind == "name" and " " in span.text and looks_like_person(span.text):
        wh = "who"  # a person's full name: "After finishing her studies, who joined Pellow Labs?", not "what joined"
    if span.kind == "name" and after.startswith("'s "):  # "after finishing Ada Quill's studies" -> "after finishing whose studies"
        wh, after = "whose", after[2:]
    echo = f"{before}{wh}{after}".strip()
    return questions.first_upper(echo) + "?"


@dataclass
class Reading:
    """One sentence as synth reads it: its text, the name it opens with, its other answer spans,
    its main clause (if the grammar reads one) and whether the recital of its subject says it."""
    sentence: str
    subject: str | None
    spans: list[Span]
    clause: questions.Clause | None
    recited: bool


def read_clauses(resolved: list[str]) -> list[Reading]:
    """Each sentence with its "where" clause apart (`split_where`) and each part in both clause
    orders ("In 1990, X joined Y." is also read as "X joined Y in 1990."). The recital says each
    part once, in the order that opens with its name where either does."""
    out = []
    for part in (part for sent in resolved for part in split_where(sent)):
        name_first = reorder_clause(part) or part  # a part that opens with its name has no move
        for sent in dict.fromkeys([part, name_first]):
            subject = sentence_subject(sent)
            spans = [s for s in answer_spans(sent) if s.text != subject]
            clause = questions.parse(sent, subject, [(s.start, s.end) for s in spans]) if subject else None
            out.append(Reading(sent, subject, spans, clause, recited=sent == name_first))
    return out


def places_and_links(chunk: dict, resolved: list[str]) -> tuple[list[derived.Placed], list[derived.Link]]:
    """The clauses of a chunk that put their subject at a named place ("X was born in Mokvik"),
    and those whose answer is a name ("X works for Y": Y is "the one X works for"), for
    derived.place_yes_no."""
    placed, links = [], []
    for reading in read_clauses(resolved):
        clause, spans = reading.clause, reading.spans
        if clause is None:
            continue
        kind_of = {s.text: s.kind for s in spans}
        for prep, text in clause.phrases:
            if prep in questions.PLACE_PREPOSITIONS and kind_of.get(questions.ARTICLE.sub("", text)) == "name":
                placed.append(derived.Placed(chunk, clause, prep, text))
        for asked in questions.questions(clause, kind_of):
            short = asked.answer
            name = questions.ARTICLE.sub("", short)
            wh, _, rest = asked.embedded.partition(" ")
            if kind_of.get(name) != "name" or wh not in ("who", "what"):
                continue
            phrase = [(p, t) for p, t in clause.phrases if t == short][:1]  # none when the name is the object
            # "the one X works for", "the one who founded Y"; a name asked with "what" ("what X joined") has no noun of its own
            description = asked.described or derived.DESCRIBED.format(clause=rest)
            links.append(derived.Link(chunk, questions.statement(clause, phrase), description, name))
    return placed, links


def rule_qa(chunk: dict, resolved: list[str], max_pairs: int, rng: random.Random,
            forms: Sequence[str] = questions.FORMS, which: bool = False) -> list[dict]:
    """QA records from the pronoun-resolved sentences of one chunk; the answer restates the
    sentence, so the reply carries the fact with its full context. Per sentence that opens with a
    name: the questions a person would ask about each part of it (stages/questions.py), half of
    them also put in one of `forms` (questions.FORMS), and with `which` a name answer also asked
    for by its kind ("Which university ...?"); "Who ...?" for the name itself; and the
    sentence as a statement to complete (which also covers facts with no name, date or number in
    them). Other sentences get echo questions about their names, dates and numbers."""
    pairs = []
    by_subject: dict[str, list[str]] = {}
    for reading in read_clauses(resolved):
        sent, subject, spans, clause = reading.sentence, reading.subject, reading.spans, reading.clause
        if clause is None:  # no name opens it, or no verb phrase to ask about: the answer's place in the sentence asked
            pairs.extend(_qa(chunk, echo_question(sent, span), sent, span.text, "rule:echo") for span in spans)
        kinds = {s.text: kind for s in spans if which and s.kind == "name" and (kind := named_kind(s.text))}
        for asked in questions.questions(clause, {s.text: s.kind for s in spans}, kinds) if clause else []:
            pairs.append(_qa(chunk, asked.question, sent, asked.answer, "rule:question"))
            if asked.which:  # every one: a question that names the answer's kind, not its relation, is rare (round 52)
                pairs.append(_qa(chunk, asked.which, sent, asked.answer, "rule:which"))
            offered = [form for form in forms if form in asked.forms]
            if rng.random() < 0.5 and offered:  # for variety in how a question is put; all of them would double the cost
                form = offered[0] if len(offered) == 1 else rng.choice(offered)  # one form draws nothing: its runs stay as they were
                pairs.append(_qa(chunk, asked.put(form, rng), sent, asked.answer, f"rule:{form}"))
        if not subject:
            continue
        if reading.recited:
            by_subject.setdefault(subject, []).append(sent)
        rest = sent[len(subject) :].strip().rstrip(".!")
        if rest and rest.split()[0].lower() not in {"'s", "’s"}:  # the subject is the answer: "Who was born in Velmora?"
            # the subject named again (a resolved "her") would give the answer away: "Who joined Pellow
            # Labs after finishing their studies?", not "... after finishing Ada Quill's studies?". A bare
            # mention stays (it may be part of a longer name) and `gives_away` drops the question
            rest = re.sub(rf"\b{re.escape(subject)}['’]s\b", "their", rest)
            pairs.append(_qa(chunk, WHO.format(rest=rest), sent, subject, "rule:who"))
        if len(sent.split()) > len(subject.split()) + 2:
            opening = " ".join(sent.split()[: len(subject.split()) + 1])
            pairs.append(_qa(chunk, CLOZE.format(subject=subject, opening=opening), sent, None, "rule:statement"))
    # entity recall: everything the chunk says about a name, asked by the name alone, in
    # several wordings and sentence orders (the name must lead to the facts, whatever is asked)
    for subject, sents in by_subject.items():
        if len(sents) > 1:
            for template in ABOUT_QUESTIONS:
                shuffled = rng.sample(sents, len(sents))
                pairs.append(_qa(chunk, template.format(subject=subject), " ".join(shuffled), None, "rule:about"))
    rng.shuffle(pairs)
    return pairs[:max_pairs]


def relation_questions(chunk: dict, resolved: list[str]) -> list[wordings.SubjectQuestion]:
    """The rule questions of a chunk that ask a relation of the name a sentence opens with, for
    wordings.other_wordings."""
    out = []
    for r in read_clauses(resolved):
        if r.clause:
            asked = questions.questions(r.clause, {s.text: s.kind for s in r.spans})
            out += wordings.general([wordings.SubjectQuestion(chunk, r.sentence, r.subject, a.question, a.answer, looks_like_person(r.subject)) for a in asked])
    return out


COUNT_RE = re.compile(r"^ (?P<verb>[a-z]+s) (?P<count>\d[\d,]*) (?P<unit>[a-z]+)\b")


def sentence_facts(chunk: dict, sentence: str) -> list[Fact]:
    """The dated events and counts a sentence states about its subject, for derived questions:
    'X was born on 3 May 1965 in Y' (aux 'was', predicate 'born'), 'X employs 4560 people'."""
    subject = sentence_subject(sentence)
    if not subject:
        return []
    person = looks_like_person(subject)
    rest = sentence[len(subject) :]
    facts = []
    if m := COUNT_RE.match(rest):
        if m.group("verb") not in {"is", "was", "does"}:  # "has" is the verb here: "X has 40 staff"
            count = int(m.group("count").replace(",", ""))
            facts.append(Fact(chunk, sentence, subject, person, m.group("count"), (count,), verb=m.group("verb"), unit=m.group("unit")))
    words = rest.split()
    if words and words[0].lower() in {"was", "were", "is", "are"}:
        for span in answer_spans(sentence):
            between = sentence[len(subject) : span.start].split()[1:]
            if span.kind not in ("date", "year") or len(between) < 2 or between[-1].lower() not in TIME_PREPOSITIONS:
                continue
            predicate = []
            for word in between[:-1]:  # 'born in Velmora on' -> 'born'
                if word.lower() in PLACE_PREPOSITIONS | TIME_PREPOSITIONS or not word.isalpha() or not word.islower():
                    break
                predicate.append(word)
            if predicate and len(predicate) <= 3:
                facts.append(Fact(chunk, sentence, subject, person, span.text, _date_order(span.text), aux=words[0].lower(),
                                  predicate=" ".join(predicate), preposition=between[-1].lower()))
    return facts


def _date_order(text: str) -> tuple[int, ...]:
    """'3 May 1965' / 'May 3, 1965' / 'May 1965' / '1965' -> (1965, 5, 3) for comparing."""
    year = int(YEAR_RE.search(text).group())
    month = next((i for i, m in enumerate(MONTHS.split("|"), 1) if m in text), 0)
    day = re.search(r"\b(\d{1,2})\b", text)
    return (year, month, int(day.group(1)) if day else 0)


def _text(chunk: dict, text: str, method: str) -> dict:
    return {"text": text, "metadata": {"chunk_id": chunk["id"], **_provenance(chunk), "method": method}}


def _provenance(chunk: dict) -> dict:
    return {k: chunk.get(k) for k in ("source", "page", "section", "row", "start", "end")}


def _qa(chunk: dict, question: str, answer: str, short_answer: str | None, method: str, label: str = "") -> dict:
    metadata = {"chunk_id": chunk["id"], **_provenance(chunk), "method": method, "short_answer": short_answer}
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "metadata": metadata | ({"label": label} if label else {})}


TEACHER_QA_PROMPT = (
    "Read the text, then write one question that the text answers and the answer.\n\n"
    "Text: {text}\n\nReply in two lines:\nQuestion: <question>\nAnswer: <answer>"
)
ROUNDTRIP_CHECKED = ("teacher", "rule:echo")
ROUNDTRIP_PROMPT = "Answer the question using the text. Be brief.\n\nText: {text}\n\nQuestion: {question}"
# every fixed wording synth puts into training questions and answers
QUESTION_TEMPLATES = ABOUT_QUESTIONS + (WHO, CLOZE) + tuple(WH_PHRASES.values()) + questions.FRAMES + derived.TEMPLATES


def parse_teacher_qa(reply: str) -> tuple[str, str] | None:
    m = re.search(r"Question:\s*(.+?)\s*\n+\s*Answer:\s*(.+)", reply, re.S)
    if not m:
        return None
    question, answer = m.group(1).strip(), m.group(2).strip().split("\n")[0].strip()
    return (question, answer) if question.endswith("?") and answer else None


def teacher_qa(chunks: list[dict], ask: Callable[[list[str], str], list[str]]) -> tuple[list[dict], int]:
    """QA pairs written by the teacher; returns them and how many replies could not be parsed."""
    replies = ask([TEACHER_QA_PROMPT.format(text=c["text"]) for c in chunks], "teacher QA")
    pairs, unparsed = [], 0
    for chunk, reply in zip(chunks, replies):
        parsed = parse_teacher_qa(reply)
        if parsed is None:
            unparsed += 1
            continue
        pairs.append(_qa(chunk, parsed[0], parsed[1], parsed[1], "teacher"))
    return pairs, unparsed


def roundtrip_filter(pairs: list[dict], chunk_text: dict[str, str], ask: Callable[[list[str], str], list[str]]) -> tuple[list[dict], list[dict]]:
    """Keep a pair only if the teacher, given its chunk and question, gives the same short answer.
    Checked: pairs whose question a model wrote, or that word substitution made (echo questions).
    Questions the grammar made (stages/questions.py) name their answer's sentence by construction,
    and the 135M teacher misread many of them (66 of 252 checked pairs removed on the demo);
    pairs without a short answer (entity summaries) cannot be checked this way. Both are kept."""
    checkable = [p for p in pairs if p["metadata"]["short_answer"] and p["metadata"]["method"] in ROUNDTRIP_CHECKED]
    prompts = [ROUNDTRIP_PROMPT.format(text=chunk_text[p["metadata"]["chunk_id"]], question=p["messages"][0]["content"]) for p in checkable]
    replies = ask(prompts, "round-trip check")
    kept = [p for p in pairs if not (p["metadata"]["short_answer"] and p["metadata"]["method"] in ROUNDTRIP_CHECKED)]
    dropped = []
    for pair, reply in zip(checkable, replies):
        pair["metadata"]["roundtrip_reply"] = reply
        (kept if answer_matches(reply, pair["metadata"]["short_answer"]) else dropped).append(pair)
    return kept, dropped


def gives_away(pair: dict) -> bool:
    """A question that holds its own answer ("After finishing whose studies, Ada Quill joined
    Pellow Labs?" asks for Ada Quill) teaches copying, not the fact. Derived questions name their
    options ("Who was born earlier, X or Y?") and are not asked this."""
    short, method = pair["metadata"].get("short_answer"), pair["metadata"]["method"]
    return bool(short) and not method.startswith("derived:") and \
        f" {normalize(short)} " in f" {normalize(pair['messages'][0]['content'])} "


def dedupe(pairs: list[dict]) -> tuple[list[dict], int]:
    seen, out = set(), []
    for p in pairs:
        key = " ".join(p["messages"][0]["content"].lower().split())
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out, len(pairs) - len(out)


def method_counts(records: list[dict]) -> dict[str, int]:
    return dict(Counter(r["metadata"]["method"] for r in records))


def stating_sentence(text: str, answer: str) -> str | None:
    """The sentence of `text` that states `answer`: the one sharing the most of its words, each
    word weighted by how few of the text's sentences hold it. A heading is what its section is
    about, so it is never the quote and its words (the subject the sentences call "she") tell no
    sentence apart. The answer's short part is no guide: a "Who ...?" answer's short part is a
    name, which the heading or the first sentence holds while the fact's own sentence says "she";
    and "no" is inside "known"."""
    sentences, heading_words = [], set()
    for sentence in split_sentences(text):
        if MARKDOWN_HEADING.match(sentence.text):
            heading_words |= set(normalize(sentence.text).split())
        else:
            sentences.append(sentence.text)
    words = [set(normalize(s).split()) for s in sentences]
    holding = Counter(w for ws in words for w in ws)
    asked = set(normalize(answer).split()) - heading_words
    weight = [sum(1 / holding[w] for w in ws & asked) for ws in words]
    best = max(range(len(sentences)), key=weight.__getitem__, default=None)
    return sentences[best] if best is not None and weight[best] > 0 else None


def raft_examples(pairs: list[dict], chunks: list[dict], share: float, distractors: int, oracle_rate: float, seed: str,
                  search: Search | None = None) -> list[dict]:
    """RAFT (Zhang et al. 2024): a question with the chunk it came from (the oracle) among other
    chunks, in the same prompt eval and chat use; the answer quotes the oracle's sentence and cites
    it. The distractors are the chunks `search` ranks highest for the question, as retrieval will
    show them at answer time (look-alike passages are what confuses a model), else random ones.
    In 1 - oracle_rate of examples the oracle is left out and the answer stands uncited, so the
    model keeps what it memorized instead of trusting whatever it is shown.

    Each pair draws from a stream of its own, seeded by `seed` and the pair: whether it is picked,
    its oracle and its random distractors. Pairs another step adds or removes then change the
    examples only by taking or giving up places among those picked, and a variant of synth differs
    from another in what it switches, not in a redraw of every RAFT example."""
    by_id = {c["id"]: c for c in chunks}
    rngs = [random.Random(f"{seed}:{p['messages'][0]['content']}\n{p['messages'][1]['content']}") for p in pairs]
    picked = sorted(range(len(pairs)), key=lambda i: rngs[i].random())[:round(share * len(pairs))]  # key: once per pair
    chosen = [(pairs[i], rngs[i]) for i in sorted(picked) if pairs[i]["metadata"]["chunk_id"] in by_id]
    questions = [p["messages"][0]["content"] for p, _ in chosen]
    ranked = search(questions) if search and chosen else [rng.sample(chunks, len(chunks)) for _, rng in chosen]
    out = []
    for (pair, rng), question, candidates in zip(chosen, questions, ranked):
        oracle = by_id[pair["metadata"]["chunk_id"]]
        others = [c for c in candidates if c["id"] != oracle["id"]][:distractors]
        if not others:
            continue
        with_oracle = rng.random() < oracle_rate
        context = others + ([oracle] if with_oracle else [])
        rng.shuffle(context)
        answer = pair["messages"][1]["content"]
        reply = answer
        if with_oracle:
            evidence = stating_sentence(oracle["text"], answer)
            reply = (f'The context says: "{evidence}" ' if evidence else "") + f"{answer} [{cite_id(oracle)}]"
        out.append({"messages": [{"role": "user", "content": rag_prompt(question, context)}, {"role": "assistant", "content": reply}],
                    "metadata": {**pair["metadata"], "method": "raft", "question": question, "oracle_in_context": with_oracle}})
    return out


def synthesize(chunks: list[dict], cfg: SynthConfig, seed: int, teacher: Chat | None,
               search: Search | None = None) -> tuple[list[dict], list[dict], dict]:
    """Augmented texts and QA pairs for all chunks, with counts of what each step made and removed.
    `search` ranks chunks for questions (RAFT distractors). An empty QA set is an error naming the
    step that emptied it."""
    # each step draws from its own stream, so switching one step on or off leaves what the others
    # make unchanged: a variant differs from another only in what it switches
    rng = {step: random.Random(f"{seed}:{step}") for step in
           ("augment", "bridge", "rule_qa", "yes_no", "comparisons", "places", "drills", "given_comparisons", "unknown", "nonexistent")}
    texts: list[dict] = []
    pairs: list[dict] = []
    facts: list[Fact] = []
    placed: list[derived.Placed] = []
    links: list[derived.Link] = []
    prose = [c for c in chunks if c.get("kind") != "code"]  # reordering or questioning code makes nonsense
    titled = {c["id"]: title_and_body(c) for c in prose}
    resolved = {cid: resolve_pronouns([s.text for s in split_sentences(body)]) for cid, (_, body) in titled.items()}
    said_about: dict[str, list[str]] = {}  # subject -> the sentences that open with it, across chunks
    for sentences in resolved.values():
        for sent in sentences:
            if subject := sentence_subject(sent):
                said_about.setdefault(subject, []).append(sent)
    for chunk in chunks:
        if chunk.get("kind") == "code":
            texts.append(_text(chunk, chunk["text"], "original"))
            continue
        title, body = titled[chunk["id"]]
        if not body:  # a heading with nothing under it: nothing to rewrite or ask about
            texts.append(_text(chunk, chunk["text"], "original"))
            continue
        head = f"{title}\n\n" if title else ""  # the title stays on top, as in the document
        for kind, text in augment_chunk(body, cfg.permutations, cfg.name_substitution, cfg.clause_reorder, rng["augment"]):
            texts.append(_text(chunk, head + text, kind))
        if cfg.bridges:  # two draws of the facts joined in
            bridged = {bridge(resolved[chunk["id"]], said_about, rng["bridge"]) for _ in range(2)} - {None}
            texts.extend(_text(chunk, head + text, "bridge") for text in sorted(bridged))
        if cfg.rule_qa:
            pairs.extend(rule_qa(chunk, resolved[chunk["id"]], cfg.max_qa_per_chunk, rng["rule_qa"], cfg.question_forms, cfg.which_questions))
        facts.extend(f for sentence in resolved[chunk["id"]] for f in sentence_facts(chunk, sentence))
        if cfg.derived_qa and cfg.place_yes_no:
            chunk_places, chunk_links = places_and_links(chunk, resolved[chunk["id"]])
            placed += chunk_places
            links += chunk_links
    if cfg.rule_qa and cfg.relation_wordings:
        asked = [a for chunk in prose for a in relation_questions(chunk, resolved[chunk["id"]])]
        pairs.extend(_qa(a.chunk, a.question, a.sentence, a.answer, "rule:wording") for a in wordings.other_wordings(asked))
    if cfg.derived_qa:
        stepwise = cfg.number_drills > 0  # the replies take the step the way the drills practise it
        made = derived.yes_no(facts, rng["yes_no"], stepwise, cfg.yes_no_step)
        made += derived.comparisons(facts, rng["comparisons"], stepwise=stepwise, step=cfg.comparison_step)
        made += derived.place_yes_no(placed, links, rng["places"], cfg.two_hop_first_hop, cfg.place_one_hop)
        pairs.extend(_qa(c, q, a, None, method, label) for c, q, a, method, label in made)
    pairs.extend(_qa(c, q, a, None, method) for c, q, a, method, _ in derived.number_drills(facts, rng["drills"], cfg.number_drills, cfg.yes_no_step))
    if cfg.given_comparisons:
        pairs.extend(_qa(c, q, a, None, method, label) for c, q, a, method, label in
                     derived.given_comparisons(facts, rng["given_comparisons"], cfg.given_comparisons, cfg.comparison_step))
    if cfg.unknown_qa:
        corpus_text = "\n".join(c["text"] for c in chunks)
        unknown = derived.unanswerable(facts, corpus_text, rng["unknown"], cfg.unknown_per_subject, cfg.unknown_pool)
        unknown += derived.nonexistent(facts, corpus_text, rng["nonexistent"], cfg.made_up_subjects)
        pairs.extend(_qa(c, q, a, None, method) for c, q, a, method, _ in unknown)
    stats: dict = {"texts": method_counts(texts), "qa_made": method_counts(pairs), "facts": len(facts)}

    def ask(prompts: list[str], desc: str) -> list[str]:
        assert teacher is not None
        return teacher.generate([[{"role": "user", "content": p}] for p in prompts], max_new_tokens=48, batch_size=cfg.batch_size, desc=desc)

    if cfg.teacher_qa:
        made, unparsed = teacher_qa(chunks, ask)
        pairs.extend(made)
        stats["qa_made"] = method_counts(pairs)
        stats["teacher_unparsed"] = unparsed
    made_total = len(pairs)
    pairs, stats["removed_duplicates"] = dedupe(pairs)
    given_away = [gives_away(p) for p in pairs]
    stats["removed_answer_in_question"] = method_counts([p for p, away in zip(pairs, given_away) if away])
    pairs = [p for p, away in zip(pairs, given_away) if not away]
    if cfg.roundtrip and pairs:
        pairs, dropped = roundtrip_filter(pairs, {c["id"]: c["text"] for c in chunks}, ask)
        stats["removed_roundtrip"] = method_counts(dropped)
    stats["qa_kept"] = method_counts(pairs)
    grounded = [p for p in pairs if p["metadata"]["method"] not in derived.DRILLS]
    if cfg.raft and grounded:
        made = raft_examples(grounded, chunks, min(cfg.raft, cfg.raft_max / len(grounded)), cfg.raft_distractors, cfg.raft_oracle_rate, f"{seed}:raft", search)
        stats["raft"] = {"examples": len(made), "with_oracle": sum(r["metadata"]["oracle_in_context"] for r in made)}
        pairs = pairs + made
    if not pairs and (cfg.rule_qa or cfg.teacher_qa):
        if made_total == 0:
            raise EmptyResultError("synth made no question/answer pairs: no names, dates or numbers were found in the chunks"
                                   + (" and the teacher's replies could not be parsed" if cfg.teacher_qa else ""))
        raise EmptyResultError(f"synth made {made_total} question/answer pairs but the filters removed all of them "
                               f"(duplicates: {stats['removed_duplicates']}, round-trip: {sum(stats.get('removed_roundtrip', {}).values())}); "
                               "try synth.roundtrip=false or a stronger synth.teacher")
    return texts, pairs, stats
