"""The demo's final table: the model pre-trained and fine-tuned in this run, the cheap baselines
computed in this run, and random init with the same fine-tuning, from the study.

    python script/demo_summary.py --out output/demo [--study bench/study_results.json]
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def last_eval(log, split, metric):
    """The metric of the last ``[split evaluation]`` line a fine-tuning run printed."""
    with open(log, encoding="utf-8", errors="replace") as f:
        lines = [line for line in f if line.startswith(f"[{split} evaluation]")]
    if not lines:
        raise SystemExit(f"{log}: no [{split} evaluation] line: did the fine-tuning finish?")
    m = re.search(rf"\b{metric}: ([\d.]+)", lines[-1])
    if not m:
        raise SystemExit(f"{log}: its last [{split} evaluation] line has no {metric}")
    return float(m.group(1))


def compare(ours, ref):
    """'beats', 'ties' or 'does not beat', at the 6 decimals the fine-tuning logs print: the same
    1,461 of 1,736 reviews right read 0.841590 from the log and 0.8415898... from the baseline's
    JSON, and a bare ``>`` called that tie a win."""
    a, b = round(ours, 6), round(ref, 6)
    return "beats" if a > b else "ties" if a == b else "does not beat"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="output/demo")
    ap.add_argument("--study", default=os.path.join(ROOT, "bench", "study_results.json"))
    ap.add_argument("--ft_steps", default=None,
                    help="the demo's fine-tuning steps, e.g. sentiment=900,ner=2400: random init is shown "
                         "only for a task the study fine-tuned the same number of steps")
    args = ap.parse_args(argv)
    demo_steps = dict((k, int(v)) for k, v in (kv.split("=") for kv in args.ft_steps.split(","))) \
        if args.ft_steps else {}
    ours = {"sentiment": last_eval(os.path.join(args.out, "sentiment.log"), "test", "acc"),
            "ner": last_eval(os.path.join(args.out, "ner.log"), "test", "f1")}
    dev = {"sentiment": last_eval(os.path.join(args.out, "sentiment.log"), "dev", "acc"),
           "ner": last_eval(os.path.join(args.out, "ner.log"), "dev", "f1")}
    with open(os.path.join(args.out, "baselines_sentiment.json"), encoding="utf-8") as f:
        lr = json.load(f)["baselines"]["tfidf_logreg"]
    with open(os.path.join(args.out, "baselines_ner.json"), encoding="utf-8") as f:
        lex = json.load(f)["baselines"]["lexicon"]
    study = None
    if os.path.isfile(args.study):
        with open(args.study, encoding="utf-8") as f:
            study = json.load(f)

    rows = [("ERNIE pre-trained in this demo, fine-tuned (best on dev)",
             f"{ours['sentiment']:.4f}", f"{ours['ner']:.4f}")]
    if study:
        # random init from the study, for each task it fine-tuned as the demo does
        study_steps = (study.get("settings") or {}).get("ft_steps", {})
        rand = {t: c for t, c in study["table"]["none"].items()
                if t in ours and (t not in demo_steps or study_steps.get(t) == demo_steps[t])}
        for t in ours:
            if t not in rand:
                print(f"(random init for {t}: the study fine-tuned {study_steps.get(t)} steps, the demo "
                      f"{demo_steps.get(t)}: not shown)")
        n = max((c["n"] for c in rand.values()), default=0)
        cells = [f"{rand[t]['test_mean']:.4f} ± {rand[t]['test_std']:.4f}" if t in rand else "–"
                 for t in ("sentiment", "ner")]
        rows.append((f"random init, same fine-tuning [from the study: mean ± std of {n} seeds]", *cells))
    rows.append((f"{lr['name']} [computed here]", f"{lr['test']['acc']:.4f}", "–"))
    rows.append((f"{lex['name']} [computed here]", "–", f"{lex['test']['f1']:.4f}"))
    w = max(len(r[0]) for r in rows)
    print(f"{'test set':<{w}}  {'sentiment acc':>18}  {'NER chunk F1':>18}")
    for name, s, n in rows:
        print(f"{name:<{w}}  {s:>18}  {n:>18}")
    print(f"(the demo's own model on dev: sentiment acc {dev['sentiment']:.4f}, NER F1 {dev['ner']:.4f})")
    verdicts = [f"sentiment: {compare(ours['sentiment'], lr['test']['acc'])} the linear "
                f"baseline ({ours['sentiment']:.6f} vs {lr['test']['acc']:.6f})",
                f"ner: {compare(ours['ner'], lex['test']['f1'])} the lexicon baseline "
                f"({ours['ner']:.6f} vs {lex['test']['f1']:.6f})"]
    if study:
        for task, what in (("sentiment", "accuracy"), ("ner", "F1")):
            if task not in rand:
                continue
            r = rand[task]
            better = ours[task] > r["test_mean"] + r["test_std"]
            verdicts.append(f"{task}: {'beats' if better else 'does not clearly beat'} random init "
                            f"({ours[task]:.4f} vs {r['test_mean']:.4f} ± {r['test_std']:.4f} {what})")
        if study.get("settings"):
            s = study["settings"]
            verdicts.append(f"study: {s.get('pretrain_steps')} pre-training batches per variant; the study's "
                            f"own pre-trained models and every number with its command: bench/RESULTS.md")
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
