"""The trainer's compiled forward (to_static, issue 13) on the other model families, through
propeller's Learner: ERNIE 2.0 multi-task pre-training (graph breaks where the forward reads the
batch's task list on the host) and the distillation students. Each (model, variant) runs in its
own child process, dygraph and to_static alternating; prints SOT's compile count, the time of the
first 16 steps (compiles included) and the mean step after them.

    python bench/bench_to_static_models.py [--steps 48] [--only multitask,bow,cnn,lstm,ernie_tiny]

multitask: hidden 256, 4 layers, batch 32, the 5 Chinese demo tasks one per batch, on the tests'
hand-made documents (short sequences; tests/test_pretrain_*.py build them, nothing is downloaded).
Students: gold-label distillation on random ids, batch 32, padded lengths cycling 16..64.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def multitask_run(steps):
    from pathlib import Path

    from ernie.pretraining.multitask import MultiTaskPretrainModel, build_tasks
    from ernie.pretraining.pipeline import MultiTaskStream
    from ernie.pretraining.schedule import Schedule
    from test_pretrain_tasks import ctx_for, encode_docs, make_tokenizer
    from test_pretrain_train import TINY, _docs
    tmp = Path(tempfile.mkdtemp())
    tok = make_tokenizer(tmp, docs=_docs(8), extra=["0 1 2 3"])
    corpus = encode_docs(tok, _docs(8))
    spec = {"km": {}, "sr": {"max_segments": 3}, "sd": {}, "dr": {"lang": "zh"}, "ir": {}}
    cfg = dict(TINY, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
               vocab_size=len(tok.vocab), hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    sched = Schedule([{"budgets": {t: steps for t in spec}}], list(spec), batch_size=32, seed=2)
    stream = MultiTaskStream(build_tasks(spec), sched, corpus, ctx_for(tok, corpus, 128), seed=2)
    batches = [b for _, b in zip(range(steps), stream)]
    hp = dict(ernie_config=cfg, tasks=spec, task_order=list(spec), learning_rate=1e-4, warmup_proportion=0.0)
    return MultiTaskPretrainModel, hp, batches, dict(split_batches="none")


def student_run(student, steps):
    import numpy as np
    import paddle
    from distill.model import DistillModel, check_hparams
    rng = np.random.RandomState(0)
    batches = []
    for i in range(steps):
        n = [16, 24, 32, 48, 64, 40, 56, 20][i % 8]
        ids = rng.randint(1, 5000, size=(32, n)).astype("int64")
        ids[:, n - rng.randint(0, n // 2):] = 0
        ids[:, 0] = 1
        gold = rng.randint(0, 2, size=(32,)).astype("int64")
        batches.append((paddle.to_tensor(ids), (paddle.to_tensor(gold), paddle.zeros([32, 2]), paddle.zeros([32]))))
    hp = check_hparams({"student": student, "distill_mode": "gold", "vocab_size": 5000, "learning_rate": 1e-3})
    model = DistillModel(hp)
    model.to_static = True  # measure the compiled path even where the student declines it
    return model, hp, batches, {}


def child(which, variant, steps):
    import propeller.paddle as propeller
    from paddle.jit.sot.opcode_translator.executor.executor_cache import OpcodeExecutorCache
    model, hp, batches, kw = multitask_run(steps) if which == "multitask" else student_run(which, steps)
    times = []

    class Timer(propeller.RunHook):
        def before_train(self, state):
            self.t = time.perf_counter()

        def after_step(self, state):
            now = time.perf_counter()
            times.append(now - self.t)
            self.t = now

    rc = {"model_dir": tempfile.mkdtemp(), "max_steps": steps, "seed": 1, "log_steps": None, "save_steps": None,
          "eval_steps": None, "to_static": variant == "to_static"}
    learner = propeller.Learner(model, rc, propeller.HParams(**dict(hp.items())), **kw)
    c0 = OpcodeExecutorCache().translate_count
    learner.train(batches, [Timer()])
    failed = learner._static.failed if learner._static is not None else None
    print("RESULT " + json.dumps({"model": which, "variant": variant, "compiles": OpcodeExecutorCache().translate_count - c0,
                                  "failed": repr(failed) if failed else None, "first16_s": sum(times[:16]),
                                  "step_after16_s": statistics.mean(times[16:])}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--only", default="multitask,bow,cnn,lstm,ernie_tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.steps)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=ROOT, GLOG_minloglevel="2")
    print(f"# load average at start: {os.getloadavg()}")
    rows = []
    for i, which in enumerate(args.only.split(",")):
        for variant in (("dygraph", "to_static") if i % 2 == 0 else ("to_static", "dygraph")):
            out = subprocess.run([sys.executable, __file__, "--child", which, variant, "--steps", str(args.steps)],
                                 env=env, capture_output=True, text=True)
            line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if out.returncode or not line:
                print(f"# {which}/{variant} failed:\n{out.stderr[-2000:]}")
                continue
            rows.append(json.loads(line[0][7:]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"# load average at end: {os.getloadavg()}")
    by = {(r["model"], r["variant"]): r for r in rows}
    print(f"{'model':10} {'dygraph ms/step':>16} {'to_static ms/step':>18} {'speed-up':>9} {'compiles':>9} "
          f"{'first 16 steps s (dy / ts)':>27}")
    for which in args.only.split(","):
        d, s = by.get((which, "dygraph")), by.get((which, "to_static"))
        if d and s:
            print(f"{which:10} {d['step_after16_s'] * 1e3:16.1f} {s['step_after16_s'] * 1e3:18.1f} "
                  f"{d['step_after16_s'] / s['step_after16_s']:9.2f} {s['compiles']:9d} "
                  f"{d['first16_s']:12.2f} / {s['first16_s']:.2f}")


if __name__ == "__main__":
    main()
