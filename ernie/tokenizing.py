"""Tokenizers and vocabularies for ERNIE.

* ``load_vocab`` / ``save_vocab``: ERNIE ``vocab.txt`` files, either one ``token\\tid`` pair a
  line (the original ERNIE release) or one token a line (PaddleNLP / BERT), auto-detected.
* ``FullTokenizer``: BERT-style basic tokenization + WordPiece. It gives the same tokens as
  PaddleNLP's ``ErnieTokenizer(vocab_file=...)``, including its extra rule of splitting
  Unicode symbols (category S*) off as tokens of their own (``split_symbols=False`` turns that
  off and gives the original BERT/ERNIE rule).
* ``CharTokenizer``: the tokenizer of the ERNIE 1.0 pre-training data (lower-case, split on
  whitespace, WordPiece each piece), with CJK characters always split into single tokens.
* ``SentencepieceTokenizer``: ERNIE-tiny; optional forward-maximum-matching word
  segmentation with a word dict, then SentencePiece, pieces mapped to ids through an ERNIE
  vocab file.
* ``build_vocab`` / ``train_sentencepiece``: vocabularies from a raw corpus, also as a CLI:
  ``python -m ernie.tokenizing build_vocab --corpus FILE... --out vocab.txt`` and
  ``python -m ernie.tokenizing train_sentencepiece --corpus FILE... --model_prefix P
  --vocab_size N``.

Nothing here downloads anything: every loader takes a local path. Paddle is not imported.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import os
import re
import sys
import unicodedata
from functools import lru_cache
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "SPECIAL_TOKENS",
    "load_vocab",
    "save_vocab",
    "load_word_dict",
    "truncate_seq_pair",
    "BasicTokenizer",
    "WordpieceTokenizer",
    "BaseTokenizer",
    "FullTokenizer",
    "CharTokenizer",
    "WordDictSegmenter",
    "SentencepieceTokenizer",
    "build_vocab",
    "train_sentencepiece",
    "main",
]

SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")

PathLike = Union[str, "os.PathLike[str]"]
VocabLike = Union[PathLike, Mapping[str, int]]


# --------------------------------------------------------------------------------------------
# vocabulary files
# --------------------------------------------------------------------------------------------
def _read_lines(path: PathLike) -> List[str]:
    """Lines of a UTF-8 file without their line ends; decoding errors name the line."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()  # the final newline does not start another line
    lines = []
    for lineno, b in enumerate(raw, 1):
        if b.endswith(b"\r"):
            b = b[:-1]
        try:
            lines.append(b.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}:{lineno}: expected UTF-8 text ({e.reason})") from None
    return lines


_ID_RE = re.compile(r"[0-9]+")


def load_vocab(path: PathLike) -> Dict[str, int]:
    """Read an ERNIE vocab file into ``{token: id}``.

    Two formats are accepted and told apart by the first line: ``token<TAB>id`` a line (the
    original ERNIE ``vocab.txt``) or one token a line, the id being the line index (PaddleNLP,
    BERT). A line that does not fit the file's format, an empty line, a repeated token or a
    repeated id raises ValueError naming the file and the line.
    """
    lines = _read_lines(path)
    if not lines:
        raise ValueError(f"{path}: empty vocab file, expected one token (or 'token<TAB>id') a line")
    vocab: Dict[str, int] = {}
    if "\t" in lines[0]:
        seen_ids: Dict[int, int] = {}
        for lineno, line in enumerate(lines, 1):
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0]:
                raise ValueError(
                    f"{path}:{lineno}: expected 'token<TAB>id' (the format of line 1), got {line!r}")
            token, id_text = parts
            if not _ID_RE.fullmatch(id_text):
                raise ValueError(
                    f"{path}:{lineno}: expected a non-negative integer id after the tab, got {line!r}")
            if token in vocab:
                raise ValueError(f"{path}:{lineno}: token {token!r} repeated (first on line "
                                 f"{seen_ids[vocab[token]]}), expected each token once")
            idx = int(id_text)
            if idx in seen_ids:
                raise ValueError(f"{path}:{lineno}: id {idx} repeated (first on line "
                                 f"{seen_ids[idx]}), expected each id once")
            vocab[token] = idx
            seen_ids[idx] = lineno
    else:
        for lineno, token in enumerate(lines, 1):
            if not token or "\t" in token:
                what = "an empty line" if not token else f"{token!r} with a tab"
                raise ValueError(f"{path}:{lineno}: expected one token a line (the format of "
                                 f"line 1), got {what}")
            if token in vocab:
                raise ValueError(f"{path}:{lineno}: token {token!r} repeated (first on line "
                                 f"{vocab[token] + 1}), expected each token once")
            vocab[token] = lineno - 1
    return vocab


