"""Training-step throughput: our ErnieForPretraining vs PaddleNLP's and Hugging Face's.

forward + backward + AdamW, masked-LM (15% of positions) + next-sentence loss, seq 128.
Each peer runs in its own subprocess with the same thread count and environment, one after
the other in one run, on the same random batch shape.

    python bench/bench_train.py                 # S and base shapes, all peers found
    python bench/bench_train.py --shapes S --steps 5 --peers ours,paddlenlp

Prints a table and one JSON line per measurement.
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
    fn = RUNNERS[args.peer][0]
    sec = fn(shape, args.steps, args.warmup, args.variant)
    tokens = shape["batch"] * shape["seq"]
    print("RESULT " + json.dumps({"peer": args.peer, "variant": args.variant, "shape": args.shape,
                                  "sec_per_step": sec, "tokens_per_s": tokens / sec}))


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
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--peer"), ap.add_argument("--variant"), ap.add_argument("--shape")
    args = ap.parse_args()
    if args.child:
        return child(args)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=ROOT, GLOG_minloglevel="2")
    results = []
    for shape in args.shapes.split(","):
        steps = args.steps or (8 if shape == "S" else 4)
        for peer in args.peers.split(","):
            if not available(peer):
                print(f"# {peer}: not installed, skipped")
                continue
            for variant in RUNNERS[peer][1]:
                cmd = [sys.executable, __file__, "--child", "--peer", peer, "--variant", variant,
                       "--shape", shape, "--steps", str(steps), "--warmup", str(args.warmup)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
                if out.returncode or not line:
                    print(f"# {peer}/{variant}/{shape} failed:\n{out.stderr[-2000:]}")
                    continue
                r = json.loads(line[0][7:])
                results.append(r)
                print(json.dumps(r), flush=True)
    print(f"\nMKL_DEBUG_CPU_TYPE={os.environ.get('MKL_DEBUG_CPU_TYPE')}  threads={args.threads}")
    print(f"{'shape':6} {'peer':10} {'variant':14} {'tokens/s':>10}")
    for r in results:
        print(f"{r['shape']:6} {r['peer']:10} {r['variant']:14} {r['tokens_per_s']:10.0f}")


if __name__ == "__main__":
    main()
