"""A tiny Propeller training run for the trainer tests (in-process and as a subprocess).

    python tests/_propeller_train_script.py --model_dir D --max_steps 12 --save_steps 4 [--dropout 0.1]
    python -m paddle.distributed.launch --nproc_per_node 2 tests/_propeller_train_script.py ...

Model: a 1-layer ErnieModel (hidden 16) + dropout + Linear on synthetic, deterministic data
(ids, example index, label) that is shuffled with a fixed seed and repeated. At the end rank 0
writes the parameters to ``<model_dir>/final_params.npz``. ``--record_dir`` makes every rank
write ``rank<r>.json``: the example indices of each training micro-batch, the steps it saved
and how many evaluations it ran. ``PROPELLER_TEST_PAUSE_AT=N`` (env, so the command line stays
the same for a restart) makes the run write ``<model_dir>/paused`` at step N and then wait to
be killed; ``PROPELLER_TEST_FAIL_AT=N`` makes the last rank raise at step N.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import propeller.paddle as propeller  # noqa: E402

VOCAB, MAXLEN = 40, 8
SCRIPT = os.path.abspath(__file__)


def subprocess_env(**extra):
    """Environment for running this script in a child: importable repo, one thread (deterministic
    and polite on shared cores), no launcher variables inherited from an enclosing job."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PADDLE_", "PROPELLER_TEST_"))}
    env.update(PYTHONPATH=os.pathsep.join([ROOT, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def make_examples(n=48, seed=0):
    """(ids, index, label): ids of length 3..MAXLEN, label = whether token 1..9 dominates."""
    rng = np.random.RandomState(seed)
    out = []
    for i in range(n):
        ids = rng.randint(1, VOCAB, size=rng.randint(3, MAXLEN + 1)).astype("int64")
        out.append((ids, np.int64(i), np.int64(int((ids < 10).sum() * 3 > len(ids)))))
    return out


def train_dataset(examples, batch_size, seed=7):
    return (propeller.Dataset.from_list(examples).shuffle(len(examples), seed=seed).repeat()
            .padded_batch(batch_size))


def eval_dataset(examples, batch_size=8):
    return propeller.Dataset.from_list(examples).padded_batch(batch_size)


class TinyModel(propeller.train.Model):
    """Batch: (ids, index, label). ``index`` is only recorded (in training), never computed with."""

    seen = None  # a list to record example indices into, or None
    HPARAMS = frozenset({"dropout"})  # the model's own hparam: declared, so the trainer accepts it

    def __init__(self, hparams, mode, run_config):
        super().__init__(hparams, mode, run_config)
        import paddle
        from ernie.modeling import ErnieConfig, ErnieModel
        p = float(hparams.get("dropout", 0.1))
        cfg = ErnieConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=MAXLEN + 2, hidden_dropout_prob=p,
                          attention_probs_dropout_prob=p)
        self.ernie = ErnieModel(cfg)
        self.dropout = paddle.nn.Dropout(p)
        self.fc = paddle.nn.Linear(16, 2)

    def forward(self, ids, index=None):
        if self.training and TinyModel.seen is not None and index is not None:
            TinyModel.seen.append([int(i) for i in index.numpy().reshape(-1)])
        _, pooled = self.ernie(ids)
        return self.fc(self.dropout(pooled))

    def loss(self, logits, labels):
        import paddle
        return paddle.nn.functional.cross_entropy(logits, labels.reshape([-1, 1]))

    def metrics(self, logits, labels):
        return {"acc": propeller.metrics.Acc(labels, logits.argmax(-1))}

    def inference_spec(self):
        import paddle
        return [paddle.static.InputSpec([None, None], "int64", name="ids")]


def params_of(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


class _PauseHook(propeller.RunHook):
    def __init__(self, at, marker):
        self.at, self.marker = at, marker

    def after_step(self, state):
        if state.gstep == self.at:
            with open(self.marker, "w") as f:
                f.write(str(state.gstep))
            deadline = time.monotonic() + 300  # never outlive a crashed test by long
            while time.monotonic() < deadline:
                time.sleep(0.05)
            sys.exit(3)


class _FailHook(propeller.RunHook):
    def __init__(self, at):
        self.at = at

    def after_step(self, state):
        if state.gstep == self.at:
            raise RuntimeError(f"test failure at step {state.gstep}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--max_steps", type=int, default=12)
    ap.add_argument("--save_steps", type=int, default=4)
    ap.add_argument("--batch_size", type=int, default=8)
    ap.add_argument("--accum", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--num_workers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval_steps", type=int, default=0)
    ap.add_argument("--record_dir")
    args = ap.parse_args(argv)

    from propeller.train import distribution as dist
    rc = propeller.RunConfig(model_dir=args.model_dir, max_steps=args.max_steps, save_steps=args.save_steps,
                             eval_steps=args.eval_steps or None, log_steps=4, seed=args.seed, max_ckpt=3)
    hp = propeller.HParams(learning_rate=5e-3, warmup_steps=2, dropout=args.dropout,
                           gradient_accumulation_steps=args.accum, num_workers=args.num_workers)
    examples = make_examples()
    if args.record_dir:
        TinyModel.seen = []
    learner = propeller.Learner(TinyModel, rc, hp)
    saves, evals = [], []
    if args.record_dir:
        save, evaluate = learner.saver.save, learner.evaluate
        learner.saver.save = lambda step, *a, **k: (saves.append(step), save(step, *a, **k))[1]
        learner.evaluate = lambda *a, **k: (evals.append(1), evaluate(*a, **k))[1]
    hooks = []
    if os.environ.get("PROPELLER_TEST_FAIL_AT") and dist.rank() == dist.world_size() - 1:
        hooks.append(_FailHook(int(os.environ["PROPELLER_TEST_FAIL_AT"])))
    if os.environ.get("PROPELLER_TEST_PAUSE_AT"):
        hooks.append(_PauseHook(int(os.environ["PROPELLER_TEST_PAUSE_AT"]), os.path.join(args.model_dir, "paused")))
    evals_ds = {"dev": eval_dataset(examples[:16])} if args.eval_steps else None
    state = learner.train(train_dataset(examples, args.batch_size), hooks, evals_ds)
    if args.record_dir:
        os.makedirs(args.record_dir, exist_ok=True)
        with open(os.path.join(args.record_dir, f"rank{dist.rank()}.json"), "w") as f:
            json.dump({"batches": TinyModel.seen, "saves": saves, "evals": len(evals), "gstep": state.gstep,
                       "world": dist.world_size()}, f)
    if dist.is_master():
        np.savez(os.path.join(args.model_dir, "final_params.npz"), **params_of(learner.model))
    return state


if __name__ == "__main__":
    main()
