import json

import pytest

from steep.stages.ingest import chunk_document, clean, find_documents, ingest, split_sentences
from steep.rundir import InputError


def words(text: str) -> int:
    return len(text.split())


def test_clean_maps_every_character_back_to_the_raw_text():
    raw = "Line  one\x07 has\ttabs.\r\n\n\n\n  Next\u00a0para ﬁne.  "
    text, origin = clean(raw)
    assert text == "Line one has tabs.\n\nNext para fine."
    for i, ch in enumerate(text):
        if ch not in " \n" and raw[origin[i]].isascii():
            assert raw[origin[i]] == ch
    fi = text.index("fine")
    assert raw[origin[fi]] == raw[origin[fi + 1]] == "\ufb01"  # both letters come from the ligature


def test_chunks_keep_whole_sentences_and_spans_point_into_the_source():
    raw = "Alpha beta gamma. Delta epsilon zeta.\n\nEta theta iota kappa. Lambda mu."
    chunks = list(chunk_document("f.txt", raw, words, chunk_tokens=6))
    assert [c.text for c in chunks] == ["Alpha beta gamma. Delta epsilon zeta.", "Eta theta iota kappa. Lambda mu."]
    for c in chunks:
        assert raw[c.start : c.end] == c.text and c.source == "f.txt"


def test_a_long_sentence_becomes_its_own_chunk():
    chunks = list(chunk_document("f", "One two. " + "word " * 20 + "end. Three four.", words, chunk_tokens=5))
    assert len(chunks) == 3 and chunks[1].n_tokens > 5


def test_sentence_splitter_respects_abbreviations_and_paragraphs():
    sents = [s.text for s in split_sentences("Dr. Quill lives in St. Arven. She is 40\nyears old.\n\nNew para")]
    assert sents == ["Dr. Quill lives in St. Arven.", "She is 40 years old.", "New para"]


def test_ingest_folder_recursive_dedupes_and_reads_jsonl(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.md").write_text("Same text here.")
    (tmp_path / "two.txt").write_text("Same   text here.")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    (tmp_path / "rows.jsonl").write_text(json.dumps({"text": "Row text."}) + "\n\n" + json.dumps({"text": "Other."}) + "\n")
    chunks, stats = ingest([str(tmp_path)], words, 50)
    assert stats["files"] == 3 and stats["duplicate_chunks"] == 1 and stats["chunks"] == 3
    assert {c["source"] for c in chunks} >= {f"{tmp_path / 'rows.jsonl'}#1", f"{tmp_path / 'rows.jsonl'}#3"}


def test_empty_corpus_is_an_error(tmp_path):
    (tmp_path / "blank.txt").write_text("  \n\n ")
    with pytest.raises(InputError, match="corpus is empty"):
        ingest([str(tmp_path)], words, 50)
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match="no .* files found"):
        find_documents([str(tmp_path / "sub")])


def test_missing_input_and_bad_files_are_named(tmp_path):
    with pytest.raises(InputError, match="input not found: .*nope"):
        find_documents([str(tmp_path / "nope")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: malformed JSON"):
        ingest([str(bad)], words, 50)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(InputError, match="latin.txt: not UTF-8"):
        ingest([str(latin)], words, 50)
