"""ERNIE 1.0's id format as a corpus of the one pre-training engine.

Id format (gzip or text, one example a line, ids space-separated):
    token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label
seg_labels: 0 = unit (word) start, 1 = inside a unit, -1 = [CLS]/[SEP]. Each line is a finished
``[CLS] A [SEP] B [SEP]`` pair whose next-sentence label is known, so there are no documents to
build examples from: the knowledge-masking and next-sentence tasks read the rows themselves
(``PretrainTask.file_rows``). A filelist line is ``path<TAB>mask_word_prob``: that file's rows
are masked a whole word at a time with that probability, else character by character.
"""
import gzip
import logging
import os
import zlib
from typing import NamedTuple

import numpy as np

log = logging.getLogger("ernie")

__all__ = ["IdRow", "IdCorpus", "parse_id_line", "read_id_file", "read_filelist"]


class IdRow(NamedTuple):
    token_ids: np.ndarray       # int64 [n]
    type_ids: np.ndarray        # int64 [n]
    seg_labels: np.ndarray      # int64 [n]
    nsp_label: int
    mask_word_prob: float       # of the file the row came from


def parse_id_line(line, path="<string>", lineno=0):
    """``(token_ids, type_ids, seg_labels, nsp_label)`` of one line; ValueError naming file:line."""
    fields = line.rstrip("\n").split(";")
    if len(fields) != 5:
        raise ValueError(f"{path}:{lineno}: expected 5 ';'-separated fields "
                         f"(token_ids;sentence_type_ids;position_ids;seg_labels;next_sentence_label), got {len(fields)}")
    try:
        cols = [np.array(f.split(), dtype="int64") for f in fields[:4]]
        nsp = int(fields[4])
    except ValueError as e:
        raise ValueError(f"{path}:{lineno}: non-integer id ({e})") from None
    if not (len(cols[0]) == len(cols[1]) == len(cols[2]) == len(cols[3])) or len(cols[0]) == 0:
        raise ValueError(f"{path}:{lineno}: token_ids, sentence_type_ids, position_ids and seg_labels "
                         f"must have the same non-zero length, got {[len(c) for c in cols]}")
    # the engine numbers positions 0..n-1, as every line of the original data does
    if not np.array_equal(cols[2], np.arange(len(cols[2]))):
        raise ValueError(f"{path}:{lineno}: position_ids must be 0..{len(cols[2]) - 1}")
    return cols[0], cols[1], cols[3], nsp


SHOWN_BAD_LINES = 10  # skipped lines logged one by one; the rest only in the total


def read_id_file(path, on_bad_line="error", stats=None):
    """Yield ``(token_ids, type_ids, seg_labels, nsp_label)`` of one id-format file (``.gz`` or
    text). on_bad_line: 'error' raises, 'skip' skips it, counted in ``stats['bad_lines']``.
    Lines are decoded one by one: undecodable bytes make a bad line like any other."""
    opener = gzip.open if path.endswith(".gz") else open
    stats = stats if stats is not None else {}
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise ValueError(f"{path}:{lineno}: not valid UTF-8 (byte "
                                         f"{raw[e.start:e.start + 1]!r} at column {e.start + 1})") from None
                    if not line.strip():
                        continue
                    row = parse_id_line(line, path, lineno)
                except ValueError as e:
                    if on_bad_line != "skip":
                        raise
                    stats["bad_lines"] = stats.get("bad_lines", 0) + 1
                    if stats["bad_lines"] <= SHOWN_BAD_LINES:
                        log.warning("skipped: %s", e)
                    continue
                yield row
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # a truncated or damaged .gz
        raise ValueError(f"{path}: damaged gzip file ({type(e).__name__}: {e})") from None


def read_filelist(path):
    """[(data_path, mask_word_prob)] from a filelist; relative paths resolve against its dir."""
    out = []
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                prob = float(parts[1]) if len(parts) > 1 else 0.0
            except ValueError:
                raise ValueError(f"{path}:{lineno}: expected 'path<TAB>mask_word_prob', got {line.strip()!r}") from None
            p = parts[0] if os.path.isabs(parts[0]) else os.path.join(base, parts[0])
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{path}:{lineno}: no such file {p}")
            out.append((p, prob))
    if not out:
        raise ValueError(f"{path}: the filelist names no files")
    return out


class IdCorpus:
    """The rows of every file of a filelist, each with its file's ``mask_word_prob``, in memory.

    Rows longer than ``max_seqlen`` (when given) are skipped and counted, as are malformed lines
    (``on_bad_line="skip"``, the default: a corpus of millions of lines should not stop at one).
    ``index`` identifies the data (files, sizes, probabilities) for the stream's fingerprint."""

    def __init__(self, filelist, max_seqlen=None, on_bad_line="skip"):
        self.filelist = os.path.abspath(filelist)
        self.rows, stats, too_long = [], {}, 0
        files = read_filelist(filelist)
        for path, prob in files:
            for ids, types, seg, nsp in read_id_file(path, on_bad_line, stats):
                if max_seqlen and len(ids) > max_seqlen:
                    too_long += 1
                    continue
                self.rows.append(IdRow(ids, types, seg, nsp, prob))
        if too_long:
            log.warning("%s: %d rows longer than max_seqlen %d skipped", filelist, too_long, max_seqlen)
        if on_bad_line == "skip":  # the total, 0 included: the per-line log stops after a few
            (log.warning if stats.get("bad_lines") else log.info)(
                "%s: %d malformed lines skipped in total", filelist, stats.get("bad_lines", 0))
        if not self.rows:
            raise ValueError(f"{filelist}: no usable rows")
        self.index = {"id_files": [[p, prob, os.path.getsize(p)] for p, prob in files],
                      "num_sentences": len(self.rows), "num_tokens": int(sum(len(r.token_ids) for r in self.rows)),
                      "vocab_size": None}
        log.info("%s: %d rows from %d files", filelist, len(self.rows), len(files))

    def __len__(self):
        return len(self.rows)

    def token_counts(self, size):
        """How often each token id occurs in the rows."""
        ids = np.concatenate([r.token_ids for r in self.rows])
        return np.bincount(ids[(ids >= 0) & (ids < size)], minlength=size)[:size]

    def check_ids(self, vocab_size, type_vocab_size):
        """Drop (and count, with a warning) rows whose ids fall outside the model's tables: an id
        past the embedding table would fail the run at some step far into it."""
        ok = [r for r in self.rows if int(r.token_ids.min()) >= 0 and int(r.token_ids.max()) < vocab_size
              and int(r.type_ids.min()) >= 0 and int(r.type_ids.max()) < type_vocab_size]
        if len(ok) < len(self.rows):
            log.warning("%s: %d rows with token ids outside [0, %d) or sentence types outside [0, %d) skipped",
                        self.filelist, len(self.rows) - len(ok), vocab_size, type_vocab_size)
        if not ok:
            raise ValueError(f"{self.filelist}: no row fits the model's vocab_size {vocab_size} and "
                             f"type_vocab_size {type_vocab_size}")
        self.rows = ok

    @property
    def vocab_size(self):
        return None  # the ids are already made: the model config says how many there are
