"""Training-step throughput: our ErnieForPretraining vs PaddleNLP's and Hugging Face's.

forward + backward + AdamW, masked-LM (15% of positions) + next-sentence loss, seq 128.
Each peer runs in its own subprocess with the same thread count and environment, one after
the other in one run, on the same random batch shape.

    python bench/bench_train.py                 # S and base shapes, all peers found, 3 rounds
    python bench/bench_train.py --shapes S --steps 5 --peers ours,paddlenlp --rounds 1
    python bench/bench_train.py --trainer --shapes S --rounds 3
    python bench/bench_train.py --paired --shapes S,base --rounds 3   # Learner vs HF, step by step

Prints the CPU model and flags, the load average, one JSON line per measurement and a table of
medians over ``--rounds`` rounds; each round runs every peer once, the order reversed every
other round, so on a shared machine no peer always follows the same neighbour.

Peers: ours (dygraph, ``to_static``), ``learner`` (ours through Propeller's Learner on its default
path, dygraph, as ``--trainer`` below), PaddleNLP (head at the masked positions, head over all
positions), Hugging Face ``BertForPreTraining`` in fp32 (eager and sdpa attention) and in bf16
mixed precision (``sdpa_bf16``: ``torch.autocast("cpu", dtype=torch.bfloat16)`` around the
forward and loss, fp32 master weights and AdamW, as torch users train on CPUs with AMX or
AVX512-BF16). Paddle 3.3.1 has no bf16 training route on the CPU (bench/RESULTS.md, issue 13),
so ours and PaddleNLP are fp32 only.

``--trainer`` times steps through Propeller's Learner (the path every training command runs:
per-step reseeding, the loss read on the host, AdamW with global-norm clipping and the LR
schedule, hooks) with its default dygraph forward and its compiled forward (``to_static: true``),
in alternating child processes (``--rounds`` each) so both see the same background load. Two
models: ``pretrain`` (the masked-LM + next-sentence step above, one batch shape) and ``classify``
(ErnieForSequenceClassification on batches whose padded length cycles through 8 values up to the
shape's seq, as length-bucketed fine-tuning batches do: a recompile per length would show here).

``--paired`` runs the Learner's pretrain step (the default path) and one step of each HF variant
alternately in one child process per round and reports the median of the per-step ratios: on a
machine whose speed drifts between processes, the pairs share their conditions (run_paired).
"""
import argparse
import json
import os
import statistics
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


def step_ours(shape, variant):
    """(step, sync) of one training step of our ErnieForPretraining; variant: dygraph | to_static."""
    import paddle
    from ernie.modeling import ErnieConfig, ErnieForPretraining
    cpu_env.tune_paddle()  # as the trainer does (stride kernels off on the CPU)
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
    return step, float


def step_paddlenlp(shape, variant):
    """variant: masked (head at the masked positions) | all_positions."""
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
    return step, float


