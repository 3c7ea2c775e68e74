"""ingest: a folder of documents -> clean, deduplicated chunks that remember where they came from
(file, page, section, row, character span), plus any ready-made training conversations found.

It works in two passes so that a rerun after adding or changing a few files redoes only those:
1. each file is read, chunked and filtered on its own into `ingest/files/` (one set of outputs per
   file, its `.meta.json` written last as the sign it is complete); unchanged files are skipped;
2. a merge streams every file's outputs, in path order, into `chunks.jsonl` and
   `conversations.jsonl`, dropping exact duplicate chunks and near-duplicate documents.
Both passes stream, so memory does not grow with the corpus (beyond ~100 bytes a chunk and ~4 KB a
document for the duplicate indexes). A file that cannot be read is reported in `errors.jsonl` and
the rest of the corpus is still ingested."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tqdm.auto import tqdm

from ...config import IngestConfig
from ...rundir import InputError, atomic_path, file_hash, fingerprint, iter_jsonl, write_json, write_jsonl
from .dedupe import NearDuplicates, Signature, exact_key
from .quality import junk_reason, language_reason
from .readers import SUFFIXES, Conversation, FileError, Part, RowError, read_file, supported
from .segment import Chunker, Sentence, split_sentences

__all__ = ["Sentence", "split_sentences", "find_files", "ingest", "Ingested"]

log = logging.getLogger("steep")
ROW_ERROR_EXAMPLES = 5


def display_path(path: Path) -> str:
    """The path as text that is always valid UTF-8: undecodable bytes in a file name show as
    \\xNN instead of breaking the JSON outputs."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass
class Found:
    files: list[Path] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"file", "reason"}: unreadable folders, symlink loops
    ignored: Counter = field(default_factory=Counter)  # unsupported files by suffix


def find_files(inputs: list[str]) -> Found:
    """Every supported file under `inputs` (folders are searched recursively and symlinks
    followed), sorted. A missing input is a config mistake and stops the run; a broken symlink, a
    symlink loop or an unreadable folder is reported and skipped."""
    if not inputs:
        raise InputError("ingest.inputs is empty: give the files or folders to read")
    found = Found()
    visited: set[tuple[int, int]] = set()

    def visit(path: Path) -> None:
        try:
            st = path.stat()  # follows symlinks
        except OSError as e:
            reason = "symlink loop" if e.errno == errno.ELOOP else "broken symlink" if path.is_symlink() else e.strerror
            found.errors.append({"file": display_path(path), "reason": reason})
            return
        if path.is_dir():
            if (st.st_dev, st.st_ino) in visited:
                if path.is_symlink():
                    found.errors.append({"file": display_path(path), "reason": "symlink loop (points to a folder already read)"})
                return
            visited.add((st.st_dev, st.st_ino))
            try:
                entries = sorted(os.scandir(path), key=lambda e: os.fsencode(e.name))
            except OSError as e:
                found.errors.append({"file": display_path(path), "reason": f"cannot list folder: {e.strerror}"})
                return
            for entry in entries:
                visit(Path(entry.path))
        elif supported(path):
            found.files.append(path)
        else:
            found.ignored[path.suffix.lower() or "(no suffix)"] += 1

    for item in inputs:
        path = Path(item)
        if not path.exists() and not path.is_symlink():
            raise InputError(f"input not found: {path}")
        if path.is_file() and not supported(path):
            raise InputError(f"{path}: unsupported file type (supported: {', '.join(SUFFIXES)})")
        visit(path)
    found.files = sorted(set(found.files), key=os.fsencode)
    return found


# --- pass 1: one file -----------------------------------------------------------------------------


@dataclass
class FileOutputs:
    """Where one input file's chunks, document signatures and conversations are kept."""

    stem: Path

    def __post_init__(self) -> None:
        self.chunks = self.stem.with_name(self.stem.name + ".chunks.jsonl")
        self.docs = self.stem.with_name(self.stem.name + ".docs.jsonl")
        self.conversations = self.stem.with_name(self.stem.name + ".conversations.jsonl")
        self.meta = self.stem.with_name(self.stem.name + ".meta.json")

    def read_meta(self) -> dict | None:
        return _read_json(self.meta) or None


def _write(f: IO[str], row: dict) -> None:
    f.write(json.dumps(row, ensure_ascii=False) + "\n")


