"""Junk and language filters for chunks. Each returns the name of the filter that rejects a chunk,
so the summary can count removals per filter."""

from __future__ import annotations

from functools import cache

FILTERS = ("too_short", "mostly_symbols", "mostly_numbers", "language")


def junk_reason(text: str, min_words: int, verbatim: bool = False) -> str | None:
    """Why `text` is not worth training on, or None. Code (verbatim) is only held to the length
    rule: symbols and numbers are what code is made of."""
    if len(text.split()) < min_words:
        return "too_short"
    if verbatim:
        return None
    visible = len(text) - sum(map(str.isspace, text))
    letters = sum(map(str.isalpha, text))
    digits = sum(map(str.isdigit, text))
    if digits > letters:  # tables of figures, lists of part numbers, log dumps
        return "mostly_numbers"
    if letters < 0.5 * visible:
        return "mostly_symbols"
    return None


@cache
def _identifier():
    # py3langid ships its model inside the wheel: no download at run time
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_of(text: str) -> tuple[str, float]:
    """ISO 639-1 code and probability, judged on the first 1000 characters (enough, and langid's
    cost grows with length)."""
    lang, prob = _identifier().classify(text[:1000])
    return lang, float(prob)


def language_reason(text: str, languages: list[str] | None) -> str | None:
    """Reject a chunk confidently in a language the user did not ask for."""
    if not languages:
        return None
    lang, prob = language_of(text)
    return "language" if lang not in languages and prob >= 0.9 else None
