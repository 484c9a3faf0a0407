"""Text -> pre-training Sentences: word segmentation, knowledge units, token ids and marks.

Segmentation of a line:
  * words separated by spaces are taken as the gold segmentation (the People's Daily corpus,
    English text);
  * a line without spaces is cut with jieba, after the lexicon entities/phrases in it have been
    cut out first (forward maximum matching), so a lexicon entity is always one word and jieba
    never splits it.
Knowledge units: runs of consecutive words whose concatenation is a lexicon entry (longest
first) become one unit (``UNIT_START`` on its first token, ``KNOWLEDGE`` on all of them); every
other word is a unit by itself. English words keep their capitalisation in ``CAPITALIZED``,
read before the tokenizer lower-cases them.

Nothing here imports paddle: the preprocessing workers stay light.
"""
import logging
import re
import unicodedata

from ernie.pretraining.shards import CAPITALIZED, KNOWLEDGE, UNIT_START, WORD_START, Sentence

import numpy as np

__all__ = ["Lexicon", "SentenceEncoder", "split_sentences", "MalformedLine", "load_tokenizer"]

# One document a line: sentences end after 。！？!? (closing quotes/brackets stay with them).
_SENT_RE = re.compile(r"[^。！？!?]+(?:[。！？!?]+[”’」』）)\"']*)?|[。！？!?]+[”’」』）)\"']*")


# A word of CJK ideographs only (basic plane and extension A, compatibility ideographs excluded:
# normalisation may change those).
_CJK_WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")

# Control characters other than tab: binary junk or a broken encoding, never text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def split_sentences(line):
    return [s.strip() for s in _SENT_RE.findall(line) if s.strip()]


class MalformedLine(ValueError):
    """A line that cannot be used; the caller reports it with file and line and goes on."""


def _is_punct(piece):
    return len(piece) == 1 and (unicodedata.category(piece).startswith("P") or
                                (piece.isascii() and not piece.isalnum() and not piece.isspace()))


def load_tokenizer(vocab, kind="full"):
    """``full`` (BasicTokenizer + WordPiece, as the demo vocab was built) or ``char`` (ERNIE 1.0)."""
    from ernie.tokenizing import CharTokenizer, FullTokenizer
    if kind == "full":
        return FullTokenizer(vocab)
    if kind == "char":
        return CharTokenizer(vocab)
    raise ValueError(f"tokenizer must be 'full' or 'char', got {kind!r}")


class Lexicon:
    """Entities and phrases, matched case-insensitively; entries indexed by first character."""

    def __init__(self, entries=()):
        self.entries = set()
        self._prefixes = set()  # every prefix of every entry: word runs stop growing at once
        self._lens = {}  # first char -> set of entry lengths
        for e in entries:
            self.add(e)

    def add(self, entry):
        entry = entry.strip().lower()
        if not entry:
            return
        self.entries.add(entry)
        self._prefixes.update(entry[:k] for k in range(1, len(entry) + 1))
        self._lens.setdefault(entry[0], set()).add(len(entry))

    def __len__(self):
        return len(self.entries)

    def __contains__(self, s):
        return s.lower() in self.entries

    @classmethod
    def from_file(cls, path):
        """One entry a line; the first tab-separated column (``zh_entities.txt``: entity, type, count)."""
        lex = cls()
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    lex.add(line.split("\t", 1)[0])
        return lex

    def find_in_text(self, text):
        """Non-overlapping (start, end) character spans of entries, longest match first, left to right."""
        spans, i, n, low = [], 0, len(text), text.lower()
        while i < n:
            lens = self._lens.get(low[i])
            hit = 0
            if lens:
                for L in sorted(lens, reverse=True):
                    if L > 1 and i + L <= n and low[i:i + L] in self.entries:
                        hit = L
                        break
            if hit:
                spans.append((i, i + hit))
                i += hit
            else:
                i += 1
        return spans

    def match_words(self, words, max_words=8):
        """(i, j) word spans whose concatenation (with a space between two ASCII words) is an
        entry; longest first, non-overlapping, left to right."""
        spans, i, n = [], 0, len(words)
        prefixes, entries = self._prefixes, self.entries
        while i < n:
            s = words[i].lower()
            best = 0
            j = i + 1
            while s in prefixes:  # most words are no entry's prefix: one set lookup
                if s in entries:
                    best = j
                if j == n or j - i >= max_words:
                    break
                nxt = words[j].lower()
                s = s + (" " if s[-1:].isascii() and s[-1:].isalnum() and nxt[:1].isascii() else "") + nxt
                j += 1
            if best:
                spans.append((i, best))
                i = best
            else:
                i += 1
        return spans