def save_vocab(vocab: Mapping[str, int], path: PathLike, format: str = "tab") -> None:
    """Write ``{token: id}`` in id order: ``format="tab"`` gives ``token<TAB>id`` lines (ERNIE),
    ``"plain"`` one token a line (PaddleNLP/BERT; needs the ids to be exactly 0..n-1)."""
    if format not in ("tab", "plain"):
        raise ValueError(f"format must be 'tab' or 'plain', got {format!r}")
    items = sorted(vocab.items(), key=lambda kv: kv[1])
    if len({i for _, i in items}) != len(items):
        raise ValueError("vocab has repeated ids")
    for tok, _ in items:
        if not tok or "\t" in tok or "\n" in tok or "\r" in tok:
            raise ValueError(f"token {tok!r} cannot be written to a vocab file")
    if format == "plain":
        if [i for _, i in items] != list(range(len(items))):
            raise ValueError("the one-token-a-line format needs ids 0..n-1 without gaps")
        text = "".join(f"{t}\n" for t, _ in items)
    else:
        text = "".join(f"{t}\t{i}\n" for t, i in items)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _as_vocab(vocab: VocabLike) -> Dict[str, int]:
    if isinstance(vocab, Mapping):
        return dict(vocab)
    return load_vocab(vocab)


def load_word_dict(path: PathLike, lower: bool = False) -> set:
    """Words for segmentation, one a line; only the first whitespace-separated field counts (so
    jieba-style ``word freq tag`` lines work). A ``.pkl``/``.pickle`` file is read as the
    pickled dict/set of the original ERNIE-tiny release (pickle runs code: trusted files only)."""
    path = os.fspath(path)
    if path.endswith((".pkl", ".pickle")):
        import pickle

        with open(path, "rb") as f:
            words = {str(w) for w in pickle.load(f)}
    else:
        words = set()
        for line in _read_lines(path):
            fields = line.split()
            if fields:
                words.add(fields[0])
    if lower:
        words = {w.lower() for w in words}
    return words


# --------------------------------------------------------------------------------------------
# character classes
# --------------------------------------------------------------------------------------------
# CJK Unified Ideographs blocks, as BERT defines "Chinese character" (Hangul/kana excluded,
# they are written with spaces between words).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)
# PaddleNLP counts these non-S code points as symbols too (sup. 2, ordinal o, ling zero, micro,
# O-stroke, eng, upsilon); 0xAD (soft hyphen) is on its list but is removed as Cf first.
_EXTRA_SYMBOLS = (0x00B2, 0x00BA, 0x3007, 0x00B5, 0x00D8, 0x014B, 0x01B1)
# ASCII non-alphanumerics are punctuation for BERT even where Unicode says S* ($, ^, `, ...)
_ASCII_PUNCT = ((33, 47), (58, 64), (91, 96), (123, 126))


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(a <= cp <= b for a, b in _CJK_RANGES)


_BMP, _FULL = 0, 1
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _plane(text: str) -> int:
    """Which regex variant covers the text: BMP only, or all of Unicode."""
    if text.isascii():
        return _BMP
    return _FULL if _ASTRAL.search(text) else _BMP


