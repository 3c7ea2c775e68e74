"""Format readers: one file in, its text out as `Part`s that know where they came from (page,
section, row, character offset), or as ready-made training `Conversation`s.

A reader raises `FileError` with a reason a person can act on; problems with single rows of a
table or JSONL file are yielded as `RowError`s so the rest of the file is still read. Nothing here
writes to the user's files."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from ...rundir import parse_jsonl
from .chatdata import qna_examples, to_messages

log = logging.getLogger("steep")


class FileError(Exception):
    """This file cannot be ingested; the message is the reason."""


@dataclass
class Part:
    """A stretch of a document's text. `offset` is where `text` starts in the document's text: the
    decoded file for text and Markdown, the page for PDF, the row for tables and JSONL, the
    extracted main text for HTML and DOCX."""

    text: str
    offset: int = 0
    page: int | None = None
    section: str | None = None
    row: int | None = None  # line of a JSONL file, data row of a table, seed example of a qna.yaml
    verbatim: bool = False  # code: kept as written, never reflowed or split inside a line


@dataclass
class Conversation:
    messages: list[dict]
    row: int | None = None


@dataclass
class RowError:
    row: int
    reason: str


Item = Part | Conversation | RowError

# --- plain text: encoding detection and bounded-memory reading --------------------------------

BOMS = [  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"),
]
SAMPLE_BYTES = 1 << 16
BLOCK_CHARS = 1 << 20


def detect_encoding(path: Path) -> str:
    """The text encoding of a file, from its BOM, else UTF-8 if it decodes, else charset-normalizer's
    best guess (Latin-1/cp1252 and friends). Binary content is refused rather than decoded as junk."""
    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
    if not head:
        raise FileError("empty file")
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    if b"\x00" in head:
        raise FileError("binary content (NUL bytes), not text")
    try:
        head.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 3 and len(head) == SAMPLE_BYTES:
            encoding = "utf-8"  # only a character cut in half by the sample's end
        else:
            encoding = _western_legacy(head) or _guess_encoding(head)
    sample = head.decode(encoding, errors="replace")
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > 0.05 * len(sample):
        raise FileError("binary content (control bytes), not text")
    return encoding


def _western_legacy(head: bytes) -> str | None:
    """cp1252 (Windows' and most "Latin-1" files') when it reads as Western text: a few accented
    letters among ASCII ones. Checked before charset-normalizer, whose guesses on short Western
    samples are often other code pages (cp775, cp1250) that turn "café" into "cafķ"."""
    try:
        text = head.decode("cp1252")
    except UnicodeDecodeError:
        return None
    letters = sum(map(str.isalpha, text))
    accented = sum(1 for c in text if ord(c) > 127 and c.isalpha())
    printable = all(c.isprintable() for c in text if ord(c) > 127)
    # Cyrillic or Greek code pages also decode under cp1252, but then nearly every letter is high
    return "cp1252" if printable and accented <= 0.3 * letters else None


def _guess_encoding(head: bytes) -> str:
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise FileError("undecodable bytes: not text in any known encoding")
    return best.encoding


def read_decoded(path: Path) -> str:
    """A whole file as text, for formats that need the whole document at once (Markdown, CSV)."""
    with open(path, encoding=detect_encoding(path), errors="replace", newline="") as f:
        return f.read()


def _line_too_long(max_line_chars: int) -> FileError:
    return FileError(f"a line longer than {max_line_chars:,} characters: not prose (ingest.max_line_chars)")


def read_text(path: Path, max_line_chars: int) -> Iterator[Part]:
    """A text file in blocks of about a million characters, cut at paragraph (else line) breaks, so
    memory stays bounded for any file size. A line longer than `max_line_chars` is not prose
    (a minified blob, a base64 dump) and fails the file."""
    with open(path, encoding=detect_encoding(path), errors="replace", newline="") as f:
        buffer, offset = "", 0
        while data := f.read(BLOCK_CHARS):
            buffer += data
            cut = buffer.rfind("\n\n", len(buffer) // 2)
            cut = cut + 2 if cut >= 0 else buffer.rfind("\n") + 1
            if cut == 0:
                if len(buffer) > max_line_chars:
                    raise _line_too_long(max_line_chars)
                continue
            yield Part(buffer[:cut], offset)
            offset += cut
            buffer = buffer[cut:]
        if len(buffer) > max_line_chars:
            raise _line_too_long(max_line_chars)
        if buffer:
            yield Part(buffer, offset)


# --- Markdown (also the shape HTML is extracted into) ------------------------------------------


def markdown_parts(text: str, title: str | None = None, page: int | None = None) -> Iterator[Part]:
    """Markdown split at headings and code blocks. Each part's section is its heading path
    ("Install > Linux"); code blocks become verbatim parts."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(line: int) -> int:
        return line_starts[line] if line < len(line_starts) else len(text)

    headings: list[tuple[int, str]] = []
    section, cursor = title, 0

    def prose(end: int) -> Iterator[Part]:
        if text[cursor:end].strip():
            yield Part(text[cursor:end], cursor, page=page, section=section)

    for i, token in enumerate(tokens):
        if token.level != 0 or token.map is None:
            continue
        start, end = position(token.map[0]), position(token.map[1])
        if token.type == "heading_open":
            yield from prose(start)
            level = int(token.tag[1:])
            headings = [h for h in headings if h[0] < level] + [(level, tokens[i + 1].content.strip())]
            section, cursor = " > ".join(name for _, name in headings), start
        elif token.type in ("fence", "code_block"):
            yield from prose(start)
            yield Part(text[start:end], start, page=page, section=section, verbatim=True)
            cursor = end
    yield from prose(len(text))


