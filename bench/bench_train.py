"""Training-step throughput: our ErnieForPretraining vs PaddleNLP's and Hugging Face's.

forward + backward + AdamW, masked-LM (15% of positions) + next-sentence loss, seq 128.
Each peer runs in its own subprocess with the same thread count and environment, one after
the other in one run, on the same random batch shape.

    python bench/bench_train.py                 # S and base shapes, all peers found
    python bench/bench_train.py --shapes S --steps 5 --peers ours,paddlenlp
    python bench/bench_train.py --trainer --shapes S --rounds 3

Prints a table and one JSON line per measurement.

``--trainer`` times steps through Propeller's Learner (the path every training command runs:
per-step reseeding, the loss read on the host, AdamW with global-norm clipping and the LR
schedule, hooks) with its dygraph forward (``to_static: false``) and its default compiled forward,
in alternating child processes (``--rounds`` each) so both see the same background load. Two
models: ``pretrain`` (the masked-LM + next-sentence step above, one batch shape) and ``classify``
(ErnieForSequenceClassification on batches whose padded length cycles through 8 values up to the
shape's seq, as length-bucketed fine-tuning batches do: a recompile per length would show here).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from propeller import cpu_env  # noqa: E402  (sets MKL_DEBUG_CPU_TYPE on AMD before any paddle import)

SHAPES = {
    "S": dict(vocab_size=18000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
              intermediate_size=1024, batch=32, seq=128),
    "base": dict(vocab_size=18000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, batch=8, seq=128),
}
MASK_RATE = 0.15


def make_batch(shape, seed=0):
    import numpy as np
    rng = np.random.RandomState(seed)
    b, s, v = shape["batch"], shape["seq"], shape["vocab_size"]
    ids = rng.randint(5, v, size=(b, s)).astype("int64")
    n_mask = int(round(s * MASK_RATE))
    pos = np.stack([np.sort(rng.choice(np.arange(1, s), n_mask, replace=False)) for _ in range(b)])
    flat = (pos + np.arange(b)[:, None] * s).reshape(-1).astype("int64")
    labels = ids.reshape(-1)[flat].copy()
    nsp = rng.randint(0, 2, size=(b,)).astype("int64")
    types = np.zeros_like(ids)
    types[:, s // 2:] = 1
    return ids, types, flat, labels, nsp


def model_kwargs(shape):
    return {k: shape[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers",
                                  "num_attention_heads", "intermediate_size")}


def run_ours(shape, steps, warmup, variant):
    import paddle
    from ernie.modeling import ErnieConfig, ErnieForPretraining
    paddle.seed(0)
    model = ErnieForPretraining(ErnieConfig(hidden_act="gelu", **model_kwargs(shape)))
    if variant == "to_static":
        model = paddle.jit.to_static(model)
    opt = paddle.optimizer.AdamW(1e-4, parameters=model.parameters(), weight_decay=0.01)
    ids, types, flat, labels, nsp = [paddle.to_tensor(x) for x in make_batch(shape)]

    def step():
        loss = model(ids, types, masked_positions=flat, masked_lm_labels=labels, next_sentence_labels=nsp)[0]
        loss.backward()
        opt.step()
        opt.clear_grad()
        return loss
    return timed(step, steps, warmup, lambda l: float(l))


def run_paddlenlp(shape, steps, warmup, variant):
    import paddle
    import paddle.nn.functional as F
    from paddlenlp.transformers import ErnieConfig, ErnieForPretraining
    paddle.seed(0)
    model = ErnieForPretraining(ErnieConfig(hidden_act="gelu", max_position_embeddings=513, **model_kwargs(shape)))
    opt = paddle.optimizer.AdamW(1e-4, parameters=model.parameters(), weight_decay=0.01)
    ids, types, flat, labels, nsp = [paddle.to_tensor(x) for x in make_batch(shape)]
    masked = flat if variant == "masked" else None

    def step():
        mlm, nsp_logits = model(ids, token_type_ids=types, masked_positions=masked)[:2]
        mlm = mlm.reshape([-1, mlm.shape[-1]])
        if masked is None:  # head ran on every position: score only the masked ones
            mlm = paddle.gather(mlm, flat)
        loss = F.cross_entropy(mlm, labels.reshape([-1, 1])) + F.cross_entropy(nsp_logits, nsp.reshape([-1, 1]))
        loss.backward()
        opt.step()
        opt.clear_grad()
        return loss
    return timed(step, steps, warmup, lambda l: float(l))


def run_hf(shape, steps, warmup, variant):
    import numpy as np
    import torch
    from transformers import BertConfig, BertForPreTraining
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    cfg = BertConfig(hidden_act="gelu", max_position_embeddings=513, attn_implementation=variant,
                     **model_kwargs(shape))
    model = BertForPreTraining(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    ids, types, flat, labels, nsp = make_batch(shape)
    full = np.full(ids.size, -100, dtype="int64")
    full[flat] = labels
    ids, types, nsp = map(torch.from_numpy, (ids, types, nsp))
    full = torch.from_numpy(full.reshape(ids.shape))

    def step():
        loss = model(input_ids=ids, token_type_ids=types, labels=full, next_sentence_label=nsp).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return timed(step, steps, warmup, lambda l: float(l.detach()))


def run_trainer(shape, steps, warmup, variant, model_kind):
    """(seconds, padded tokens, step times) of ``steps`` timed steps through propeller's Learner;
    variant: dygraph | to_static (the default)."""
    import tempfile

    import numpy as np
    import paddle
    import paddle.nn.functional as F
    import propeller.paddle as propeller
    from ernie.modeling import ErnieConfig, ErnieForPretraining, ErnieForSequenceClassification, masked_lm_loss
    cfg = ErnieConfig(hidden_act="gelu", **model_kwargs(shape))

    class Pretrain(propeller.train.Model):
        def __init__(self, hparams, mode, run_config):
            super().__init__(hparams, mode, run_config)
            self.net = ErnieForPretraining(cfg)

        def forward(self, ids, types, flat):
            return self.net(ids, types, masked_positions=flat)

        def loss(self, pred, labels):
            return masked_lm_loss(pred[0], labels[0]) + F.cross_entropy(pred[1], labels[1].reshape([-1, 1]))

    class Classify(propeller.train.Model):
        def __init__(self, hparams, mode, run_config):
            super().__init__(hparams, mode, run_config)
            self.net = ErnieForSequenceClassification(cfg, num_labels=2)

        def forward(self, ids, types):
            return self.net(ids, types)

        def loss(self, logits, labels):
            return F.cross_entropy(logits, labels.reshape([-1, 1]))

    ids, types, flat, labels, nsp = make_batch(shape)
    if model_kind == "pretrain":
        batches = [(ids, types, flat, (labels, nsp))]
        model_class = Pretrain
    else:  # padded lengths seq/8, 2seq/8, ..., seq: what length bucketing hands the trainer
        lengths = [shape["seq"] * k // 8 for k in range(1, 9)]
        batches = [(ids[:, :n], types[:, :n], nsp) for n in lengths]
        model_class = Classify
    batches = [tuple(paddle.to_tensor(x) if not isinstance(x, tuple) else tuple(map(paddle.to_tensor, x))
                     for x in b) for b in batches]
    total = warmup + steps

    timer = propeller.train.StepTimerHook()
    with tempfile.TemporaryDirectory() as d:
        rc = dict(model_dir=d, max_steps=total, seed=1, log_steps=None, save_steps=None, eval_steps=None,
                  to_static=variant == "to_static")
        hp = propeller.HParams(learning_rate=1e-4, weight_decay=0.01, warmup_steps=0)
        learner = propeller.Learner(model_class, rc, hp)
        learner.train((batches[i % len(batches)] for i in range(total)), [timer])
        if variant == "to_static" and learner._static.failed is not None:
            raise RuntimeError(f"to_static fell back to dygraph: {learner._static.failed!r}")
    # the classify warm-up covers a full cycle of lengths, so compiles are not in the timed steps
    times = timer.times[warmup:]
    tokens = sum(int(np.prod(batches[i % len(batches)][0].shape)) for i in range(warmup, total))
    return float(np.sum(times)), tokens, [round(t, 4) for t in times]


def cpu_description():
    """CPU model and the SIMD flags that matter for the GEMMs (from /proc/cpuinfo)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    keep = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "amx_int8")
    return model, [f for f in keep if f in flags], os.cpu_count()


