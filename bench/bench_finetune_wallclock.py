"""Fine-tuning wall clock: our example/finetune_classifier.py vs a plain transformers/torch loop.

    python bench/bench_finetune_wallclock.py                      # 1 epoch, 1 round, ours vs torch
    python bench/bench_finetune_wallclock.py --rounds 3 --peers ours,torch,torch_bf16

The demo's sentiment task (data/demo/sentiment, built by ``python -m ernie.data.demo --out
data/demo`` if missing) from random initialisation, the demo model shape
(config/ernie_demo_config.json: hidden 128, 2 layers, 4 heads, intermediate 512, gelu, vocab of
data/demo/vocab.txt), batch 32, max_seqlen 128, AdamW lr 1e-3 with 10% linear warm-up then linear
decay to 0, to the same number of epochs. Each peer runs as its own process, as a user would run
it, and is timed from outside (start-up, tokenisation, training, evaluation, saving included);
the order of the peers is reversed every other round.

* ``ours``: ``example/finetune_classifier.py --ernie_config config/ernie_demo_config.json
  --pooling mean`` with the default run config (evaluates dev at the end, saves a checkpoint,
  exports the best model and its inference model, then reports dev and test with it);
  ``ours_to_static``: the same with ``"to_static": true`` (the trainer's compiled forward).
* ``torch``: a plain loop a transformers user would write: ``BertTokenizerFast`` on the same
  vocabulary, ``BertModel`` of the same shape (sdpa attention, the default) with the same head as
  ours (mean of the top layer over the non-pad tokens, dropout, linear), torch AdamW with the
  same hyper-parameters (weight decay 0.01 except biases and LayerNorm, eps 1e-6, global-norm
  clipping at 1.0), batches length-bucketed like ours (pools of 32 batches sorted by length, the
  batches in shuffled order) and padded to their longest row; dev and test accuracy at the end
  and a ``torch.save`` of the weights, so both do the same work.
* ``torch_bf16``: the same loop with the forward and loss under
  ``torch.autocast("cpu", dtype=torch.bfloat16)`` (not a default peer: Paddle has no CPU bf16
  training route, bench/RESULTS.md issue 13).

Both get ``--threads`` threads (OMP_NUM_THREADS / MKL_NUM_THREADS, and torch.set_num_threads) and
the same OMP_WAIT_POLICY (``--omp_wait_policy``, PASSIVE by default, see bench_train.py).
Prints the CPU model and flags, the load average at the start and end and around every run,
one JSON line per run and a table of medians.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_train import cpu_description  # noqa: E402

DATA = os.path.join(ROOT, "data", "demo")
TASK_DIR = os.path.join(DATA, "sentiment")
VOCAB = os.path.join(DATA, "vocab.txt")
CONFIG = os.path.join(ROOT, "config", "ernie_demo_config.json")


def ensure_data():
    """Build the demo data and vocabulary the way script/demo.sh does, when they are missing."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    if not os.path.isfile(os.path.join(TASK_DIR, "train.tsv")):
        subprocess.run([sys.executable, "-m", "ernie.data.demo", "--out", DATA], cwd=ROOT, env=env, check=True)
    if not os.path.isfile(VOCAB):
        subprocess.run([sys.executable, "-m", "ernie.tokenizing", "build_vocab", "--corpus",
                        os.path.join(DATA, "zh_corpus_raw.txt"), os.path.join(DATA, "zh_reviews_raw.txt"),
                        "--out", VOCAB], cwd=ROOT, env=env, check=True)


# ---------------------------------------------------------------------------- ours
def run_ours(args, env, workdir, to_static=False):
    result_file = os.path.join(workdir, "result.json")
    hparams = {"batch_size": args.batch_size, "learning_rate": args.lr, "warmup_proportion": 0.1,
               "epoch": args.epoch}
    cmd = [sys.executable, os.path.join(ROOT, "example", "finetune_classifier.py"),
           "--data_dir", TASK_DIR, "--vocab_file", VOCAB, "--ernie_config", CONFIG, "--pooling", "mean",
           "--max_seqlen", str(args.max_seqlen), "--hparam", json.dumps(hparams),
           "--run_config", json.dumps({"model_dir": os.path.join(workdir, "model"), "seed": args.seed,
                                       "to_static": to_static}),
           "--result_file", result_file]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode or not os.path.isfile(result_file):
        raise RuntimeError(f"ours failed ({out.returncode}):\n{out.stderr[-3000:]}")
    with open(result_file) as f:
        res = json.load(f)
    return {"wall_s": wall, "dev_acc": res.get("dev.acc"), "test_acc": res.get("test.acc")}