def process_file(path: Path, cfg: IngestConfig, chunker: Chunker, out: FileOutputs) -> dict:
    """Read, chunk and filter one file into its outputs; return its meta (written by the caller,
    last, so outputs without one count as absent). Raises FileError when the file cannot be read."""
    source = display_path(path)
    stats: Counter = Counter()
    row_errors: list[str] = []
    with ExitStack() as stack:
        chunks_f, docs_f, conv_f = (stack.enter_context(open(stack.enter_context(atomic_path(p)), "w", encoding="utf-8"))
                                    for p in (out.chunks, out.docs, out.conversations))
        document: tuple[int | None, Signature] | None = None  # the row being read; a row's parts come together

        def end_document() -> None:
            if document is not None and not document[1].empty:
                _write(docs_f, {"row": document[0], "minhash": document[1].values()})
                stats["documents"] += 1

        for item in read_file(path, cfg.text_field, cfg.max_line_chars):
            if isinstance(item, RowError):
                stats["row_errors"] += 1
                if len(row_errors) < ROW_ERROR_EXAMPLES:
                    row_errors.append(f"row {item.row}: {item.reason}")
            elif isinstance(item, Conversation):
                stats["conversations"] += 1
                _write(conv_f, {"messages": item.messages, "metadata": {"method": "ingested", "source": source, "row": item.row}})
            else:
                if document is None or document[0] != item.row:
                    end_document()
                    document = (item.row, Signature())
                _chunk_part(item, source, cfg, chunker, document[1], chunks_f, stats)
        end_document()
    if not stats["chunks"] and not stats["conversations"]:
        if stats["row_errors"]:
            raise FileError(f"no usable rows: {stats['row_errors']} row(s) failed; {'; '.join(row_errors)}")
        if not any(k.startswith("filtered_") for k in stats):
            raise FileError("no text in the file")
    return {"path": source, **dict(stats), "row_error_examples": row_errors}


def _chunk_part(part: Part, source: str, cfg: IngestConfig, chunker: Chunker, signature: Signature, f: IO[str], stats: Counter) -> None:
    stats["parts"] += 1
    for piece in chunker.pieces(part):
        reason = junk_reason(piece.text, cfg.min_chunk_words, part.verbatim) or language_reason(piece.text, cfg.languages)
        if reason:
            stats[f"filtered_{reason}"] += 1
            continue
        signature.update(piece.text)
        digest = hashlib.sha1(f"{source}:{part.row}:{part.page}:{piece.start}:{piece.text}".encode()).hexdigest()[:12]
        _write(f, {"id": digest, "source": source, "page": part.page, "section": part.section, "row": part.row,
                   "start": piece.start, "end": piece.end, "kind": "code" if part.verbatim else "prose",
                   "n_tokens": piece.n_tokens, "text": piece.text})
        stats["chunks"] += 1
        stats["tokens"] += piece.n_tokens


# --- pass 2: merge ---------------------------------------------------------------------------------


def merge(outputs: list[tuple[str, FileOutputs]], out_dir: Path, near_threshold: float | None) -> Counter:
    """Stream every (source, outputs) into the corpus files, dropping duplicates; counts of what was kept and dropped."""
    counts: Counter = Counter()
    near = NearDuplicates(near_threshold) if near_threshold else None
    seen_chunks: set[str] = set()
    seen_conversations: set[str] = set()
    with ExitStack() as stack:
        chunks_f, conv_f, pairs_f = (stack.enter_context(open(stack.enter_context(atomic_path(out_dir / name)), "w", encoding="utf-8"))
                                     for name in ("chunks.jsonl", "conversations.jsonl", "near_duplicates.jsonl"))
        for source, out in outputs:
            dropped_rows = set()
            if near is not None:
                for _, doc in iter_jsonl(out.docs):
                    name = source if doc["row"] is None else f"{source}#{doc['row']}"
                    if (earlier := near.earlier(name, doc["minhash"])) is not None:
                        dropped_rows.add(doc["row"])
                        counts["near_duplicate_documents"] += 1
                        _write(pairs_f, {"dropped": name, "kept": earlier})
            for _, chunk in iter_jsonl(out.chunks):
                if chunk["row"] in dropped_rows:
                    counts["near_duplicate_chunks"] += 1
                elif (key := exact_key(chunk["text"])) in seen_chunks:
                    counts["exact_duplicate_chunks"] += 1
                else:
                    seen_chunks.add(key)
                    _write(chunks_f, chunk)
                    counts["chunks"] += 1
                    counts["tokens"] += chunk["n_tokens"]
            for _, conversation in iter_jsonl(out.conversations):
                if (key := exact_key(json.dumps(conversation["messages"]))) in seen_conversations:
                    counts["duplicate_conversations"] += 1
                else:
                    seen_conversations.add(key)
                    _write(conv_f, conversation)
                    counts["conversations"] += 1
    return counts


