"""Feature columns: turn TSV lines into tuples of numpy fields, one field per column.

    fc = FeatureColumns([TextColumn('text_a', unk_id=1, vocab_dict=vocab, tokenizer=tok.tokenize),
                         LabelColumn('label', vocab_dict={'neg': 0, 'pos': 1})])
    train = fc.build_dataset('train', data_dir='data/chnsenticorp/train', shuffle=True, repeat=True)
    for text_ids, label in train: ...   # int64 array [seqlen], int64 scalar

Every file of ``data_dir`` is read (sorted by name, hidden files skipped); columns are
tab-separated in column order. A bad line (wrong column count, unknown label or token,
empty text, a non-number where a number is due) raises ``BadLineError`` naming file and line,
or with ``on_bad_line='skip'`` is skipped, counted in ``ds.bad_lines`` and logged.
"""
import logging
import os
import re

import numpy as np

from propeller.data.dataset import Dataset, has_undecodable

__all__ = [
    "Column",
    "TextColumn",
    "TextIDColumn",
    "LabelColumn",
    "FeatureColumns",
    "BadLineError",
    "BadLineStats",
    "read_vocab",
]

log = logging.getLogger("propeller")


class BadLineError(ValueError):
    """A data line that cannot be turned into an example; the message has ``file:line: why``."""


class _BadValue(ValueError):
    pass


def read_vocab(path):
    """``{token: id}`` from a vocab file: ``token<TAB>id`` lines (ERNIE 1.0) or one token a line."""
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1].strip().lstrip("-").isdigit():
                vocab[parts[0]] = int(parts[1])
            else:
                vocab[parts[0]] = i
    return vocab


class Column:
    """One TSV column; ``raw_to_instance(text)`` returns its numpy value or raises ValueError."""

    def __init__(self, name):
        self.name = name

    def raw_to_instance(self, raw):
        raise NotImplementedError


class TextColumn(Column):
    """Text -> int64 token ids through ``tokenizer`` and ``vocab_dict``.

    ``tokenizer`` is a callable ``str -> list[str]`` or an object with ``.tokenize``; the
    default splits on whitespace. Tokens missing from the vocabulary map to ``unk_id``, or
    make the line bad when ``unk_id`` is None.
    """

    def __init__(self, name, unk_id=None, vocab_dict=None, tokenizer=None, vocab_file=None):
        super().__init__(name)
        if vocab_dict is None and vocab_file is None:
            raise ValueError("TextColumn %r needs vocab_dict or vocab_file" % name)
        self.vocab = dict(vocab_dict) if vocab_dict is not None else read_vocab(vocab_file)
        self.unk_id = unk_id
        if tokenizer is None:
            tokenizer = str.split
        elif hasattr(tokenizer, "tokenize"):
            tokenizer = tokenizer.tokenize
        self.tokenizer = tokenizer

    def raw_to_instance(self, raw):
        if not raw.strip():
            raise _BadValue("empty text in column %r" % self.name)
        tokens = self.tokenizer(raw)
        if not tokens:
            raise _BadValue("no tokens in column %r" % self.name)
        if self.unk_id is None:
            missing = [t for t in tokens if t not in self.vocab]
            if missing:
                raise _BadValue("token %r of column %r not in the vocabulary (and no unk_id)" % (missing[0], self.name))
            return np.array([self.vocab[t] for t in tokens], dtype=np.int64)
        get, unk = self.vocab.get, self.unk_id
        return np.array([get(t, unk) for t in tokens], dtype=np.int64)


class TextIDColumn(Column):
    """Space-separated integer ids -> int64 array."""

    def raw_to_instance(self, raw):
        parts = raw.split()
        if not parts:
            raise _BadValue("empty id list in column %r" % self.name)
        try:
            return np.array([int(p) for p in parts], dtype=np.int64)
        except ValueError:
            raise _BadValue("non-integer id in column %r: %r" % (self.name, _clip(raw))) from None