def timed(step, steps, warmup, sync):
    for _ in range(warmup):
        sync(step())
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(loss)
    return (time.perf_counter() - t0) / steps


RUNNERS = {
    "ours": (run_ours, ["dygraph", "to_static"]),
    "paddlenlp": (run_paddlenlp, ["masked", "all_positions"]),
    "hf_torch": (run_hf, ["eager", "sdpa"]),
}


def child(args):
    shape = SHAPES[args.shape]
    extra = {}
    if args.peer.startswith("trainer_"):
        kind = args.peer[len("trainer_"):]
        total_sec, total_tokens, extra["step_times"] = run_trainer(shape, args.steps, args.warmup, args.variant, kind)
        sec, tokens = total_sec / args.steps, total_tokens / args.steps  # padded tokens, as everywhere here
    else:
        sec = RUNNERS[args.peer][0](shape, args.steps, args.warmup, args.variant)
        tokens = shape["batch"] * shape["seq"]
    print("RESULT " + json.dumps({"peer": args.peer, "variant": args.variant, "shape": args.shape,
                                  "sec_per_step": sec, "tokens_per_s": tokens / sec, **extra}))


def _child_result(env, peer, variant, shape, steps, warmup):
    cmd = [sys.executable, __file__, "--child", "--peer", peer, "--variant", variant,
           "--shape", shape, "--steps", str(steps), "--warmup", str(warmup)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not line:
        print(f"# {peer}/{variant}/{shape} failed:\n{out.stderr[-2000:]}")
        return None
    return json.loads(line[0][7:])


def trainer_main(args, env):
    """Dygraph vs the default to_static through the Learner, alternating per round."""
    import statistics
    model, flags, ncpu = cpu_description()
    print(f"# CPU: {model}; flags: {' '.join(flags) or '-'}; os.cpu_count()={ncpu}; threads={args.threads}; "
          f"MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE')}")
    print(f"# load average at start: {os.getloadavg()}", flush=True)
    results = {}
    for shape in args.shapes.split(","):
        steps = args.steps or (8 if shape == "S" else 4)
        for peer in ("trainer_pretrain", "trainer_classify"):
            warmup = max(args.warmup, 9) if peer == "trainer_classify" else args.warmup
            for r in range(args.rounds):
                # alternate the order, so neither variant always runs right after the other
                for variant in (("dygraph", "to_static") if r % 2 == 0 else ("to_static", "dygraph")):
                    res = _child_result(env, peer, variant, shape, steps, warmup)
                    if res is None:
                        continue
                    res["round"], res["load1"] = r, os.getloadavg()[0]
                    results.setdefault((shape, peer), {}).setdefault(variant, []).append(res)
                    print(json.dumps(res), flush=True)
    print(f"\n# load average at end: {os.getloadavg()}")
    print(f"{'shape':6} {'model':18} {'dygraph tok/s':>14} {'to_static tok/s':>16} {'ratio (median)':>15}  per-round ratios")
    for (shape, peer), by in results.items():
        dy = [r["tokens_per_s"] for r in by.get("dygraph", [])]
        ts = [r["tokens_per_s"] for r in by.get("to_static", [])]
        if not dy or not ts:
            continue
        per_round = [round(b / a, 3) for a, b in zip(dy, ts)]
        print(f"{shape:6} {peer:18} {statistics.median(dy):14.0f} {statistics.median(ts):16.0f} "
              f"{statistics.median(ts) / statistics.median(dy):15.3f}  {per_round}")


def available(peer):
    mod = {"ours": "paddle", "paddlenlp": "paddlenlp", "hf_torch": "transformers"}[peer]
    import importlib.util
    return importlib.util.find_spec(mod) is not None and (peer != "hf_torch" or importlib.util.find_spec("torch"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="S,base")
    ap.add_argument("--peers", default="ours,paddlenlp,hf_torch")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 8 for S, 4 for base)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trainer", action="store_true",
                    help="time steps through propeller's Learner, dygraph vs to_static (see above)")
    ap.add_argument("--rounds", type=int, default=3, help="--trainer: child runs per variant, alternating")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--peer"), ap.add_argument("--variant"), ap.add_argument("--shape")
    args = ap.parse_args()
    if args.child:
        return child(args)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=ROOT, GLOG_minloglevel="2")
    if args.trainer:
        return trainer_main(args, env)
    results = []
    for shape in args.shapes.split(","):
        steps = args.steps or (8 if shape == "S" else 4)
        for peer in args.peers.split(","):
            if not available(peer):
                print(f"# {peer}: not installed, skipped")
                continue
            for variant in RUNNERS[peer][1]:
                r = _child_result(env, peer, variant, shape, steps, args.warmup)
                if r is None:
                    continue
                results.append(r)
                print(json.dumps(r), flush=True)
    print(f"\nMKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE')}  threads={args.threads}")
    print(f"{'shape':6} {'peer':10} {'variant':14} {'tokens/s':>10}")
    for r in results:
        print(f"{r['shape']:6} {r['peer']:10} {r['variant']:14} {r['tokens_per_s']:10.0f}")


if __name__ == "__main__":
    main()
