"""Average the parameters of several checkpoints into one (checkpoint averaging).

    python -m propeller.tools.average_checkpoints --inputs A B C --output OUT
    python -m propeller.tools.average_checkpoints --last 3 --model_dir output/run --output OUT

An input is a ``.pdparams`` file, a checkpoint dir holding ``model_state.pdparams``
(``model_dir/model_<step>/``), or a model_dir (its newest checkpoint). ``--last N`` takes the
newest N checkpoints listed in ``model_dir/ckpt_info``. Every input must have the same
parameter names and shapes. Floating-point parameters are averaged (in float64, then cast
back to their dtype); integer and boolean tensors (step counters, ids) must be equal in all
inputs and are copied. OUT ending in ``.pdparams`` is written as that file; otherwise OUT is a
directory that gets ``model_state.pdparams`` and ``meta.json`` (the inputs), so it can be used
wherever a checkpoint dir or ``--warm_start_from`` is accepted. Outputs are written atomically.
"""
import argparse
import json
import os
import sys

import numpy as np

__all__ = ["average_state_dicts", "average_checkpoints", "last_checkpoints"]


def last_checkpoints(model_dir, n):
    """Paths of the newest ``n`` checkpoints of ``model_dir`` (oldest first)."""
    from propeller.train.saver import Saver
    names = Saver(model_dir).list()
    if not names:
        raise FileNotFoundError(f"no checkpoints listed in {model_dir}")
    if n < 1:
        raise ValueError(f"--last must be >= 1, got {n}")
    if n > len(names):
        raise ValueError(f"asked for the last {n} checkpoints but {model_dir} has {len(names)}: {names}")
    return [os.path.join(model_dir, name) for name in names[-n:]]


def _load_numpy(path):
    import paddle
    from propeller.train.saver import resolve_model_state
    file = resolve_model_state(path)
    if not os.path.exists(file):
        raise FileNotFoundError(f"no model state at {path}")
    state = paddle.load(file, return_numpy=True)
    if not isinstance(state, dict):
        raise ValueError(f"{file} does not hold a state dict")
    return file, {k: np.asarray(v) for k, v in state.items()}


def average_state_dicts(paths):
    """{name: numpy array}: the element-wise mean of the state dicts at ``paths``."""
    if not paths:
        raise ValueError("nothing to average")
    first_file, first = _load_numpy(paths[0])
    sums = {k: v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v for k, v in first.items()}
    for path in paths[1:]:
        file, state = _load_numpy(path)
        if set(state) != set(first):
            missing, extra = sorted(set(first) - set(state)), sorted(set(state) - set(first))
            raise ValueError(f"{file} has different parameters from {first_file}: "
                             f"missing {missing}, unexpected {extra}")
        for k, v in state.items():
            if v.shape != first[k].shape:
                raise ValueError(f"{k}: shape {list(v.shape)} in {file} vs {list(first[k].shape)} in {first_file}")
            if np.issubdtype(first[k].dtype, np.floating):
                sums[k] = sums[k] + v.astype(np.float64)
            elif not np.array_equal(v, first[k]):
                raise ValueError(f"{k} is not floating point and differs between {first_file} and {file}: "
                                 "cannot average it")
    n = len(paths)
    return {k: (s / n).astype(first[k].dtype) if np.issubdtype(first[k].dtype, np.floating) else s
            for k, s in sums.items()}


def average_checkpoints(inputs, output):
    """Average ``inputs`` and write the result to ``output`` (see the module doc). Returns the file written."""
    import paddle
    from propeller.fsutil import atomic_dir, atomic_file
    from propeller.train.saver import MODEL_FILE
    avg = {k: paddle.to_tensor(v) for k, v in average_state_dicts(list(inputs)).items()}
    if output.endswith(".pdparams"):
        with atomic_file(output) as tmp:
            paddle.save(avg, tmp)
        return output
    with atomic_dir(output) as tmp:
        paddle.save(avg, os.path.join(tmp, MODEL_FILE))
        with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as f:
            json.dump({"averaged_from": [os.path.abspath(p) for p in inputs]}, f, indent=1)
    return os.path.join(output, MODEL_FILE)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m propeller.tools.average_checkpoints",
                                 description="Average the parameters of several checkpoints into one.")
    ap.add_argument("--inputs", nargs="+", help=".pdparams files, checkpoint dirs or model_dirs")
    ap.add_argument("--last", type=int, help="average the newest N checkpoints of --model_dir")
    ap.add_argument("--model_dir", help="with --last: the run's model_dir (holding ckpt_info)")
    ap.add_argument("--output", required=True, help="a .pdparams file, or a directory")
    args = ap.parse_args(argv)
    if bool(args.inputs) == (args.last is not None):
        ap.error("give either --inputs or --last N --model_dir D")
    if args.last is not None and not args.model_dir:
        ap.error("--last needs --model_dir")
    inputs = args.inputs or last_checkpoints(args.model_dir, args.last)
    try:
        out = average_checkpoints(inputs, args.output)
    except (ValueError, FileNotFoundError) as e:
        print(f"average_checkpoints: {e}", file=sys.stderr)
        return 2
    print(f"averaged {len(inputs)} checkpoints -> {out}")
    for p in inputs:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    from propeller.cli import run_main  # user errors: one message, exit status 2
    sys.exit(run_main(main))
