"""Sentences and chunks: a part's text is cut at sentence boundaries into chunks of about
`chunk_tokens` model tokens. Spans are found on the text as read, and only each chunk's own text is
cleaned, so a span always points at the words the chunk came from."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sentencex

from .readers import Part


@dataclass
class Sentence:
    text: str
    start: int  # span in the text that was split
    end: int


@dataclass
class Piece:
    start: int  # span in the part's text
    end: int
    text: str  # cleaned (or, for verbatim parts, exactly as written)
    n_tokens: int  # sum over its sentences or lines; within a token or two of the chunk's own count


def split_sentences(text: str) -> list[Sentence]:
    """Sentences with their spans. sentencex is rule-based and fast (tens of MB/s) and knows
    abbreviations ("Dr.", "Inc."); blank lines always end a sentence, single line breaks do not
    (hard-wrapped text is common)."""
    sentences = []
    for boundary in sentencex.get_sentence_boundaries("en", text):
        if boundary["is_paragraph_break"]:
            continue
        start, end = boundary["start_index"], boundary["end_index"]
        raw = text[start:end]
        stripped = raw.strip()
        if stripped:
            start += len(raw) - len(raw.lstrip())
            sentences.append(Sentence(stripped, start, start + len(stripped)))
    return sentences


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u3000]+")


def clean_text(text: str) -> str:
    """Unicode NFKC (ligatures, full-width forms), no control characters, single spaces, no
    trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFKC", text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n"))
    text = _SPACES.sub(" ", _CONTROL.sub("", text))
    text = re.sub(r" ?\n ?", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class Chunker:
    """Packs whole sentences (or, for code, whole lines) into chunks of about `chunk_tokens`."""

    def __init__(self, count_tokens: Callable[[list[str]], list[int]], chunk_tokens: int):
        self.count_tokens = count_tokens
        self.chunk_tokens = chunk_tokens

    def pieces(self, part: Part) -> Iterator[Piece]:
        if part.verbatim:
            units = [(m.start(), m.end()) for m in re.finditer(r"[^\n]*\n|[^\n]+$", part.text)]
        else:
            units = [(s.start, s.end) for s in split_sentences(part.text)]
        if not units:
            return
        counts = self.count_tokens([part.text[a:b] for a, b in units])
        group: list[tuple[int, int]] = []
        size = 0
        for (start, end), n in zip(units, counts):
            for unit, unit_tokens in self._split_long(part.text, start, end, n):
                if group and size + unit_tokens > self.chunk_tokens:
                    yield self._piece(part, group, size)
                    group, size = [], 0
                group.append(unit)
                size += unit_tokens
        if group:
            yield self._piece(part, group, size)

    def _split_long(self, text: str, start: int, end: int, n_tokens: int) -> Iterator[tuple[tuple[int, int], int]]:
        """A sentence over twice the chunk size (a run-on list, text without punctuation) is cut
        at spaces into windows of about one chunk, estimated from its characters per token."""
        if n_tokens <= 2 * self.chunk_tokens:
            yield (start, end), n_tokens
            return
        window = max(1, int((end - start) * self.chunk_tokens / n_tokens))
        while start < end:
            stop = min(end, start + window)
            if stop < end and (space := text.rfind(" ", start + 1, stop)) > start:
                stop = space
            yield (start, stop), max(1, round((stop - start) * n_tokens / (end - start)))
            start = stop
            while start < end and text[start].isspace():
                start += 1

    @staticmethod
    def _piece(part: Part, group: list[tuple[int, int]], n_tokens: int) -> Piece:
        start, end = group[0][0], group[-1][1]
        body = part.text[start:end]
        text = body.rstrip("\n") if part.verbatim else clean_text(body)
        return Piece(part.offset + start, part.offset + end, text, n_tokens)
