"""ERNIE 1.0 pre-training (knowledge-masked LM + next-sentence prediction) on Propeller.

Two kinds of input:
  --train_filelist FILE   the original id format (filelist lines ``path<TAB>mask_word_prob``)
  --corpus_dir DIR        segmented documents (one sentence a line, words separated by spaces,
                          a blank line between documents), tokenized with --vocab_file

    python -m ernie.pretraining.ernie1 --corpus_dir data/demo/zh_corpus --vocab_file data/demo/vocab.txt \\
        --ernie_config config/ernie_small_config.json \\
        --run_config '{"model_dir": "output/pretrain", "max_steps": 300, "log_steps": 20}' \\
        --hparam '{"batch_size": 32, "learning_rate": 1e-3}'
"""
import glob
import logging
import os
import sys

if __name__ == "__main__" and not __package__:
    # Run as a file (paddle.distributed.launch takes a script path, not -m): import the package
    # from the repo root instead of letting this directory's modules shadow top-level names.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import paddle

import propeller.paddle as propeller
from ernie.checkpoint import load_into, save_pretrained
from ernie.modeling import ErnieConfig, ErnieForPretraining
from ernie.pretraining.ernie1_data import batches, documents_to_examples, read_filelist, read_id_file

log = logging.getLogger("ernie")


class Ernie1PretrainModel(propeller.train.Model):
    """Batch: (src_ids, sent_ids, pos_ids, mask_pos, (mask_label, nsp_label))."""

    def __init__(self, hparams, mode, run_config):
        super().__init__(hparams, mode, run_config)
        cfg = hparams.ernie_config
        self.config = cfg if isinstance(cfg, ErnieConfig) else ErnieConfig.from_dict(dict(cfg))
        self.net = ErnieForPretraining(self.config)

    def forward(self, src_ids, sent_ids, pos_ids, mask_pos):
        return self.net(src_ids, sent_ids, pos_ids, masked_positions=mask_pos)

    def loss(self, predictions, labels):
        mlm_logits, nsp_logits = predictions
        mask_label, nsp_label = labels
        mlm = paddle.nn.functional.cross_entropy(mlm_logits, mask_label.reshape([-1, 1]))
        nsp = paddle.nn.functional.cross_entropy(nsp_logits, nsp_label.reshape([-1, 1]))
        self.step_scalars = {"mlm_loss": float(mlm), "nsp_loss": float(nsp)}
        return mlm + nsp

    def metrics(self, predictions, labels):
        mlm_logits, nsp_logits = predictions
        mask_label, nsp_label = labels
        return {
            "mlm_acc": propeller.metrics.Acc(mask_label, mlm_logits.argmax(-1)),
            "mlm_ppl": propeller.metrics.Ppl(mask_label, mlm_logits, from_logits=True),
            "nsp_acc": propeller.metrics.Acc(nsp_label, nsp_logits.argmax(-1)),
        }

    def warm_start(self, from_dir, predicate=None):
        return load_into(self.net, from_dir, strict=False, predicate=predicate)


def read_corpus_dir(path):
    """Documents (lists of sentences, each a list of words) from every *.txt under path."""
    files = sorted(glob.glob(os.path.join(path, "*.txt"))) if os.path.isdir(path) else [path]
    if not files:
        raise FileNotFoundError(f"no *.txt corpus files in {path}")
    from ernie.data.corpus import read_documents
    docs = []
    for f in files:
        docs.extend([[s if isinstance(s, list) else s.split() for s in d] for d in read_documents(f)])
    return docs


