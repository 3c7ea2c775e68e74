"""Duplicate removal across the corpus: exact duplicate chunks by a hash of their normalized text,
near-duplicate documents by MinHash LSH (datasketch) over word 5-gram shingles."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import mmh3
import numpy as np
from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
SCHEME = "affine32"  # named, because signatures are stored and compared across runs
SHINGLE_WORDS = 5
BATCH = 20_000  # shingles per update: datasketch holds a (NUM_PERM x batch) array while hashing


def exact_key(text: str) -> str:
    """Same key for texts that differ only in case and spacing."""
    return hashlib.blake2b(" ".join(text.lower().split()).encode(), digest_size=10).hexdigest()


def _hash32(data: bytes) -> int:
    return mmh3.hash(data, signed=False)  # several times faster than datasketch's default sha1


class Signature:
    """The MinHash of one document, fed text piece by piece so a large file never needs to be
    held whole. Shingles do not cross piece boundaries, which costs a few shingles per piece."""

    def __init__(self) -> None:
        self.minhash = MinHash(num_perm=NUM_PERM, hashfunc=_hash32, scheme=SCHEME)
        self.empty = True

    def update(self, text: str) -> None:
        words = text.lower().split()
        shingles = [" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(max(1, len(words) - SHINGLE_WORDS + 1))]
        for start in range(0, len(shingles), BATCH):
            self.minhash.update_batch(shingles[start : start + BATCH])
        self.empty = self.empty and not words

    def values(self) -> list[int]:
        return self.minhash.hashvalues.tolist()


class NearDuplicates:
    """Documents whose estimated Jaccard similarity to an earlier document reaches `threshold`.
    Memory grows by about 4 KB per document (the LSH band tables; measured over 50,000
    documents), not with document size."""

    def __init__(self, threshold: float):
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)

    def earlier(self, name: str, values: Iterable[int]) -> str | None:
        """The name of an earlier near-duplicate of this document; None (and the document is
        indexed under `name`) if there is none."""
        minhash = MinHash(num_perm=NUM_PERM, hashvalues=np.asarray(list(values), dtype=np.uint32), scheme=SCHEME)
        matches = self.lsh.query(minhash)
        if matches:
            return min(matches)
        self.lsh.insert(name, minhash)
        return None
