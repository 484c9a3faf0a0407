"""Propeller's overhead: fine-tuning steps/s through ``train_and_eval`` vs a bare Paddle loop.

Both train the same ErnieForSequenceClassification (small config: hidden 128, 2 layers,
seq 128, batch 16 by default: the smaller the step, the larger Propeller's fixed per-step cost
is relative to it), with the same optimizer (``build_optimizer``: AdamW, no decay on
bias/norm, warm-up + linear decay, global-norm clip) on the same pre-built numpy batches,
converted to tensors each step in both. The Propeller run keeps its defaults: console and
VisualDL logging every ``--log_steps``, per-step dropout re-seeding, the per-step loss check,
the final checkpoint.

Measured in one process:

  paired   ``train_and_eval`` runs with a hook that, after each Propeller step, runs one step
           of the bare loop on its own model. Step k of both runs back to back, so load from
           other processes on a shared machine hits both alike. Per-step overhead = median
           over steps of (Propeller step time / bare step time) - 1. The Propeller step time
           is everything between two bare steps: fetching the batch, the step, the loss
           check, the other hooks, the stop test.
           The same run times Propeller's fixed costs: from the call to the first step (Learner,
           model, optimizer, hooks, VisualDL writer) and from the last step to the return (final
           checkpoint, closing hooks), against building the bare model and optimizer. The
           end-to-end overhead of an N-step run (``--steps``) follows from those figures.
  blocks   optional (``--rounds``): whole ``train_and_eval`` calls and whole bare loops timed as
           blocks, alternating (order flipped each round). Direct, but on a shared machine the
           load changes between blocks by more than the overhead being measured.

    python bench/bench_propeller.py
    python bench/bench_propeller.py --hidden 256 --layers 4 --batch 32 --paired_steps 20
    python bench/bench_propeller.py --steps 20 --rounds 4      # also time whole blocks

Prints a table and one JSON line.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

THREADS = os.environ.get("OMP_NUM_THREADS")  # read before paddle's import sets it to 1 when unset
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from propeller import cpu_env  # noqa: E402,F401  (sets MKL_DEBUG_CPU_TYPE on AMD before any paddle import)

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

import propeller.paddle as propeller  # noqa: E402
from ernie.modeling import ErnieConfig, ErnieForSequenceClassification  # noqa: E402
from propeller.train.optim import build_optimizer  # noqa: E402


def make_config(args):
    return ErnieConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                       num_attention_heads=max(1, args.hidden // 64), intermediate_size=4 * args.hidden,
                       max_position_embeddings=max(513, args.seq + 1), hidden_act="gelu")


def make_batches(args, n):
    rng = np.random.RandomState(0)
    out = []
    for _ in range(n):
        ids = rng.randint(5, args.vocab, size=(args.batch, args.seq)).astype("int64")
        out.append((ids, rng.randint(0, 2, size=(args.batch,)).astype("int64")))
    return out


def hparams(args):
    return propeller.HParams(learning_rate=5e-5, warmup_proportion=0.1, weight_decay=0.01, max_grad_norm=1.0,
                             ernie_config=make_config(args).to_dict())


class ClsModel(propeller.train.Model):
    def __init__(self, hp, mode, run_config):
        super().__init__(hp, mode, run_config)
        self.net = ErnieForSequenceClassification(ErnieConfig.from_dict(dict(hp.ernie_config)), num_labels=2)

    def forward(self, ids):
        return self.net(ids)

    def loss(self, logits, labels):
        return F.cross_entropy(logits, labels.reshape([-1, 1]))


class BareLoop:
    """The baseline: the same model, optimizer and batches in a plain loop."""

    def __init__(self, args, n_steps):
        paddle.seed(0)
        self.model = ErnieForSequenceClassification(make_config(args), num_labels=2)
        self.opt, self.sched = build_optimizer(self.model, hparams(args), n_steps)
        self.model.train()

    def step(self, ids, labels):
        logits = self.model(paddle.to_tensor(ids))
        loss = F.cross_entropy(logits, paddle.to_tensor(labels).reshape([-1, 1]))
        loss.backward()
        self.opt.step()
        self.opt.clear_grad()
        self.sched.step()
        return loss


def _train_and_eval(args, batches, hooks):
    with tempfile.TemporaryDirectory(prefix="bench_propeller_") as d:
        rc = propeller.RunConfig(model_dir=d, max_steps=len(batches), log_steps=args.log_steps, save_steps=None,
                                 eval_steps=None, seed=0)
        t0 = time.perf_counter()
        propeller.train_and_eval(ClsModel, hparams(args), rc, propeller.Dataset.from_list(batches),
                                 train_hooks=hooks)
        return time.perf_counter() - t0  # the final checkpoint is in; deleting the temp dir is not


class _Paired(propeller.RunHook):
    """After each Propeller step, one bare step; records both step times."""

    def __init__(self, bare, batches):
        self.bare, self.batches = bare, iter(batches)
        self.prop_times, self.bare_times, self._t = [], [], None
        self.first_step_at = self.last_step_at = self.after_train_at = None

    def before_train(self, state):
        self._t = self.first_step_at = time.perf_counter()

    def after_step(self, state):
        t0 = time.perf_counter()
        self.prop_times.append(t0 - self._t)
        self.bare.step(*next(self.batches))
        self._t = self.last_step_at = time.perf_counter()
        self.bare_times.append(self._t - t0)

    def after_train(self, state):  # user hooks come last: the checkpoint is written by now
        self.after_train_at = time.perf_counter()


def paired(args):
    batches = make_batches(args, args.paired_steps)
    t0 = time.perf_counter()
    bare_loop = BareLoop(args, len(batches))
    bare_setup = time.perf_counter() - t0
    hook = _Paired(bare_loop, batches)
    t_call = time.perf_counter()
    total = _train_and_eval(args, batches, [hook])
    t_return = t_call + total
    w = args.warmup
    prop, bare = np.asarray(hook.prop_times[w:]), np.asarray(hook.bare_times[w:])
    out = {"overhead": float(np.median(prop / bare) - 1), "propeller_median_s": float(np.median(prop)),
           "bare_median_s": float(np.median(bare)), "propeller_p10_s": float(np.percentile(prop, 10)),
           "bare_p10_s": float(np.percentile(bare, 10)), "steps": int(len(prop)),
           "bare_setup_s": bare_setup, "propeller_setup_s": hook.first_step_at - t_call,
           "propeller_teardown_s": t_return - hook.last_step_at,
           "propeller_final_checkpoint_s": hook.after_train_at - hook.last_step_at}
    n, step = args.steps, out["bare_median_s"]
    bare_run = out["bare_setup_s"] + n * step
    prop_run = out["propeller_setup_s"] + n * step * (1 + out["overhead"]) + out["propeller_teardown_s"]
    out["e2e_overhead_estimate"] = prop_run / bare_run - 1
    return out


def blocks(args):
    batches = make_batches(args, args.steps)

    def bare():
        t0 = time.perf_counter()
        loop = BareLoop(args, len(batches))
        for ids, labels in batches:
            loss = loop.step(ids, labels)
        float(loss)
        return time.perf_counter() - t0

    times = {"bare": [], "propeller": []}
    for r in range(args.rounds):
        order = [("bare", bare), ("propeller", lambda: _train_and_eval(args, batches, []))]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            times[name].append(fn())
            print(f"  block round {r} {name:9s} {len(batches) / times[name][-1]:6.3f} steps/s", flush=True)
    ratios = [p / b - 1 for p, b in zip(times["propeller"], times["bare"])]
    return {"overhead": float(statistics.median(ratios)), "bare_s": times["bare"], "propeller_s": times["propeller"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=18000)
    ap.add_argument("--paired_steps", type=int, default=60, help="steps of the paired measurement")
    ap.add_argument("--warmup", type=int, default=3, help="first paired steps left out")
    ap.add_argument("--steps", type=int, default=1000, help="run length for the end-to-end estimate, and "
                    "the steps of each block with --rounds")
    ap.add_argument("--rounds", type=int, default=0, help="block rounds (0: none)")
    ap.add_argument("--log_steps", type=int, default=10)
    args = ap.parse_args(argv)
    if not 0 <= args.warmup < args.paired_steps:
        ap.error("need 0 <= --warmup < --paired_steps")
    import logging
    logging.getLogger("propeller").setLevel(logging.WARNING)  # the bench's own output only

    print(f"hidden {args.hidden}, {args.layers} layers, seq {args.seq}, batch {args.batch}, "
          f"OMP_NUM_THREADS {THREADS or 'unset (paddle uses 1)'}", flush=True)
    p = paired(args)
    print(f"paired ({p['steps']} steps): bare {1e3 * p['bare_median_s']:.1f} ms/step "
          f"({1 / p['bare_median_s']:.3f} steps/s), propeller {1e3 * p['propeller_median_s']:.1f} ms/step "
          f"({1 / p['propeller_median_s']:.3f} steps/s); p10 {1e3 * p['bare_p10_s']:.1f} / "
          f"{1e3 * p['propeller_p10_s']:.1f} ms", flush=True)
    print(f"  per-step overhead (median of paired ratios): {100 * p['overhead']:.2f}%", flush=True)
    print(f"fixed costs: propeller call -> first step {p['propeller_setup_s']:.3f} s (bare model + optimizer "
          f"{p['bare_setup_s']:.3f} s); last step -> return {p['propeller_teardown_s']:.3f} s "
          f"(final checkpoint {p['propeller_final_checkpoint_s']:.3f} s)")
    print(f"  end-to-end overhead of a {args.steps}-step run (from the figures above): "
          f"{100 * p['e2e_overhead_estimate']:.2f}%", flush=True)
    b = blocks(args) if args.rounds else None
    if b:
        print(f"  blocks: overhead {100 * b['overhead']:.2f}% (median of {args.rounds} rounds of {args.steps} steps)")
    print(json.dumps({"bench": "propeller_overhead", "config": dict(vars(args), omp_num_threads=THREADS),
                      "paired": p, "blocks": b}))


if __name__ == "__main__":
    main()