# ---------------------------------------------------------------------------- torch
def read_tsv(path):
    """[(text, label)] from a ``label<TAB>text_a`` file with a header (the demo's layout)."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        li, ti = header.index("label"), header.index("text_a")
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [(r[ti], int(r[li])) for r in rows]


def bucketed_batches(n_rows, lengths, batch_size, rng, pool_batches=32):
    """One epoch of row-index batches: shuffled, then in pools of ``pool_batches`` batches sorted
    by length and cut into batches emitted in shuffled order (ours: Dataset.bucket_by_length)."""
    order = rng.permutation(n_rows)
    pool = batch_size * pool_batches
    for start in range(0, n_rows, pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        groups = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        for g in rng.permutation(len(groups)):
            yield groups[g]


def torch_child(args):
    """The plain transformers/torch loop; prints one RESULT line."""
    t_start = time.perf_counter()
    import numpy as np
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    with open(CONFIG) as f:
        ecfg = json.load(f)
    # our vocab.txt is "token<TAB>id" a line; the HF tokenizer wants one token a line
    vocab_tokens = os.path.join(args.workdir, "vocab_tokens.txt")
    with open(VOCAB, encoding="utf-8") as f, open(vocab_tokens, "w", encoding="utf-8") as out:
        tokens = [line.rstrip("\n").split("\t")[0] for line in f]
        out.write("\n".join(tokens) + "\n")
    tok = BertTokenizerFast(vocab_file=vocab_tokens, do_lower_case=True)

    def encode(path):
        rows = read_tsv(path)
        enc = tok([t for t, _ in rows], truncation=True, max_length=args.max_seqlen)["input_ids"]
        return enc, np.array([y for _, y in rows])

    train_ids, train_y = encode(os.path.join(TASK_DIR, "train.tsv"))
    dev_ids, dev_y = encode(os.path.join(TASK_DIR, "dev.tsv"))
    test_ids, test_y = encode(os.path.join(TASK_DIR, "test.tsv"))
    t_tokenized = time.perf_counter()

    cfg = BertConfig(vocab_size=len(tokens), hidden_size=ecfg["hidden_size"],
                     num_hidden_layers=ecfg["num_hidden_layers"], num_attention_heads=ecfg["num_attention_heads"],
                     intermediate_size=ecfg["intermediate_size"], hidden_act=ecfg["hidden_act"],
                     hidden_dropout_prob=ecfg["hidden_dropout_prob"],
                     attention_probs_dropout_prob=ecfg["attention_probs_dropout_prob"],
                     max_position_embeddings=ecfg["max_position_embeddings"],
                     type_vocab_size=ecfg["type_vocab_size"], initializer_range=ecfg["initializer_range"],
                     pad_token_id=0)

    class Classifier(torch.nn.Module):
        """BertModel + ours' "mean" head: the mean of the top layer over the non-pad tokens."""

        def __init__(self):
            super().__init__()
            self.bert = BertModel(cfg, add_pooling_layer=False)
            self.dropout = torch.nn.Dropout(cfg.hidden_dropout_prob)
            self.classifier = torch.nn.Linear(cfg.hidden_size, 2)

        def forward(self, ids, mask):
            seq = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
            keep = mask.unsqueeze(-1).to(seq.dtype)
            pooled = (seq * keep).sum(1) / keep.sum(1).clamp(min=1.0)
            return self.classifier(self.dropout(pooled))

    model = Classifier()
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, eps=1e-6)
    steps = math.ceil(args.epoch * len(train_ids) / args.batch_size)
    warmup = int(0.1 * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / warmup if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))

    def pad(rows):
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
        return ids, (ids != 0).long()

    lengths = [len(r) for r in train_ids]
    bf16 = args.child == "torch_bf16"
    model.train()
    done, losses = 0, []
    while done < steps:  # whole epochs of bucketed batches until the step count (1 epoch: one pass)
        for idx in bucketed_batches(len(train_ids), lengths, args.batch_size, rng):
            if done == steps:
                break
            ids, mask = pad([train_ids[i] for i in idx])
            y = torch.from_numpy(train_y[idx])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(model(ids, mask).float(), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            done += 1
            if done % 100 == 0:
                losses.append(round(float(loss), 4))
    t_trained = time.perf_counter()

    def accuracy(ids_list, labels):
        model.eval()
        order = sorted(range(len(ids_list)), key=lambda i: len(ids_list[i]))  # pads least, as ours
        correct = 0
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for s in range(0, len(order), args.batch_size):
                idx = order[s:s + args.batch_size]
                ids, mask = pad([ids_list[i] for i in idx])
                correct += int((model(ids, mask).argmax(-1).numpy() == labels[idx]).sum())
        return correct / len(ids_list)

    dev_acc, test_acc = accuracy(dev_ids, dev_y), accuracy(test_ids, test_y)
    torch.save(model.state_dict(), os.path.join(args.workdir, "model.pt"))
    t_end = time.perf_counter()
    print("RESULT " + json.dumps({
        "dev_acc": dev_acc, "test_acc": test_acc, "steps": done, "losses_every_100": losses,
        "import_and_tokenize_s": round(t_tokenized - t_start, 2), "train_s": round(t_trained - t_tokenized, 2),
        "eval_and_save_s": round(t_end - t_trained, 2)}))


def run_torch(args, env, workdir, variant):
    cmd = [sys.executable, __file__, "--child", variant, "--workdir", workdir, "--epoch", str(args.epoch),
           "--batch_size", str(args.batch_size), "--max_seqlen", str(args.max_seqlen), "--lr", str(args.lr),
           "--threads", str(args.threads), "--seed", str(args.seed)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not line:
        raise RuntimeError(f"{variant} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return dict(json.loads(line[0][7:]), wall_s=wall)


# ---------------------------------------------------------------------------- driver
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default="ours,torch", help="comma list of ours, ours_to_static, torch, torch_bf16")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--epoch", type=float, default=1.0)
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--max_seqlen", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--omp_wait_policy", default="PASSIVE", choices=("PASSIVE", "ACTIVE"),
                    help="OMP_WAIT_POLICY of both peers (PASSIVE: fair on a shared machine)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return torch_child(args)
    ensure_data()
    model, flags, ncpu = cpu_description()
    print(f"# CPU: {model}; flags: {' '.join(flags) or '-'}; os.cpu_count()={ncpu}; threads={args.threads}; "
          f"OMP_WAIT_POLICY={args.omp_wait_policy}")
    print(f"# load average at start: {os.getloadavg()}", flush=True)
    # OMP_WAIT_POLICY: see bench_train.py (OpenMP's spinning at barriers on a shared machine)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=ROOT, GLOG_minloglevel="2", OMP_WAIT_POLICY=args.omp_wait_policy)
    peers = args.peers.split(",")
    results = {}
    for r in range(args.rounds):
        for peer in (peers if r % 2 == 0 else peers[::-1]):
            load_before = os.getloadavg()[0]
            with tempfile.TemporaryDirectory() as workdir:
                if peer.startswith("ours"):  # ours_to_static: with the trainer's compiled forward
                    res = run_ours(args, env, workdir, to_static=peer == "ours_to_static")
                else:
                    res = run_torch(args, env, workdir, peer)
            res.update(peer=peer, round=r, load1_before=load_before, load1_after=os.getloadavg()[0])
            results.setdefault(peer, []).append(res)
            print(json.dumps(res), flush=True)
    print(f"\n# load average at end: {os.getloadavg()}")
    print(f"{'peer':11} {'wall s (median)':>16} {'dev acc (median)':>17}  per round (wall s / dev acc)")
    for peer, rs in results.items():
        walls = [x["wall_s"] for x in rs]
        accs = [x["dev_acc"] for x in rs]
        print(f"{peer:11} {statistics.median(walls):16.1f} {statistics.median(accs):17.4f}  "
              f"{[(round(w, 1), round(a, 4)) for w, a in zip(walls, accs)]}")
    for ours in ("ours", "ours_to_static"):
        if ours in results and "torch" in results:
            ratio = statistics.median(x["wall_s"] for x in results[ours]) / \
                statistics.median(x["wall_s"] for x in results["torch"])
            print(f"{ours} / torch wall time: {ratio:.2f}x (target <= 0.8x)")


if __name__ == "__main__":
    main()
