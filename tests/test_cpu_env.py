"""propeller.cpu_env: what importing propeller does to the process before paddle loads (denormal
flushing, checked in fresh interpreters since it happens once, on import) and the math threads a
training process gets."""
import json
import os
import subprocess
import sys

import paddle

from propeller import cpu_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = """
import json, os
import numpy as np
import propeller
from propeller import cpu_env
import paddle
tiny = np.array([1e-39], np.float32)  # a denormal float32
print(json.dumps({"threads": cpu_env.training_threads(),
                  "denormal_kept": bool((tiny + np.float32(0))[0] != 0)}))
"""


def _probe(**env):
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "PROPELLER_FLUSH_DENORMALS", "PADDLE_LOCAL_SIZE", "PADDLE_TRAINERS_NUM")}
    base.update(PYTHONPATH=ROOT, **env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=base, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_training_threads_share_the_cores_unless_the_user_chose():
    cores = len(os.sched_getaffinity(0))
    # paddle's import alone would leave OMP_NUM_THREADS=1: one core for training
    assert _probe()["threads"] == cores
    assert _probe(OMP_NUM_THREADS="1")["threads"] is None  # the user's choice stands
    # under the launcher, the processes on this machine share its cores
    assert _probe(PADDLE_LOCAL_SIZE=str(cores))["threads"] == 1
    assert _probe(PADDLE_LOCAL_SIZE=str(cores * 4))["threads"] == 1


def test_the_learner_sets_them(monkeypatch, tmp_path):
    import propeller.paddle as propeller
    calls = []
    monkeypatch.setattr(cpu_env, "USER_THREADS", None)
    monkeypatch.setattr(paddle.base.core, "set_num_threads", calls.append)

    class M(propeller.train.Model):
        def __init__(self, hparams, mode, run_config):
            super().__init__(hparams, mode, run_config)
            self.fc = paddle.nn.Linear(2, 2)

    propeller.Learner(M, {"model_dir": str(tmp_path)}, {})
    assert calls == [len(os.sched_getaffinity(0))]
    calls.clear()
    monkeypatch.setattr(cpu_env, "USER_THREADS", "1")
    propeller.Learner(M, {"model_dir": str(tmp_path / "b")}, {})
    assert calls == []


def test_denormals_are_flushed_unless_turned_off():
    assert _probe()["denormal_kept"] is False
    assert _probe(PROPELLER_FLUSH_DENORMALS="0")["denormal_kept"] is True


def test_importing_propeller_then_paddle_prints_no_ccache_warning():
    # paddle warns at import on machines without ccache (irrelevant: no C++ op is compiled here)
    r = subprocess.run([sys.executable, "-c", "import propeller.paddle, ernie.modeling"], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert r.returncode == 0 and "ccache" not in r.stderr, r.stderr
