"""k-fold cross-validation: train k models, each on k-1 folds, evaluate each on its held-out fold,
report the mean and spread of every metric and keep the out-of-fold (OOF) predictions.

In Python, with a Propeller Model:

    from propeller.tools.kfold import kfold
    res = kfold(MyModel, hparams, run_config, examples, k=5)
    res["mean"]["acc"], res["std"]["acc"]       # over the k folds
    res["oof_file"]                              # <model_dir>/oof_predictions.npz

``examples`` are unbatched examples in the batch field order (features..., label). Fold ``i``
trains with ``run_config.model_dir/fold_<i>`` as model_dir (so the usual checkpoints, resume and
exporters apply per fold) and is then evaluated with ``Learner.evaluate`` on its held-out fold.
A fold whose ``kfold_fold.json`` exists is not trained again, so re-running after a crash
continues where it stopped.

From the command line, around any training script (one process per fold):

    python -m propeller.tools.kfold --k 5 --data train.tsv --work_dir out/kfold [--header] \\
        [--seed 0] [--stratify_column -1] -- \\
        example/finetune_classifier.py --data_dir {data_dir} --vocab_file data/demo/vocab.txt \\
            --warm_start_from output/demo/ernie2 --run_config '{{"model_dir": "{model_dir}"}}' \\
            --result_file {result_file}

The lines of ``--data`` (after a header line with ``--header``, which is copied to every split) are
dealt to k folds (shuffled with ``--seed``; stratified on a tab-separated column with
``--stratify_column``). For fold i the tool writes ``WORK/fold_<i>/data/train/part-0`` (the
other folds) and ``WORK/fold_<i>/data/dev/part-0`` (the held-out fold), the
``data_dir/{train,dev}`` layout the fine-tuning scripts read, then runs the command after
``--`` with these placeholders filled in: ``{fold}``, ``{k}``, ``{data_dir}``, ``{train_file}``,
``{dev_file}``, ``{model_dir}`` (``WORK/fold_<i>/model``), ``{result_file}``, ``{pred_file}``
(literal braces: ``{{``/``}}``). A command starting with a ``.py`` file or ``-m`` runs under this
Python. The same values are in the environment as ``KFOLD_FOLD``, ``KFOLD_K``, ``KFOLD_DATA_DIR``,
``KFOLD_MODEL_DIR``, ``KFOLD_RESULT_FILE``, ``KFOLD_PRED_FILE``.

The command reports its held-out metrics by writing a JSON object to ``{result_file}`` (or, if
it does not, as the last line of its stdout that is a JSON object); it may write one prediction
a line, in dev-file order, to ``{pred_file}``. The tool then writes
``WORK/kfold_summary.json`` (per-fold metrics, mean and std) and, when predictions were
written, ``WORK/oof_predictions.tsv`` (``line<TAB>fold<TAB>prediction``, in the order of the
input data; ``line`` counts data lines from 0, header excluded). A fold whose result file
already exists is skipped (``--rerun`` trains it again). std is the population standard
deviation (numpy's default, as ``cross_val_score(...).std()``).
"""
import argparse
import json
import os
import shlex
import sys

import numpy as np

from propeller.tools.command import last_json_line, python_command, read_result, run_echoing

__all__ = ["assign_folds", "kfold", "summarize"]

FOLD_RESULT = "kfold_fold.json"
FOLD_PREDS = "oof_predictions.npz"


def assign_folds(n, k, seed=0, stratify=None):
    """Fold id (0..k-1) of each of ``n`` examples: shuffled, sizes differing by at most one.

    ``stratify``: one label per example; each label is then spread evenly over the folds."""
    if not (isinstance(k, int) and 2 <= k <= n):
        raise ValueError(f"k must be an int with 2 <= k <= number of examples ({n}), got {k!r}")
    order = np.random.RandomState(seed).permutation(n)
    if stratify is not None:
        labels = np.asarray([str(x) for x in stratify])
        if len(labels) != n:
            raise ValueError(f"stratify has {len(labels)} labels for {n} examples")
        order = order[np.argsort(labels[order], kind="stable")]  # grouped by label, shuffled within
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % k
    return fold_of


def summarize(fold_results, skip=("data_num", "elapsed_time", "fold", "train_size", "eval_size")):
    """{"mean": {metric: ...}, "std": {...}} over the numeric metrics of the folds' result dicts."""
    keys = [k for k in fold_results[0] if k not in skip]
    mean, std = {}, {}
    for key in keys:
        vals = [r.get(key) for r in fold_results]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            mean[key], std[key] = float(np.mean(vals)), float(np.std(vals))
    return {"mean": mean, "std": std}


def _stack(preds):
    try:
        arr = np.stack([np.asarray(p) for p in preds])
        if arr.dtype != object:
            return arr
    except ValueError:
        pass
    arr = np.empty(len(preds), dtype=object)  # ragged (per-token tags): load with allow_pickle=True
    arr[:] = [np.asarray(p) if not isinstance(p, tuple) else p for p in preds]
    return arr