class LabelColumn(Column):
    """A label -> scalar: the id from ``vocab_dict``, else the number itself (``dtype`` int64/float32)."""

    def __init__(self, name, vocab_dict=None, dtype="int64"):
        super().__init__(name)
        self.vocab = dict(vocab_dict) if vocab_dict is not None else None
        self.dtype = np.dtype(dtype)

    def raw_to_instance(self, raw):
        raw = raw.strip()
        if not raw:
            raise _BadValue("empty label in column %r" % self.name)
        if self.vocab is not None:
            if raw not in self.vocab:
                known = ", ".join(sorted(map(str, self.vocab))[:10])
                raise _BadValue("unknown label %r in column %r (known: %s)" % (_clip(raw), self.name, known))
            return self.dtype.type(self.vocab[raw])
        try:
            value = float(raw) if self.dtype.kind == "f" else int(raw)
        except ValueError:
            raise _BadValue("label %r of column %r is not a %s" % (_clip(raw), self.name, self.dtype.name)) from None
        return self.dtype.type(value)


def _clip(s, n=40):
    return s if len(s) <= n else s[:n] + "..."


class BadLineStats:
    """Skipped bad lines of one dataset: ``count`` and the first few ``samples`` (file, line, why).

    Counted in the process that parses; inside DataLoader workers it is the worker's copy, so
    rely on the log there (each of the first lines, then at 100, 1000, ... and at the end).
    """

    MAX_SAMPLES = 10

    def __init__(self, name):
        self.name = name
        self.count = 0
        self.samples = []

    def add(self, path, lineno, why):
        self.count += 1
        if len(self.samples) < self.MAX_SAMPLES:
            self.samples.append((path, lineno, why))
            log.warning("[%s] skipping bad line %s:%d: %s", self.name, path, lineno, why)
        elif self.count in (100, 1000, 10000, 100000) or self.count % 1000000 == 0:
            log.warning("[%s] %d bad lines skipped so far", self.name, self.count)

    def __repr__(self):
        return "BadLineStats(%r, count=%d)" % (self.name, self.count)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*$")


