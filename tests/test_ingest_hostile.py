"""Hostile and broken input: each bad file gets one line in errors.jsonl, the rest of the corpus is
ingested, the exit status says some files failed (`--strict` makes it fatal), and nothing the
user gave is modified."""

import builtins
import hashlib
import json
import os
from pathlib import Path

import pytest

from steep.cli import main
from test_ingest import PROSE, make_pdf, read

HUGE_LINE_BYTES = 100 * 1024 * 1024


def snapshot(root: Path) -> dict:
    """Every entry under root: its link target, or its size, mtime and content hash."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                state[path] = ("link", os.readlink(path))
            elif os.path.isfile(path):
                try:
                    with open(path, "rb") as f:
                        state[path] = (st.st_size, st.st_mtime_ns, st.st_mode, hashlib.sha256(f.read()).hexdigest())
                except PermissionError:
                    state[path] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return state


@pytest.fixture
def hostile(tmp_path: Path, tiny_model: Path, monkeypatch) -> Path:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "good.txt").write_text(PROSE.format("P-200", 40, 1994))
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nthis is not a pdf body\n")
    pages = ["Open pump notes that anyone may read.", "Valves are checked every spring.", "Seals are replaced in autumn."]
    make_pdf(docs / "encrypted.pdf", pages, password="secret")
    make_pdf(docs / "owner_only.pdf", pages, password="")
    (docs / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    (docs / "empty.txt").write_bytes(b"")
    (docs / "latin1.txt").write_bytes("Le café de Zürich est servi chaque matin par la propriétaire du magasin.".encode("latin-1"))
    (docs / "utf16.txt").write_text("The pump manual was saved by Notepad as UTF-16 with a byte order mark.", encoding="utf-16")
    with open(docs / "huge_line.txt", "wb") as f:
        f.write(b"x" * HUGE_LINE_BYTES)
    unreadable = docs / "unreadable.txt"
    unreadable.write_text(PROSE.format("U-1", 1, 2001))
    unreadable.chmod(0)
    if os.geteuid() == 0:  # root reads any file whatever its mode: refuse this one as the kernel would
        real_open = builtins.open
        denied = os.fsencode(unreadable)

        def open_as_user(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)) and os.fsencode(file) == denied:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", open_as_user)
    os.symlink("loop_b.txt", docs / "loop_a.txt")
    os.symlink("loop_a.txt", docs / "loop_b.txt")
    os.symlink("..", docs / "sub" / "up")  # a folder that contains itself
    (docs / "sub" / "wéird name [1] 'q' $HOME.txt").write_text(PROSE.format("W-1", 7, 1977))
    (docs / "sub" / "new\nline.txt").write_text(PROSE.format("N-1", 8, 1988))
    with open(os.path.join(os.fsencode(docs / "sub"), b"bad\xffbyte.txt"), "w") as f:
        f.write(PROSE.format("B-1", 9, 1999))
    (tmp_path / "steep.yaml").write_text(f"name: h\nmodel: {tiny_model}\nruns_dir: runs\ningest: {{inputs: [docs], min_chunk_words: 3}}\n")
    yield tmp_path
    unreadable.chmod(0o644)


def test_each_bad_file_gets_one_line_and_the_rest_is_ingested(hostile, caplog):
    before = snapshot(hostile / "docs")
    assert main(["ingest", str(hostile / "steep.yaml")]) == 3
    out = hostile / "runs" / "h" / "ingest"
    errors = {Path(e["file"]).name: e["reason"] for e in read(out / "errors.jsonl")}
    assert errors.pop("corrupt.pdf").startswith("corrupt PDF")
    assert errors.pop("encrypted.pdf").startswith("encrypted PDF")
    assert errors.pop("binary.txt").startswith("binary content")
    assert errors.pop("empty.txt") == "empty file"
    assert errors.pop("huge_line.txt").startswith("a line longer than 1,000,000 characters")
    assert errors.pop("unreadable.txt") == "permission denied"
    assert errors.pop("loop_a.txt") == errors.pop("loop_b.txt") == "symlink loop"
    assert errors.pop("up").startswith("symlink loop")
    assert errors == {}
    chunks = read(out / "chunks.jsonl")
    text: dict[str, str] = {}
    for c in chunks:
        text[Path(c["source"]).name] = text.get(Path(c["source"]).name, "") + c["text"]
    assert "café de Zürich" in text["latin1.txt"] and "UTF-16 with a byte order mark" in text["utf16.txt"]
    assert "anyone may read" in text["owner_only.pdf"] and "P-200" in text["good.txt"]
    assert {"wéird name [1] 'q' $HOME.txt", "new\nline.txt", "bad\\xffbyte.txt"} <= set(text)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files_failed"] == 9 and summary["files_read"] == 7
    assert "could not be fully read" in caplog.text
    assert snapshot(hostile / "docs") == before  # nothing the user gave was touched


def test_strict_stops_at_the_first_bad_file(hostile, caplog):
    assert main(["ingest", str(hostile / "steep.yaml"), "--strict"]) == 2
    assert "ingest.strict" in caplog.text and "symlink loop" in caplog.text


def test_bad_rows_are_reported_and_good_rows_kept(tmp_path, tiny_model):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": PROSE.format("R-1", 1, 2001)}) + "\n{broken\n[1, 2]\n"
                    + json.dumps({"body": "wrong field"}) + "\n" + json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    (tmp_path / "steep.yaml").write_text(f"name: r\nmodel: {tiny_model}\nruns_dir: runs\ningest: {{inputs: [rows.jsonl], min_chunk_words: 3}}\n")
    assert main(["ingest", str(tmp_path / "steep.yaml")]) == 3
    out = tmp_path / "runs" / "r" / "ingest"
    [error] = read(out / "errors.jsonl")
    assert error["partial"] and error["reason"].startswith("4 row(s) skipped: row 2: malformed JSON")
    assert "row 5: a conversation needs a user turn and must end with an assistant turn" in error["reason"]
    assert [c["row"] for c in read(out / "chunks.jsonl")] == [1]


def test_a_full_disk_stops_the_run_with_a_clear_error_and_a_rerun_resumes(tmp_path, tiny_model, monkeypatch, caplog):
    from steep.stages import ingest as ingest_stage

    (tmp_path / "docs").mkdir()
    for i in range(3):
        (tmp_path / "docs" / f"d{i}.txt").write_text(PROSE.format(f"D-{i}", i, 1990 + i))
    (tmp_path / "steep.yaml").write_text(f"name: d\nmodel: {tiny_model}\nruns_dir: runs\ningest: {{inputs: [docs], min_chunk_words: 3}}\n")
    real_write, calls = ingest_stage._write, []

    def write_until_full(f, row):
        calls.append(row)
        if len(calls) == 3:  # d0's chunk and signature are written, d1's chunk is not
            raise OSError(28, "No space left on device")
        real_write(f, row)

    monkeypatch.setattr(ingest_stage, "_write", write_until_full)
    assert main(["ingest", str(tmp_path / "steep.yaml")]) == 1
    assert "No space left on device (writing what was read from" in caplog.text and "d1.txt" in caplog.text
    assert "skipped" not in caplog.text  # not blamed on the input file
    monkeypatch.setattr(ingest_stage, "_write", real_write)
    assert main(["ingest", str(tmp_path / "steep.yaml")]) == 0
    summary = json.loads((tmp_path / "runs" / "d" / "ingest" / "summary.json").read_text())
    assert (summary["files_read"], summary["files_unchanged"], summary["chunks"]) == (2, 1, 3)