class _CharClasses:
    """Compiled regexes for the per-character rules, built once per process.

    Classes: C = removed by text cleaning (C* categories but \\t\\n\\r, plus U+FFFD),
    M = Mn (dropped with the accents when lower-casing), K = CJK ideograph,
    P = punctuation (BERT's rule), S = symbol (PaddleNLP's extra rule). Whitespace is left to
    ``\\s``, which is exactly what ``str.split()`` splits on, as BERT's whitespace_tokenize does.

    Each regex comes in two variants (a tuple indexed by ``_plane``): sre tests a char
    against the BMP part of a class with one bitmap lookup but against every non-BMP range one
    by one, so a class holding hundreds of astral ranges is several times slower on any text;
    texts without astral chars (nearly all) use the classes clipped to the BMP.
    """

    def __init__(self):
        # One pass over all code points with C-level map calls (~0.3 s), then the class runs
        # are found with a regex over a one-letter-per-code-point string.
        n = 0x110000
        cat_class = {}
        codes = []
        for cat in map(unicodedata.category, map(chr, range(n))):
            k = cat_class.get(cat)
            if k is None:
                k = cat_class[cat] = {"C": "C", "P": "P", "S": "S"}.get(cat[0], "M" if cat == "Mn" else ".")
            codes.append(k)
        for a, b in _ASCII_PUNCT:
            codes[a:b + 1] = ["P"] * (b + 1 - a)
        for cp in (9, 10, 13):
            codes[cp] = "."
        codes[0xFFFD] = "C"
        for cp in _EXTRA_SYMBOLS:
            if codes[cp] not in "CP":
                codes[cp] = "S"
        for a, b in _CJK_RANGES:
            # cleaning runs first, so unassigned code points inside the blocks are removed
            codes[a:b + 1] = ["C" if k == "C" else "K" for k in codes[a:b + 1]]
        runs = collections.defaultdict(list)
        for m in re.finditer(r"C+|M+|K+|P+|S+", "".join(codes)):
            runs[m.group()[0]].append((m.start(), m.end() - 1))
        self.runs = dict(runs)

        self.drop = self._variants("[{C}]+")
        self.drop_with_accents = self._variants("[{C}{M}]+")
        # a single split-class char, or a run of anything else up to whitespace
        self.words = self._variants("[{K}{P}{S}]|[^\\s{K}{P}{S}]+")
        self.words_nosym = self._variants("[{K}{P}]|[^\\s{K}{P}]+")
        self.cjk_words = self._variants("[{K}]|[^\\s{K}]+")

    def _class(self, key: str, limit: int) -> str:
        parts = []
        for a, b in self.runs.get(key, ()):
            if a > limit:
                continue
            b = min(b, limit)
            parts.append(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}")
        return "".join(parts)

    def _variants(self, template: str) -> tuple:
        out = []
        for limit in (0xFFFF, 0x10FFFF):
            classes = {k: self._class(k, limit) for k in "CMKPS"}
            out.append(re.compile(template.format(**classes)))
        return tuple(out)


@lru_cache(maxsize=None)
def _char_classes() -> _CharClasses:
    return _CharClasses()


# --------------------------------------------------------------------------------------------
# tokenizer pieces
# --------------------------------------------------------------------------------------------
def _to_text(text) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise TypeError(f"expected str or bytes, got {type(text).__name__}")


