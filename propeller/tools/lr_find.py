"""Learning-rate finder around any training command that trains with Propeller's Learner:

    python -m propeller.tools.lr_find [--min_lr 1e-7] [--max_lr 10] [--steps 200] [--out lr_find] -- \\
        example/finetune_classifier.py --data_dir data/demo/sentiment --vocab_file data/demo/vocab.txt \\
            --warm_start_from output/demo/ernie2 --hparam '{"batch_size": 32}'

runs the command once, training ``--steps`` steps (batches as the command makes them, its
warm start, optimiser, clipping and hparams) with the learning rate rising exponentially from
``--min_lr`` to ``--max_lr``; stops early when the smoothed loss passes ``--diverge`` times its
minimum. Writes ``OUT/lr_find.json`` (every step's lr and loss, the smoothed loss, the
suggestion) and ``OUT/lr_find.png`` (loss against lr, log scale, the suggestion marked), and
prints the suggested learning rate: the LR at the smoothed loss's minimum divided by 10
(fastai's rule; the steepest-descent point is printed beside it).

Leaves nothing behind in the command's model_dir: the command runs with its ``--run_config``
pointed at a scratch directory, removed afterwards, and the sweep saves no checkpoint, runs
no evaluation and exports nothing (see ``propeller/train/lr_find.py``). One process: run it
without ``paddle.distributed.launch``.
"""
import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile

from propeller.tools.command import python_command, read_result, run_echoing, with_run_config
from propeller.train import lr_find

__all__ = ["main"]


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        raise SystemExit("lr_find: put the training command after `--` (see python -m propeller.tools.lr_find -h)")
    cut = argv.index("--")
    ours, template = argv[:cut], argv[cut + 1:]
    d = lr_find.DEFAULTS
    ap = argparse.ArgumentParser(prog="python -m propeller.tools.lr_find",
                                 usage="%(prog)s [options] -- COMMAND ARGS...",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min_lr", type=float, default=d["min_lr"])
    ap.add_argument("--max_lr", type=float, default=d["max_lr"])
    ap.add_argument("--steps", type=int, default=d["steps"], help="sweep length in optimisation steps")
    ap.add_argument("--beta", type=float, default=d["beta"], help="loss smoothing (exponential moving average)")
    ap.add_argument("--diverge", type=float, default=d["diverge"], help="stop when the smoothed loss exceeds this "
                                                                         "multiple of its minimum")
    ap.add_argument("--out", default="lr_find", help="where lr_find.json and lr_find.png go")
    args = ap.parse_args(ours)
    if not template:
        ap.error("no command after --")
    out = os.path.abspath(args.out)
    settings = {k: getattr(args, k) for k in d}
    lr_find.LRSweep(out, **settings)  # bad settings fail here, before the command starts
    scratch = tempfile.mkdtemp(prefix="lr_find_")
    try:
        cmd = python_command(with_run_config(template, {"model_dir": os.path.join(scratch, "model")}))
        result_path = os.path.join(out, "lr_find.json")
        if os.path.exists(result_path):
            os.remove(result_path)  # a stale result must not pass for this run's
        print(f"[lr_find] {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr)
        env = dict(os.environ, **{lr_find.ENV: json.dumps(dict(settings, out=out))})
        code, _ = run_echoing(cmd, env, "")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if code != 0:
        raise SystemExit(f"lr_find: the command failed with exit status {code}")
    if not os.path.exists(result_path):
        raise SystemExit("lr_find: the command ended without training through propeller's Learner "
                         f"(no {result_path})")
    res = read_result(result_path)
    sug = res["suggestion"]
    fmt = lambda x: "n/a" if x is None else f"{x:.2e}"  # noqa: E731
    print(f"[lr_find] {res['steps_run']} steps{' (stopped: the loss diverged)' if res['stopped_early'] else ''}; "
          f"suggested learning rate: {fmt(sug['suggested'])} (the LR at the smoothed loss's minimum / 10; "
          f"steepest descent at {fmt(sug['steepest'])}); plot: {os.path.join(out, 'lr_find.png')}")
    if sug.get("warning"):
        print(f"[lr_find] warning: {sug['warning']}")
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
