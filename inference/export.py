"""Export an ERNIE checkpoint for ``paddle.inference`` (the command; the code is ernie.export).

    python -m inference.export --model_dir CKPT --out DIR [--encode_layer pooler|cls|layerN]
        [--task sequence_classification|token_classification|span] [--vocab_file vocab.txt]
        [--ernie_config ernie_config.json] [--with_pos_ids] [--with_input_mask]

``DIR`` gets ``model.json`` + ``model.pdiparams`` and ``model_meta.json`` (inputs, outputs,
config, tokenizer; see :mod:`ernie.export` and :mod:`propeller.inference.export`).
"""
import argparse
import sys

from propeller import cpu_env  # noqa: F401  (MKL setting must precede paddle's import)
from propeller.inference.export import read_meta
from propeller.log import setup_logging

from distill.export import export_student, is_student_dir
from ernie.export import TASK_OUTPUTS, export_ernie


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m inference.export",
                                 description="Export an ERNIE checkpoint (whole, or the encoder "
                                             "alone) for paddle.inference.")
    ap.add_argument("--model_dir", required=True,
                    help="checkpoint: ours/PaddleNLP (model_state.pdparams + config.json), a "
                         "Propeller model_dir or model_<step>/, a legacy params/ dir, or a "
                         "distilled student's best/ (distill.json)")
    ap.add_argument("--out", required=True, help="export directory (replaced)")
    ap.add_argument("--encode_layer", default=None,
                    help="export the encoder alone: pooler | cls | layerN (N=0 embeddings .. top)")
    ap.add_argument("--task", default=None, choices=sorted(TASK_OUTPUTS),
                    help="export the model with this head (default: sequence_classification "
                         "when the checkpoint has a classifier)")
    ap.add_argument("--ernie_config", default=None, help="config json (default: the checkpoint's)")
    ap.add_argument("--vocab_file", default=None, help="vocab to copy (default: vocab.txt beside "
                                                       "the checkpoint)")
    ap.add_argument("--tokenizer", default="FullTokenizer", choices=["FullTokenizer", "CharTokenizer"])
    ap.add_argument("--no_lower_case", action="store_true",
                    help="cased tokenizer (default: the fine-tuning run's task.json, else lower case)")
    ap.add_argument("--max_seqlen", type=int, default=None,
                    help="recorded for text predictors (default: the fine-tuning run's, else 128)")
    ap.add_argument("--with_pos_ids", action="store_true", help="add a pos_ids input")
    ap.add_argument("--with_input_mask", action="store_true", help="add an input_mask input")
    ap.add_argument("--no_sequence_output", action="store_true",
                    help="encoder: output only the [B, H] embedding")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    setup_logging("ernie")
    try:
        if is_student_dir(args.model_dir):  # a distilled student's best/ (distill.json beside it)
            export_student(args.model_dir, args.out)
        else:
            export_ernie(args.model_dir, args.out, args.encode_layer, args.task, args.ernie_config,
                         args.vocab_file, args.tokenizer, False if args.no_lower_case else None, args.max_seqlen,
                         args.with_pos_ids, args.with_input_mask, not args.no_sequence_output)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = read_meta(args.out)
    print(f"exported {args.out}: inputs {[i['name'] for i in meta['inputs']]} "
          f"outputs {meta['outputs']} ({meta['model']})")
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