class FeatureColumns:
    """An ordered list of columns; builds datasets of tuples in column order."""

    def __init__(self, columns):
        self.columns = list(columns)
        if not self.columns:
            raise ValueError("FeatureColumns needs at least one column")
        self.names = [c.name for c in self.columns]

    def parse_line(self, line):
        """One TSV line -> tuple of fields; ValueError says why not."""
        return self._parse_fields(line.split("\t"))

    def _parse_fields(self, fields):
        if len(fields) != len(self.columns):
            raise _BadValue(
                "expected %d tab-separated columns (%s), got %d"
                % (len(self.columns), ", ".join(self.names), len(fields))
            )
        return tuple(c.raw_to_instance(f) for c, f in zip(self.columns, fields))

    def _is_header(self, fields, header):
        if header is True:
            return True
        if header is False:
            return False
        # 'auto': the column names themselves, or an unparsable line of identifier-like words
        # (e.g. "text_a<TAB>label" above "...<TAB>1").
        if [f.strip().lower() for f in fields] == [n.lower() for n in self.names]:
            return True
        if not all(_IDENT.match(f.strip()) for f in fields):
            return False
        try:
            self._parse_fields(fields)
        except ValueError:
            return True
        return False

    def _parsed(self, lines, name, on_bad_line, header, skip_blank):
        """Dataset of parsed tuples from a Dataset of (path, lineno, text)."""
        if on_bad_line not in ("error", "skip"):
            raise ValueError("on_bad_line must be 'error' or 'skip', got %r" % (on_bad_line,))
        if header not in (True, False, "auto"):
            raise ValueError("header must be True, False or 'auto', got %r" % (header,))
        stats = BadLineStats(name)

        def gen(ctx):
            skipped_before = stats.count
            for path, lineno, text in lines._iter(ctx):
                if skip_blank and not text.strip():
                    continue
                if has_undecodable(text):
                    if on_bad_line == "error":
                        raise BadLineError("%s:%d: not valid UTF-8 (use on_bad_line='skip' to skip such lines)"
                                           % (path, lineno))
                    stats.add(path, lineno, "not valid UTF-8")
                    continue
                fields = text.split("\t")
                if lineno == 1 and self._is_header(fields, header):
                    log.info("[%s] %s:1 taken as a header: %r", name, path, _clip(text, 80))
                    continue
                try:
                    yield self._parse_fields(fields)
                except ValueError as e:
                    if on_bad_line == "error":
                        raise BadLineError("%s:%d: %s" % (path, lineno, e)) from None
                    stats.add(path, lineno, str(e))
            if on_bad_line == "skip":  # a total at the end of every pass, 0 included
                (log.warning if stats.count > skipped_before else log.info)(
                    "[%s] pass finished; %d bad lines skipped", name, stats.count - skipped_before)

        ds = lines._derive(gen, "parse_columns")
        ds.name = name
        ds.bad_lines = stats
        return ds

    def build_dataset(
        self,
        name,
        data_dir=None,
        data_file=None,
        shuffle=False,
        repeat=False,
        use_gz=None,
        on_bad_line="error",
        header="auto",
        shuffle_buffer=10000,
        seed=None,
        skip_blank=True,
        encoding="utf-8",
    ):
        """Examples from every file in ``data_dir`` (or the file(s) ``data_file``).

        ``data_dir`` is the split's directory (``<task>/train``); given the task root that has
        no files of its own, its subdirectory ``name`` is used.

        ``shuffle`` shuffles the file order and the examples (buffer ``shuffle_buffer``) anew
        each pass; ``repeat`` (True or a count) repeats the files. ``use_gz`` None detects gzip.
        ``header``: 'auto' skips a first line that names the columns or is an unparsable line of
        words. Lines are split among DataLoader workers before parsing (``worker_shard``).
        Blank lines are ignored when ``skip_blank``.
        """
        files = self._list_files(name, data_dir, data_file)
        shown = ", ".join(files[:5]) + (" ..." if len(files) > 5 else "")
        log.info("[%s] reading %d file(s): %s", name, len(files), shown)
        file_ds = Dataset.from_list(files)
        if shuffle:
            file_ds = file_ds.shuffle(len(files), seed=seed)

        def numbered_lines(path):
            for lineno, text in enumerate(Dataset.from_file(path, use_gz=use_gz, encoding=encoding), 1):
                yield path, lineno, text

        lines = file_ds.flat_map(numbered_lines)
        if shuffle:
            lines = lines.shuffle(shuffle_buffer, seed=None if seed is None else seed + 1)
        if repeat:
            lines = lines.repeat(-1 if repeat is True else int(repeat))
        return self._parsed(lines.worker_shard(), name, on_bad_line, header, skip_blank)

    def build_dataset_from_stdin(self, name, on_bad_line="error", header=False, skip_blank=False):
        """Examples from stdin lines (for ``--do_predict``): one pass, in order, in-process.

        Blank lines count as bad by default so predictions stay aligned with input lines.
        """
        src = Dataset.from_stdin(name=name)
        lines = src._derive(lambda ctx: (("<stdin>", i, t) for i, t in enumerate(src._iter(ctx), 1)), "number_lines")
        return self._parsed(lines, name, on_bad_line, header, skip_blank)

    @staticmethod
    def _list_files(name, data_dir, data_file):
        if (data_dir is None) == (data_file is None):
            raise ValueError("build_dataset(%r): give exactly one of data_dir and data_file" % name)
        if data_file is not None:
            files = [data_file] if isinstance(data_file, str) else list(data_file)
        else:
            if not os.path.isdir(data_dir):
                raise FileNotFoundError("build_dataset(%r): data_dir %r is not a directory" % (name, data_dir))

            def data_files(d):
                return [
                    os.path.join(d, f)
                    for f in sorted(os.listdir(d))
                    if not f.startswith(".") and os.path.isfile(os.path.join(d, f))
                ]

            files = data_files(data_dir)
            if not files and os.path.isdir(os.path.join(data_dir, name)):
                # Given the task root (with train/ dev/ test/) rather than the split dir.
                files = data_files(os.path.join(data_dir, name))
            if not files:
                raise FileNotFoundError("build_dataset(%r): no data files in %r" % (name, data_dir))
        for f in files:
            if not os.path.isfile(f):
                raise FileNotFoundError("build_dataset(%r): no such file %r" % (name, f))
        return files
