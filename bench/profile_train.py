"""Where a training step's time goes, per op class: ours vs Hugging Face torch (issue 13).

    python bench/profile_train.py                        # base shape: ours dygraph / to_static, HF eager
    python bench/profile_train.py --shape S --peers ours:to_static,hf_torch:sdpa --steps 5

The same steps as ``bench/bench_train.py`` (masked LM at 15% of positions + next sentence,
AdamW; its step builders), each peer in its own process: ``--warmup`` steps, ``--steps`` steps
timed without a profiler, then ``--steps`` steps under the framework's own profiler
(``paddle.profiler`` with a Chrome trace, ``torch.profiler``). Every op's self time goes into a
class: GEMM, attention (softmax / fused attention), layer norm, GELU, dropout, embedding, loss,
other elementwise and shape ops, optimizer (everything inside the optimizer step), autograd
bookkeeping (torch's engine wrappers). What the ops do not cover of the profiled wall time is
"framework + Python" (dispatch, Python, allocation between ops). Prints the CPU model and flags,
one JSON line per peer and a table in ms per step.
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import RUNNERS, SHAPES, cpu_description, timed  # noqa: E402

CLASSES = ["GEMM", "attention", "layer norm", "GELU", "dropout", "embedding", "loss",
           "other elementwise / shape", "optimizer", "autograd bookkeeping", "framework + Python"]
# first match wins; names are lower-cased, paddle's "Global_" / " dygraph[...]" decorations removed
_RULES = [
    ("loss", r"cross_entropy|log_softmax|nll_loss"),
    ("attention", r"softmax|flash_attn|scaled_dot_product|attention|sdpa"),
    ("GEMM", r"matmul|(^|::)(mm|addmm|bmm|baddbmm|linear|mv)$|linear|^fc"),
    ("layer norm", r"layer_?norm"),
    ("GELU", r"gelu"),
    ("dropout", r"dropout|bernoulli"),
    ("embedding", r"embedding"),
    ("autograd bookkeeping", r"^autograd::|gradnodeaccumulation|accumulategrad"),
]


def op_class(name):
    n = name.lower()
    for cls, rx in _RULES:
        if re.search(rx, n):
            return cls
    return "other elementwise / shape"


def _paddle_name(name):
    name = re.sub(r"\[[^\]]*\]$", "", name).strip()
    name = re.sub(r" dygraph$", "", name)
    return re.sub(r"^Global_", "", name)


def profile_paddle(step, sync, steps):
    """{class: seconds} over ``steps`` profiled steps, wall seconds, {op: seconds}."""
    import paddle.profiler as profiler
    with tempfile.TemporaryDirectory(prefix="ptrace") as trace_dir:  # the trace is read, then dropped
        prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], scheduler=(0, steps),
                                 on_trace_ready=profiler.export_chrome_tracing(trace_dir))
        prof.start()
        t0 = time.perf_counter()
        for _ in range(steps):
            sync(step())
            prof.step()
        wall = time.perf_counter() - t0
        prof.stop()
        with open(sorted(glob.glob(os.path.join(trace_dir, "*.json")))[-1]) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    optim = [(e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") == "Optimization"]
    ops = sorted((e for e in events if e.get("cat") == "Operator" and "dur" in e),
                 key=lambda e: (e["tid"], e["ts"], -e["dur"]))
    # self time: an operator's duration less the operators nested in it (same thread)
    selft, stack = [e["dur"] for e in ops], []
    for i, e in enumerate(ops):
        while stack and (ops[stack[-1]]["tid"] != e["tid"] or
                         ops[stack[-1]]["ts"] + ops[stack[-1]]["dur"] <= e["ts"]):
            stack.pop()
        if stack:
            selft[stack[-1]] -= e["dur"]
        stack.append(i)
    by_class, by_op = collections.Counter(), collections.Counter()
    for i, e in enumerate(ops):
        name = _paddle_name(e["name"])
        in_opt = any(a <= e["ts"] < b for a, b in optim)
        cls = "optimizer" if in_opt else op_class(name)
        by_class[cls] += selft[i] / 1e6
        by_op[name] += selft[i] / 1e6
    return by_class, wall, by_op


def profile_torch(step, sync, steps):
    import torch.profiler as tp
    with tp.profile(activities=[tp.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            sync(step())
        wall = time.perf_counter() - t0
    by_class, by_op = collections.Counter(), collections.Counter()
    for e in prof.events():
        root = e
        while root.cpu_parent is not None:
            root = root.cpu_parent
        cls = "optimizer" if root.name.startswith("Optimizer.") else op_class(e.name)
        if e.name.startswith(("ProfilerStep", "Optimizer.")):
            continue  # annotations: their self time is the Python around the ops
        by_class[cls] += e.self_cpu_time_total / 1e6
        by_op[e.name] += e.self_cpu_time_total / 1e6
    return by_class, wall, by_op


def child(args):
    peer, variant = args.peer.split(":")
    shape = SHAPES[args.shape]
    step, sync = RUNNERS[peer][0](shape, variant)
    sec = timed(step, sync, args.steps, args.warmup)
    profile = profile_torch if peer == "hf_torch" else profile_paddle
    by_class, wall, by_op = profile(step, sync, args.steps)
    ms = {c: 1000 * by_class.get(c, 0.0) / args.steps for c in CLASSES[:-1]}
    ms["framework + Python"] = max(0.0, 1000 * wall / args.steps - sum(ms.values()))
    top = {k: round(1000 * v / args.steps, 1) for k, v in by_op.most_common(12)}
    print("RESULT " + json.dumps({"peer": args.peer, "shape": args.shape, "step_ms": 1000 * sec,
                                  "profiled_step_ms": 1000 * wall / args.steps, "ms": ms, "top_ops_ms": top}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="base", choices=sorted(SHAPES))
    ap.add_argument("--peers", default="ours:dygraph,ours:to_static,hf_torch:eager",
                    help="peer:variant, as in bench_train.py")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    model, flags, ncpu = cpu_description()
    print(f"# CPU: {model}; flags: {' '.join(flags) or '-'}; os.cpu_count()={ncpu}; threads={args.threads}")
    print(f"# load average at start: {os.getloadavg()}", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=ROOT, GLOG_minloglevel="2", OMP_WAIT_POLICY="PASSIVE")
    results = []
    for peer in args.peers.split(","):
        if peer.split(":")[0] not in RUNNERS or ":" not in peer:
            sys.exit(f"--peers: {peer!r} is not peer:variant with a peer of {sorted(RUNNERS)}")
        cmd = [sys.executable, __file__, "--child", "--peer", peer, "--shape", args.shape,
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if out.returncode or not line:
            print(f"# {peer} failed:\n{out.stderr[-2000:]}")
            continue
        res = json.loads(line[0][7:])
        res["load1"] = os.getloadavg()[0]
        results.append(res)
        print(json.dumps(res), flush=True)
    print(f"# load average at end: {os.getloadavg()}\n")
    print("| ms per step | " + " | ".join(r["peer"] for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for c in CLASSES:
        print(f"| {c} | " + " | ".join(f"{r['ms'][c]:,.0f} ({r['ms'][c] / r['profiled_step_ms']:.0%})"
                                        for r in results) + " |")
    print("| profiled step | " + " | ".join(f"{r['profiled_step_ms']:,.0f}" for r in results) + " |")
    print("| step without profiler | " + " | ".join(f"{r['step_ms']:,.0f}" for r in results) + " |")


if __name__ == "__main__":
    main()
