"""Raw documents -> memory-mapped pre-training shards (see shards.py for the layout).

    python -m ernie.pretraining.preprocess --corpus data/demo/zh_corpus/train --vocab data/demo/vocab.txt \\
        --lexicon data/demo/zh_entities.txt --out output/shards/zh --processes_num 2 [--seed 1]

Input: UTF-8 files (a file, a directory of *.txt, or several), either one sentence a line with
a blank line between documents (``--format sentences``, the default) or one document a line
cut into sentences after 。！？!? (``--format docs``). Segmentation (``--segmentation auto``)
is decided per chunk: when most of its lines have spaces the text is segmented (gold words,
a line without spaces is one word), otherwise jieba cuts every line, lexicon entries kept
whole (encode.py).

Parallelism and determinism: every file is cut into chunks of ``--chunk_mb`` at document
boundaries (the first blank line at or after each multiple of the chunk size; a line for
``--format docs``). A corpus of fewer than 32 such chunks is cut finer (down to 64 KB), so that
the workers finish together instead of one working alone through the last big chunk. A chunk
depends only on the file and the chunk size (itself a function of the corpus size, never of
the process count), its documents are shuffled with (seed, file, chunk), and it becomes one
shard, written by the worker that read it. So the shards are the same for any
``--processes_num``, and memory stays bounded by a chunk per process whatever the corpus size:
the main process holds only counts.

A malformed line (not UTF-8, control characters, over-long, nothing left after tokenizing) is
skipped, counted, and reported as ``file:line: reason``; the run goes on.
"""
import argparse
import glob
import hashlib
import json
import logging
import os
import shutil
import sys
import time

import numpy as np

from propeller.log import setup_logging

from ernie.pretraining.encode import Lexicon, MalformedLine, SentenceEncoder, load_tokenizer, split_sentences
from ernie.pretraining.shards import INDEX_FILE, write_shard

log = logging.getLogger("ernie")
MAX_REPORTED = 50
MIN_CHUNKS, MIN_CHUNK_BYTES = 32, 64 << 10  # small corpora: at least 32 chunks of at least 64 KB

# ----------------------------------------------------------------------------- chunking


def _align(f, pos, fmt):
    """First document boundary at or after byte ``pos``: a line start (docs) or the start of a
    blank line (sentences)."""
    if pos <= 0:
        return 0
    f.seek(pos - 1)
    f.readline()  # finish the line pos falls in (a no-op read of one byte at a line start)
    if fmt == "docs":
        return f.tell()
    while True:
        p = f.tell()
        line = f.readline()
        if not line or not line.strip():
            return p


def chunk_bounds(path, k, chunk_bytes, fmt):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        lo = _align(f, k * chunk_bytes, fmt) if k * chunk_bytes < size else size
        hi = _align(f, (k + 1) * chunk_bytes, fmt) if (k + 1) * chunk_bytes < size else size
    return lo, hi


# ----------------------------------------------------------------------------- workers

_W = {}  # per-process worker state: the encoder (tokenizer, lexicon, jieba) is built once


def _init_worker(cfg):
    if _W.get("cfg") == cfg:  # built and warmed in the parent before the fork
        return
    tok = load_tokenizer(cfg["vocab"], cfg["tokenizer"])
    lex = Lexicon.from_file(cfg["lexicon"]) if cfg.get("lexicon") else None
    _W["encoder"] = SentenceEncoder(tok, lex, cfg["segmentation"], cfg["max_chars"])
    _W["cfg"] = cfg


def _warm_up(path, cfg, nbytes=32 << 10):
    """Encode the start of the corpus once in the parent: the forked workers inherit jieba's
    dictionary (0.7 s to load) and the first words of the cache instead of each building its
    own. Kept short because it runs before the workers start (256 KB of jieba text took 0.4 s,
    most of what kept 2 processes at 1.54x). Only caches change, never the output."""
    with open(path, "rb") as f:
        data = f.read(nbytes)
    data = data[:data.rfind(b"\n") + 1]
    seg = _chunk_segmentation(data, cfg)
    for lines in _documents(data, cfg["format"]):
        for _, raw in lines:
            try:
                text = raw.decode("utf-8").strip()
                for p in (split_sentences(text) if cfg["format"] == "docs" else [text]):
                    _W["encoder"].encode(p, seg)
            except (UnicodeDecodeError, MalformedLine):
                pass