def _default_batch_fn(batch_size, seed):
    from propeller.data import Dataset
    from propeller.types import RunMode

    def batch_fn(examples, mode):
        if mode == RunMode.TRAIN:
            return Dataset.from_list(examples).shuffle(len(examples), seed=seed).repeat().padded_batch(batch_size)
        if mode == RunMode.PREDICT:  # every field is a feature: drop the label
            return Dataset.from_list([tuple(ex)[:-1] for ex in examples]).padded_batch(batch_size)
        return Dataset.from_list(examples).padded_batch(batch_size)
    return batch_fn


def kfold(model_class, hparams, run_config, dataset_examples, k, *, batch_fn=None, seed=0, folds=None,
          stratify=None, warm_start_setting=None, predictions_file=None, train_hooks=()):
    """Train and evaluate ``k`` models; returns a dict with ``folds`` (each fold's eval result),
    ``mean``, ``std``, ``fold_of`` (fold id per example) and ``oof_file``.

    batch_fn(examples, mode) -> batched Dataset; the default pads batches of hparams
    ``batch_size`` (32): TRAIN shuffled (``seed``) and repeated, EVAL as is, PREDICT without
    the label field. ``folds``: your own fold id per example (e.g. grouped by document) instead
    of a seeded shuffle (``stratify``: labels to balance over the folds). The out-of-fold
    predictions (what ``Learner.predict`` yields for each held-out example) are saved to
    ``predictions_file`` (default ``<model_dir>/oof_predictions.npz``) as arrays ``index``,
    ``fold`` and ``predictions``, in example order."""
    from propeller.fsutil import atomic_file, atomic_write_text
    from propeller.train.trainer import Learner
    from propeller.types import RunConfig, RunMode

    examples = list(dataset_examples)
    n = len(examples)
    rc = run_config if isinstance(run_config, RunConfig) else RunConfig(**run_config)
    if rc.model_dir is None:
        raise ValueError("run_config.model_dir is required (each fold trains in model_dir/fold_<i>)")
    if folds is None:
        fold_of = assign_folds(n, k, seed, stratify)
    else:
        fold_of = np.asarray(folds, dtype=np.int64)
        if fold_of.shape != (n,) or fold_of.min() < 0 or fold_of.max() >= k or len(set(fold_of.tolist())) != k:
            raise ValueError(f"folds must give each of the {n} examples a fold id in 0..{k - 1}, every fold non-empty")
    if batch_fn is None:
        bs = int(hparams.get("batch_size", 32)) if hparams is not None and hasattr(hparams, "get") else 32
        batch_fn = _default_batch_fn(bs, seed)

    results, preds = [], [None] * n
    for i in range(k):
        held = np.flatnonzero(fold_of == i)
        train = np.flatnonzero(fold_of != i)
        fold_dir = os.path.join(rc.model_dir, f"fold_{i}")
        done, pred_file = os.path.join(fold_dir, FOLD_RESULT), os.path.join(fold_dir, FOLD_PREDS)
        if os.path.exists(done) and os.path.exists(pred_file):
            with open(done, encoding="utf-8") as f:
                result = json.load(f)
            fold_preds = list(np.load(pred_file, allow_pickle=True)["predictions"])
        else:
            learner = Learner(model_class, rc.replace(model_dir=fold_dir), hparams, warm_start_setting)
            learner.train(batch_fn([examples[j] for j in train], RunMode.TRAIN), train_hooks)
            held_examples = [examples[j] for j in held]
            result = learner.evaluate(batch_fn(held_examples, RunMode.EVAL), name=f"fold {i}")
            fold_preds = list(learner.predict(batch_fn(held_examples, RunMode.PREDICT)))
            if len(fold_preds) != len(held):
                raise ValueError(f"fold {i}: {len(fold_preds)} predictions for {len(held)} held-out examples "
                                 "(does batch_fn drop or add examples in PREDICT mode?)")
            result = dict(result, fold=i, train_size=int(len(train)), eval_size=int(len(held)))
            del learner
            with atomic_file(pred_file) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, predictions=_stack(fold_preds))
            atomic_write_text(done, json.dumps(result, indent=1))  # last: marks the fold complete
        results.append(result)
        for j, p in zip(held, fold_preds):
            preds[j] = p

    out = predictions_file or os.path.join(rc.model_dir, "oof_predictions.npz")
    with atomic_file(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, index=np.arange(n), fold=fold_of, predictions=_stack(preds))
    summary = dict(summarize(results), k=k, folds=results)
    atomic_write_text(os.path.join(rc.model_dir, "kfold_summary.json"), json.dumps(summary, indent=1))
    _print_summary(summary)
    return dict(summary, fold_of=fold_of.tolist(), oof_file=out)


def _print_summary(summary, file=None):
    file = file or sys.stderr
    for key, mean in summary["mean"].items():
        vals = ", ".join(f"{r[key]:.5f}" for r in summary["folds"])
        print(f"[kfold] {key}: mean {mean:.5f} std {summary['std'][key]:.5f}  ({vals})", file=file)