class BasicTokenizer:
    """Text cleaning, CJK/punctuation(/symbol) splitting, optional lower-casing with accent
    stripping: BERT's BasicTokenizer, done with whole-string C-level operations.

    Equivalence with the per-character original: lower-casing, NFD and dropping Mn/control
    characters commute with the splitting (NFD only maps CJK compatibility ideographs to CJK
    ideographs and spaces to spaces), so they run once on the whole text before one regex
    ``findall`` produces the words.
    """

    def __init__(self, do_lower_case: bool = True, split_symbols: bool = True):
        self.do_lower_case = do_lower_case
        self.split_symbols = split_symbols
        cc = _char_classes()
        drop = cc.drop_with_accents if do_lower_case else cc.drop
        self._drop_subs = tuple(r.sub for r in drop)
        self._findalls = tuple(r.findall for r in (cc.words if split_symbols else cc.words_nosym))

    def _normalize(self, text) -> Tuple[str, int]:
        text = _to_text(text)
        if self.do_lower_case:
            # PaddleNLP lower-cases one character at a time, so a word-final capital sigma
            # becomes 'σ', not the 'ς' of str.lower(): do the same.
            if "Σ" in text:
                text = text.replace("Σ", "σ")
            text = text.lower()
            if not text.isascii():
                text = unicodedata.normalize("NFD", text)
        plane = _plane(text)  # dropping chars below never needs a wider variant
        return self._drop_subs[plane]("", text), plane

    def normalize(self, text) -> str:
        """The cleaned (and lower-cased, accent-stripped) text the words are cut from."""
        return self._normalize(text)[0]

    def tokenize(self, text) -> List[str]:
        text, plane = self._normalize(text)
        return self._findalls[plane](text)


