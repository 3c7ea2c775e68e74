"""ingest: documents -> clean, deduplicated, sentence-aware chunks that remember where they came from.

Each chunk records its source file and the character span it covers *in that file's text*, so a
training example or a citation can always be traced back to the words it came from."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pysbd

from ..rundir import InputError, iter_jsonl

log = logging.getLogger("steep")

SUFFIXES = {".txt", ".md", ".jsonl"}


@dataclass
class Chunk:
    id: str
    source: str  # file path (for .jsonl: path#line)
    start: int  # character span in the source text
    end: int
    text: str
    n_tokens: int


@dataclass
class Sentence:
    text: str
    start: int  # span in the source text
    end: int


def find_documents(inputs: list[str]) -> list[Path]:
    """Every supported file under `inputs`, sorted; a missing input or an empty result is an error."""
    if not inputs:
        raise InputError("ingest.inputs is empty: give the files or folders to read")
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError(f"input not found: {path}")
        if path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                raise InputError(f"{path}: unsupported file type (supported: {', '.join(sorted(SUFFIXES))})")
            found.append(path)
        else:
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not found:
        raise InputError(f"no {'/'.join(sorted(SUFFIXES))} files found in {', '.join(inputs)}")
    return sorted(set(found))


def read_texts(path: Path, text_field: str = "text") -> Iterator[tuple[str, str]]:
    """(source id, raw text) pairs of one file."""
    if path.suffix.lower() == ".jsonl":
        for lineno, row in iter_jsonl(path):
            if not isinstance(row.get(text_field), str):
                raise InputError(f"{path}:{lineno}: expected an object with a string field '{text_field}'")
            yield f"{path}#{lineno}", row[text_field]
        return
    try:
        yield str(path), path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None


def clean(raw: str) -> tuple[str, list[int]]:
    """Normalize unicode, drop control characters, collapse runs of spaces and of blank lines.
    Returns the clean text and, for each of its characters, the offset it came from in `raw`."""
    out: list[str] = []
    origin: list[int] = []
    newlines = 0
    for i, ch in enumerate(raw):
        if ch == "\r":
            continue  # CRLF -> LF
        if ch in "\x0b\x0c":
            ch = "\n"
        elif ord(ch) > 127:
            ch = unicodedata.normalize("NFKC", ch)  # may widen: "\ufb01" -> "fi"
        if len(ch) == 1 and unicodedata.category(ch) == "Cc" and ch not in "\n\t":
            continue
        if ch == "\n":
            while out and out[-1] in " \t":  # no trailing spaces on a line
                out.pop(), origin.pop()
            newlines += 1
            if newlines > 2:
                continue
        elif ch in " \t\u00a0":
            if not out or out[-1] in " \n":
                continue
            ch = " "
        else:
            newlines = 0
        for c in ch:
            out.append(c)
            origin.append(i)
    while out and out[-1].isspace():
        out.pop(), origin.pop()
    return "".join(out), origin


_segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)


def split_sentences(text: str) -> list[Sentence]:
    """Sentences with their spans; paragraph breaks always end a sentence, line breaks do not
    (hard-wrapped text is common)."""
    sentences = []
    for para in re.finditer(r"[^\n]+(?:\n(?!\n)[^\n]+)*", text):
        # same length, so the spans stay valid
        for s in _segmenter.segment(para.group().replace("\n", " ")):
            stripped = s.sent.strip()
            if stripped:
                start = para.start() + s.start + (len(s.sent) - len(s.sent.lstrip()))
                sentences.append(Sentence(stripped, start, start + len(stripped)))
    return sentences


def chunk_document(
    source: str, raw: str, count_tokens: Callable[[str], int], chunk_tokens: int
) -> Iterator[Chunk]:
    """Greedy packing of whole sentences up to `chunk_tokens`; a longer sentence is a chunk alone."""
    text, origin = clean(raw)
    if not text:
        return
    group: list[Sentence] = []
    size = 0

    def emit() -> Chunk:
        start, end = origin[group[0].start], origin[group[-1].end - 1] + 1
        body = text[group[0].start : group[-1].end]
        digest = hashlib.sha1(f"{source}:{start}:{body}".encode()).hexdigest()[:12]
        return Chunk(id=digest, source=source, start=start, end=end, text=body, n_tokens=count_tokens(body))

    for sent in split_sentences(text):
        n = count_tokens(sent.text)
        if group and size + n > chunk_tokens:
            yield emit()
            group, size = [], 0
        group.append(sent)
        size += n
    if group:
        yield emit()


def ingest(inputs: list[str], count_tokens: Callable[[str], int], chunk_tokens: int, text_field: str = "text") -> tuple[list[dict], dict]:
    """All chunks of all documents, exact duplicates removed, and counts of what happened."""
    files = find_documents(inputs)
    chunks: list[dict] = []
    seen: set[str] = set()
    stats = {"files": len(files), "documents": 0, "chunks": 0, "duplicate_chunks": 0, "empty_documents": 0}
    for path in files:
        for source, raw in read_texts(path, text_field):
            stats["documents"] += 1
            produced = False
            for chunk in chunk_document(source, raw, count_tokens, chunk_tokens):
                produced = True
                key = hashlib.sha1(" ".join(chunk.text.lower().split()).encode()).hexdigest()
                if key in seen:
                    stats["duplicate_chunks"] += 1
                    continue
                seen.add(key)
                chunks.append(asdict(chunk))
            if not produced:
                stats["empty_documents"] += 1
                log.warning("%s: no text after cleaning; skipped", source)
    stats["chunks"] = len(chunks)
    if not chunks:
        raise InputError(f"the corpus is empty: {len(files)} file(s) read, no text found in any")
    return chunks, stats