class SentenceEncoder:
    """Encodes one sentence (a line of text) into a Sentence of token ids and marks."""

    def __init__(self, tokenizer, lexicon=None, segmentation="auto", max_chars=20000, cache_size=1 << 18):
        from ernie.tokenizing import BasicTokenizer
        if segmentation not in ("auto", "gold", "jieba"):
            raise ValueError(f"segmentation must be auto, gold or jieba, got {segmentation!r}")
        self.tok = tokenizer
        self.lexicon = lexicon if lexicon is not None else Lexicon()
        self.segmentation = segmentation
        self.max_chars = max_chars
        self._cased = BasicTokenizer(do_lower_case=False).tokenize
        self._cache, self._cache_size, self._pieces = {}, cache_size, {}
        # the shortcut holds for tokenizers that split CJK characters and look them up as they are
        self._fast_cjk = type(tokenizer).__name__ in ("FullTokenizer", "CharTokenizer")
        self._jieba = None

    # ------------------------------------------------------------ segmentation
    def _jieba_cut(self, text):
        if self._jieba is None:
            import jieba
            jieba.setLogLevel(logging.WARNING)
            self._jieba = jieba.Tokenizer()
            self._jieba.initialize()
        return [w for w in self._jieba.cut(text) if w.strip()]

    def words(self, line, segmentation=None):
        """(words, lexicon word spans) of a line. ``segmentation`` overrides the encoder's
        (the preprocessing decides per chunk whether a corpus is segmented)."""
        seg = segmentation or self.segmentation
        if seg == "gold" or (seg == "auto" and " " in line):
            words = line.split()
            return words, self.lexicon.match_words(words) if len(self.lexicon) else []
        words, spans, last = [], [], 0
        for s, e in (self.lexicon.find_in_text(line) if len(self.lexicon) else []):
            if s > last:
                words.extend(self._jieba_cut(line[last:s]))
            spans.append((len(words), len(words) + 1))
            words.append(line[s:e])
            last = e
        if last < len(line):
            words.extend(self._jieba_cut(line[last:]))
        return words, spans

    # ------------------------------------------------------------ tokens
    def _encode_word(self, word):
        """(ids, marks) of one word; cached, words repeat a lot."""
        hit = self._cache.get(word)
        if hit is not None:
            return hit
        if self._fast_cjk and _CJK_WORD.fullmatch(word):
            # the common Chinese case: one token per character, the vocab's or [UNK] (what the
            # basic tokenizer + WordPiece give), without running them
            get, unk = self.tok.vocab.get, self.tok.unk_id
            hit = ([get(c, unk) for c in word], [WORD_START | UNIT_START] + [0] * (len(word) - 1))
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[word] = hit
            return hit
        ids, marks = [], []
        prev_punct = True
        # The cased basic split finds the word's pieces with their case. Punctuation splits a
        # word into several ("(see" -> "(", "see"); other pieces (the characters of 北京, the
        # digit and character of １月) stay one word, as the segmentation said.
        for piece in self._cased(word):
            punct = _is_punct(piece)
            start = WORD_START if (prev_punct or punct) else 0
            cap = CAPITALIZED if piece[:1].isupper() else 0
            toks = self._pieces.get(piece)
            if toks is None:  # pieces (digits, punctuation, characters) repeat across words
                toks = self._pieces[piece] = self.tok.convert_tokens_to_ids(self.tok.tokenize(piece))
            for k, t in enumerate(toks):
                ids.append(t)
                # a word is its own unit unless a lexicon span says otherwise (encode)
                marks.append((start | (UNIT_START if start else 0) if k == 0 else 0) | cap)
            prev_punct = punct
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
            self._pieces.clear()
        self._cache[word] = hit = (ids, marks)
        return hit

    def encode(self, line, segmentation=None):
        """Sentence for one line; raises MalformedLine for a line that cannot be used."""
        if len(line) > self.max_chars:
            raise MalformedLine(f"line longer than {self.max_chars} characters ({len(line)})")
        bad = _CONTROL.search(line)
        if bad:
            raise MalformedLine(f"control character U+{ord(bad.group()):04X} at column {bad.start() + 1}")
        words, spans = self.words(line, segmentation)
        ids, marks, first = [], [], []
        for w in words:
            wi, wm = self._encode_word(w)
            first.append(len(ids))
            ids.extend(wi)
            marks.extend(wm)
        if not ids:
            raise MalformedLine("no tokens in the line")
        first.append(len(ids))
        # units: every word (set in _encode_word), except inside a lexicon span, which is one unit
        for i, j in spans:
            t0, t1 = first[i], first[j]
            for t in range(t0, t1):
                marks[t] = (marks[t] & ~UNIT_START) | KNOWLEDGE
            if t1 > t0:
                marks[t0] |= UNIT_START
        return Sentence(np.array(ids, dtype="int32"), np.array(marks, dtype="uint8"))

    def encode_document(self, sentences):
        """A list of sentence strings -> list of Sentences (malformed ones raise)."""
        return [self.encode(s) for s in sentences]
