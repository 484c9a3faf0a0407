"""Reading fine-tuning data: split files, TSV columns by header name, the bad-line policy,
label maps and batching.

A split is ``data_dir/<split>/`` (every non-hidden file in it, sorted) or the single file
``data_dir/<split>.tsv`` (``.json`` for MRC), so both the original ERNIE task layout and the
demo sets (``sentiment/train.tsv``) work.

TSV files may start with a header naming the columns (``label<TAB>text_a`` in the original
ChnSentiCorp files, ``qid<TAB>label<TAB>text_a`` in some dev sets); then columns are read by
name, so any order works and unknown columns are ignored. Without a header the columns are
positional, their number fixed by the file's first data line (see each task's ``layouts``).
"""
import json
import logging
import os
import re

import numpy as np

from propeller.data import BadLineError

log = logging.getLogger("ernie.finetune")

__all__ = ["BadLineError", "BadLines", "Columns", "split_files", "decode_line", "read_tsv", "read_text",
           "read_label_map", "pad_batch", "token_batches", "KNOWN_COLUMNS"]

KNOWN_COLUMNS = ("qid", "text_a", "text_b", "label")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BadLines:
    """What to do with a line that cannot become an example.

    ``policy='error'`` raises :class:`BadLineError` (``file:line: why``); ``'skip'`` counts it
    (``count``), logs the first few and keeps going."""

    SHOWN = 10

    def __init__(self, policy="error", name="data"):
        if policy not in ("error", "skip"):
            raise ValueError(f"on_bad_line must be 'error' or 'skip', got {policy!r}")
        self.policy, self.name, self.count = policy, name, 0

    def __call__(self, path, lineno, why):
        where = f"{path}:{lineno}" if lineno else str(path)
        if self.policy == "error":
            raise BadLineError(f"{where}: {why} (use --on_bad_line skip to skip such lines)")
        self.count += 1
        if self.count <= self.SHOWN:
            log.warning("[%s] skipping bad line %s: %s", self.name, where, why)

    def report(self):
        """Log the total of a skip mode run (also when it is 0, so a clean run says so)."""
        if self.policy == "skip":
            (log.warning if self.count else log.info)("[%s] %d bad line(s) skipped in total", self.name, self.count)


def decode_line(raw):
    """A line's text; ValueError (a bad line, like any other) naming the first undecodable byte.
    Data is decoded line by line so one bad byte costs one line, with its file and number."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not valid UTF-8 (byte {raw[e.start:e.start + 1]!r} at column {e.start + 1})") from None


def read_text(path, raw=None):
    """A whole file's text (JSON data; ``raw``: its bytes or text, already read); BadLineError
    naming the file and line of undecodable bytes."""
    if raw is None:
        with open(path, "rb") as f:
            raw = f.read()
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BadLineError(f"{path}:{line}: not valid UTF-8 (byte {raw[e.start:e.start + 1]!r})") from None


def split_files(data_dir, split, exts=(".tsv",)):
    """The files of one split, or [] when the split is absent."""
    d = os.path.join(data_dir, split)
    if os.path.isdir(d):
        files = [os.path.join(d, f) for f in sorted(os.listdir(d))
                 if not f.startswith(".") and os.path.isfile(os.path.join(d, f))]
        if not files:
            raise FileNotFoundError(f"{d}: the {split} directory holds no data files")
        return files
    for ext in exts:
        if os.path.isfile(d + ext):
            return [d + ext]
    return []


def _is_header(fields):
    names = [f.strip().lower() for f in fields]
    return "text_a" in names and all(_IDENT.match(n) for n in names)


class HeaderError(ValueError):
    """A header that lacks a column the task needs: the whole file is unusable."""


class Columns:
    """The column names of one TSV source: from its header line, else positional.

    ``layouts`` maps a column count to the names used without a header; the first data line
    fixes the source's layout, and later lines must have as many columns."""

    def __init__(self, layouts, required=("text_a",)):
        self.layouts, self.required, self.names = layouts, tuple(required), None

    def is_header(self, fields):
        """True (and the names are taken) when ``fields`` is the source's header line."""
        if self.names is not None or not _is_header(fields):
            return False
        names = [x.strip().lower() for x in fields]
        missing = [c for c in self.required if c not in names]
        if missing:
            raise HeaderError(f"the header {fields} has no column {missing[0]!r} (needs {', '.join(self.required)})")
        self.names = names
        return True

    def parse(self, fields):
        """``{column: text}`` for one data line; ValueError says why not."""
        if self.names is None:
            if len(fields) not in self.layouts:
                options = " or ".join(f"{n} ({', '.join(c)})" for n, c in sorted(self.layouts.items()))
                raise ValueError(f"expected {options} tab-separated columns, got {len(fields)}")
            self.names = list(self.layouts[len(fields)])
        if len(fields) != len(self.names):
            raise ValueError(f"expected {len(self.names)} tab-separated columns ({', '.join(self.names)}), "
                             f"got {len(fields)}")
        return dict(zip(self.names, fields))


def read_tsv(files, layouts, bad, required=("text_a",)):
    """Yield ``(path, lineno, {column: text})`` for each data line of ``files`` (blank lines
    are ignored; a bad line goes to ``bad``)."""
    for path in files:
        cols = Columns(layouts, required)
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = decode_line(raw)
                except ValueError as e:
                    bad(path, lineno, str(e))
                    continue
                line = line.rstrip("\n").rstrip("\r")
                if not line.strip():
                    continue
                fields = line.split("\t")
                try:
                    if cols.is_header(fields):
                        log.info("%s: header %s, columns read by name", path, cols.names)
                        continue
                    rec = cols.parse(fields)
                except HeaderError as e:
                    raise BadLineError(f"{path}:{lineno}: {e}") from None
                except ValueError as e:
                    bad(path, lineno, str(e))
                    continue
                yield path, lineno, rec


def read_label_map(path):
    """``{label: id}`` from a JSON object, ``label<TAB>id`` lines, or one label a line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        m = json.loads(text)
        return {str(k): int(v) for k, v in m.items()}
    m = {}
    for i, line in enumerate(l for l in text.splitlines() if l.strip()):
        parts = line.split("\t")
        m[parts[0].strip()] = int(parts[1]) if len(parts) > 1 else i
    return m


def pad_batch(examples, pad_values):
    """Stack examples (tuples of arrays/scalars) into one array per field, padding ragged
    fields to the longest with that field's pad value."""
    out = []
    for i, pad in enumerate(pad_values):
        col = [np.asarray(e[i]) for e in examples]
        if col[0].ndim == 0:
            out.append(np.stack(col))
            continue
        n = max(len(c) for c in col)
        arr = np.full((len(col), n), pad, dtype=col[0].dtype)
        for r, c in enumerate(col):
            arr[r, :len(c)] = c
        out.append(arr)
    return tuple(out)


def token_batches(examples, max_tokens, pad_values):
    """Batches holding at most ``max_tokens`` padded tokens (the original ``in_tokens`` mode:
    XNLI's 8192-token batches), in stream order."""
    buf, longest = [], 0
    for e in examples:
        n = len(e[0])
        if buf and max(longest, n) * (len(buf) + 1) > max_tokens:
            yield pad_batch(buf, pad_values)
            buf, longest = [], 0
        buf.append(e)
        longest = max(longest, n)
    if buf:
        yield pad_batch(buf, pad_values)