def _documents(data, fmt):
    """(document lines [(lineno, text)], ...) of a chunk's bytes; lineno is chunk-relative."""
    doc = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if fmt == "docs":
            if raw.strip():
                yield [(lineno, raw)]
            continue
        if not raw.strip():
            if doc:
                yield doc
                doc = []
        else:
            doc.append((lineno, raw))
    if doc:
        yield doc


def _chunk_segmentation(data, cfg):
    """'auto' decided once per chunk: a chunk where most lines have spaces is segmented text, so
    its one-word lines (a headline) are words, not jieba input; otherwise jieba cuts every line."""
    if cfg["segmentation"] != "auto":
        return cfg["segmentation"]
    lines = [l for l in data.split(b"\n") if l.strip()]
    spaced = sum(1 for l in lines if b" " in l.strip())
    return "gold" if lines and spaced * 2 >= len(lines) else "jieba"


def process_chunk(task):
    """Encode one chunk and write its shard. Returns (key, shard entry or None, stats, bad lines,
    lines in the chunk, bytes)."""
    file_idx, path, k, out_dir = task
    cfg, enc = _W["cfg"], _W["encoder"]
    lo, hi = chunk_bounds(path, k, cfg["chunk_bytes"], cfg["format"])
    with open(path, "rb") as f:
        f.seek(lo)
        data = f.read(hi - lo)
    n_lines = data.count(b"\n")
    seg = _chunk_segmentation(data, cfg)
    bad, docs, n_sent = [], [], 0
    for lines in _documents(data, cfg["format"]):
        sents = []
        for lineno, raw in lines:
            try:
                try:
                    text = raw.decode("utf-8").strip()
                except UnicodeDecodeError as e:
                    raise MalformedLine(f"not UTF-8 ({e.reason} at byte {e.start})") from None
                parts = split_sentences(text) if cfg["format"] == "docs" else [text]
                sents.extend(enc.encode(p, seg) for p in parts)
            except MalformedLine as e:
                bad.append((lineno, str(e)))
        if sents:
            docs.append(sents)
            n_sent += len(sents)
    rng = np.random.RandomState([cfg["seed"] & 0xFFFFFFFF, file_idx, k])
    docs = [docs[i] for i in rng.permutation(len(docs))]
    entry = write_shard(out_dir, f"shard-{file_idx:04d}-{k:05d}", docs) if docs else None
    return (file_idx, k), entry, bad, n_lines, hi - lo


# ----------------------------------------------------------------------------- driver

def corpus_files(paths):
    files = []
    for p in paths if isinstance(paths, (list, tuple)) else [paths]:
        if os.path.isdir(p):
            found = sorted(glob.glob(os.path.join(p, "**", "*.txt"), recursive=True))
            if not found:
                raise FileNotFoundError(f"{p}: no *.txt files")
            files += found
        elif os.path.exists(p):
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such corpus file or directory")
    return files


