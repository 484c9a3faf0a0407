"""ERNIE 1.0 pre-training (knowledge-masked LM + next-sentence prediction): the command line of
the original release, run as one schedule of the ERNIE 2.0 engine (``pretrain.py``): a single
stage of two tasks, ``mlm`` (knowledge_masking at ERNIE 1.0's levels: a whole word picked with
p 0.15 at its start, or each character) and ``nsp`` (next_sentence), mixed within each batch.

Two kinds of input:
  --train_filelist FILE   the original id format (filelist lines ``path<TAB>mask_word_prob``;
                          each file's rows masked a word at a time with its probability)
  --corpus_dir DIR        segmented documents (one sentence a line, words separated by spaces,
                          a blank line between documents), tokenized by character with
                          --vocab_file; words masked whole with p --mask_word_prob

    python -m ernie.pretraining.ernie1 --corpus_dir data/demo/zh_corpus/train --vocab_file data/demo/vocab.txt \\
        --ernie_config config/ernie_small_config.json \\
        --run_config '{"model_dir": "output/pretrain", "max_steps": 300, "log_steps": 20}' \\
        --hparam '{"batch_size": 32, "learning_rate": 1e-3}'

Metrics: ``mlm_acc``, ``mlm_ppl``, ``nsp_acc`` (and per-task losses, curves in
``model_dir/task_losses.png``). Rerunning the command resumes from the newest checkpoint.
"""
import logging
import os
import sys

if __name__ == "__main__" and not __package__:
    # Run as a file (paddle.distributed.launch takes a script path, not -m): import the package
    # from the repo root instead of letting this directory's modules shadow top-level names.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import propeller.paddle as propeller
from propeller.log import setup_logging
from propeller.util import load_dict

from ernie.modeling import ErnieConfig
from ernie.pretraining import pretrain

log = logging.getLogger("ernie")

__all__ = ["make_parser", "schedule_config", "main"]


def make_parser():
    parser = propeller.ArgumentParser("ERNIE 1.0 pre-training")
    parser.add_argument("--train_filelist", help="id-format filelist (path<TAB>mask_word_prob a line)")
    parser.add_argument("--valid_filelist")
    parser.add_argument("--corpus_dir", help="segmented corpus: one sentence a line, blank line between documents")
    parser.add_argument("--valid_corpus_dir")
    parser.add_argument("--vocab_file", help="vocab for --corpus_dir (token<TAB>id or one token a line)")
    parser.add_argument("--ernie_config", required=True)
    parser.add_argument("--max_seqlen", type=int, default=128)
    parser.add_argument("--mask_word_prob", type=float, default=0.5,
                        help="for --corpus_dir: share of examples masked a whole word at a time")
    parser.add_argument("--init_checkpoint", "--warm_start_from", dest="init_checkpoint",
                        help="our checkpoint, a PaddleNLP one, or a legacy ERNIE params/ dir")
    parser.add_argument("--save_dir", help="write the final model here (save_pretrained layout)")
    return parser


def schedule_config(args, run_config, hparams):
    """The engine's schedule config for these flags (``run_config`` / ``hparams``: dicts)."""
    if not (args.train_filelist or args.corpus_dir):
        raise ValueError("give --train_filelist (id format) or --corpus_dir (segmented text)")
    if args.train_filelist and args.corpus_dir:
        raise ValueError("give --train_filelist or --corpus_dir, not both")
    steps = run_config.get("max_steps")
    if not steps:
        raise ValueError("--run_config must set max_steps (the schedule is that many batches)")
    if not 0.0 <= args.mask_word_prob <= 1.0:
        raise ValueError(f"--mask_word_prob must lie in [0, 1], got {args.mask_word_prob}")
    if args.train_filelist:
        data = {"id_filelist": args.train_filelist, "valid_id_filelist": args.valid_filelist,
                "vocab": args.vocab_file}
    else:
        if not args.vocab_file:
            raise ValueError("--vocab_file is required with --corpus_dir")
        data = {"corpus": args.corpus_dir, "valid_corpus": args.valid_corpus_dir, "vocab": args.vocab_file,
                "tokenizer": "char",
                "shards": os.path.join(run_config["model_dir"], "shards", "train")}
    levels = {k: p for k, p in (("ernie1_word", args.mask_word_prob), ("ernie1_char", 1 - args.mask_word_prob))
              if p > 0}
    mlm_steps = (int(steps) + 1) // 2
    eval_max = run_config.get("eval_max_steps")
    return {
        "seed": int(run_config.get("seed") or 0), "batch_size": int(hparams.get("batch_size", 32)),
        "max_seqlen": args.max_seqlen, "mix": "mixed",
        "model": {"ernie_config": args.ernie_config,
                  "use_task_id": bool(ErnieConfig.from_json(args.ernie_config).use_task_id)},
        "data": {k: v for k, v in data.items() if v},
        "tasks": {"mlm": {"type": "knowledge_masking", "levels": levels},
                  "nsp": {"type": "next_sentence"}},
        "stages": [{"name": "ERNIE 1.0", "budgets": {"mlm": mlm_steps, "nsp": int(steps) - mlm_steps}}],
        "eval": {"batches_per_task": max(1, (int(eval_max) + 1) // 2) if eval_max else 2},
    }


def main(argv=None):
    setup_logging("ernie")
    args = make_parser().parse_args(argv)
    rc = load_dict(args.run_config, "--run_config")[0] if args.run_config else {}
    hp = propeller.parse_hparam(args).to_dict() if args.hparam else {}
    rc.setdefault("model_dir", "output")
    try:
        cfg = schedule_config(args, rc, hp)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    return pretrain.train(cfg, rc, hp, args.init_checkpoint, args.save_dir)


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
