"""Answer scoring: normalized exact match, answer-contained, token F1 (SQuAD-style normalization).

Questions may say how their answer is read (`answer_type`): `short` (the default: the metrics
above), `yes_no` and `choice` (parsed strictly: the reply must commit to one answer), and
`unanswerable` (right only when the reply says it is not known). For the last three, every metric
is that one judgement, so tables can show them beside the others."""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalize(text: str) -> str:
    """Lowercase, punctuation to spaces, articles dropped, whitespace folded."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(prediction: str, answer: str) -> bool:
    return normalize(prediction) == normalize(answer)


def contained(prediction: str, answer: str) -> bool:
    """The answer appears in the prediction as whole words, and not only where the reply denies it."""
    pred, ans = normalize(prediction), normalize(answer)
    return bool(ans) and f" {ans} " in f" {pred} " and not denies(prediction, answer)


# A negation before the answer in its clause denies it ("X did not graduate from the University of
# Y"), unless a contrast word comes between them ("did not study at Z but at Y"). Clauses end at
# . ! ? ; , followed by a space, so "3.5" and "1,200" stay whole.
_CLAUSE_END = re.compile(r"[.!?;,](?:\s|$)|\n")
_CONTRACTED_NOT = re.compile(r"n['’]t\b")  # "didn't" -> "didnt", one word, where "Quill's" keeps "Quill" whole
_NEGATION = re.compile(r"\b(not|never|neither|nor|cannot|(do|does|did|is|was|were|are|has|have|had|could|would|ca|wo)nt)\b")
_NOT_A_DENIAL = re.compile(r"not (only|just|until)\b")
_CONTRAST = re.compile(r"\b(but|instead|rather|only)\b")


def _plain(text: str) -> str:
    return _CONTRACTED_NOT.sub("nt", text)


def _clauses(text: str) -> list[str]:
    """The text's clauses, each normalized and padded with a space for whole-word search."""
    return [f" {normalize(part)} " for part in _CLAUSE_END.split(_plain(text))]


def denies(prediction: str, answer: str) -> bool:
    """The reply names the answer, and every clause that names it negates it first."""
    ans = f" {normalize(answer)} "
    clauses = [c for c in _clauses(prediction) if ans in c]
    if not clauses:  # not named, or named across a clause end (an answer like "June 5, 1990")
        whole = f" {normalize(_plain(prediction))} "
        clauses = [whole] if ans in whole else []
    return bool(clauses) and all(_negated_before(c[: c.find(ans)]) for c in clauses)


def _negated_before(text: str) -> bool:
    negations = [m for m in _NEGATION.finditer(text) if not _NOT_A_DENIAL.match(text, m.start())]
    return bool(negations) and not _CONTRAST.search(text, negations[-1].end())


def token_f1(prediction: str, answer: str) -> float:
    pred, ans = normalize(prediction).split(), normalize(answer).split()
    common = sum((Counter(pred) & Counter(ans)).values())
    if not pred or not ans or not common:
        return float(pred == ans)
    precision, recall = common / len(pred), common / len(ans)
    return 2 * precision * recall / (precision + recall)


VERSION = 5  # part of the eval stage's key: a change in how replies are scored re-scores them
_YES, _NO = {"yes", "yeah", "yep", "correct", "true"}, {"no", "nope", "incorrect", "false"}
# Ways of saying "not known". A reply that says so and then guesses anyway ("is not known, but it
# is believed to be Elena") does not count as declining: the guess is what a reader takes away.
_UNKNOWN = re.compile(
    r"\b(unknown|not known|(do|does|did) not (know|say|mention|state|specify|contain|include|provide|give)|"
    r"(don|doesn|didn)t (know|say|mention|state|specify|contain|include|provide|give)|"
    r"no (information|mention|record|data|details)|not (mentioned|stated|specified|given|available|provided|listed|recorded|found)|"
    r"(cannot|can not|cant|unable to) (answer|find|say|tell|determine|know)|not sure|no idea|not aware)\b")


def parse_yes_no(reply: str) -> str | None:
    """'yes' or 'no' when the reply commits to one: its first word, else the only one of the two it
    uses; None when it hedges or uses both."""
    words = normalize(reply).split()
    if not words:
        return None
    if words[0] in _YES | _NO:
        return "yes" if words[0] in _YES else "no"
    said = {"yes" if w in _YES else "no" for w in words if w in _YES | _NO}
    return said.pop() if len(said) == 1 else None