def read_markdown(path: Path, max_line_chars: int) -> Iterator[Part]:
    """Read whole (Markdown files are small; headings need the whole document)."""
    text = read_decoded(path)
    if max(map(len, text.split("\n"))) > max_line_chars:
        raise _line_too_long(max_line_chars)
    return markdown_parts(text)


# --- HTML, PDF, DOCX -----------------------------------------------------------------------------


def read_html(path: Path, max_line_chars: int) -> Iterator[Part]:
    """Main content only (trafilatura drops navigation, footers, cookie banners), as Markdown so
    headings survive; the page title is the section until the first heading."""
    import trafilatura

    data = path.read_bytes()
    if not data.strip():
        raise FileError("empty file")
    text = trafilatura.extract(data, output_format="markdown", include_tables=True, include_comments=False, favor_recall=True)
    if not text or not text.strip():
        raise FileError("no main text found in the HTML")
    metadata = trafilatura.extract_metadata(data)
    return markdown_parts(text, title=metadata.title if metadata else None)


def read_pdf(path: Path, max_line_chars: int) -> Iterator[Part]:
    """Text per page with page numbers; lines repeated at the top or bottom of most pages (running
    headers, footers, page numbers) removed; words hyphenated across line ends rejoined."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileError("encrypted PDF: it needs a password; decrypt it first (e.g. qpdf --decrypt)")
        pages = [page.extract_text() or "" for page in reader.pages]
    except FileError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as e:
        # pypdf reports damage as any of these, depending on where the file is broken
        raise FileError(f"corrupt PDF ({type(e).__name__}: {e})") from None
    pages = [repair_hyphenation(text) for text in strip_running_lines(pages)]
    if not any(text.strip() for text in pages):
        raise FileError(f"no extractable text in {len(pages)} page(s) (scanned images? OCR is not supported)")
    for number, text in enumerate(pages, 1):
        if text.strip():
            yield Part(text, 0, page=number)


def _line_shape(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def strip_running_lines(pages: list[str], edge_lines: int = 2, max_words: int = 12) -> list[str]:
    """Remove short lines that recur (digits aside, so "Page 3" matches "Page 4") among the first or
    last `edge_lines` lines of at least half the pages. Needs three pages to tell a pattern."""
    if len(pages) < 3:
        return pages
    lines = [page.split("\n") for page in pages]
    edges = [{i for i in range(len(ls)) if (i < edge_lines or i >= len(ls) - edge_lines) and 0 < len(ls[i].split()) <= max_words}
             for ls in lines]
    counts = Counter(shape for ls, edge in zip(lines, edges) for shape in {_line_shape(ls[i]) for i in edge})
    running = {shape for shape, n in counts.items() if n >= max(3, len(pages) / 2)}
    return ["\n".join(line for i, line in enumerate(ls) if not (i in edge and _line_shape(line) in running)) for ls, edge in zip(lines, edges)]


def repair_hyphenation(text: str) -> str:
    """Join a word broken across a line end ("infor-\\nmation"), but only when the next line goes
    on in lower case, so "Jean-\\nPierre" and list dashes are left alone."""
    return re.sub(r"(\w)[-\u00ad]\n(?=[a-z])", r"\1", text)


def read_docx(path: Path, max_line_chars: int) -> Iterator[Part]:
    """Paragraphs in document order; Heading/Title styles start sections; tables become rows of
    cells joined by " | "."""
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as e:
        raise FileError(f"corrupt DOCX ({type(e).__name__}: {e})") from None
    headings: list[tuple[int, str]] = []
    section: str | None = None
    lines: list[str] = []
    offset = 0

    def flush() -> Iterator[Part]:
        nonlocal lines, offset
        text = "\n\n".join(lines)
        if text.strip():
            yield Part(text, offset, section=section)
        offset += len(text) + 2 if lines else 0
        lines = []

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [c.text.strip() for c in row.cells]
                cells = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]  # merged cells repeat
                if cells:
                    lines.append(" | ".join(cells))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = block.style.name if block.style is not None else ""
        level = 1 if style == "Title" else int(m.group(1)) if (m := re.match(r"Heading (\d)", style)) else 0
        if level:
            yield from flush()
            headings = [h for h in headings if h[0] < level] + [(level, text)]
            section = " > ".join(name for _, name in headings)
        lines.append(text)
    yield from flush()


# --- rows: JSONL, JSON, CSV/TSV, Parquet; and InstructLab qna.yaml -------------------------------


def rows_to_items(rows: Iterator[tuple[int, dict | RowError]], text_field: str) -> Iterator[Item]:
    """Each row is ready-made training data (see chatdata) or a document in `text_field`."""
    for number, row in rows:
        if isinstance(row, RowError):
            yield row
            continue
        try:
            messages = to_messages(row)
        except ValueError as e:
            yield RowError(number, str(e))
            continue
        if messages is not None:
            yield Conversation(messages, number)
        elif isinstance(row.get(text_field), str):
            if row[text_field].strip():
                yield Part(row[text_field], 0, row=number)
        else:
            keys = ", ".join(sorted(map(str, row))[:8])
            yield RowError(number, f"no string field '{text_field}' (ingest.text_field) and not a known chat format; fields: {keys}")


def read_jsonl(path: Path, text_field: str) -> Iterator[Item]:
    with open(path, encoding=detect_encoding(path), errors="replace") as f:
        rows = ((n, RowError(n, row) if isinstance(row, str) else row) for n, row in parse_jsonl(f))
        yield from rows_to_items(rows, text_field)


def read_json(path: Path, text_field: str) -> Iterator[Item]:
    """A JSON array of objects (Alpaca data sets ship this way), or an object holding one."""
    try:
        data = json.loads(read_decoded(path))
    except json.JSONDecodeError as e:
        raise FileError(f"malformed JSON at line {e.lineno} ({e.msg})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else [data]
    if not isinstance(data, list):
        raise FileError(f"expected a JSON array of objects, got {type(data).__name__}")
    return rows_to_items(((i, row if isinstance(row, dict) else RowError(i, "not a JSON object")) for i, row in enumerate(data, 1)), text_field)


def read_csv(path: Path, text_field: str) -> Iterator[Item]:
    """Streamed row by row; the delimiter of a .csv is sniffed from its first 64 KB."""
    f = open(path, encoding=detect_encoding(path), errors="replace", newline="")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if path.suffix.lower() == ".csv":
        try:
            delimiter = csv.Sniffer().sniff(f.read(SAMPLE_BYTES), delimiters=",;\t|").delimiter
        except csv.Error:
            pass  # not enough structure to sniff: keep the comma
        f.seek(0)
    csv.field_size_limit(1 << 30)
    with f:
        reader = csv.DictReader(f, delimiter=delimiter)
        _require_column(reader.fieldnames or [], text_field)
        # data rows numbered from 1, as a spreadsheet shows them under the header
        rows = ((i, {k: v for k, v in row.items() if k is not None}) for i, row in enumerate(reader, 1))
        yield from rows_to_items(rows, text_field)


def read_parquet(path: Path, text_field: str) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise FileError(f"corrupt Parquet ({e})") from None
    names = table.schema_arrow.names
    if not {"messages", "conversations"} & set(names) and not {"instruction", "output"} <= set(names) and not {"prompt", "completion"} <= set(names):
        _require_column(names, text_field)

    def rows() -> Iterator[tuple[int, dict]]:
        number = 0
        for batch in table.iter_batches(batch_size=1024):  # streamed: a large file never sits in memory whole
            for row in batch.to_pylist():
                number += 1
                yield number, row

    return rows_to_items(rows(), text_field)


def _require_column(names: list[str], text_field: str) -> None:
    if text_field not in names:
        raise FileError(f"no column '{text_field}' (set ingest.text_field); columns: {', '.join(map(str, names[:12]))}")


def read_qna_yaml(path: Path, text_field: str) -> Iterator[Item]:
    """InstructLab taxonomy file: each seed example's context is a document, its question/answer
    pairs are training conversations."""
    try:
        data = yaml.safe_load(read_decoded(path))
    except yaml.YAMLError as e:
        raise FileError(f"malformed YAML ({str(e).splitlines()[0]})") from None
    try:
        examples = qna_examples(data)
    except ValueError as e:
        raise FileError(str(e)) from None
    for number, (context, pairs) in enumerate(examples, 1):
        if context:
            yield Part(context, 0, row=number, section=data.get("domain") if isinstance(data, dict) else None)
        for question, answer in pairs:
            yield Conversation([{"role": "user", "content": question}, {"role": "assistant", "content": answer}], number)


# --- dispatch ------------------------------------------------------------------------------------

DOCUMENT_READERS: dict[str, Callable[[Path, int], Iterator[Part]]] = {
    ".txt": read_text, ".text": read_text, ".md": read_markdown, ".markdown": read_markdown,
    ".html": read_html, ".htm": read_html, ".xhtml": read_html, ".pdf": read_pdf, ".docx": read_docx,
}
ROW_READERS: dict[str, Callable[[Path, str], Iterator[Item]]] = {
    ".jsonl": read_jsonl, ".json": read_json, ".csv": read_csv, ".tsv": read_csv, ".parquet": read_parquet,
}
SUFFIXES = sorted(DOCUMENT_READERS) + sorted(ROW_READERS) + ["qna.yaml"]


def supported(path: Path) -> bool:
    return path.name == "qna.yaml" or path.suffix.lower() in DOCUMENT_READERS or path.suffix.lower() in ROW_READERS


def read_file(path: Path, text_field: str, max_line_chars: int) -> Iterator[Item]:
    """The parts, conversations and row errors of one file; `FileError` if it cannot be read."""
    suffix = path.suffix.lower()
    try:
        if path.name == "qna.yaml":
            yield from read_qna_yaml(path, text_field)
        elif suffix in ROW_READERS:
            yield from ROW_READERS[suffix](path, text_field)
        else:
            yield from DOCUMENT_READERS[suffix](path, max_line_chars)
    except FileError:
        raise
    except PermissionError:
        raise FileError("permission denied") from None
    except OSError as e:
        raise FileError(f"cannot read ({e.strerror or e})") from None
    except UnicodeError as e:
        raise FileError(f"undecodable text ({e})") from None
    except Exception as e:  # a parser library choking on a malformed file: that file fails, the corpus goes on
        log.debug("reading %s", path, exc_info=True)
        raise FileError(f"could not parse ({type(e).__name__}: {e})") from None
