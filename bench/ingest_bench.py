"""Ingest at scale and on real material.

    python bench/ingest_bench.py                      # 1 GB generated corpus, then the real manual
    python bench/ingest_bench.py --size-mb 100        # a quicker look
    python bench/ingest_bench.py --skip-synthetic     # only the real Debian documentation package

Synthetic: a seeded corpus of text, Markdown and JSONL (with planted near-duplicate files and
repeated paragraphs) is ingested by `steep ingest` in a child process; the script reports MB/s,
files/s and the child's peak RSS (target: under 2 GB for 1 GB), then changes 5 files, adds 5 and
reruns (only those 10 should be read), then reruns with nothing changed.

Real: a Debian documentation package (default: the PostgreSQL 15 manual, ~1,100 HTML pages) is
fetched with `apt-get download`, unpacked with `dpkg-deb -x` (nothing is installed), and ingested;
chunk counts, time and a sample of chunks with their provenance are printed.
Results go to bench/results/ingest_synthetic.json and ingest_real.json."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILE_MB = 1.0


def words(rng: random.Random, n: int) -> list[str]:
    """English-like words: whole-word entries of the default model's vocabulary, so the text
    tokenizes at a realistic rate (about 4-5 characters a token)."""
    from steep.models import load_tokenizer, resolve_model

    vocab = load_tokenizer(resolve_model("smollm2-135m-instruct")).get_vocab()
    pool = sorted(w[1:] for w in vocab if w.startswith("\u0120") and w[1:].isalpha() and w[1:].islower() and len(w) > 3)
    return rng.sample(pool, min(n, len(pool)))


def paragraph(rng: random.Random, vocab: list[str]) -> str:
    sentences = []
    for _ in range(rng.randint(3, 8)):
        body = " ".join(rng.choices(vocab, k=rng.randint(8, 24)))
        sentences.append(f"{body[0].upper()}{body[1:]} in {rng.randint(1900, 2030)}.")
    return " ".join(sentences)


def generate(corpus: Path, size_mb: float, seed: int = 0) -> dict:
    """Files of about 1 MB: text and Markdown, one JSONL of rows; 2% of files are near-copies of
    another and every 50th paragraph repeats an earlier one."""
    rng = random.Random(seed)
    vocab = words(rng, 20_000)
    corpus.mkdir(parents=True)
    written, n_files, texts = 0, 0, []
    target = int(size_mb * 1e6)
    pool: list[str] = []
    while written < target:
        paras, size = [], 0
        while size < FILE_MB * 1e6:
            p = rng.choice(pool) if pool and rng.random() < 0.02 else paragraph(rng, vocab)
            if len(pool) < 1000:
                pool.append(p)
            paras.append(p)
            size += len(p) + 2
        kind = n_files % 10
        if kind == 9:  # JSONL rows
            body = "".join(json.dumps({"text": p}) + "\n" for p in paras)
            path = corpus / f"rows/{n_files:05d}.jsonl"
        elif kind % 2:
            body = "\n\n".join(f"## Section {i}\n\n{p}" if i % 5 == 0 else p for i, p in enumerate(paras))
            path = corpus / f"md/{n_files // 100:03d}/{n_files:05d}.md"
        else:
            body = "\n\n".join(paras)
            path = corpus / f"txt/{n_files // 100:03d}/{n_files:05d}.txt"
        if texts and rng.random() < 0.02:  # a near-copy: the same document with a few words changed
            body = texts[-1].replace(" in 19", " in 20", 3)
            path = path.with_suffix(".txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        texts = [body] if path.suffix == ".txt" else texts
        written += len(body.encode())
        n_files += 1
    return {"files": n_files, "megabytes": round(written / 1e6, 1)}


def run_ingest(config: Path) -> dict:
    """`steep ingest` in a child process: wall time and the child's peak RSS (from wait4)."""
    started = time.time()
    child = subprocess.Popen([sys.executable, "-m", "steep.cli", "ingest", str(config)], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.time() - started
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"steep ingest failed ({os.waitstatus_to_exitcode(status)}); see {config.parent}/runs/*/steep.log")
    summary = json.loads(next(config.parent.glob("runs/*/ingest/summary.json")).read_text())
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024), "summary": summary}


