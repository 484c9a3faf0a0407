"""script/demo_summary.py: the demo's verdicts against the cheap baselines, read from real log
lines and baseline files of the shapes the demo writes."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _out(tmp_path, sentiment_acc, ner_f1):
    for task, metric, value in (("sentiment", "acc", sentiment_acc), ("ner", "f1", ner_f1)):
        (tmp_path / f"{task}.log").write_text(
            f"[dev evaluation] ave loss: 0.4, {metric}: 0.800000, data_num: 10\n"
            f"[test evaluation] ave loss: 0.4, {metric}: {value:.6f}, data_num: 1736\n", encoding="utf-8")
    (tmp_path / "baselines_sentiment.json").write_text(json.dumps(
        {"baselines": {"tfidf_logreg": {"name": "char 1-3gram tfidf + logreg", "test": {"acc": 1461 / 1736}}}}))
    (tmp_path / "baselines_ner.json").write_text(json.dumps(
        {"baselines": {"lexicon": {"name": "lexicon", "test": {"f1": 0.6927}}}}))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "script", "demo_summary.py"), "--out", str(tmp_path),
                        "--study", str(tmp_path / "none.json")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_tie_at_the_logs_precision_is_not_a_win(tmp_path):
    out = _out(tmp_path, 1461 / 1736, 0.6962)  # the log prints 0.841590, the JSON 0.8415898...
    assert "sentiment: ties the linear baseline" in out
    assert "ner: beats the lexicon baseline" in out
    out = _out(tmp_path, 1460 / 1736, 0.6900)
    assert "sentiment: does not beat the linear baseline" in out
    assert "ner: does not beat the lexicon baseline" in out
    assert "sentiment: beats" in _out(tmp_path, 1462 / 1736, 0.7)