def step_hf(shape, variant):
    """variant: eager | sdpa (fp32) | sdpa_bf16 (autocast to bf16)."""
    import numpy as np
    import torch
    from transformers import BertConfig, BertForPreTraining
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    attn, _, precision = variant.partition("_")
    cfg = BertConfig(hidden_act="gelu", max_position_embeddings=513, attn_implementation=attn,
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
        # autocast runs the matmuls in bf16 and keeps reductions (softmax, layer norm, the loss) in
        # fp32; parameters, gradients and the optimizer stay fp32, so no loss scaling is needed
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(input_ids=ids, token_type_ids=types, labels=full, next_sentence_label=nsp).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    return step, lambda l: float(l.detach())


def run_trainer(shape, steps, warmup, variant, model_kind, more_hooks=lambda timer: []):
    """(seconds, padded tokens, step times) of ``steps`` timed steps through propeller's Learner;
    variant: dygraph (the default) | to_static. ``more_hooks(timer)``: hooks run after the step
    timer's."""
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
        learner.train((batches[i % len(batches)] for i in range(total)), [timer, *more_hooks(timer)])
        if variant == "to_static" and learner._static.failed is not None:
            raise RuntimeError(f"to_static fell back to dygraph: {learner._static.failed!r}")
    # the classify warm-up covers a full cycle of lengths, so compiles are not in the timed steps
    times = timer.times[warmup:]
    tokens = sum(int(np.prod(batches[i % len(batches)][0].shape)) for i in range(warmup, total))
    return float(np.sum(times)), tokens, [round(t, 4) for t in times]


def run_paired(shape, steps, warmup, variants):
    """Learner steps (the default path, pretrain) alternating with HF steps in one process.

    After each Learner step, one step of every HF variant (in a rotating order), each timed; then
    the Learner's step timer restarts, so its times hold only its own steps. Step by step, both
    sides see the same machine: on a shared VM whose speed drifted by 30-50% between child
    processes (bench/RESULTS.md, issue 13, eighth session) these per-step ratios stay comparable.
    The process's glibc tuning (``cpu_env.keep_freed_memory``) applies to torch too; HF's
    throughput did not move with it in separate processes (1,805 vs 1,814 tokens/s at S)."""
    import propeller.paddle as propeller

    class PairedSteps(propeller.train.RunHook):
        def __init__(self, timer):
            self.steps = {v: step_hf(shape, v) for v in variants}
            self.timer, self.times, self.n = timer, {v: [] for v in variants}, 0

        def after_step(self, state):
            order = list(self.steps)[self.n % len(variants):] + list(self.steps)[:self.n % len(variants)]
            self.n += 1
            for v in order:
                step, sync = self.steps[v]
                t = time.perf_counter()
                sync(step())
                self.times[v].append(time.perf_counter() - t)
            self.timer.t = time.perf_counter()

    paired = []

    def more_hooks(timer):
        paired.append(PairedSteps(timer))
        return paired
    _, _, ours = run_trainer(shape, steps, warmup, "dygraph", "pretrain", more_hooks)
    hf = {v: t[warmup:] for v, t in paired[0].times.items()}
    ratios = {v: [round(b / a, 3) for a, b in zip(ours, t)] for v, t in hf.items()}
    return {"learner_step_s": ours, "hf_step_s": {v: [round(x, 4) for x in t] for v, t in hf.items()},
            "learner_vs": {v: statistics.median(r) for v, r in ratios.items()}}


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


def timed(step, sync, steps, warmup):
    for _ in range(warmup):
        sync(step())
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(loss)
    return (time.perf_counter() - t0) / steps


RUNNERS = {  # peer: (builder of (step, sync) for (shape, variant), its variants)
    "ours": (step_ours, ["dygraph", "to_static"]),
    "paddlenlp": (step_paddlenlp, ["masked", "all_positions"]),
    "hf_torch": (step_hf, ["eager", "sdpa", "sdpa_bf16"]),
    "learner": (None, ["dygraph"]),  # the pretrain step through Propeller's Learner, default path (child())
}


def child(args):
    shape = SHAPES[args.shape]
    extra = {}
    if args.peer == "paired":
        res = run_paired(shape, args.steps, args.warmup, args.variant.split(","))
        tokens = shape["batch"] * shape["seq"]
        res["tokens_per_s"] = {"learner": tokens / statistics.median(res["learner_step_s"]),
                               **{v: tokens / statistics.median(t) for v, t in res["hf_step_s"].items()}}
        print("RESULT " + json.dumps({"peer": "paired", "shape": args.shape, **res}))
        return
    if args.peer.startswith("trainer_") or args.peer == "learner":
        kind = "pretrain" if args.peer == "learner" else args.peer[len("trainer_"):]
        total_sec, total_tokens, extra["step_times"] = run_trainer(shape, args.steps, args.warmup, args.variant, kind)
        sec, tokens = total_sec / args.steps, total_tokens / args.steps  # padded tokens, as everywhere here
    else:
        sec = timed(*RUNNERS[args.peer][0](shape, args.variant), args.steps, args.warmup)
        tokens = shape["batch"] * shape["seq"]
    print("RESULT " + json.dumps({"peer": args.peer, "variant": args.variant, "shape": args.shape,
                                  "sec_per_step": sec, "tokens_per_s": tokens / sec, **extra}))


def _child_result(env, peer, variant, shape, steps, warmup, round_):
    """One child's result, stamped with the round and the load average and printed (None: failed)."""
    cmd = [sys.executable, __file__, "--child", "--peer", peer, "--variant", variant,
           "--shape", shape, "--steps", str(steps), "--warmup", str(warmup)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not line:
        print(f"# {peer}/{variant}/{shape} failed:\n{out.stderr[-2000:]}")
        return None
    res = json.loads(line[0][7:])
    res["round"], res["load1"] = round_, os.getloadavg()[0]
    print(json.dumps(res), flush=True)
    return res


def print_machine(args):
    model, flags, ncpu = cpu_description()
    print(f"# CPU: {model}; flags: {' '.join(flags) or '-'}; os.cpu_count()={ncpu}; threads={args.threads}; "
          f"MKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE')}; OMP_WAIT_POLICY={args.omp_wait_policy}")
    print(f"# load average at start: {os.getloadavg()}", flush=True)


def trainer_main(args, env):
    """Dygraph vs the default to_static through the Learner, alternating per round."""
    print_machine(args)
    results = {}
    for shape in args.shapes.split(","):
        steps = args.steps or (8 if shape == "S" else 4)
        for peer in ("trainer_pretrain", "trainer_classify"):
            warmup = max(args.warmup, 9) if peer == "trainer_classify" else args.warmup
            for r in range(args.rounds):
                # alternate the order, so neither variant always runs right after the other
                for variant in (("dygraph", "to_static") if r % 2 == 0 else ("to_static", "dygraph")):
                    res = _child_result(env, peer, variant, shape, steps, warmup, r)
                    if res is not None:
                        results.setdefault((shape, peer), {}).setdefault(variant, []).append(res)
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
    mod = {"ours": "paddle", "learner": "paddle", "paddlenlp": "paddlenlp", "hf_torch": "transformers"}[peer]
    import importlib.util
    return importlib.util.find_spec(mod) is not None and (peer != "hf_torch" or importlib.util.find_spec("torch"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="S,base")
    ap.add_argument("--peers", default="ours,learner,paddlenlp,hf_torch")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 8 for S, 4 for base)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trainer", action="store_true",
                    help="time steps through propeller's Learner, dygraph vs to_static (see above)")
    ap.add_argument("--paired", action="store_true",
                    help="Learner steps and HF steps (eager, sdpa, sdpa_bf16) alternating in one process "
                         "(per-step ratios; for machines whose speed drifts)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="child runs per peer/variant; the order is reversed every other round")
    ap.add_argument("--omp_wait_policy", default="PASSIVE", choices=("PASSIVE", "ACTIVE"),
                    help="OMP_WAIT_POLICY of every peer (PASSIVE: fair on a shared machine)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--peer"), ap.add_argument("--variant"), ap.add_argument("--shape")
    args = ap.parse_args()
    if args.child:
        return child(args)
    # OMP_WAIT_POLICY: on a shared machine, OpenMP's default of spinning at every barrier stalls a
    # 2-thread process whenever one of its threads is descheduled (torch measured 3.4x slower
    # than with PASSIVE at load 9 on 2 cores); every peer gets the same setting
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=ROOT, GLOG_minloglevel="2", OMP_WAIT_POLICY=args.omp_wait_policy)
    if args.trainer:
        return trainer_main(args, env)
    if args.paired:
        return paired_main(args, env)
    peers_main(args, env)


def paired_main(args, env):
    """Learner and HF steps alternating in one child process per shape and round (run_paired)."""
    print_machine(args)
    variants = RUNNERS["hf_torch"][1]
    results = {}
    for shape in args.shapes.split(","):
        steps = args.steps or (8 if shape == "S" else 4)
        for r in range(args.rounds):
            res = _child_result(env, "paired", ",".join(variants), shape, steps, args.warmup, r)
            if res is not None:
                results.setdefault(shape, []).append(res)
    print(f"\n# load average at end: {os.getloadavg()}")
    print(f"{'shape':6} {'peer':16} {'tokens/s (median)':>18}  {'learner speed / peer (median of steps)':>40}  per round")
    for shape, rs in results.items():
        for peer in ["learner", *variants]:
            tps = statistics.median(r["tokens_per_s"][peer] for r in rs)
            ratios = [round(r["learner_vs"][peer], 3) for r in rs] if peer != "learner" else []
            ratio = f"{statistics.median(ratios):.3f}" if ratios else "-"
            print(f"{shape:6} {peer:16} {tps:18.0f}  {ratio:>40}  {ratios}")


def peers_main(args, env):
    """Every peer and variant once per round, the order reversed every other round; medians."""
    print_machine(args)
    jobs = []
    for peer in args.peers.split(","):
        if not available(peer):
            print(f"# {peer}: not installed, skipped")
            continue
        jobs += [(peer, variant) for variant in RUNNERS[peer][1]]
    results = {}
    for shape in args.shapes.split(","):
        steps = args.steps or (8 if shape == "S" else 4)
        for r in range(args.rounds):
            for peer, variant in (jobs if r % 2 == 0 else jobs[::-1]):
                res = _child_result(env, peer, variant, shape, steps, args.warmup, r)
                if res is not None:
                    results.setdefault((shape, peer, variant), []).append(res)
    print(f"\n# load average at end: {os.getloadavg()}")
    print(f"{'shape':6} {'peer':10} {'variant':14} {'tokens/s (median)':>18}  per round")
    for (shape, peer, variant), rs in results.items():
        tps = [r["tokens_per_s"] for r in rs]
        print(f"{shape:6} {peer:10} {variant:14} {statistics.median(tps):18.0f}  {[round(t) for t in tps]}")


if __name__ == "__main__":
    main()
