"""Training-step time with and without flushing denormal floats (``propeller/cpu_env.py``).

    python bench/bench_denormals.py [--steps 8] [--rounds 2]

Each measurement is its own process (the SSE control register is set at import and inherited
by paddle's threads), alternating ``PROPELLER_FLUSH_DENORMALS=1`` / ``=0``: the small config
(hidden 128, 2 layers) on a [32, 128] batch whose rows are padded to random lengths, with the
losses the project trains: a masked token loss (NER), the [CLS] classifier loss (sentiment) and
the masked LM at 15% of the positions (pre-training). Median seconds per step after 2 warm-up steps.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
import propeller.paddle as propeller
import numpy as np, paddle
import paddle.nn.functional as F
from ernie.modeling import ErnieConfig, ErnieForTokenClassification, ErnieForSequenceClassification, ErnieForPretraining
kind, steps = sys.argv[1], int(sys.argv[2])
cfg = ErnieConfig.from_json("config/ernie_small_config.json").copy(vocab_size=8000)
rng = np.random.RandomState(0)
B, L = 32, 128
ids = rng.randint(5, 8000, (B, L)).astype("int64")
lab = rng.randint(0, 7, (B, L)).astype("int64")
for i in range(B):
    n = rng.randint(10, L); ids[i, n:] = 0; lab[i, n:] = -1
paddle.seed(1)
if kind == "ner":
    net = ErnieForTokenClassification(cfg, num_labels=7)
elif kind == "classifier":
    net = ErnieForSequenceClassification(cfg, num_labels=2)
else:
    net = ErnieForPretraining(cfg)
opt = paddle.optimizer.AdamW(1e-3, parameters=net.parameters(), grad_clip=paddle.nn.ClipGradByGlobalNorm(1.0))
ids_t, lab_t, types = paddle.to_tensor(ids), paddle.to_tensor(lab), paddle.zeros([B, L], "int64")
pos = np.flatnonzero((ids.reshape(-1) != 0) & (rng.rand(B * L) < 0.15))
times = []
for i in range(steps + 2):
    t0 = time.perf_counter()
    if kind == "ner":
        out = net(ids_t, token_type_ids=types)
        mask = (lab_t != -1).astype(out.dtype)
        ce = F.cross_entropy(out, lab_t.clip(min=0).unsqueeze(-1), reduction="none").squeeze(-1)
        loss = (ce * mask).sum() / paddle.clip(mask.sum(), min=1.0)
    elif kind == "classifier":
        loss = F.cross_entropy(net(ids_t, token_type_ids=types), paddle.to_tensor(rng.randint(0, 2, (B, 1))))
    else:
        mlm, nsp = net(ids_t, types, masked_positions=paddle.to_tensor(pos))
        loss = F.cross_entropy(mlm, paddle.to_tensor(ids.reshape(-1)[pos].reshape(-1, 1)))
    loss.backward(); opt.step(); opt.clear_grad()
    if i >= 2:
        times.append(time.perf_counter() - t0)
print(json.dumps(sorted(times)[len(times) // 2]))
"""


def run(kind, flush, steps):
    env = dict(os.environ, PYTHONPATH=ROOT, GLOG_minloglevel="2", PROPELLER_FLUSH_DENORMALS="1" if flush else "0")
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(steps)], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from bench_tasks import machine
    print(f"machine: {machine()}")
    print("| loss | flush denormals (s/step) | IEEE denormals (s/step) | speed-up |\n|---|---|---|---|")
    for kind in ("ner", "classifier", "mlm"):
        on, off = [], []
        for _ in range(args.rounds):
            on.append(run(kind, True, args.steps))
            off.append(run(kind, False, args.steps))
        a, b = statistics.median(on), statistics.median(off)
        print(f"| {kind} | {a:.3f} | {b:.3f} | {b / a:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
