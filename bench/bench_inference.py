"""Benchmark: the exported model on paddle.inference vs the dygraph model, same run.

    python bench/bench_inference.py [--threads 1] [--configs base,small] [--json out.json]

Models: ``config/ernie_config.json`` (ERNIE 1.0 base: hidden 768, 12 layers, vocab 18000) and
``config/ernie_small_config.json`` (hidden 128, 2 layers), random weights. The encoder with
the pooler (outputs: pooled [B, H] and the top layer [B, S, H]) is exported with
``propeller.inference.export`` into a temp dir and loaded by ``propeller.inference.predictor.Predictor`` (oneDNN);
the dygraph peer is the same ``ErnieModel`` in ``eval()`` under ``paddle.no_grad()``.
Inputs: random ids, batch 1 and 32, seq 128. Both use ``--threads`` math threads; timed
runs alternate between the two so load from other processes hits both alike; the table
gives the median (and min) of each. Target: predictor <= 0.5x dygraph latency.
Where the CPU has native bf16 (AMX / AVX512-BF16) the opt-in ``precision="bf16"`` predictor
is timed too, and where onnxruntime is installed the ``backend="onnxruntime"`` predictor (the
same export converted with paddle2onnx); each with its max abs diff from the dygraph output.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--configs", default="base,small")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--runs", default="base:1=10,base:32=3,small:1=30,small:32=10",
                    help="timed runs per setting (config:batch=n)")
    ap.add_argument("--json", default=None)
    return ap.parse_args()


ARGS = parse_args()
# before paddle's import, which sets OMP_NUM_THREADS=1 when it is unset
os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402

from propeller import cpu_env  # noqa: E402,F401

import paddle  # noqa: E402

from ernie.modeling import ErnieConfig, ErnieModel  # noqa: E402
from ernie.export import ErnieEncoderExport, ernie_input_spec  # noqa: E402
from propeller.inference.export import export_inference_model  # noqa: E402
from propeller.inference.predictor import Predictor, cpu_has_bf16  # noqa: E402

CONFIGS = {"base": "config/ernie_config.json", "small": "config/ernie_small_config.json"}
# the exported model, run three ways (Predictor options)
VARIANTS = {"predictor": {}, "bf16": {"precision": "bf16"}, "onnxruntime": {"backend": "onnxruntime"}}


def available_variants():
    """fp32 paddle.inference always; bf16 where the CPU has it; ONNX Runtime where installed."""
    import importlib.util
    out = ["predictor"]
    if cpu_has_bf16():
        out.append("bf16")
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("paddle2onnx"):
        out.append("onnxruntime")
    return out


def ms(ts):
    return 1000 * statistics.median(ts), 1000 * min(ts)


def bench(name, runs, batches, seq, tmp):
    config = ErnieConfig.from_json(os.path.join(REPO, CONFIGS[name]))
    paddle.seed(0)
    model = ErnieModel(config)
    model.eval()
    d = os.path.join(tmp, name)
    t = time.perf_counter()
    export_inference_model(ErnieEncoderExport(model, "pooler"), d, ernie_input_spec(),
                           output_names=["embedding", "sequence"])
    export_s = time.perf_counter() - t
    variants = available_variants()
    preds = {v: Predictor(d, num_threads=ARGS.threads, **VARIANTS[v]) for v in variants}
    rows = []
    rng = np.random.default_rng(0)
    for b in batches:
        src = rng.integers(1, config.vocab_size, size=(b, seq), dtype=np.int64)
        sent = np.zeros_like(src)
        ts, tt = paddle.to_tensor(src), paddle.to_tensor(sent)

        def dyg():
            with paddle.no_grad():
                s, p = model(ts, tt)
                return p.numpy(), s.numpy()  # numpy(): wait for the result, as predict does

        want = dyg()  # warm-up all (oneDNN kernels, allocator)
        peers = [("dygraph", dyg, [])]
        diffs = {}
        for v in variants:
            fn = (lambda p: lambda: p.predict([src, sent]))(preds[v])
            diffs[v] = max(float(np.abs(g - w).max()) for g, w in zip(fn(), want))
            peers.append((v, fn, []))
        n = runs.get(f"{name}:{b}", 5)
        for _ in range(n):
            for _, fn, acc in peers:
                t = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t)
        dm, dmin = ms(peers[0][2])
        row = dict(config=name, hidden=config.hidden_size, layers=config.num_hidden_layers,
                   batch=b, seq=seq, runs=n, dygraph_ms=dm, dygraph_min_ms=dmin, export_s=export_s)
        line = f"| {name} | {b} | {n} | {dm:.1f} ({dmin:.1f}) |"
        for v, _, acc in peers[1:]:
            m, mn = ms(acc)
            row.update({f"{v}_ms": m, f"{v}_min_ms": mn, f"{v}_ratio": m / dm, f"{v}_max_abs_diff": diffs[v]})
            line += f" {m:.1f} ({mn:.1f}) | {m / dm:.2f} | {diffs[v]:.1e} |"
        rows.append(row)
        print(line, flush=True)
    return rows


def main():
    runs = {}
    for item in ARGS.runs.split(","):
        key, n = item.split("=")
        runs[key] = int(n)
    batches = [int(b) for b in ARGS.batches.split(",")]
    print(f"threads {ARGS.threads}, seq {ARGS.seq}, MKL_DEBUG_CPU_TYPE="
          f"{os.environ.get('MKL_DEBUG_CPU_TYPE')}, paddle {paddle.__version__}")
    head = "| config | batch | runs | dygraph ms median (min) |" + "".join(
        f" {v} ms median (min) | {v}/dygraph | {v} max abs diff |" for v in available_variants())
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        for name in ARGS.configs.split(","):
            rows += bench(name, runs, batches, ARGS.seq, tmp)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if ARGS.json:
        with open(ARGS.json, "w") as f:
            json.dump({"bench": "inference", "threads": ARGS.threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