# ---------------------------------------------------------------------------- CLI

def _read_lines(path, header):
    with open(path, encoding="utf-8", newline="\n") as f:
        lines = [l[:-1] if l.endswith("\n") else l for l in f]
    head = None
    if header:
        if not lines:
            raise SystemExit(f"kfold: {path} is empty")
        head, lines = lines[0], lines[1:]
    return head, lines


def _write_lines(path, head, lines):
    from propeller.fsutil import atomic_write_text
    os.makedirs(os.path.dirname(path), exist_ok=True)
    body = ([head] if head is not None else []) + lines
    atomic_write_text(path, "".join(l + "\n" for l in body))


def _command(template, values):
    return python_command([arg.format(**values) for arg in template])


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        raise SystemExit("kfold: put the training command after `--` (see python -m propeller.tools.kfold -h)")
    cut = argv.index("--")
    ours, template = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(prog="python -m propeller.tools.kfold",
                                 usage="%(prog)s --k K --data FILE --work_dir DIR [options] -- COMMAND ARGS...",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--data", required=True, help="the data file to split, one example a line")
    ap.add_argument("--work_dir", required=True)
    ap.add_argument("--header", action="store_true", help="the first line is a header, copied to every split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stratify_column", type=int, help="tab-separated column to stratify on (-1: the last)")
    ap.add_argument("--rerun", action="store_true", help="run folds again even if their result file exists")
    args = ap.parse_args(ours)
    if not template:
        ap.error("no command after --")

    head, lines = _read_lines(args.data, args.header)
    strat = None
    if args.stratify_column is not None:
        strat = [l.split("\t")[args.stratify_column] for l in lines]
    try:
        fold_of = assign_folds(len(lines), args.k, args.seed, strat)
    except ValueError as e:
        raise SystemExit(f"kfold: {e}")
    work = os.path.abspath(args.work_dir)
    results, oof = [], {}
    for i in range(args.k):
        fold_dir = os.path.join(work, f"fold_{i}")
        held = np.flatnonzero(fold_of == i)
        data_dir = os.path.join(fold_dir, "data")
        values = {"fold": i, "k": args.k, "data_dir": data_dir,
                  "train_file": os.path.join(data_dir, "train", "part-0"),
                  "dev_file": os.path.join(data_dir, "dev", "part-0"),
                  "model_dir": os.path.join(fold_dir, "model"),
                  "result_file": os.path.join(fold_dir, "result.json"),
                  "pred_file": os.path.join(fold_dir, "predictions.txt")}
        _write_lines(values["train_file"], head, [lines[j] for j in np.flatnonzero(fold_of != i)])
        _write_lines(values["dev_file"], head, [lines[j] for j in held])
        if args.rerun or not os.path.exists(values["result_file"]):
            for stale in (values["result_file"], values["pred_file"]):
                if os.path.exists(stale):
                    os.remove(stale)
            env = dict(os.environ, KFOLD_FOLD=str(i), KFOLD_K=str(args.k), KFOLD_DATA_DIR=data_dir,
                       KFOLD_MODEL_DIR=values["model_dir"], KFOLD_RESULT_FILE=values["result_file"],
                       KFOLD_PRED_FILE=values["pred_file"])
            cmd = _command(template, values)
            print(f"[kfold] fold {i}/{args.k}: {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr)
            code, tail = run_echoing(cmd, env, f"[fold {i}] ")
            if code != 0:
                raise SystemExit(f"kfold: fold {i} failed with exit code {code}")
            if not os.path.exists(values["result_file"]):
                found = last_json_line(tail)
                if found is None:
                    raise SystemExit(f"kfold: fold {i} wrote no {values['result_file']} and printed no JSON result")
                _write_lines(values["result_file"], None, [json.dumps(found)])
        else:
            print(f"[kfold] fold {i}: {values['result_file']} exists, skipped (--rerun to train again)",
                  file=sys.stderr)
        result = read_result(values["result_file"])
        results.append(dict(result, fold=i, eval_size=int(len(held))))
        if os.path.exists(values["pred_file"]):
            _, pred_lines = _read_lines(values["pred_file"], False)
            if len(pred_lines) != len(held):
                raise SystemExit(f"kfold: fold {i}: {len(pred_lines)} predictions for {len(held)} dev lines")
            oof.update(zip(held.tolist(), pred_lines))

    summary = dict(summarize(results), k=args.k, seed=args.seed, data=os.path.abspath(args.data), folds=results)
    _write_lines(os.path.join(work, "kfold_summary.json"), None, [json.dumps(summary, indent=1)])
    if oof:
        if len(oof) != len(lines):
            print(f"[kfold] only {len(oof)} of {len(lines)} lines have out-of-fold predictions", file=sys.stderr)
        _write_lines(os.path.join(work, "oof_predictions.tsv"), None,
                     [f"{j}\t{fold_of[j]}\t{oof[j]}" for j in sorted(oof)])
    _print_summary(summary, sys.stdout)
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