# --- the stage -------------------------------------------------------------------------------------


@dataclass
class Ingested:
    key: str  # changes whenever the corpus or the settings change
    summary: dict
    chunks: Path
    conversations: Path


def ingest(cfg: IngestConfig, count_tokens: Callable[[list[str]], list[int]], tokenizer_id: str, out_dir: Path) -> Ingested:
    """Bring `out_dir` up to date with the files in `cfg.inputs`. `count_tokens` gives token counts
    of a batch of texts; `tokenizer_id` names that tokenizer, so a different one re-chunks
    everything."""
    started = time.time()
    found = find_files(cfg.inputs)
    settings = fingerprint(cfg.model_dump(exclude={"inputs", "strict"}), tokenizer_id)
    files_dir = out_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    errors = list(found.errors)
    if errors and cfg.strict:
        raise InputError(f"{errors[0]['file']}: {errors[0]['reason']} (ingest.strict is on: every input must be readable)")
    chunker = Chunker(count_tokens, cfg.chunk_tokens)
    todo, metas, outputs = [], {}, {}
    for path in found.files:
        out = FileOutputs(files_dir / hashlib.blake2b(os.fsencode(path) + settings.encode(), digest_size=10).hexdigest())
        outputs[path] = out
        meta = _unchanged(path, out)
        if meta is None:
            todo.append(path)
        else:
            metas[path] = meta
    sizes = {path: _size(path) for path in todo}
    with tqdm(total=sum(sizes.values()), unit="B", unit_scale=True, desc="ingest", disable=not todo) as bar:
        for n, path in enumerate(todo, 1):
            bar.set_postfix_str(f"file {n}/{len(todo)}")
            meta = _process_one(path, cfg, chunker, outputs[path], errors)
            if meta is not None:
                metas[path] = meta
            bar.update(sizes[path])
    ingested = [p for p in found.files if p in metas]
    for path in ingested:
        if metas[path].get("row_errors"):
            examples = "; ".join(metas[path]["row_error_examples"])
            errors.append({"file": metas[path]["path"], "reason": f"{metas[path]['row_errors']} row(s) skipped: {examples}", "partial": True})
    key = fingerprint(settings, [(metas[p]["path"], metas[p]["sha256"]) for p in ingested], errors)
    merged_path = out_dir / "merged.json"  # the key and counts of the last merge: an unchanged corpus skips it
    merged = _read_json(merged_path)
    if merged.get("key") == key:
        counts = Counter(merged["counts"])
    else:
        write_jsonl(out_dir / "errors.jsonl", errors)
        counts = merge([(metas[p]["path"], outputs[p]) for p in ingested], out_dir, cfg.near_duplicate_threshold)
        write_json(merged_path, {"key": key, "counts": counts})
        _remove_stale(files_dir, {outputs[p].stem.name for p in found.files})
    summary = _summary(found, todo, ingested, metas, errors, counts, sum(sizes.values()), time.time() - started)
    write_json(out_dir / "summary.json", summary)
    if not counts["chunks"] and not counts["conversations"]:
        problems = f"; {len(errors)} problem(s) listed in {out_dir / 'errors.jsonl'}" if errors else ""
        raise InputError(f"the corpus is empty: {len(found.files)} file(s) found, {len(ingested)} read, no text kept{problems}")
    return Ingested(key, summary, out_dir / "chunks.jsonl", out_dir / "conversations.jsonl")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _unchanged(path: Path, out: FileOutputs) -> dict | None:
    """The file's meta if its outputs are complete and it has not changed: same size and mtime, or
    (touched but not edited) the same content hash."""
    meta = out.read_meta()
    if meta is None:
        return None
    try:
        st = path.stat()
        if (meta["size"], meta["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            return meta
        if meta["size"] == st.st_size and file_hash(path) == meta["sha256"]:
            meta["mtime_ns"] = st.st_mtime_ns
            write_json(out.meta, meta)
            return meta
    except OSError:
        pass  # unreadable now: process_file reports it
    return None


def _process_one(path: Path, cfg: IngestConfig, chunker: Chunker, out: FileOutputs, errors: list[dict]) -> dict | None:
    """One file; on failure, one line in `errors` (or, with ingest.strict, the end of the run).
    Errors writing the outputs (a full disk) are not the file's fault and stop the run."""
    try:
        st = path.stat()
        sha = file_hash(path)
        meta = process_file(path, cfg, chunker, out)
    except FileError as e:
        reason = str(e)
    except OSError as e:
        if e.filename is None or Path(os.fsdecode(e.filename)) != path:  # writing ours (a full disk): stop the run
            raise OSError(e.errno, f"{e.strerror or e} (writing what was read from {display_path(path)} into {out.stem.parent})") from e
        reason = "permission denied" if isinstance(e, PermissionError) else f"cannot read ({e.strerror or e})"
    else:
        meta.update(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=sha)
        write_json(out.meta, meta)  # last: the file's outputs are complete
        return meta
    if cfg.strict:
        raise InputError(f"{display_path(path)}: {reason} (ingest.strict is on: every input must be readable)")
    log.warning("skipped %s: %s", display_path(path), reason)
    errors.append({"file": display_path(path), "reason": reason})
    out.meta.unlink(missing_ok=True)
    return None


def _remove_stale(files_dir: Path, current: set[str]) -> None:
    """Outputs of files that were removed from the corpus, or made with other settings."""
    for p in files_dir.iterdir():
        if p.name.split(".", 1)[0] not in current:
            p.unlink(missing_ok=True)


def _summary(found: Found, todo: list[Path], ingested: list[Path], metas: dict, errors: list[dict], counts: Counter,
             bytes_read: int, seconds: float) -> dict:
    filtered: Counter = Counter()
    for path in ingested:
        filtered.update({k.removeprefix("filtered_"): v for k, v in metas[path].items() if k.startswith("filtered_")})
    failed = sum(1 for e in errors if not e.get("partial"))
    read_now = sum(1 for p in todo if p in metas)
    return {
        "files_found": len(found.files) + len(found.errors),
        "files_read": read_now,
        "files_unchanged": len(ingested) - read_now,
        "files_failed": failed,
        "files_with_bad_rows": len(errors) - failed,
        "files_ignored": dict(found.ignored),
        "documents": sum(metas[p].get("documents", 0) for p in ingested),
        "chunks": counts["chunks"],
        "tokens": counts["tokens"],
        "conversations": counts["conversations"],
        "duplicates_removed": {
            "exact_chunks": counts["exact_duplicate_chunks"],
            "near_duplicate_documents": counts["near_duplicate_documents"],
            "near_duplicate_chunks": counts["near_duplicate_chunks"],
            "conversations": counts["duplicate_conversations"],
        },
        "filtered": dict(filtered),
        "megabytes_read": round(bytes_read / 1e6, 2),
        "seconds": round(seconds, 1),
    }


def describe(summary: dict, out_dir: Path) -> Iterator[str]:
    """The end-of-stage summary, a few lines a person reads."""
    yield (f"ingest: {summary['files_read']} file(s) read, {summary['files_unchanged']} unchanged, "
           f"{summary['files_failed']} failed, {summary['files_with_bad_rows']} with bad rows"
           + (f", ignored by type: {summary['files_ignored']}" if summary["files_ignored"] else ""))
    dup = summary["duplicates_removed"]
    yield (f"        {summary['documents']} document(s) -> {summary['chunks']} chunks ({summary['tokens']} tokens), "
           f"{summary['conversations']} conversations; removed {dup['exact_chunks']} duplicate chunks, "
           f"{dup['near_duplicate_documents']} near-duplicate documents ({dup['near_duplicate_chunks']} chunks), "
           f"filtered {summary['filtered'] or 'nothing'}")
    problems = summary["files_failed"] or summary["files_with_bad_rows"]
    yield f"        {out_dir / 'chunks.jsonl'}" + (f"; problems: {out_dir / 'errors.jsonl'}" if problems else "")
