"""ingest: segmentation, every supported format with its provenance, duplicates, junk filters and
incremental reruns. Hostile files are in test_ingest_hostile.py."""

import json
from pathlib import Path

import docx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from steep.config import IngestConfig
from steep.rundir import InputError
from steep.stages import ingest as ingest_stage
from steep.stages.ingest import chatdata, find_files
from steep.stages.ingest.quality import junk_reason
from steep.stages.ingest.readers import Part, markdown_parts, read_file, repair_hyphenation, strip_running_lines
from steep.stages.ingest.segment import Chunker, clean_text, split_sentences


def count_words(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def run_ingest(tmp_path: Path, inputs: list, **settings) -> tuple[list[dict], dict]:
    cfg = IngestConfig(inputs=[str(i) for i in inputs], **{"min_chunk_words": 3, **settings})
    result = ingest_stage.ingest(cfg, count_words, "words", tmp_path / "out")
    return read(result.chunks), result.summary


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


PROSE = "The {0} pump moves {1} litres of water per minute. It was designed by Dr. Vela in {2}. The casing is made of cast iron and lasts decades."


# --- segmentation ---------------------------------------------------------------------------------


def test_clean_text_normalizes_without_losing_words():
    assert clean_text("Line  one\x07 has\ttabs.\r\n\n\n\n  Next\u00a0para \ufb01ne.  ") == "Line one has tabs.\n\nNext para fine."


def test_sentence_splitter_respects_abbreviations_and_paragraphs():
    text = "Dr. Quill lives in St. Arven. She is 40\nyears old. Acme Inc. pays her.\n\nNew para"
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == ["Dr. Quill lives in St. Arven.", "She is 40\nyears old.", "Acme Inc. pays her.", "New para"]
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_chunks_keep_whole_sentences_and_spans_point_into_the_text():
    raw = "Alpha beta gamma. Delta epsilon zeta.\n\nEta theta iota kappa. Lambda mu."
    pieces = list(Chunker(count_words, 6).pieces(Part(raw, offset=100)))
    assert [p.text for p in pieces] == ["Alpha beta gamma. Delta epsilon zeta.", "Eta theta iota kappa. Lambda mu."]
    assert all(raw[p.start - 100 : p.end - 100] == p.text for p in pieces)


def test_a_run_on_sentence_is_cut_into_windows_of_about_one_chunk():
    raw = " ".join(f"w{i}" for i in range(100))
    pieces = list(Chunker(count_words, 10).pieces(Part(raw)))
    assert 9 <= len(pieces) <= 12 and all(6 <= len(p.text.split()) <= 14 for p in pieces)  # sized by characters per token
    assert " ".join(p.text for p in pieces) == raw


def test_code_is_split_between_lines_and_kept_verbatim():
    code = "def f(x):\n    return  x * 2   # doubled\n\n\nprint(f(3))\n"
    pieces = list(Chunker(count_words, 8).pieces(Part(code, verbatim=True)))
    assert "".join(code[p.start : p.end] for p in pieces) == code
    assert pieces[0].text == "def f(x):\n    return  x * 2   # doubled"


# --- formats --------------------------------------------------------------------------------------


def test_markdown_sections_become_provenance_and_code_blocks_stay_whole():
    text = "# Pump\n\nIntro text here.\n\n## Care\n\nOil it.\n\n```sh\npump  --reset\n```\n\n### Parts\nA gasket.\n\n# Other\nEnd."
    parts = list(markdown_parts(text))
    assert [(p.section, p.verbatim) for p in parts] == [
        ("Pump", False), ("Pump > Care", False), ("Pump > Care", True), ("Pump > Care > Parts", False), ("Other", False)]
    assert parts[2].text == "```sh\npump  --reset\n```\n"
    assert all(text[p.offset : p.offset + len(p.text)] == p.text for p in parts)


def make_pdf(path: Path, pages: list[str], header: str = "ACME P-200 Service Manual", password: str | None = None) -> None:
    pdf = FPDF()
    pdf.set_auto_page_break(False)  # one body per page, footer at the bottom
    pdf.set_font("helvetica", size=11)
    for number, body in enumerate(pages, 1):
        pdf.add_page()
        pdf.cell(0, 8, header, new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 6, body)
        pdf.set_y(-20)
        pdf.cell(0, 8, f"Page {number} of {len(pages)}")
    pdf.output(str(path))
    if password is not None:  # AES, as current PDF writers do; "" = opens without a password
        writer = PdfWriter(clone_from=PdfReader(path))
        writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
        writer.write(path)


def test_pdf_pages_are_provenance_running_headers_go_and_hyphens_are_repaired(tmp_path):
    bodies = [
        "The P-200 pump moves 40 litres of water per minute and was designed by Dr. Vela in 1994.",
        "Replace the gasket when the infor-\nmation light blinks twice in a row, then restart the controller.",
        "The P-3 pump moves 43 litres when it runs at full speed in a basement with a dry floor.",
        "Store spare seals in a cool place away from sunlight, solvents and heavy machinery.",
    ]
    make_pdf(tmp_path / "manual.pdf", bodies)
    chunks, summary = run_ingest(tmp_path, [tmp_path / "manual.pdf"])
    assert sorted({c["page"] for c in chunks}) == [1, 2, 3, 4]
    text = " ".join(c["text"] for c in chunks)
    assert "ACME P-200 Service Manual" not in text and "Page 2 of 4" not in text
    assert "information light" in text and "P-3 pump moves 43 litres" in text


def test_running_line_detection_needs_a_pattern_and_hyphen_repair_keeps_names():
    pages = ["Report 2024\nBody one.\n1", "Report 2024\nBody two.\n2", "Report 2024\nBody three.\n3"]
    assert strip_running_lines(pages) == ["Body one.", "Body two.", "Body three."]
    assert strip_running_lines(pages[:2]) == pages[:2]  # two pages are not a pattern
    assert repair_hyphenation("Jean-\nPierre came. A long sen-\ntence.") == "Jean-\nPierre came. A long sentence."


def test_html_keeps_main_text_and_title_and_drops_navigation(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>P-200 Pump Guide</title></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/shop'>Shop now</a> | <a href='/login'>Login</a></nav>"
        "<article><h1>P-200 Pump Guide</h1><p>" + PROSE.format("P-200", 40, 1994) + "</p>"
        "<h2>Maintenance</h2><p>Replace the gasket every six months, or sooner when the pump starts to leak water.</p>"
        "</article><footer>Copyright 2024 Acme Corp. All rights reserved. Cookie settings.</footer></body></html>")
    chunks, _ = run_ingest(tmp_path, [page])
    text = " ".join(c["text"] for c in chunks)
    assert "forty" not in text and "40 litres" in text and "gasket every six months" in text
    assert "Shop now" not in text and "Cookie settings" not in text
    assert {c["section"] for c in chunks} == {"P-200 Pump Guide", "P-200 Pump Guide > Maintenance"}


def test_docx_headings_are_sections_and_tables_become_rows(tmp_path):
    document = docx.Document()
    document.add_heading("Pump Guide", level=1)
    document.add_paragraph(PROSE.format("P-200", 40, 1994))
    document.add_heading("Spare parts", level=2)
    table = document.add_table(rows=2, cols=2)
    for r, (a, b) in enumerate([("Part", "Replacement interval"), ("Gasket seal", "Every six months")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    document.save(tmp_path / "guide.docx")
    chunks, _ = run_ingest(tmp_path, [tmp_path / "guide.docx"])
    by_section = {c["section"]: c["text"] for c in chunks}
    assert "P-200 pump moves 40 litres" in by_section["Pump Guide"]
    assert "Gasket seal | Every six months" in by_section["Pump Guide > Spare parts"]


def test_tables_and_rows_read_their_text_column(tmp_path):
    rows = [{"id": i, "body": long_document(i, 2).replace("\n\n", " ")} for i in range(3)]
    (tmp_path / "t.csv").write_text("id,body\n" + "".join(f'{r["id"]},"{r["body"]}"\n' for r in rows))
    (tmp_path / "t.tsv").write_text("id\tbody\n" + "".join(f'{r["id"]}\t{r["body"].replace("M-", "T-")}\n' for r in rows))
    (tmp_path / "t.jsonl").write_text("".join(json.dumps({**r, "body": r["body"].replace("M-", "J-")}) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist([{**r, "body": r["body"].replace("M-", "Q-")} for r in rows]), tmp_path / "t.parquet")
    chunks, summary = run_ingest(tmp_path, [tmp_path], text_field="body", near_duplicate_threshold=None)  # rows are alike
    assert summary["documents"] == 12 and summary["files_failed"] == 0
    for suffix, prefix in (("csv", "M-"), ("tsv", "T-"), ("jsonl", "J-"), ("parquet", "Q-")):
        mine = [c for c in chunks if c["source"].endswith(suffix)]
        assert [c["row"] for c in mine] == [1, 2, 3] and all(prefix in c["text"] for c in mine)


def test_ready_made_training_data_is_recognized_in_every_common_format():
    expected = [{"role": "user", "content": "What is P-200?"}, {"role": "assistant", "content": "A pump."}]
    formats = [
        {"messages": expected},
        {"conversations": [{"from": "human", "value": "What is P-200?"}, {"from": "gpt", "value": "A pump."}]},
        {"instruction": "What is P-200?", "input": "", "output": "A pump."},
        {"prompt": "What is P-200?", "completion": "A pump."},
    ]
    assert all(chatdata.to_messages(row) == expected for row in formats)
    alpaca = chatdata.to_messages({"instruction": "Summarize.", "input": "Long text.", "output": "Short."})
    assert alpaca[0]["content"] == "Summarize.\n\nLong text."
    assert chatdata.to_messages({"text": "a document"}) is None
    with pytest.raises(ValueError, match="end with an assistant"):
        chatdata.to_messages({"messages": [{"role": "user", "content": "hi"}]})


def test_instructlab_qna_yaml_gives_documents_and_seed_conversations(tmp_path):
    qna = {"version": 3, "domain": "pumps", "created_by": "me", "seed_examples": [
        {"context": PROSE.format("P-200", 40, 1994), "questions_and_answers": [
            {"question": "Who designed the P-200?", "answer": "Dr. Vela"},
            {"question": "What is the casing made of?", "answer": "Cast iron"}]}]}
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "qna.yaml").write_text(yaml.safe_dump(qna))
    (tmp_path / "kb" / "chat.jsonl").write_text(json.dumps({"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}) + "\n")
    chunks, summary = run_ingest(tmp_path, [tmp_path / "kb"])
    conversations = read(tmp_path / "out" / "conversations.jsonl")
    assert summary["conversations"] == 3 and chunks[0]["section"] == "pumps" and "Dr. Vela" in chunks[0]["text"]
    assert conversations[0]["messages"][0]["content"] == "Hi" and conversations[0]["metadata"]["method"] == "ingested"


# --- duplicates, junk, language -----------------------------------------------------------------


def long_document(seed: int, n: int = 40) -> str:
    return "\n\n".join(PROSE.format(f"M-{seed}-{i}", seed * 100 + i, 1900 + i) for i in range(n))


def test_near_duplicate_documents_and_exact_duplicate_chunks_are_removed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    original = long_document(1)
    (docs / "a.txt").write_text(original)
    (docs / "b_copy_with_edits.txt").write_text(original.replace("cast iron", "steel", 2))  # ~98% the same
    (docs / "c_other.txt").write_text(long_document(2))
    (docs / "d_shared_paragraph.md").write_text(PROSE.format("M-2-0", 200, 1900) + "\n")  # repeats a chunk of c
    chunks, summary = run_ingest(tmp_path, [docs], chunk_tokens=30)
    sources = {Path(c["source"]).name for c in chunks}
    assert sources == {"a.txt", "c_other.txt"}
    assert summary["duplicates_removed"]["near_duplicate_documents"] == 1
    assert summary["duplicates_removed"]["exact_chunks"] == 1
    pairs = read(tmp_path / "out" / "near_duplicates.jsonl")
    assert Path(pairs[0]["dropped"]).name == "b_copy_with_edits.txt" and Path(pairs[0]["kept"]).name == "a.txt"
    kept_all, summary = run_ingest(tmp_path, [docs], chunk_tokens=30, near_duplicate_threshold=None)
    assert "b_copy_with_edits.txt" in {Path(c["source"]).name for c in kept_all}


def test_junk_filters_name_their_reason():
    assert junk_reason("Page 12", 5) == "too_short"
    assert junk_reason("2019 4.51 2020 4.77 2021 5.02 2022 5.31 total 19.61", 5) == "mostly_numbers"
    assert junk_reason("==== ---- |||| ==== ---- |||| #### @@@@", 5) == "mostly_symbols"
    assert junk_reason("for (i = 0; i < n; i++) { x[i] = 0; }", 5, verbatim=True) is None
    assert junk_reason(PROSE, 5) is None


def test_filters_are_counted_and_the_language_filter_keeps_what_was_asked(tmp_path):
    (tmp_path / "mixed.md").write_text(
        PROSE.format("P-1", 1, 1990) + "\n\n# Zahlen\n\n1 2 3 4 5 6 7 8 9 10 11 12\n\n# Deutsch\n\n"
        "Die Pumpe fördert vierzig Liter Wasser pro Minute und wurde von Frau Dr. Vela entworfen.\n\n# End\n\nOk.\n")
    chunks, summary = run_ingest(tmp_path, [tmp_path / "mixed.md"], languages=["en"], min_chunk_words=5)
    assert summary["filtered"] == {"mostly_numbers": 1, "language": 1, "too_short": 1}
    assert len(chunks) == 1 and "P-1 pump" in chunks[0]["text"]


# --- incremental ----------------------------------------------------------------------------------


def test_reingest_reads_only_new_or_changed_files(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"doc{i}.txt").write_text(long_document(i, 3))
    _, first = run_ingest(tmp_path, [docs])
    assert first["files_read"] == 5
    read_paths = []
    original = ingest_stage.process_file
    monkeypatch.setattr(ingest_stage, "process_file", lambda path, *a: read_paths.append(path.name) or original(path, *a))
    (docs / "doc1.txt").write_text(long_document(11, 3))  # changed
    (docs / "doc5.txt").write_text(long_document(5, 3))  # new
    (docs / "doc2.txt").touch()  # touched, same content: not reread
    (docs / "doc3.txt").unlink()  # removed: its chunks go
    chunks, second = run_ingest(tmp_path, [docs])
    assert sorted(read_paths) == ["doc1.txt", "doc5.txt"]
    assert (second["files_read"], second["files_unchanged"]) == (2, 3)
    assert {Path(c["source"]).name for c in chunks} == {"doc0.txt", "doc1.txt", "doc2.txt", "doc4.txt", "doc5.txt"}
    assert any("M-11-" in c["text"] for c in chunks) and not any("M-1-" in c["text"] for c in chunks)
    read_paths.clear()
    again, third = run_ingest(tmp_path, [docs])
    assert read_paths == [] and third["files_unchanged"] == 5 and again == chunks


def test_an_interrupted_ingest_resumes_with_the_files_not_yet_done(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        (docs / f"doc{i}.txt").write_text(long_document(i, 2))
    original = ingest_stage.process_file

    def crash_on_third(path, *a):
        if path.name == "doc2.txt":
            raise KeyboardInterrupt
        return original(path, *a)

    monkeypatch.setattr(ingest_stage, "process_file", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_ingest(tmp_path, [docs])
    assert not any(p.name.startswith(".") for p in (tmp_path / "out" / "files").iterdir())  # no half-written files
    read_paths = []
    monkeypatch.setattr(ingest_stage, "process_file", lambda path, *a: read_paths.append(path.name) or original(path, *a))
    chunks, summary = run_ingest(tmp_path, [docs])
    assert read_paths == ["doc2.txt", "doc3.txt"] and summary["files_unchanged"] == 2
    assert {Path(c["source"]).name for c in chunks} == {f"doc{i}.txt" for i in range(4)}


def test_missing_input_and_empty_corpus_are_errors(tmp_path):
    with pytest.raises(InputError, match="input not found: .*nope"):
        find_files([str(tmp_path / "nope")])
    (tmp_path / "blank.txt").write_text("  \n\n ")
    with pytest.raises(InputError, match="corpus is empty.*errors.jsonl"):
        run_ingest(tmp_path, [tmp_path])
    assert read(tmp_path / "out" / "errors.jsonl")[0]["reason"] == "no text in the file"


def test_reader_dispatch_reads_text_in_bounded_blocks(tmp_path):
    path = tmp_path / "big.txt"
    paragraph = PROSE.format("B", 1, 2000) + "\n\n"
    path.write_text(paragraph * 20_000)  # ~3 MB: read in blocks cut at paragraph breaks
    parts = list(read_file(path, "text", 1_000_000))
    assert len(parts) >= 3 and all(p.text.endswith("\n\n") for p in parts[:-1])
    assert all(len(p.text) <= 2 << 20 for p in parts)
    assert [p.offset for p in parts] == [sum(len(q.text) for q in parts[:i]) for i in range(len(parts))]