def synthetic(work: Path, size_mb: float) -> dict:
    corpus = work / "corpus"
    t = time.time()
    made = generate(corpus, size_mb)
    print(f"generated {made['files']} files, {made['megabytes']} MB in {time.time() - t:.0f} s", flush=True)
    config = work / "steep.yaml"
    config.write_text("name: scale\nruns_dir: runs\ningest: {inputs: [corpus]}\n")
    first = run_ingest(config)
    mb, files, s = made["megabytes"], made["files"], first["seconds"]
    print(f"first ingest: {s:.0f} s, {mb / s:.2f} MB/s, {files / s:.1f} files/s, peak RSS {first['peak_rss_mb']} MB", flush=True)
    print(json.dumps(first["summary"], indent=1), flush=True)
    txt = sorted(corpus.glob("txt/*/*.txt"))
    rng = random.Random(1)
    vocab = words(rng, 20_000)
    for path in txt[:5]:  # change five
        path.write_text(path.read_text() + "\n\n" + paragraph(rng, vocab))
    for i in range(5):  # add five
        (corpus / f"txt/new{i}.txt").write_text("\n\n".join(paragraph(rng, vocab) for _ in range(200)))
    second = run_ingest(config)
    third = run_ingest(config)
    print(f"after changing 5 and adding 5 files: {second['seconds']:.1f} s, files read {second['summary']['files_read']}, "
          f"unchanged {second['summary']['files_unchanged']}; rerun with no change: {third['seconds']:.1f} s", flush=True)
    return {"corpus": made, "first": first, "incremental": second, "unchanged": third,
            "mb_per_s": round(mb / s, 2), "files_per_s": round(files / s, 1),
            "incremental_vs_first": round(second["seconds"] / s, 3)}


def real(work: Path, package: str) -> dict:
    """A Debian documentation package, unpacked (not installed), ingested from its HTML."""
    debs = work / "debs"
    debs.mkdir(parents=True)
    subprocess.run(["apt-get", "download", package], cwd=debs, check=True, stdout=subprocess.DEVNULL)
    tree = work / "pkg"
    subprocess.run(["dpkg-deb", "-x", str(next(debs.glob("*.deb"))), str(tree)], check=True)
    html = [p for p in tree.rglob("*") if p.suffix in (".html", ".htm") and p.is_file()]
    root = Path(os.path.commonpath([p.parent for p in html]))
    config = work / "steep.yaml"
    config.write_text(f"name: real\nruns_dir: runs\ningest: {{inputs: [{root}]}}\n")
    result = run_ingest(config)
    summary = result["summary"]
    chunks_path = next(work.glob("runs/*/ingest/chunks.jsonl"))
    chunks = [json.loads(line) for line in chunks_path.read_text().splitlines()]
    rng = random.Random(0)
    sample = [{k: c[k] for k in ("source", "section", "start", "end", "n_tokens")} | {"text": c["text"][:160]} for c in rng.sample(chunks, 3)]
    megabytes = sum(p.stat().st_size for p in html) / 1e6
    print(f"{package}: {len(html)} HTML files, {megabytes:.1f} MB -> {summary['chunks']} chunks, {summary['tokens']} tokens "
          f"in {result['seconds']:.0f} s (peak RSS {result['peak_rss_mb']} MB)")
    print(json.dumps(summary, indent=1))
    for s in sample:
        print(json.dumps(s, ensure_ascii=False))
    return {"package": package, "html_files": len(html), "megabytes": round(megabytes, 1), **result, "sample": sample}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=1000)
    parser.add_argument("--package", default="postgresql-doc-15", help="Debian documentation package for the real-material run")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder, removed)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="steep-ingest-bench-"))
    try:
        if not args.skip_synthetic:
            save("ingest_synthetic", synthetic(work / "synthetic", args.size_mb))
        if not args.skip_real:
            save("ingest_real", real(work / "real", args.package))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def save(name: str, results: dict) -> None:
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
