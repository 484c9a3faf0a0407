"""Sentence and token embeddings from ERNIE (the original FAQ1's ``ernie_encoder.py``).

    python ernie/ernie_encoder.py --init_pretraining_params MODEL/params \\
        --ernie_config_path MODEL/ernie_config.json --vocab_path MODEL/vocab.txt \\
        --data_set dev.tsv --max_seq_len 128 --batch_size 32 --output_dir ./test

Input: a TSV of ``text_a`` or ``text_a<TAB>text_b`` lines. A first line naming the columns
(``text_a<TAB>text_b<TAB>label``, as the original task files have) picks them by name;
without one, a last column that is an integer on every line is taken as a label and
ignored. Each example is encoded as ``[CLS] a [SEP] (b [SEP])``, cut to ``--max_seq_len``.

Output in ``--output_dir``:

* ``cls_emb.npy``: float32 [examples, hidden], the pooled output of each example (what
  the original called the CLS embedding);
* ``top_layer_emb.npy``: float32 [tokens, hidden], the top layer's vector of every token
  of every example, padding removed, examples one after another (the original's
  ``sequence_unpad`` output);
* ``seq_lens.npy``: int64 [examples], each example's token count, to split the former
  (``np.split(top, np.cumsum(seq_lens)[:-1])``).

The checkpoint (``--init_checkpoint`` or ``--init_pretraining_params``) is anything
:mod:`ernie.checkpoint` reads: a legacy ``params/`` dir, ours, PaddleNLP's, a Propeller one.
"""
import argparse
import logging
import os
import sys

if __package__ in (None, ""):  # run as a script path: make the repo root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from propeller import cpu_env  # noqa: E402,F401  (MKL setting must precede paddle's import)
from ernie.data.corpus import read_texts  # noqa: E402
from propeller.fsutil import atomic_file  # noqa: E402
from propeller.log import setup_logging  # noqa: E402

__all__ = ["encode_texts", "main"]

log = logging.getLogger("ernie.ernie_encoder")


def encode_texts(model, tokenizer, pairs, max_seq_len=128, batch_size=32, progress=False):
    """Run ``pairs`` through ``model`` (an ErnieModel); returns ``(cls_emb, top_layer_emb,
    seq_lens)`` as described in the module doc."""
    import paddle
    from tqdm import tqdm
    pad = model.config.pad_token_id
    model.eval()
    cls, top, lens = [], [], []
    bar = tqdm(total=len(pairs), unit="ex", disable=not progress, file=sys.stderr)
    with paddle.no_grad():
        for start in range(0, len(pairs), batch_size):
            enc = [tokenizer.encode(a, b, max_seq_len) for a, b in pairs[start:start + batch_size]]
            n = [len(ids) for ids, _ in enc]
            src = np.full((len(enc), max(n)), pad, dtype=np.int64)
            sent = np.zeros_like(src)
            for i, (ids, types) in enumerate(enc):
                src[i, :n[i]], sent[i, :n[i]] = ids, types
            seq, pooled = model(paddle.to_tensor(src), paddle.to_tensor(sent))
            seq = seq.numpy()
            cls.append(pooled.numpy())
            top.extend(seq[i, :n[i]] for i in range(len(n)))
            lens.extend(n)
            bar.update(len(enc))
    bar.close()
    hidden = model.config.hidden_size
    return (np.concatenate(cls) if cls else np.zeros((0, hidden), np.float32),
            np.concatenate(top) if top else np.zeros((0, hidden), np.float32),
            np.array(lens, dtype=np.int64))


def _bool(s):
    v = str(s).strip().lower()
    if v in ("1", "true", "yes", "y", "on"):
        return True
    if v in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def build_parser():
    ap = argparse.ArgumentParser(prog="ernie_encoder.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--init_checkpoint", default=None, help="checkpoint (wins over the next)")
    ap.add_argument("--init_pretraining_params", default=None, help="pre-trained parameters")
    ap.add_argument("--ernie_config_path", default=None,
                    help="config json (default: the checkpoint's)")
    ap.add_argument("--data_set", required=True, help="TSV of text_a[<TAB>text_b]")
    ap.add_argument("--vocab_path", default=None, help="vocab.txt (default: beside the checkpoint)")
    ap.add_argument("--max_seq_len", type=int, default=512)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--output_dir", default="embeddings")
    ap.add_argument("--do_lower_case", type=_bool, default=True)
    ap.add_argument("--tokenizer", default="FullTokenizer", choices=["FullTokenizer", "CharTokenizer"])
    ap.add_argument("--use_cuda", type=_bool, default=False, help="use a GPU if there is one")
    ap.add_argument("--overwrite", action="store_true", help="replace existing .npy files")
    ap.add_argument("--no_progress", action="store_true")
    return ap


OUTPUTS = ("cls_emb.npy", "top_layer_emb.npy", "seq_lens.npy")


def main(argv=None):
    args = build_parser().parse_args(argv)
    setup_logging("ernie")
    ckpt = args.init_checkpoint or args.init_pretraining_params
    if not ckpt:
        print("error: pass --init_checkpoint or --init_pretraining_params", file=sys.stderr)
        return 2
    if args.batch_size < 1 or args.max_seq_len < 3:
        print("error: --batch_size must be >= 1 and --max_seq_len >= 3", file=sys.stderr)
        return 2
    existing = [f for f in OUTPUTS if os.path.exists(os.path.join(args.output_dir, f))]
    if existing and not args.overwrite:
        print(f"error: {args.output_dir} already holds {existing}; pass --overwrite", file=sys.stderr)
        return 2
    try:
        import paddle
        from ernie.checkpoint import load_into
        from ernie.export import find_vocab, load_ernie_checkpoint
        from ernie.modeling import ErnieModel
        from ernie.service.text_predictor import make_tokenizer
        vocab = args.vocab_path or find_vocab(ckpt)
        if vocab is None:
            raise ValueError(f"no vocab.txt beside {ckpt}; pass --vocab_path")
        tokenizer = make_tokenizer(vocab_file=vocab, do_lower_case=args.do_lower_case,
                                   kind=args.tokenizer)
        pairs = read_texts(args.data_set)
        state, config, kind = load_ernie_checkpoint(ckpt, args.ernie_config_path)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.use_cuda and paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count():
        paddle.set_device("gpu")
    else:
        paddle.set_device("cpu")
    model = ErnieModel(config)
    load_into(model, state, strict=True)
    max_len = min(args.max_seq_len, config.max_position_embeddings)
    log.info("%d examples from %s, max_seq_len %d, batch %d", len(pairs), args.data_set, max_len,
             args.batch_size)
    cls, top, lens = encode_texts(model, tokenizer, pairs, max_len, args.batch_size,
                                  progress=not args.no_progress)
    os.makedirs(args.output_dir, exist_ok=True)
    for name, arr in zip(OUTPUTS, (cls, top, lens)):
        with atomic_file(os.path.join(args.output_dir, name)) as tmp:
            with open(tmp, "wb") as f:  # a file object: np.save would append .npy to a path
                np.save(f, arr)
    print(f"cls_emb {list(cls.shape)} top_layer_emb {list(top.shape)} -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