class _PieceCache(dict):
    """word -> tuple of pieces; a miss computes and stores, the whole cache is dropped when full
    (cheap, and hit lookups stay plain C dict lookups)."""

    __slots__ = ("_fn", "_limit")

    def __init__(self, fn, limit):
        super().__init__()
        self._fn = fn
        self._limit = limit

    def __missing__(self, word):
        if len(self) >= self._limit:
            self.clear()
        pieces = self[word] = self._fn(word)
        return pieces


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece: pieces after the first carry ``##``; a word with a
    position no piece matches, or longer than ``max_input_chars_per_word``, is one unk_token."""

    def __init__(self, vocab: Mapping[str, int], unk_token: str = "[UNK]",
                 max_input_chars_per_word: int = 100, cache_size: int = 1 << 18):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # no piece is longer than the longest vocab entry: bounds the inner search
        self._max_piece = max((len(t) - 2 if t.startswith("##") else len(t) for t in vocab), default=1)
        self._cache = _PieceCache(self._split_word, cache_size)
        self._unk = (unk_token,)

    def _split_word(self, word: str) -> Tuple[str, ...]:
        vocab = self.vocab
        if word in vocab:
            return (word,)
        n = len(word)
        if n > self.max_input_chars_per_word:
            return self._unk
        pieces = []
        start = 0
        while start < n:
            end = min(n, start + self._max_piece)
            prefix = "##" if start else ""
            while end > start:
                piece = prefix + word[start:end]
                if piece in vocab:
                    break
                end -= 1
            else:
                return self._unk
            pieces.append(piece)
            start = end
        return tuple(pieces)

    def pieces(self, word: str) -> Tuple[str, ...]:
        return self._cache[word]

    def tokenize_words(self, words: Iterable[str]) -> List[str]:
        return list(itertools.chain.from_iterable(map(self._cache.__getitem__, words)))

    def tokenize(self, text: str) -> List[str]:
        return self.tokenize_words(text.split())


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_length: int) -> None:
    """Longest-first truncation in place: drop the last item of the longer list (of b on a
    tie) until the two fit in max_length together."""
    excess = len(tokens_a) + len(tokens_b) - max_length
    if excess <= 0:
        return
    la, lb = len(tokens_a), len(tokens_b)
    # closed form of the one-at-a-time loop: cut the longer down to the shorter, then
    # alternate, with b taking the odd one
    cut = min(excess, abs(la - lb))
    if la > lb:
        la -= cut
    else:
        lb -= cut
    rest = excess - cut
    lb -= (rest + 1) // 2
    la -= rest // 2
    del tokens_a[la:]
    del tokens_b[lb:]


class BaseTokenizer:
    """The vocab, id conversion and ``encode`` shared by the ERNIE tokenizers."""

    def __init__(self, vocab: VocabLike, unk_token: str = "[UNK]"):
        self.vocab: Dict[str, int] = _as_vocab(vocab)
        if unk_token not in self.vocab:
            raise ValueError(f"unk_token {unk_token!r} is not in the vocab")
        self.unk_token = unk_token
        self.inv_vocab: Dict[int, str] = {i: t for t, i in self.vocab.items()}
        self.unk_id = self.vocab[unk_token]
        self.pad_id = self.vocab.get("[PAD]")
        self.cls_id = self.vocab.get("[CLS]")
        self.sep_id = self.vocab.get("[SEP]")
        self.mask_id = self.vocab.get("[MASK]")

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def tokenize(self, text) -> List[str]:
        raise NotImplementedError

    def convert_tokens_to_ids(self, tokens):
        """Token(s) to id(s); a token not in the vocab gives ``unk_id``."""
        get, unk = self.vocab.get, self.unk_id
        if isinstance(tokens, str):
            return get(tokens, unk)
        return [get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        """Id(s) to token(s); an id not in the vocab raises ValueError."""
        inv = self.inv_vocab
        try:
            if isinstance(ids, int):
                return inv[ids]
            return [inv[int(i)] for i in ids]
        except KeyError as e:
            raise ValueError(f"id {e.args[0]} is not in the vocab") from None

    def encode(self, text_a, text_b=None, max_seqlen: Optional[int] = 128):
        """``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]`` as (token_ids, sentence_type_ids),
        two lists of int; type 0 up to the first [SEP], 1 after. Longer than max_seqlen: the
        longer of a/b loses its last token until it fits (None: no truncation)."""
        if self.cls_id is None or self.sep_id is None:
            raise ValueError("encode needs [CLS] and [SEP] in the vocab")
        a = self.convert_tokens_to_ids(self.tokenize(text_a))
        b = None if text_b is None else self.convert_tokens_to_ids(self.tokenize(text_b))
        n_special = 2 if b is None else 3
        if max_seqlen is not None:
            if max_seqlen < n_special:
                raise ValueError(f"max_seqlen {max_seqlen} leaves no room for the {n_special} "
                                 f"[CLS]/[SEP] tokens")
            if b is None:
                del a[max_seqlen - 2:]
            else:
                truncate_seq_pair(a, b, max_seqlen - 3)
        ids = [self.cls_id, *a, self.sep_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b
            ids.append(self.sep_id)
            types += [1] * (len(b) + 1)
        return ids, types


class FullTokenizer(BaseTokenizer):
    """BasicTokenizer + WordPiece (the ERNIE / BERT ``FullTokenizer``).

    ``split_symbols`` (default True) also splits Unicode symbols off as single tokens, as
    PaddleNLP's ErnieTokenizer does; False gives the original BERT rule.
    """

    def __init__(self, vocab_file: VocabLike, do_lower_case: bool = True, unk_token: str = "[UNK]",
                 split_symbols: bool = True, max_input_chars_per_word: int = 100):
        super().__init__(vocab_file, unk_token)
        self.do_lower_case = do_lower_case
        self.basic_tokenizer = BasicTokenizer(do_lower_case, split_symbols)
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, unk_token, max_input_chars_per_word)
        # bound once: these run per call on the hot path
        self._basic = self.basic_tokenizer.tokenize
        self._lookup = self.wordpiece_tokenizer._cache.__getitem__

    def tokenize(self, text) -> List[str]:
        return list(itertools.chain.from_iterable(map(self._lookup, self._basic(text))))


class CharTokenizer(BaseTokenizer):
    """ERNIE 1.0's CharTokenizer: lower-case, split on whitespace, WordPiece each piece.

    Unlike the original, a CJK character inside a piece is split off as a token of its own (the
    original expected the characters already separated by spaces, and turned an unseparated
    run into [UNK]); for space-separated input the two agree. No punctuation splitting and no
    accent stripping, as in the original.
    """

    def __init__(self, vocab_file: VocabLike, do_lower_case: bool = True, unk_token: str = "[UNK]",
                 max_input_chars_per_word: int = 100):
        super().__init__(vocab_file, unk_token)
        self.do_lower_case = do_lower_case
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, unk_token, max_input_chars_per_word)
        self._findalls = tuple(r.findall for r in _char_classes().cjk_words)
        self._lookup = self.wordpiece_tokenizer._cache.__getitem__

    def tokenize(self, text) -> List[str]:
        text = _to_text(text)
        if self.do_lower_case:
            text = text.lower()
        words = self._findalls[_plane(text)](text)
        return list(itertools.chain.from_iterable(map(self._lookup, words)))


def _glued(a: str, b: str) -> bool:
    """True when a and b are adjacent letters/digits of one non-CJK word."""
    return a.isalnum() and b.isalnum() and not _is_cjk(a) and not _is_cjk(b)


class WordDictSegmenter:
    """Forward maximum matching against a word set (ERNIE-tiny's word segmentation).

    At each position the longest dict word starting there is taken. Where none matches, a CJK
    character is a word by itself (as in the original); consecutive unmatched non-CJK
    characters stay together as one word, so Latin words and numbers are not cut into letters.
    For the same reason a match may not start or end inside a run of non-CJK letters/digits
    (dict word "in" is not cut out of "inside"; "NBA" is out of "NBA总决赛").
    Input is split on whitespace first, so dict words containing spaces never match.
    """

    def __init__(self, words: Iterable[str]):
        self.words = set(w for w in words if w)
        # every proper prefix of a dict word: the scan stops as soon as no word can extend
        # the current candidate, so a position costs about (longest match + 1) set lookups
        self._prefixes = {w[:i] for w in self.words for i in range(1, len(w))}

    def cut(self, chunk: str) -> List[str]:
        words, prefixes = self.words, self._prefixes
        out: List[str] = []
        run_start = -1  # start of the pending unmatched non-CJK run
        i, n = 0, len(chunk)
        while i < n:
            best = 0
            if not (i and _glued(chunk[i - 1], chunk[i])):
                j = i + 1
                while j <= n:
                    s = chunk[i:j]
                    if s in words and not (j < n and _glued(chunk[j - 1], chunk[j])):
                        best = j
                    if s not in prefixes:
                        break
                    j += 1
            if best == 0 and not _is_cjk(chunk[i]):
                if run_start < 0:
                    run_start = i
                i += 1
                continue
            if run_start >= 0:
                out.append(chunk[run_start:i])
                run_start = -1
            end = best or i + 1
            out.append(chunk[i:end])
            i = end
        if run_start >= 0:
            out.append(chunk[run_start:])
        return out

    def segment(self, text: str) -> List[str]:
        return [w for chunk in text.split() for w in self.cut(chunk)]


def _load_sentencepiece(model_file: PathLike):
    import sentencepiece as spm

    if not os.path.isfile(model_file):
        raise FileNotFoundError(f"sentencepiece model not found: {model_file}")
    sp = spm.SentencePieceProcessor()
    sp.Load(os.fspath(model_file))
    return sp


class SentencepieceTokenizer(BaseTokenizer):
    """ERNIE-tiny tokenizer: optional word-dict segmentation (``WordDictSegmenter``; words are
    joined with spaces so no piece spans two words), then SentencePiece; a piece not in the
    vocab file becomes ``unk_token``.

    ``word_dict`` is a path (see ``load_word_dict``) or an iterable of words. With ``lower``
    the text and the dict words are lower-cased before matching.
    """

    def __init__(self, vocab_file: VocabLike, sp_model_file: PathLike, word_dict=None,
                 lower: bool = True, unk_token: str = "[UNK]"):
        super().__init__(vocab_file, unk_token)
        self.lower = lower
        self.sp_model = _load_sentencepiece(sp_model_file)
        self.segmenter = None
        if word_dict is not None:
            if isinstance(word_dict, (str, os.PathLike)):
                words = load_word_dict(word_dict, lower=lower)
            else:
                words = {w.lower() for w in word_dict} if lower else set(word_dict)
            self.segmenter = WordDictSegmenter(words)

    def words(self, text) -> List[str]:
        """The words the text is cut into before SentencePiece."""
        text = _to_text(text)
        if self.lower:
            text = text.lower()
        if self.segmenter is None:
            return text.split()
        return self.segmenter.segment(text)

    def tokenize(self, text) -> List[str]:
        pieces = self.sp_model.encode(" ".join(self.words(text)), out_type=str)
        vocab, unk = self.vocab, self.unk_token
        return [p if p in vocab else unk for p in pieces]


# --------------------------------------------------------------------------------------------
# vocabulary building
# --------------------------------------------------------------------------------------------
def _corpus_lines(corpus_files: Sequence[PathLike]):
    for path in corpus_files:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f


def build_vocab(corpus_files: Sequence[PathLike], min_freq: int = 1,
                max_wordpiece: Optional[int] = None, do_lower_case: bool = True,
                split_symbols: bool = True, max_input_chars_per_word: int = 100) -> Dict[str, int]:
    """Build a WordPiece vocab for ``FullTokenizer`` from raw text files.

    The text goes through the same ``BasicTokenizer`` as at tokenization time, then:

    1. the special tokens [PAD] 0, [CLS] 1, [SEP] 2, [MASK] 3, [UNK] 4;
    2. the alphabet, by count (ties by token): every CJK character and punctuation/symbol
       seen, every character seen first in a word (``c``) and every character seen later in
       a word (``##c``). With these any word of seen characters can be spelled, so with
       ``min_freq=1`` the corpus tokenizes without [UNK];
    3. multi-character pieces, by count (ties: longer first, then by token), at most
       ``max_wordpiece`` of them: whole words (count = occurrences) and ``##`` suffixes of at
       least two characters (count = summed occurrences of the words ending so). A word is
       found whole if it made it; otherwise greedy matching takes the longest known word as a
       prefix and continues with the suffix pieces. A multi-character piece needs a count of
       at least max(2, min_freq): one seen once saves nothing.

    Entries counted less than ``min_freq`` times are left out (they become [UNK]). Words
    longer than ``max_input_chars_per_word`` are skipped: WordPiece makes them [UNK] anyway.
    """
    basic = BasicTokenizer(do_lower_case, split_symbols)
    words = collections.Counter()
    for line in _corpus_lines(corpus_files):
        words.update(basic.tokenize(line))

    alphabet = collections.Counter()
    pieces = collections.Counter()
    for w, n in words.items():
        if len(w) > max_input_chars_per_word:
            continue
        alphabet[w[0]] += n
        if len(w) == 1:
            continue
        for c in w[1:]:
            alphabet["##" + c] += n
        pieces[w] += n
        for i in range(1, len(w) - 1):
            pieces["##" + w[i:]] += n

    vocab: Dict[str, int] = {}
    for t in SPECIAL_TOKENS:
        vocab[t] = len(vocab)
    for t, n in sorted(alphabet.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= min_freq and t not in vocab:
            vocab[t] = len(vocab)
    threshold = max(2, min_freq)
    ranked = sorted((kv for kv in pieces.items() if kv[1] >= threshold),
                    key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))
    if max_wordpiece is not None:
        ranked = ranked[:max_wordpiece]
    for t, _ in ranked:
        if t not in vocab:
            vocab[t] = len(vocab)
    return vocab


def train_sentencepiece(corpus_files: Sequence[PathLike], model_prefix: PathLike, vocab_size: int,
                        model_type: str = "unigram", character_coverage: float = 0.9995,
                        word_dict=None, lower: bool = True, vocab_out: Optional[PathLike] = None,
                        num_threads: int = 2, quiet: bool = True, **trainer_kwargs) -> Tuple[str, str]:
    """Train a SentencePiece model with ``sentencepiece.SentencePieceTrainer.train`` and write an
    ERNIE vocab for it. Returns ``(model_file, vocab_file)``.

    The corpus lines are prepared the way ``SentencepieceTokenizer`` prepares text (lower-cased
    with ``lower``; cut into words joined by spaces when ``word_dict`` is given), so training
    and tokenization see the same form. The vocab file (default ``<model_prefix>.vocab.txt``,
    ``token<TAB>id``) holds [PAD] [CLS] [SEP] [MASK] [UNK] as ids 0-4, then the model's pieces
    in the model's order, without its control/unknown pieces (<unk>, <s>, </s>).
    ``vocab_size`` is an upper bound (``hard_vocab_limit=False``; pass True to make it exact).
    Extra keyword arguments go to the trainer unchanged.
    """
    import sentencepiece as spm

    model_prefix = os.fspath(model_prefix)
    segmenter = None
    if word_dict is not None:
        words = load_word_dict(word_dict, lower) if isinstance(word_dict, (str, os.PathLike)) \
            else {w.lower() if lower else w for w in word_dict}
        segmenter = WordDictSegmenter(words)

    def sentences():
        for line in _corpus_lines(corpus_files):
            line = line.strip()
            if lower:
                line = line.lower()
            if segmenter is not None:
                line = " ".join(segmenter.segment(line))
            if line:
                yield line

    # hard_vocab_limit off: vocab_size is an upper bound, so a small corpus does not fail
    kwargs = dict(model_prefix=model_prefix, vocab_size=vocab_size, model_type=model_type,
                  character_coverage=character_coverage, num_threads=num_threads,
                  hard_vocab_limit=False)
    kwargs.update(trainer_kwargs)
    if quiet:
        with open(os.devnull, "w") as devnull:
            spm.SentencePieceTrainer.train(sentence_iterator=sentences(), logstream=devnull, **kwargs)
    else:
        spm.SentencePieceTrainer.train(sentence_iterator=sentences(), **kwargs)
    model_file = model_prefix + ".model"
    sp = _load_sentencepiece(model_file)
    vocab: Dict[str, int] = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for i in range(sp.GetPieceSize()):
        if sp.IsControl(i) or sp.IsUnknown(i):
            continue
        piece = sp.IdToPiece(i)
        if piece not in vocab:
            vocab[piece] = len(vocab)
    vocab_file = os.fspath(vocab_out) if vocab_out is not None else model_prefix + ".vocab.txt"
    save_vocab(vocab, vocab_file, format="tab")
    return model_file, vocab_file


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ernie.tokenizing",
                                     description="Build ERNIE vocabularies from a raw corpus.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build_vocab", help="WordPiece vocab (token<TAB>id) for FullTokenizer")
    p.add_argument("--corpus", nargs="+", required=True, help="UTF-8 text files")
    p.add_argument("--out", required=True, help="vocab file to write")
    p.add_argument("--min_freq", type=int, default=1)
    p.add_argument("--max_wordpiece", type=int, default=None,
                   help="at most this many multi-character pieces")
    p.add_argument("--cased", action="store_true", help="do not lower-case / strip accents")
    p.add_argument("--format", choices=("tab", "plain"), default="tab")

    p = sub.add_parser("train_sentencepiece", help="SentencePiece model + ERNIE vocab")
    p.add_argument("--corpus", nargs="+", required=True)
    p.add_argument("--model_prefix", required=True)
    p.add_argument("--vocab_size", type=int, required=True)
    p.add_argument("--model_type", default="unigram", choices=("unigram", "bpe", "char", "word"))
    p.add_argument("--character_coverage", type=float, default=0.9995)
    p.add_argument("--word_dict", default=None, help="segment the corpus with this word dict first")
    p.add_argument("--cased", action="store_true")
    p.add_argument("--vocab_out", default=None)
    p.add_argument("--num_threads", type=int, default=2)

    args = parser.parse_args(argv)
    if args.command == "build_vocab":
        vocab = build_vocab(args.corpus, min_freq=args.min_freq, max_wordpiece=args.max_wordpiece,
                            do_lower_case=not args.cased)
        save_vocab(vocab, args.out, format=args.format)
        print(f"wrote {len(vocab)} tokens to {args.out}", file=sys.stderr)
    else:
        model_file, vocab_file = train_sentencepiece(
            args.corpus, args.model_prefix, args.vocab_size, model_type=args.model_type,
            character_coverage=args.character_coverage, word_dict=args.word_dict,
            lower=not args.cased, vocab_out=args.vocab_out, num_threads=args.num_threads)
        print(f"wrote {model_file} and {vocab_file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