class _LossCurve(propeller.RunHook):
    """Records the training loss of each step for the end-of-run summary."""

    def __init__(self):
        self.losses = []

    def after_step(self, state):
        self.losses.append(state.loss)

    def summary(self, k=20):
        k = max(1, min(k, len(self.losses) // 2 or 1))
        return float(np.mean(self.losses[:k])), k, float(np.mean(self.losses[-k:])), k


def make_parser():
    parser = propeller.ArgumentParser("ERNIE 1.0 pre-training")
    parser.add_argument("--train_filelist", help="id-format filelist (path<TAB>mask_word_prob a line)")
    parser.add_argument("--valid_filelist")
    parser.add_argument("--corpus_dir", help="segmented corpus: one sentence a line, blank line between documents")
    parser.add_argument("--valid_corpus_dir")
    parser.add_argument("--vocab_file", help="vocab for --corpus_dir (token<TAB>id or one token a line)")
    parser.add_argument("--ernie_config", required=True)
    parser.add_argument("--max_seqlen", type=int, default=128)
    parser.add_argument("--mask_word_prob", type=float, default=0.5, help="for --corpus_dir: share of word-mode examples")
    parser.add_argument("--init_checkpoint", "--warm_start_from", dest="init_checkpoint",
                        help="our checkpoint, a PaddleNLP one, or a legacy ERNIE params/ dir")
    parser.add_argument("--save_dir", help="write the final model here (save_pretrained layout)")
    return parser


def _filelist_examples(filelist, mask_prob_out):
    entries = read_filelist(filelist)

    def examples():
        for path, prob in entries:
            mask_prob_out[0] = prob
            yield from read_id_file(path, on_bad_line="skip")
    return examples


def build_stream(args, corpus_dir, filelist, batch_size, vocab_size, seed, repeat):
    if filelist:
        probs = [read_filelist(filelist)[0][1]]
        return batches(_filelist_examples(filelist, probs), batch_size, vocab_size, probs[0], seed, repeat=repeat)
    if not args.vocab_file:
        raise SystemExit("--vocab_file is required with --corpus_dir")
    from ernie.tokenizing import CharTokenizer
    tok = CharTokenizer(args.vocab_file)
    if tok.vocab_size > vocab_size:
        raise SystemExit(f"{args.vocab_file} has {tok.vocab_size} tokens but the model's vocab_size is {vocab_size}")
    vocab_size = tok.vocab_size  # random replacements must be real tokens
    docs = read_corpus_dir(corpus_dir)
    examples = list(documents_to_examples(docs, tok, args.max_seqlen, seed=seed))
    log.info("%s: %d documents -> %d examples", corpus_dir, len(docs), len(examples))
    return batches(lambda: examples, batch_size, vocab_size, args.mask_word_prob, seed, repeat=repeat)


def main(argv=None):
    args = make_parser().parse_args(argv)
    run_config = propeller.parse_runconfig(args)
    hparams = propeller.parse_hparam(args)
    config = ErnieConfig.from_json(args.ernie_config)
    hparams = hparams.join(propeller.HParams(ernie_config=config.to_dict()))
    bs, seed = int(hparams.get("batch_size", 32)), run_config.seed or 0
    if not (args.train_filelist or args.corpus_dir):
        raise SystemExit("give --train_filelist (id format) or --corpus_dir (segmented text)")
    train = propeller.data.Dataset.from_generator_func(
        build_stream(args, args.corpus_dir, args.train_filelist, bs, config.vocab_size, seed, True))
    evals = None
    if args.valid_filelist or args.valid_corpus_dir:
        evals = {"dev": propeller.data.Dataset.from_generator_func(
            build_stream(args, args.valid_corpus_dir, args.valid_filelist, bs, config.vocab_size, seed + 1, False))}
    ws = propeller.WarmStartSetting(predicate_fn=lambda n: True, from_dir=args.init_checkpoint) \
        if args.init_checkpoint else None
    learner = propeller.Learner(Ernie1PretrainModel, run_config, hparams, ws)
    curve = _LossCurve()
    state = learner.train(train, train_hooks=[curve], eval_datasets=evals)
    if curve.losses:
        log.info("pre-training loss: %.3f over the first %d steps -> %.3f over the last %d (step %d)",
                 *curve.summary(), state.gstep)
    if args.save_dir and propeller.train.distribution.is_master():
        save_pretrained(learner.model.net, args.save_dir, config)
        log.info("saved the pre-trained model to %s", args.save_dir)
    return state


if __name__ == "__main__":
    main()
