"""propeller.tools.search around a stand-in training command: the trials a spec makes, what each
run receives (--run_config merged over the command's own, one more --hparam), resuming, the
sorted table and the plot, and the errors of a bad spec."""
import json
import os
import subprocess
import sys

import pytest

from propeller.tools.search import trials

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# reads --run_config / --hparam as the real examples do and reports a score that depends on them
USER_SCRIPT = r'''
import argparse, json, os, sys
sys.path.insert(0, os.environ["ROOT"])
from propeller.util import ArgumentParser, parse_hparam, parse_runconfig  # no paddle import: fast
p = ArgumentParser("user")
p.add_argument("--result_file")
p.add_argument("--tag")
a = p.parse_args()
rc, hp = parse_runconfig(a), parse_hparam(a)
os.makedirs(rc.model_dir, exist_ok=True)
with open(os.path.join(rc.model_dir, "seen.json"), "w") as f:
    json.dump({"run_config": rc.to_dict(), "hparam": hp.to_dict(), "tag": a.tag}, f)
with open(os.path.join(os.environ["ROOT_OUT"], "calls.txt"), "a") as f:
    f.write(rc.model_dir + " " + os.environ.get("PADDLE_TRAINER_ID", "-") + "\n")
score = -abs(hp["learning_rate"] - 1e-3) * 100 + hp["adversarial"]["epsilon"] + rc.seed / 1000.0
result = {"dev.acc": score, "test.acc": score / 2}
if a.result_file:
    json.dump(result, open(a.result_file, "w"))
else:
    print("some log line")
    print(json.dumps(result))
'''


def _run(tmp_path, spec, extra=(), use_result_file=True):
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT)
    (tmp_path / "rc_base.json").write_text(json.dumps({"max_steps": 9, "seed": 0}))
    cmd = [sys.executable, "-m", "propeller.tools.search", "--spec", json.dumps(spec), "--work_dir",
           str(tmp_path / "w"), "--metric", "dev.acc", *extra, "--", str(script), "--tag", "{trial}",
           "--run_config", json.dumps({"base": str(tmp_path / "rc_base.json"), "log_steps": 5}),
           "--hparam", '{"learning_rate": 0.1, "adversarial": {"method": "fgm", "epsilon": 0.0}}']
    if use_result_file:
        cmd += ["--result_file", "{result_file}"]
    env = dict(os.environ, ROOT=ROOT, ROOT_OUT=str(tmp_path), PYTHONPATH=ROOT)
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


GRID = {"method": "grid", "hparam": {"learning_rate": [1e-3, 1e-2], "adversarial.epsilon": [0.5, 1.0]},
        "run_config": {"seed": [1, 2]}}


@pytest.mark.parametrize("use_result_file", [True, False])
def test_grid_runs_every_trial_once_with_its_values(tmp_path, use_result_file):
    r = _run(tmp_path, GRID, use_result_file=use_result_file)
    assert r.returncode == 0, r.stderr[-3000:]
    calls = (tmp_path / "calls.txt").read_text().split()[::2]
    assert len(calls) == 8 and len(set(calls)) == 8  # 2 x 2 x 2, each in its own model_dir
    seen = [json.loads(open(os.path.join(d, "seen.json")).read()) for d in calls]
    combos = {(s["hparam"]["learning_rate"], s["hparam"]["adversarial"]["epsilon"], s["run_config"]["seed"]) for s in seen}
    assert combos == {(lr, e, sd) for lr in (1e-3, 1e-2) for e in (0.5, 1.0) for sd in (1, 2)}
    for s, d in zip(seen, calls):
        # the command's own run_config (and its base file) kept under the trial's keys; model_dir the trial's
        assert s["run_config"]["max_steps"] == 9 and s["run_config"]["log_steps"] == 5
        assert s["run_config"]["model_dir"] == d and s["tag"] == os.path.basename(os.path.dirname(d))
        assert s["hparam"]["adversarial"]["method"] == "fgm"  # a dotted key changes one entry of the dict
    lines = (tmp_path / "w" / "search_results.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    assert head[:2] == ["dev.acc", "trial"] and "hparam.learning_rate" in head and "test.acc" in head
    scores = [float(l.split("\t")[0]) for l in lines[1:]]
    assert len(scores) == 8 and scores == sorted(scores, reverse=True)
    best = dict(zip(head, lines[1].split("\t")))
    assert (best["hparam.learning_rate"], best["hparam.adversarial.epsilon"], best["run_config.seed"]) == ("0.001", "1.0", "2")
    assert os.path.getsize(tmp_path / "w" / "search_results.png") > 5000
    # a rerun with a larger grid runs only the new trials
    bigger = dict(GRID, run_config={"seed": [1, 2, 3]})
    r = _run(tmp_path, bigger, use_result_file=use_result_file)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len((tmp_path / "calls.txt").read_text().splitlines()) == 12 and r.stderr.count("skipped") == 8


def test_random_search_is_seeded_and_inside_its_ranges():
    spec = {"method": "random", "budget": 30, "seed": 4,
            "hparam": {"learning_rate": {"loguniform": [1e-5, 1e-3]}, "epoch": {"randint": [1, 3]},
                       "warmup_proportion": {"uniform": [0.0, 0.2]}, "batch_size": [16, 32]}}
    a, b = trials(spec), trials(spec)
    assert a == b and len(a) == 30
    assert trials(dict(spec, seed=5)) != a
    hp = [t["hparam"] for t in a]
    assert all(1e-5 <= h["learning_rate"] <= 1e-3 and h["epoch"] in (1, 2, 3) and 0 <= h["warmup_proportion"] <= 0.2
               and h["batch_size"] in (16, 32) for h in hp)
    assert {h["epoch"] for h in hp} == {1, 2, 3} and sum(h["learning_rate"] < 1e-4 for h in hp) > 8  # log scale


@pytest.mark.parametrize("spec, message", [
    ({"method": "grid", "hparam": {"learning_rate": {"uniform": [0, 1]}}}, "grid search needs lists"),
    ({"method": "random", "hparam": {"learning_rate": [1]}}, "needs \"budget\""),
    ({"method": "anneal", "hparam": {"x": [1]}}, "must be \"grid\" or \"random\""),
    ({"hparam": {"x": []}}, "empty list"),
    ({"hparams": {"x": [1]}}, r"unknown keys \['hparams'\]"),
    ({"hparam": {"x": {"loguniform": [0, 1]}}, "method": "random", "budget": 2}, "> 0 for loguniform"),
])
def test_bad_spec_is_one_clear_error(tmp_path, spec, message):
    with pytest.raises(ValueError, match=message):
        trials(spec)
    r = _run(tmp_path, spec)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "search:" in r.stderr


def test_a_failing_trial_stops_the_search_naming_it(tmp_path):
    r = _run(tmp_path, {"hparam": {"learning_rate": [1e-3]}, "run_config": {"seed": ["not an int"]}})
    assert r.returncode == 2 and "failed with exit status" in r.stderr and "Traceback" not in r.stderr.splitlines()[-1]


def test_nproc_runs_each_trial_under_paddle_distributed_launch(tmp_path):
    r = _run(tmp_path, {"hparam": {"learning_rate": [1e-3]}}, extra=["--nproc", "2"])
    assert r.returncode == 0, r.stderr[-3000:]
    calls = sorted(l.split() for l in (tmp_path / "calls.txt").read_text().splitlines())
    assert len(calls) == 2 and calls[0][0] == calls[1][0] and [c[1] for c in calls] == ["0", "1"]
