"""The run directory: atomic writes, JSONL helpers, and the content hashes that let a rerun skip
stages whose inputs and settings have not changed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger("steep")
_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: os.umask can only be read by setting it


class InputError(ValueError):
    """Bad user input (a missing file, a malformed line, an empty corpus): the message says where."""


class EmptyResultError(ValueError):
    """A stage produced nothing; the message says which step removed everything."""


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds, so a
    crash or a full disk never leaves a half-written file that a rerun would take as done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would make every output private to its writer
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def parse_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, dict | str]]:
    """(line number, object) for each non-blank line, or (line number, why it is not an object)."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield lineno, f"malformed JSON ({e.msg})"
            continue
        yield lineno, row if isinstance(row, dict) else f"expected a JSON object, got {type(row).__name__}"


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a malformed line is an error naming file and line."""
    with open(path, encoding="utf-8") as f:
        try:
            for lineno, row in parse_jsonl(f):
                if isinstance(row, str):
                    raise InputError(f"{path}:{lineno}: {row}")
                yield lineno, row
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None


def read_jsonl(path: Path) -> list[dict]:
    return [row for _, row in iter_jsonl(path)]


def fingerprint(*parts: Any) -> str:
    """A content hash of settings (any JSON-able values) and files (Paths: hashed by content)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            h.update(file_hash(part).encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def file_hash(path: Path) -> str:
    if path.is_dir():
        return fingerprint(*[(str(p.relative_to(path)), p) for p in sorted(path.rglob("*")) if p.is_file()])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Stage:
    """One stage's folder in the run directory. `done.json` is written last, holding the hash of
    the stage's inputs and settings; a stage is done only if that hash matches the current one."""

    def __init__(self, run_dir: Path, name: str, key: str):
        self.dir = run_dir / name
        self.name = name
        self.key = key
        self._marker = self.dir / "done.json"

    def is_done(self) -> bool:
        if not self._marker.exists():
            return False
        try:
            return json.loads(self._marker.read_text()).get("key") == self.key
        except json.JSONDecodeError:
            return False

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._marker.unlink(missing_ok=True)  # stale: inputs or settings changed since
        self._started = time.time()

    def finish(self, summary: dict[str, Any], seconds: float | None = None) -> None:
        """Mark the stage done; `seconds` for a stage that timed itself (ingest skips unchanged files;
        train counts the sessions before a resume)."""
        took = seconds if seconds is not None else time.time() - self._started
        write_json(self._marker, {"key": self.key, "summary": summary, "seconds": round(took, 1)})

    def seconds(self) -> float:
        return json.loads(self._marker.read_text()).get("seconds", 0.0)

    def summary(self) -> dict[str, Any]:
        return json.loads(self._marker.read_text())["summary"]


def recorded_output(train_dir: Path, summary: dict) -> Path:
    """The model a train summary names, inside `train_dir`: the record's name only, so a run directory
    that was moved or copied reads its own model, not the one at the place it was copied from."""
    return train_dir / Path(summary["output"]).name


def trained_output(run_dir: Path) -> Path:
    """What a run's train stage wrote: `adapter/` (LoRA on the base model) or `model/` (full)."""
    marker = run_dir / "train" / "done.json"
    if not marker.exists():
        raise InputError(f"{run_dir} has no trained model: run `steep train` (or `steep run`) on it first")
    output = recorded_output(run_dir / "train", json.loads(marker.read_text())["summary"])
    if not output.exists():
        raise InputError(f"{run_dir}: the trained model {output} is missing; rerun `steep train`")
    return output


def setup_logging(run_dir: Path | None = None) -> None:
    """Console at INFO; with a run directory, also a full log file in it."""
    logger = logging.getLogger("steep")
    logger.setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in logger.handlers):
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(console)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        target = str((run_dir / "steep.log").resolve())
        for h in list(logger.handlers):  # one log file: this run's
            if isinstance(h, logging.FileHandler):
                logger.removeHandler(h)
                h.close()
        fh = logging.FileHandler(target, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(fh)
