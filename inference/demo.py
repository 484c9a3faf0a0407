"""The original ERNIE C++ inference demo, in Python (the code is ernie.service.demo_data).

    python -m inference.demo run --model_dir EXPORT --data FILE [--repeat 1] [--num_threads 1]
    python -m inference.demo make_data --vocab_file vocab.txt --data texts.tsv --out FILE

Data format (the C++ demo's ``data/sample``): one batch a line, fields separated by ``;``,
each ``shape:data`` (e.g. ``1 128 1:1 1034 79 ... 0 0``): ``src_ids;pos_ids;sent_ids;self_attn_mask``,
or ``src_ids;sent_ids`` for Propeller exports. ``run`` prints one line of probabilities per
example on stdout and ``Run N samples, average latency: X ms per sample.`` on stderr; see
``inference/README.md``.
"""
import argparse
import sys

from propeller import cpu_env  # noqa: F401  (MKL setting must precede paddle's import)
from propeller.inference.predictor import BACKENDS, PRECISIONS

from ernie.service.demo_data import make_data, run


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m inference.demo", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a demo data file through an exported model")
    r.add_argument("--model_dir", required=True, help="export dir or prefix")
    r.add_argument("--data", required=True, help="demo data file (one batch a line)")
    r.add_argument("--fields", default=None,
                   help="comma-separated field names when the layout is not the default")
    r.add_argument("--repeat", type=int, default=1, help="runs over the file (latency)")
    r.add_argument("--num_threads", type=int, default=1)
    r.add_argument("--no_onednn", action="store_true")
    r.add_argument("--use_gpu", action="store_true")
    r.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="bf16: oneDNN bf16 kernels (CPUs with AMX/AVX512-BF16; up to ~7e-2 off fp32)")
    r.add_argument("--backend", choices=BACKENDS, default="paddle",
                   help="onnxruntime: the export converted once to ONNX (paddle2onnx)")
    r.add_argument("--quiet", action="store_true", help="print only the latency")
    m = sub.add_parser("make_data", help="write a demo data file from text")
    m.add_argument("--vocab_file", required=True)
    m.add_argument("--tokenizer", default="FullTokenizer", choices=["FullTokenizer", "CharTokenizer"])
    m.add_argument("--data", required=True, help="TSV: text_a[<TAB>text_b] (header optional)")
    m.add_argument("--out", required=True)
    m.add_argument("--batch_size", type=int, default=1)
    m.add_argument("--max_seqlen", type=int, default=128)
    m.add_argument("--pad_to_longest", action="store_true", help="pad each batch to its longest row")
    m.add_argument("--two_fields", action="store_true", help="write src_ids;sent_ids only")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args) if args.cmd == "run" else make_data(args)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
