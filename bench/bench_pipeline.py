"""Multi-task pre-training input pipeline benchmark.

    python bench/bench_pipeline.py [--data data/demo] [--steps 30] [--rounds 2]

1. Step time: the same model (config/ernie_small_config.json, batch 16, max_seqlen 128, the
   Chinese demo tasks KM, SR, SD, DR, IR one task per batch) trained (a) on the real
   multi-task stream (documents read from memory-mapped shards, examples built, masked and
   collated on the fly) and (b) on the same batches built beforehand as paddle tensors. Runs
   alternate a, b, b, a so both see the same background load; the median step time of each
   (first 3 steps of a run dropped) is reported with the ratio a/b. As the machine is shared,
   run-to-run noise can exceed the difference, so (a) also times, inside the same run, the
   part of each step spent building the batch and converting it to tensors.
2. Peak memory of training (maxrss of a child process, 40 steps) on shards of the corpus at
   1x and 4x size.
3. Resume: seconds until the first batch of a stream started at position --resume_at (300),
   with the cursor log written by an earlier pass (cursor_every 64) vs replaying every example
   before it. ``--resume_only`` runs just this.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TASKS = {"km": {}, "sr": {"max_segments": 3}, "sd": {}, "dr": {"lang": "zh"}, "ir": {}}


def build(shards, vocab, steps, batch_size=16, max_seqlen=128, seed=1, cursor_dir=None):
    from ernie.modeling import ErnieConfig
    from ernie.pretraining.encode import load_tokenizer
    from ernie.pretraining.multitask import build_tasks
    from ernie.pretraining.pipeline import MultiTaskStream
    from ernie.pretraining.schedule import Schedule
    from ernie.pretraining.shards import ShardCorpus
    from ernie.pretraining.tasks import TaskContext
    corpus = ShardCorpus(shards)
    tok = load_tokenizer(vocab)
    cfg = ErnieConfig.from_json(os.path.join(ROOT, "config", "ernie_small_config.json")).to_dict()
    cfg.update(vocab_size=corpus.vocab_size, use_task_id=True)
    per = -(-steps // len(TASKS))
    sched = Schedule([{"budgets": {t: per for t in TASKS}}], list(TASKS), batch_size, seed=seed)
    ctx = TaskContext(corpus.vocab_size, max_seqlen, corpus=corpus, tokenizer=tok)
    stream = MultiTaskStream(build_tasks(TASKS), sched, corpus, ctx, seed=seed, cursor_dir=cursor_dir)
    hp = dict(ernie_config=cfg, tasks=TASKS, task_order=list(TASKS), learning_rate=5e-4, warmup_proportion=0.0)
    return stream, hp


def train(data, hp, steps, model_dir):
    import propeller.paddle as propeller
    from ernie.pretraining.multitask import MultiTaskPretrainModel

    timer = propeller.train.StepTimerHook()
    rc = {"model_dir": model_dir, "max_steps": steps, "seed": 1, "log_steps": None, "save_steps": None,
          "eval_steps": None}
    learner = propeller.Learner(MultiTaskPretrainModel, rc, propeller.HParams(**hp), split_batches="none")
    learner.train(data, train_hooks=[timer])
    return timer.times


def _tensors(batch):
    import paddle
    if isinstance(batch, tuple):
        return tuple(_tensors(x) for x in batch)
    return paddle.to_tensor(batch)


class Timed:
    """The stream, timing how long each batch takes to build and to become tensors (the part
    of a training step the pipeline adds), inside the training run itself."""

    def __init__(self, stream):
        self.stream, self.times = stream, []

    def __iter__(self):
        it = iter(self.stream)
        while True:
            t0 = time.perf_counter()
            b = next(it, None)
            if b is None:
                return
            b = _tensors(b)
            self.times.append(time.perf_counter() - t0)
            yield b


def step_time(shards, vocab, steps, rounds, tmp):
    stream, hp = build(shards, vocab, steps)
    prebuilt = [_tensors(b) for b in stream]  # (b): the same batches, built before training
    res = {"pipeline": [], "prebuilt": [], "pipeline_share": []}
    for r in range(rounds):
        # alternate which goes first, so that neither always runs right after the other
        for kind in (("pipeline", "prebuilt") if r % 2 == 0 else ("prebuilt", "pipeline")):
            timed = Timed(stream)
            times = train(timed if kind == "pipeline" else prebuilt, hp, steps, os.path.join(tmp, f"{kind}{r}"))
            res[kind].append(statistics.median(times[3:]))
            msg = f"round {r} {kind:8s}: median step {res[kind][-1] * 1000:.1f} ms over {len(times) - 3} steps"
            if kind == "pipeline":
                share = sum(timed.times[3:]) / sum(times[3:])
                res["pipeline_share"].append(share)
                msg += f"; batch building + tensor conversion: {statistics.median(timed.times[3:]) * 1000:.1f} ms " \
                       f"= {share * 100:.1f}% of the step time"
            print(msg, flush=True)
    return res


def resume_time(shards, vocab, at, tmp):
    """Seconds to the first batch of a stream started at ``at``: (with the cursor log, replaying)."""
    logged, _ = build(shards, vocab, at + 16, cursor_dir=os.path.join(tmp, "cursors"))
    for _, _b in zip(range(at + 1), logged):  # an earlier run: writes the log up to ``at``
        pass
    plain, _ = build(shards, vocab, at + 16)
    out = []
    for stream in (logged, plain):
        t0 = time.perf_counter()
        next(iter(stream.skip(at)))
        out.append(time.perf_counter() - t0)
    print(f"resume at position {at}: {out[0]:.3f} s with the cursor log (every {logged.cursor_every} batches) vs "
          f"{out[1]:.3f} s replaying every example before it", flush=True)
    return out


def child_memory(args):
    stream, hp = build(args.shards, args.vocab, args.steps)
    train(stream, hp, args.steps, args.out)
    print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def shards_for(files, vocab, lexicon, out):
    from ernie.pretraining.preprocess import build_shards
    if not os.path.exists(os.path.join(out, "index.json")):
        build_shards(files, vocab, out, 2, lexicon=lexicon, seed=1, progress=False)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "demo"))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--resume_at", type=int, default=300)
    ap.add_argument("--resume_only", action="store_true")
    ap.add_argument("--child_memory", action="store_true")
    ap.add_argument("--shards")
    ap.add_argument("--vocab")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child_memory:
        return child_memory(args)
    vocab, lexicon = os.path.join(args.data, "vocab.txt"), os.path.join(args.data, "zh_entities.txt")
    train_dir = os.path.join(args.data, "zh_corpus", "train")
    files = sorted(os.path.join(train_dir, f) for f in os.listdir(train_dir))
    tmp = tempfile.mkdtemp(prefix="bench_pipe_")
    try:
        s1 = shards_for(files, vocab, lexicon, os.path.join(tmp, "shards1x"))
        resume = resume_time(s1, vocab, args.resume_at, tmp)
        if args.resume_only:
            return
        res = step_time(s1, vocab, args.steps, args.rounds, tmp)
        a, b = statistics.median(res["pipeline"]), statistics.median(res["prebuilt"])
        share = statistics.median(res["pipeline_share"])
        print(f"step time: real pipeline {a * 1000:.1f} ms, pre-built tensors {b * 1000:.1f} ms, "
              f"ratio {a / b:.3f} ({(a / b - 1) * 100:+.1f}%; between-run noise on a shared machine); "
              f"measured inside the pipeline runs, the pipeline takes {share * 100:.1f}% of a step")
        big = os.path.join(tmp, "x4")
        os.makedirs(big)
        for t in range(4):
            for f in files:
                shutil.copy(f, os.path.join(big, f"{t}_{os.path.basename(f)}"))
        s4 = shards_for([big], vocab, lexicon, os.path.join(tmp, "shards4x"))
        mem = {}
        for name, sh in (("1x", s1), ("4x", s4)):
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--child_memory", "--shards", sh, "--vocab",
                                vocab, "--steps", "40", "--out", os.path.join(tmp, f"mem{name}")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               env=dict(os.environ, PYTHONPATH=ROOT))
            if p.returncode:
                raise RuntimeError(p.stderr[-2000:])
            mem[name] = json.loads(p.stdout.strip().splitlines()[-1])["maxrss_mb"]
            with open(os.path.join(sh, "index.json")) as f:
                idx = json.load(f)
            print(f"training memory, corpus {name} ({idx['source_bytes'] / 2 ** 20:.0f} MB raw, {idx['num_docs']} docs, "
                  f"{idx['num_tokens']} tokens): peak RSS {mem[name]:.0f} MB")
        print(json.dumps({"step_ms": {"pipeline": round(a * 1000, 1), "prebuilt": round(b * 1000, 1)},
                          "ratio": round(a / b, 3), "pipeline_share_of_step": round(share, 4),
                          "train_maxrss_mb": {k: round(v) for k, v in mem.items()},
                          "resume_s": {"cursor_log": round(resume[0], 3), "replay": round(resume[1], 3)}}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
