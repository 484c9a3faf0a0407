"""Benchmark: the exported model on paddle.inference vs the dygraph model, same run.

    python bench/bench_inference.py [--threads 1] [--configs base,small] [--json out.json]

Models: ``config/ernie_config.json`` (ERNIE 1.0 base: hidden 768, 12 layers, vocab 18000) and
``config/ernie_small_config.json`` (hidden 128, 2 layers), random weights. The encoder with
the pooler (outputs: pooled [B, H] and the top layer [B, S, H]) is exported with
``inference.export`` into a temp dir and loaded by ``inference.predictor.Predictor`` (oneDNN);
the dygraph peer is the same ``ErnieModel`` in ``eval()`` under ``paddle.no_grad()``.
Inputs: random ids, batch 1 and 32, seq 128. Both use ``--threads`` math threads; timed
runs alternate between the two so load from other processes hits both alike; the table
gives the median (and min) of each. Target: predictor <= 0.5x dygraph latency.
Where the CPU has native bf16 (AMX / AVX512-BF16) the opt-in ``precision="bf16"`` predictor
is timed too (columns bf16, bf16/dygraph, and its max abs diff from the dygraph fp32 output).
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
from inference.export import ErnieEncoderExport, ernie_input_spec, export_inference_model  # noqa: E402
from inference.predictor import Predictor, cpu_has_bf16  # noqa: E402

CONFIGS = {"base": "config/ernie_config.json", "small": "config/ernie_small_config.json"}


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
    pred = Predictor(d, num_threads=ARGS.threads)
    bf16 = Predictor(d, num_threads=ARGS.threads, precision="bf16") if cpu_has_bf16() else None
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

        def inf():
            return pred.predict([src, sent])

        def inf_bf16():
            return bf16.predict([src, sent])

        def max_diff(got, want):
            return max(float(np.abs(g - w).max()) for g, w in zip(got, want))

        want = dyg()  # warm-up all (oneDNN kernels, allocator)
        diff = max_diff(inf(), want)
        peers = [(dyg, []), (inf, [])]
        if bf16 is not None:
            diff_bf16 = max_diff(inf_bf16(), want)
            peers.append((inf_bf16, []))
        n = runs.get(f"{name}:{b}", 5)
        for _ in range(n):
            for fn, acc in peers:
                t = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t)
        (dm, dmin), (im, imin) = ms(peers[0][1]), ms(peers[1][1])
        row = dict(config=name, hidden=config.hidden_size, layers=config.num_hidden_layers,
                   batch=b, seq=seq, runs=n, dygraph_ms=dm, dygraph_min_ms=dmin,
                   predictor_ms=im, predictor_min_ms=imin, ratio=im / dm, max_abs_diff=diff,
                   export_s=export_s)
        line = f"| {name} | {b} | {n} | {dm:.1f} ({dmin:.1f}) | {im:.1f} ({imin:.1f}) | {im / dm:.2f} | {diff:.1e} |"
        if bf16 is not None:
            bm, bmin = ms(peers[2][1])
            row.update(bf16_ms=bm, bf16_min_ms=bmin, bf16_ratio=bm / dm, bf16_max_abs_diff=diff_bf16)
            line += f" {bm:.1f} ({bmin:.1f}) | {bm / dm:.2f} | {diff_bf16:.1e} |"
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
    head = ("| config | batch | runs | dygraph ms median (min) | predictor ms median (min) | "
            "predictor/dygraph | max abs diff |")
    if cpu_has_bf16():
        head += " bf16 predictor ms median (min) | bf16/dygraph | bf16 max abs diff |"
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
