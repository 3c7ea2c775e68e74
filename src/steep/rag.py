"""Answering with retrieved context: the prompt, the citations in the answer and their check, and
the oracle chunk of a question (the upper bound: the right context, given)."""

from __future__ import annotations

import re

from .retrieval import cite_id
from .scoring import normalize

RAG_PROMPT = (
    "Answer the question using only the context below, then give the id of the passage you used, in square "
    "brackets as it stands before the passage. If the context does not contain the answer, say that you do not know.\n\n"
    "Context:\n{context}\n\nQuestion: {question}"
)
CITATION = re.compile(r"\[([^\[\]\n]+?:\d+-\d+)\]")


def rag_prompt(question: str, chunks: list[dict]) -> str:
    context = "\n\n".join(f"[{cite_id(c)}] {c['text']}" for c in chunks)
    return RAG_PROMPT.format(context=context, question=question)


def citations(answer: str) -> list[str]:
    """The passage ids an answer cites, in order, without repeats."""
    return list(dict.fromkeys(CITATION.findall(answer)))


def check_citations(answer: str, given: list[dict]) -> dict:
    """Which cited ids were actually in the prompt: a citation to anything else is made up."""
    cited = citations(answer)
    allowed = {cite_id(c) for c in given}
    return {"citations": cited, "invalid_citations": [c for c in cited if c not in allowed]}


class Oracle:
    """Finds the chunk that answers a question: one containing its `evidence` text when the
    question gives one, else one containing a gold answer; among several, the one retrieval ranks
    best. None when no chunk holds the answer."""

    def __init__(self, chunks: list[dict]):
        self.chunks = chunks
        self.texts = [f" {normalize(c['text'])} " for c in chunks]  # once, not once per question

    def find(self, question: dict, ranked: list[dict]) -> dict | None:
        wanted = [question["evidence"]] if question.get("evidence") else question["answers"]
        needles = [f" {normalize(a)} " for a in wanted if normalize(a)]
        holding = [c for c, text in zip(self.chunks, self.texts) if any(n in text for n in needles)]
        rank = {c["id"]: i for i, c in enumerate(ranked)}
        return min(holding, key=lambda c: rank.get(c["id"], len(rank)), default=None)