def _sha1(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_shards(corpus, vocab, out, processes_num=1, lexicon=None, seed=1, tokenizer="full",
                 fmt="sentences", segmentation="auto", chunk_mb=4.0, max_chars=20000, progress=True):
    """Write the shards of ``corpus`` to ``out`` (replaced atomically); returns the index dict."""
    if fmt not in ("sentences", "docs"):
        raise ValueError(f"format must be 'sentences' or 'docs', got {fmt!r}")
    files = corpus_files(corpus)
    total_bytes = sum(os.path.getsize(p) for p in files)
    chunk_bytes = min(max(1, int(chunk_mb * (1 << 20))), max(MIN_CHUNK_BYTES, total_bytes // MIN_CHUNKS))
    cfg = dict(vocab=vocab, tokenizer=tokenizer, lexicon=lexicon, segmentation=segmentation, max_chars=max_chars,
               chunk_bytes=chunk_bytes, format=fmt, seed=int(seed))
    tmp = out.rstrip("/") + f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    tasks = []
    for i, path in enumerate(files):
        n = max(1, -(-os.path.getsize(path) // cfg["chunk_bytes"]))
        tasks += [(i, path, k, tmp) for k in range(n)]
    t0 = time.time()
    results = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="preprocess", disable=None, leave=False)
    try:
        _W.clear()
        _init_worker(cfg)
        _warm_up(files[0], cfg)
        if processes_num <= 1:
            it = map(process_chunk, tasks)
            pool = None
        else:
            import multiprocessing as mp
            pool = mp.get_context("fork").Pool(processes_num, initializer=_init_worker, initargs=(cfg,))
            it = pool.imap(process_chunk, tasks)  # ordered: line numbers are summed chunk by chunk
        for r in it:
            results.append(r)
            if bar is not None:
                bar.update(r[4])
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if bar is not None:
            bar.close()
    # absolute line numbers: each chunk's lines follow the lines of the chunks before it
    shards, bad_total, reports, line_base = [], 0, [], {}
    for (fi, k), entry, bad, n_lines, _ in results:
        base = line_base.get(fi, 0)
        for lineno, reason in bad:
            bad_total += 1
            if len(reports) < MAX_REPORTED:
                reports.append(f"{files[fi]}:{base + lineno}: {reason}")
        line_base[fi] = base + n_lines
        if entry is not None:
            shards.append(entry)
    tok = _W["encoder"].tok
    index = {
        "version": 1, "shards": shards,
        "num_docs": sum(s["docs"] for s in shards), "num_sentences": sum(s["sentences"] for s in shards),
        "num_tokens": sum(s["tokens"] for s in shards),
        "vocab": os.path.abspath(vocab), "vocab_sha1": _sha1(vocab), "vocab_size": len(tok.vocab),
        "special_ids": {"pad": tok.pad_id, "cls": tok.cls_id, "sep": tok.sep_id, "mask": tok.mask_id,
                        "unk": tok.unk_id},
        "tokenizer": tokenizer, "lexicon": os.path.abspath(lexicon) if lexicon else None,
        "format": fmt, "segmentation": segmentation, "seed": int(seed), "chunk_bytes": cfg["chunk_bytes"],
        "sources": [os.path.abspath(f) for f in files], "source_bytes": total_bytes,
        "malformed_lines": bad_total, "malformed_examples": reports,
    }
    with open(os.path.join(tmp, INDEX_FILE), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=1, ensure_ascii=False)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    dt = time.time() - t0
    log.info("preprocessed %d files (%.1f MB) in %.1f s (%.2f MB/s, %d processes): %d documents, %d sentences, "
             "%d tokens in %d shards -> %s", len(files), total_bytes / 2 ** 20, dt, total_bytes / 2 ** 20 / max(dt, 1e-9),
             processes_num, index["num_docs"], index["num_sentences"], index["num_tokens"], len(shards), out)
    if bad_total:
        log.warning("%d malformed lines skipped%s:\n  %s", bad_total,
                    f" (first {MAX_REPORTED} shown)" if bad_total > MAX_REPORTED else "", "\n  ".join(reports))
    else:  # the total of the skip mode, also when there is nothing to skip
        log.info("0 malformed lines skipped")
    return index


def make_parser():
    p = argparse.ArgumentParser(description="raw documents -> memory-mapped pre-training shards")
    p.add_argument("--corpus", nargs="+", required=True, help="files or directories of *.txt")
    p.add_argument("--vocab", required=True, help="vocab.txt (token<TAB>id or one token a line)")
    p.add_argument("--out", required=True, help="output directory (replaced)")
    p.add_argument("--processes_num", type=int, default=1)
    p.add_argument("--lexicon", help="entities/phrases, one a line (first tab field), kept as knowledge units")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tokenizer", choices=("full", "char"), default="full")
    p.add_argument("--format", choices=("sentences", "docs"), default="sentences",
                   help="sentences: one sentence a line, blank line between documents; docs: one document a line")
    p.add_argument("--segmentation", choices=("auto", "gold", "jieba"), default="auto",
                   help="auto: spaces = gold words, unspaced lines through jieba")
    p.add_argument("--chunk_mb", type=float, default=4.0,
                   help="raw text per shard (at most; a small corpus is cut into >= 32 chunks of >= 64 KB)")
    p.add_argument("--max_chars", type=int, default=20000, help="longer lines are malformed")
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    setup_logging("ernie")
    try:
        build_shards(args.corpus, args.vocab, args.out, args.processes_num, args.lexicon, args.seed, args.tokenizer,
                     args.format, args.segmentation, args.chunk_mb, args.max_chars)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"preprocess: {e}")


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
