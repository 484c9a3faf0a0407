"""Linear probe: how much sentiment a frozen ERNIE's features carry, before any fine-tuning.
Benchmark study (issue 10), not a timed test.

    python bench/bench_probe.py output/demo/ernie2 random [--data_dir data/demo/sentiment]
        [--vocab_file data/demo/vocab.txt] [--max_seqlen 128]

For each model (a pre-trained checkpoint, or ``random``: the same config, seeded random init),
every layer's hidden states (embeddings, layer 1, ...) are mean-pooled over the real tokens, and a
logistic regression (scikit-learn, standardised features, C chosen on dev among 0.1/1/10) is
trained on the training split's features and scored on dev and test. A pre-trained encoder whose
features a linear model cannot read sentiment from gives fine-tuning little to start from; the
char-unigram TF-IDF regression (``python -m ernie.finetune.baselines sentiment --ngram_ranges 1-1``)
is the bag-of-characters reference.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import paddle  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from ernie.checkpoint import load_config, load_into  # noqa: E402
from ernie.finetune.classifier import encode_text  # noqa: E402
from ernie.finetune.baselines import read_classification  # noqa: E402
from ernie.finetune.common import build_tokenizer  # noqa: E402
from ernie.finetune.data import BadLines  # noqa: E402
from ernie.modeling import ErnieModel  # noqa: E402


def layer_features(model, tok, texts, max_seqlen, batch=128):
    """[N, (layers + 1) * hidden]: each layer's hidden states mean-pooled over the real tokens."""
    out = []
    model.eval()
    with paddle.no_grad():
        for i in range(0, len(texts), batch):
            enc = [encode_text(tok, t, None, max_seqlen)[0] for t in texts[i:i + batch]]
            n = max(len(e) for e in enc)
            ids = np.array([np.pad(e, (0, n - len(e))) for e in enc])
            _, _, hidden = model(paddle.to_tensor(ids), output_hidden_states=True)
            m = (ids != 0)[:, :, None].astype("float32")
            out.append(np.concatenate([(h.numpy() * m).sum(1) / m.sum(1) for h in hidden], -1))
    return np.concatenate(out)


def probe(train, dev, test, y):
    """(dev acc, test acc, C) of the logistic regression chosen on dev."""
    sc = StandardScaler().fit(train)
    best = None
    for C in (0.1, 1.0, 10.0):
        clf = LogisticRegression(C=C, max_iter=2000).fit(sc.transform(train), y["train"])
        dev_acc = clf.score(sc.transform(dev), y["dev"])
        if best is None or dev_acc > best[0]:
            best = (dev_acc, clf.score(sc.transform(test), y["test"]), C)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="checkpoint dirs, or 'random' (the first checkpoint's config)")
    ap.add_argument("--data_dir", default="data/demo/sentiment")
    ap.add_argument("--vocab_file", default="data/demo/vocab.txt")
    ap.add_argument("--max_seqlen", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    tok = build_tokenizer(a.vocab_file)
    bad = BadLines("error", "probe")  # the fine-tuning reader and its bad-line policy
    splits = {k: read_classification(a.data_dir, k, bad) for k in ("train", "dev", "test")}
    y = {k: v[1] for k, v in splits.items()}
    first = next((m for m in a.models if m != "random"), None)
    if first is None:
        raise SystemExit("give at least one checkpoint (its config shapes the random model)")
    config = load_config(first)
    print("| model | layer | dev acc | test acc | C |\n|---|---|---|---|---|")
    for name in a.models:
        paddle.seed(a.seed)
        model = ErnieModel(config)
        if name != "random":
            load_into(model, name, strict=True)
        t0 = time.time()
        feats = {k: layer_features(model, tok, v[0], a.max_seqlen) for k, v in splits.items()}
        h = config.hidden_size
        for layer in range(config.num_hidden_layers + 1):
            cols = slice(layer * h, (layer + 1) * h)
            dev_acc, test_acc, C = probe(feats["train"][:, cols], feats["dev"][:, cols], feats["test"][:, cols], y)
            print(f"| {name} | {layer} | {dev_acc:.4f} | {test_acc:.4f} | {C} |", flush=True)
        print(f"({name}: features in {time.time() - t0:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
