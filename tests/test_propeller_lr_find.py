"""The learning-rate finder: the sweep inside the Learner (rates, early stop, nothing saved) and
python -m propeller.tools.lr_find around a real training command."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import propeller.paddle as propeller
from propeller.train import lr_find

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# a training command as users write them: --run_config / --hparam, a Learner, work after training
USER_SCRIPT = r'''
import os, sys
sys.path.insert(0, os.environ["ROOT"])
import numpy as np
import paddle
import propeller.paddle as propeller

class Net(propeller.train.Model):
    def __init__(self, hparams, mode=None, run_config=None):
        super().__init__(hparams, mode, run_config)
        self.fc = paddle.nn.Linear(8, 2)
    def forward(self, x):
        return self.fc(x)
    def loss(self, logits, y):
        return paddle.nn.functional.cross_entropy(logits, y)

p = propeller.ArgumentParser("user")
a = p.parse_args()
rc, hp = propeller.parse_runconfig(a), propeller.parse_hparam(a)
rng = np.random.RandomState(0)
x = rng.randn(64, 8).astype("float32")
y = (x[:, 0] > 0).astype("int64")
data = propeller.Dataset.from_list(list(zip(x, y))).shuffle(64, seed=1).repeat().padded_batch(16)
propeller.Learner(Net, rc, hp).train(data)
open(os.path.join(rc.model_dir, "after_training"), "w").write("the command went on")
'''


def test_sweep_sets_exponential_rates_and_stops_on_divergence(tmp_path, monkeypatch):
    import paddle
    out = tmp_path / "out"
    monkeypatch.setenv(lr_find.ENV, json.dumps({"out": str(out), "min_lr": 1e-4, "max_lr": 1e4, "steps": 60}))

    class Net(propeller.train.Model):
        def __init__(self, hparams, mode=None, run_config=None):
            super().__init__(hparams, mode, run_config)
            self.fc = paddle.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

        def loss(self, logits, y):
            return paddle.nn.functional.cross_entropy(logits, y)

    seen = []

    class Rates(propeller.RunHook):
        def after_step(self, state):
            seen.append(state.lr)  # the rate of the next step

    rng = np.random.RandomState(0)
    x = rng.randn(32, 4).astype("float32")
    batches = [(x, (x[:, 0] > 0).astype("int64"))] * 100
    learner = propeller.Learner(Net, propeller.RunConfig(model_dir=str(tmp_path / "m"), save_steps=1, eval_steps=1),
                                {"max_grad_norm": 0.0})
    with pytest.raises(SystemExit) as e:
        learner.train(batches, [Rates()], eval_datasets={"dev": batches[:1]})
    assert e.value.code == 0
    res = json.loads((out / "lr_find.json").read_text())
    n = res["steps_run"]
    assert res["stopped_early"] and 10 < n < 60  # at 1e4 the loss explodes well before the end
    lrs = np.array(res["lr"])
    assert lrs[0] == pytest.approx(1e-4) and np.allclose(lrs[1:] / lrs[:-1], (1e8) ** (1 / 59))
    assert np.allclose(seen, lrs * (1e8) ** (1 / 59), rtol=1e-6)  # the optimizer really used the sweep's rates
    assert 1e-5 <= res["suggestion"]["suggested"] <= 1e3
    assert res["suggestion"]["suggested"] == pytest.approx(lrs[np.nanargmin(np.array(res["smoothed_loss"], float))] / 10)
    assert os.path.getsize(out / "lr_find.png") > 5000
    left = os.listdir(tmp_path / "m") if os.path.exists(tmp_path / "m") else []
    assert not [n for n in left if n.startswith("model_") or n in ("ckpt_info", "best")]  # nothing saved or exported


def test_suggest_rules():
    lrs = np.logspace(-6, 0, 61)
    loss = 2 - np.tanh((np.log10(lrs) + 3) * 2)  # steepest at 1e-3, flat after
    loss[50:] = np.linspace(loss[49], 10, 11)  # diverges from 1e-1
    s = lr_find.suggest(lrs, loss)
    assert s["steepest"] == pytest.approx(1e-3, rel=0.3)
    assert s["min_loss_div10"] == pytest.approx(lrs[np.argmin(loss)] / 10) and s["suggested"] == s["min_loss_div10"]
    assert lr_find.suggest([1e-3, 1e-2], [1.0, float("nan")])["suggested"] is None
    assert s["warning"] is None and s["dip"] > 0.5


def test_suggest_ignores_a_lucky_first_batch_and_flags_a_flat_curve():
    # the shape of a real 100-step sweep on demo sentiment: the bias-corrected average of the first
    # batch was the lowest value of a flat, noisy curve, and the old rule suggested min_lr / 10
    rng = np.random.default_rng(0)
    lrs = np.logspace(-7, 0, 80)
    smoothed = 0.695 + 0.002 * rng.standard_normal(80)
    smoothed[0] = 0.680
    smoothed[70:] = np.linspace(0.70, 3.0, 10)
    s = lr_find.suggest(lrs, smoothed)
    assert s["suggested"] > lrs[lr_find.MIN_STEPS_BEFORE_STOP] / 10 * 0.999
    assert s["suggested"] == pytest.approx(lrs[10 + np.argmin(smoothed[10:])] / 10)
    assert s["dip"] < lr_find.MIN_DIP and "no clear dip" in s["warning"]


def test_cli_leaves_the_model_dir_alone(tmp_path):
    script = tmp_path / "user.py"
    script.write_text(USER_SCRIPT)
    user_dir = tmp_path / "my_model"
    cmd = [sys.executable, "-m", "propeller.tools.lr_find", "--steps", "40", "--min_lr", "1e-5", "--max_lr", "100",
           "--out", str(tmp_path / "lr"), "--", str(script), "--run_config", json.dumps({"model_dir": str(user_dir)})]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, ROOT=ROOT, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "suggested learning rate: " in r.stdout
    res = json.loads((tmp_path / "lr" / "lr_find.json").read_text())
    assert 2 < res["steps_run"] <= 40 and len(res["loss"]) == res["steps_run"]
    assert not user_dir.exists()  # neither checkpoints nor the command's after-training work
    assert (tmp_path / "lr" / "lr_find.png").exists()
    # bad settings: one message, exit 2, before anything runs
    bad = subprocess.run(cmd[:3] + ["--min_lr", "1", "--max_lr", "0.1", "--", str(script)], cwd=ROOT,
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert bad.returncode == 2 and "min_lr < max_lr" in bad.stderr and "Traceback" not in bad.stderr
