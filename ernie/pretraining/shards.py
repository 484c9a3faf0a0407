"""Pre-training documents in memory and in memory-mapped shards.

A document is a list of sentences; a sentence is its token ids and one byte of marks per token:

    WORD_START   first token of a word (gold segmentation, jieba, or an English word)
    UNIT_START   first token of a knowledge unit: a lexicon entity/phrase, else a word
    CAPITALIZED  the token's word began with a capital letter (taken before lower-casing)
    KNOWLEDGE    the token is inside a lexicon entity/phrase

A shard directory (written by ``ernie.pretraining.preprocess``) holds ``index.json`` and, per
shard ``shard-NNNNN``, four ``.npy`` files:

    <shard>.tokens.npy      int32 [T]     all token ids of the shard, sentence after sentence
    <shard>.marks.npy       uint8 [T]     the marks above
    <shard>.sents.npy       int64 [S+1]   token offset of each sentence (+ the end)
    <shard>.docs.npy        int64 [D+1]   sentence offset of each document (+ the end)

They are opened with ``np.load(mmap_mode="r")``, so a corpus larger than RAM is read from
the page cache on demand; a ``Document`` holds views, not copies.
"""
import json
import os
from typing import List, NamedTuple

import numpy as np

WORD_START, UNIT_START, CAPITALIZED, KNOWLEDGE = 1, 2, 4, 8
INDEX_FILE = "index.json"
SHARD_FILES = ("tokens", "marks", "sents", "docs")


class Sentence(NamedTuple):
    ids: np.ndarray    # token ids
    marks: np.ndarray  # uint8 marks, one per token


class Document:
    """A list of Sentences plus its index in the corpus (tasks use it to pick *another* document)."""

    __slots__ = ("sentences", "index")

    def __init__(self, sentences: List[Sentence], index: int = -1):
        self.sentences, self.index = sentences, index

    def __len__(self):
        return len(self.sentences)

    def __getitem__(self, i):
        return self.sentences[i]

    def __iter__(self):
        return iter(self.sentences)

    @property
    def num_tokens(self):
        return sum(len(s.ids) for s in self.sentences)


def partition(n, rank=0, world=1, worker=0, num_workers=1):
    """Indices of ``range(n)`` owned by one DataLoader worker of one Fleet rank.

    The W*K (rank, worker) pairs take interleaved slices, so they are disjoint and together
    cover every index exactly once."""
    parts = max(1, world) * max(1, num_workers)
    return range(rank * max(1, num_workers) + worker, n, parts)


class MemoryCorpus:
    """Documents held in a list: for tests and small corpora."""

    def __init__(self, documents):
        self.docs = [d if isinstance(d, Document) else Document(list(d)) for d in documents]
        for i, d in enumerate(self.docs):
            d.index = i

    def __len__(self):
        return len(self.docs)

    def __getitem__(self, i):
        return self.docs[i]


class ShardCorpus:
    """Random access to the documents of a shard directory, memory-mapped."""

    def __init__(self, path):
        self.path = path
        index_path = os.path.join(path, INDEX_FILE)
        if not os.path.exists(index_path):
            raise FileNotFoundError(f"{path}: no {INDEX_FILE}; build shards with "
                                    f"python -m ernie.pretraining.preprocess --corpus ... --out {path}")
        with open(index_path, encoding="utf-8") as f:
            self.index = json.load(f)
        self._shards = []
        starts = [0]
        for sh in self.index["shards"]:
            starts.append(starts[-1] + sh["docs"])
            self._shards.append(None)  # opened lazily: a worker touches only what it reads
        self._starts = np.array(starts, dtype="int64")

    def __len__(self):
        return int(self._starts[-1])

    @property
    def vocab_size(self):
        return self.index.get("vocab_size")

    def _open(self, k):
        arrays = self._shards[k]
        if arrays is None:
            name = self.index["shards"][k]["name"]
            arrays = self._shards[k] = tuple(
                np.load(os.path.join(self.path, f"{name}.{kind}.npy"), mmap_mode="r") for kind in SHARD_FILES)
        return arrays

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"document {i} out of range (corpus has {len(self)})")
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        tokens, marks, sents, docs = self._open(k)
        local = i - int(self._starts[k])
        s0, s1 = int(docs[local]), int(docs[local + 1])
        offs = sents[s0:s1 + 1]
        return Document([Sentence(tokens[offs[j]:offs[j + 1]], marks[offs[j]:offs[j + 1]])
                         for j in range(s1 - s0)], index=i)

    def token_counts(self, size=None):
        """How often each token id occurs in the corpus (one bincount per shard)."""
        size = int(size or self.vocab_size or 0)
        counts = np.zeros(size, dtype="int64")
        for k in range(len(self._shards)):
            c = np.bincount(np.asarray(self._open(k)[0]), minlength=size)
            counts += c[:size]
        return counts

    def documents(self, rank=0, world=1, worker=0, num_workers=1):
        """Stream this (rank, worker)'s share of the documents in corpus order."""
        for i in partition(len(self), rank, world, worker, num_workers):
            yield self[i]


def write_shard(out_dir, name, documents):
    """Write documents (lists of Sentences) as one shard; returns its index entry."""
    lens = [len(s.ids) for d in documents for s in d]
    sents = np.zeros(len(lens) + 1, dtype="int64")
    np.cumsum(lens, out=sents[1:])
    docs = np.zeros(len(documents) + 1, dtype="int64")
    np.cumsum([len(d) for d in documents], out=docs[1:])
    tokens = np.concatenate([np.asarray(s.ids, "int32") for d in documents for s in d]) if lens \
        else np.zeros(0, "int32")
    marks = np.concatenate([np.asarray(s.marks, "uint8") for d in documents for s in d]) if lens \
        else np.zeros(0, "uint8")
    for kind, arr in zip(SHARD_FILES, (tokens, marks, sents, docs)):
        np.save(os.path.join(out_dir, f"{name}.{kind}.npy"), arr)
    return {"name": name, "docs": len(documents), "sentences": len(lens), "tokens": int(sents[-1])}