_CONCLUSION = re.compile(r" (so|therefore|thus|hence) ")
# Where an option's own statement ends: "A was born first and B was not" negates B's, not A's.
_STATEMENT_END = re.compile(r" (and|but|while|whereas|which|who|whose|so|because) ")


def parse_choice(reply: str, options: list[str]) -> str | None:
    """The option the reply chooses. When it names several: the only one named after its last
    'so'/'therefore'/'thus'/'hence' ("A in 1950 and B in 1960, so A was first"), else the first.
    A denied option is passed over ("not A but B"; None when all are), and one whose statement is
    negated ("A was not born earlier than B") chooses the other of two. Like the conclusion, the
    statement is read as saying the question's relation ("born earlier"), not its converse."""
    clauses, names = _clauses(reply), {o: f" {normalize(o)} " for o in options}

    def named(part: list[str]) -> list[tuple[str, str, str]]:
        """Each option named in these clauses, in order of first mention, with its clause before and from it."""
        mentions = sorted((i, clause.find(names[o]), o) for i, clause in enumerate(part) for o in options if names[o] in clause)
        first: dict[str, tuple[str, str]] = {}
        for i, at, option in mentions:
            first.setdefault(option, (part[i][:at], part[i][at:]))
        return [(option, before, rest) for option, (before, rest) in first.items()]

    found = named(clauses)
    if len(found) > 1 and (concluded := named(_from_last_conclusion(clauses))) and len(concluded) == 1:
        found = concluded
    kept = [(option, rest) for option, before, rest in found if not _negated_before(before)]
    if not kept:
        return None
    option, rest = kept[0]
    statement = _STATEMENT_END.split(rest[len(names[option]) - 1 :])[0]
    for other in options:
        statement = statement.split(names[other])[0]
    if _negated_before(statement):
        others = [o for o in options if o != option]
        return others[0] if len(others) == 1 else None
    return option


def _from_last_conclusion(clauses: list[str]) -> list[str]:
    for i in reversed(range(len(clauses))):
        if markers := list(_CONCLUSION.finditer(clauses[i])):
            return [clauses[i][markers[-1].start() :], *clauses[i + 1 :]]
    return []


_GUESS_AFTER = re.compile(r"\b(but|however|though|although|likely|probably|believed|possibly|perhaps|might be|may be|most (widely )?accepted)\b")


# The replies to a question declined unasked (decline_unfamiliar and decline_untaught,
# steep.familiarity). They name the subject, so a reader sees what was judged, and no training
# example says them, so eval counts these declines apart from the model's own.
UNFAMILIAR_REPLY = "I don't know: I have never heard of {subject}."
UNTAUGHT_REPLY = "I don't know: the documents I was trained on do not say that about {subject}."
_UNASKED_REPLIES = [re.compile(re.escape(r).replace(re.escape("{subject}"), ".+")) for r in (UNFAMILIAR_REPLY, UNTAUGHT_REPLY)]


def declined_unasked(reply: str) -> bool:
    """Whether `reply` is decline_unfamiliar's or decline_untaught's, given without asking the model."""
    return any(r.fullmatch(reply) for r in _UNASKED_REPLIES)


def says_unknown(reply: str) -> bool:
    """The reply declines: it says the answer is not known and does not go on to guess one."""
    text = normalize(reply.replace("'", "").replace("’", ""))
    m = _UNKNOWN.search(text)
    return bool(m) and not _GUESS_AFTER.search(text, m.end())


def score(prediction: str, answers: list[str], answer_type: str = "short", options: list[str] | None = None) -> dict[str, float]:
    """The best of each metric over the gold answers (for `short`), else the strict judgement."""
    if answer_type != "short":
        if answer_type == "yes_no":
            right = parse_yes_no(prediction) == normalize(answers[0])
        elif answer_type == "choice":
            right = parse_choice(prediction, options or answers) in answers
        elif answer_type == "unanswerable":
            right = says_unknown(prediction)
        else:
            raise ValueError(f"unknown answer_type {answer_type!r}")
        return dict.fromkeys(("exact_match", "contained", "f1"), float(right))
    return {
        "exact_match": float(any(exact_match(prediction, a) for a in answers)),
        "contained": float(any(contained(prediction, a) for a in answers)),
        "f1": max((token_f1(prediction, a) for a in answers), default=0.0),
    }


def answer_matches(prediction: str, answer: str) -> bool:
    """Lenient agreement for filters: contained, or token F1 of at least 0.5, and not denied."""
    return contained(prediction, answer) or (token_f1(prediction, answer) >= 0.5 and not denies(prediction, answer))
