"""Pre-training preprocessing benchmark: throughput (MB of raw text per second) at 1 and 2
processes, and peak memory at two corpus sizes.

    python bench/bench_preprocess.py [--data data/demo] [--repeats 2]

Corpora (built from the demo data, in a temp dir):
  gold   data/demo/zh_corpus/train four times over (words given, ~24 MB), 16 files
  jieba  data/demo/zh_corpus_raw.txt (5.3 MB, no spaces: jieba + entity lexicon)
  jieba2 the same twice over (10.6 MB): the ~0.9 s of start-up before the workers can start
         (jieba's dictionary, vocab, lexicon) weighs half as much
The preprocessing's own default chunking (``--chunk_mb 4``, cut finer for corpora under 32
chunks: 0.75 MB for the segmented corpus, 170 KB for the jieba one).
Each measurement runs in a fresh child process (``--child``) that reports its wall time and
the peak RSS of itself and of its pool workers (``resource.getrusage`` maxrss of
RUSAGE_SELF / RUSAGE_CHILDREN), so one measurement never inherits another's peak.
Memory: the gold corpus at 1x and 4x size (4 and 16 files of the same chunking), 2 processes.
The best of ``--repeats`` runs is kept for speed (the machine is shared; the best run is the
least disturbed one).
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(args):
    sys.path.insert(0, ROOT)
    from ernie.pretraining.preprocess import build_shards
    t0 = time.time()
    idx = build_shards(args.corpus, args.vocab, args.out, args.processes, lexicon=args.lexicon, seed=1,
                       chunk_mb=args.chunk_mb, progress=False)
    dt = time.time() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"seconds": dt, "bytes": idx["source_bytes"], "tokens": idx["num_tokens"],
                      "cpu_seconds": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                      "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def run(corpus, vocab, lexicon, out, processes, chunk_mb):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--vocab", vocab, "--out", out,
           "--processes", str(processes), "--chunk_mb", str(chunk_mb), "--corpus", *corpus] + (["--lexicon", lexicon] if lexicon else [])
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["mb_per_s"] = r["bytes"] / 2 ** 20 / r["seconds"]
    shutil.rmtree(out, ignore_errors=True)
    return r


def _spin(n):
    s = 0
    for i in range(n):
        s += i
    return s


def effective_cores(n=10_000_000):
    """How many cores this machine gives two busy processes right now (other users share it):
    2 * (time of one task alone) / (time of two tasks on two processes)."""
    import multiprocessing as mp
    t0 = time.time()
    _spin(n)
    one = time.time() - t0
    with mp.get_context("fork").Pool(2) as pool:
        t0 = time.time()
        pool.map(_spin, [n, n])
        two = time.time() - t0
    return 2 * one / two


def copies(src_files, dst, times):
    os.makedirs(dst, exist_ok=True)
    out = []
    for t in range(times):
        for f in src_files:
            p = os.path.join(dst, f"{t}_{os.path.basename(f)}")
            shutil.copy(f, p)
            out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--corpus", nargs="+")
    ap.add_argument("--vocab")
    ap.add_argument("--lexicon")
    ap.add_argument("--out")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "demo"))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--chunk_mb", type=float, default=4.0, help="largest shard (the preprocessing default)")
    args = ap.parse_args()
    if args.child:
        return child(args)
    vocab, lexicon = os.path.join(args.data, "vocab.txt"), os.path.join(args.data, "zh_entities.txt")
    train = sorted(os.path.join(args.data, "zh_corpus", "train", f)
                   for f in os.listdir(os.path.join(args.data, "zh_corpus", "train")))
    tmp = tempfile.mkdtemp(prefix="bench_pre_")
    try:
        gold4 = copies(train, os.path.join(tmp, "gold4"), 4)
        raw1 = copies([os.path.join(args.data, "zh_corpus_raw.txt")], os.path.join(tmp, "raw1"), 1)
        raw2 = copies([os.path.join(args.data, "zh_corpus_raw.txt")], os.path.join(tmp, "raw2"), 2)
        rows = []
        cores = effective_cores()
        print(f"effective cores for 2 busy processes now: {cores:.2f} (2.0 on an idle 2-core machine)")
        for name, corpus, lex in (("gold", gold4, lexicon), ("jieba", raw1, lexicon), ("jieba2", raw2, lexicon)):
            best = {}
            for _ in range(args.repeats):
                for n in (1, 2):  # interleaved, so both see the same background load
                    r = run(corpus, vocab, lex, os.path.join(tmp, "out"), n, args.chunk_mb)
                    if n not in best or r["mb_per_s"] > best[n]["mb_per_s"]:
                        best[n] = r
            for n in (1, 2):
                print(f"{name:6s} {n} process(es): {best[n]['bytes'] / 2 ** 20:6.1f} MB in {best[n]['seconds']:6.2f} s "
                      f"= {best[n]['mb_per_s']:.2f} MB/s (CPU {best[n]['cpu_seconds']:.2f} s)")
            # wall-clock scaling needs 2 idle cores; the CPU-time ratio says what the code allows
            print(f"{name:6s} scaling 2 vs 1 processes: {best[2]['mb_per_s'] / best[1]['mb_per_s']:.2f}x wall clock; "
                  f"work overhead of 2 processes {best[2]['cpu_seconds'] / best[1]['cpu_seconds']:.2f}x CPU time "
                  f"(ideal 2-core scaling {2 * best[1]['cpu_seconds'] / best[2]['cpu_seconds']:.2f}x)")
            rows.append((name, best))
        mem = {}
        for name, corpus in (("1x", train), ("4x", gold4)):
            mem[name] = run(corpus, vocab, lexicon, os.path.join(tmp, "out"), 2, 4.0)
            m = mem[name]
            print(f"memory, corpus {name} ({m['bytes'] / 2 ** 20:.1f} MB, 2 processes): main {m['self_maxrss_mb']:.0f} MB, "
                  f"largest worker {m['children_maxrss_mb']:.0f} MB")
        print("load average (other users of the machine):", os.getloadavg())
        print(f"effective cores after the runs: {effective_cores():.2f}")
        print(json.dumps({"effective_cores": round(cores, 2), "throughput": {k: {n: round(v[n]["mb_per_s"], 3) for n in v} for k, v in rows},
                          "memory_mb": {k: {"main": round(v["self_maxrss_mb"]), "worker": round(v["children_maxrss_mb"])}
                                        for k, v in mem.items()}}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
