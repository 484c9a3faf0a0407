"""propeller.cpu_env: what importing propeller does to the process before paddle loads (denormal
flushing, checked in fresh interpreters since it happens once, on import) and the math threads a
training process gets."""
import json
import os
import platform
import resource
import subprocess
import sys

import numpy as np
import paddle
import pytest

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
    tuned = []
    monkeypatch.setattr(cpu_env, "tune_paddle", lambda: tuned.append(1))

    class M(propeller.train.Model):
        def __init__(self, hparams, mode, run_config):
            super().__init__(hparams, mode, run_config)
            self.fc = paddle.nn.Linear(2, 2)

    propeller.Learner(M, {"model_dir": str(tmp_path)}, {})
    assert calls == [len(os.sched_getaffinity(0))] and tuned == [1]
    calls.clear()
    monkeypatch.setattr(cpu_env, "USER_THREADS", "1")
    propeller.Learner(M, {"model_dir": str(tmp_path / "b")}, {})
    assert calls == []


def test_tune_paddle_turns_stride_kernels_off_without_changing_results(monkeypatch):
    from ernie.modeling import ErnieConfig, ErnieModel
    before = paddle.get_flags(["FLAGS_use_stride_kernel"])
    cfg = ErnieConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    paddle.seed(1)
    model = ErnieModel(cfg)
    ids = paddle.to_tensor(np.random.RandomState(0).randint(5, 40, size=(3, 9)))

    def forward_backward():
        model.clear_gradients()
        seq, pooled = model(ids)
        (seq.square().mean() + pooled.sum()).backward()
        return [seq.numpy()] + [p.grad.numpy() for p in model.parameters()]
    try:
        monkeypatch.delenv("FLAGS_use_stride_kernel", raising=False)
        paddle.set_flags({"FLAGS_use_stride_kernel": True})
        strided = forward_backward()
        assert cpu_env.tune_paddle() == {"FLAGS_use_stride_kernel": False}
        assert paddle.get_flags(["FLAGS_use_stride_kernel"])["FLAGS_use_stride_kernel"] is False
        for a, b in zip(strided, forward_backward()):  # copies instead of views: the same numbers
            np.testing.assert_array_equal(a, b)
        paddle.set_flags({"FLAGS_use_stride_kernel": True})
        monkeypatch.setenv("FLAGS_use_stride_kernel", "1")  # the user's choice stands
        assert cpu_env.tune_paddle() == {}
        assert paddle.get_flags(["FLAGS_use_stride_kernel"])["FLAGS_use_stride_kernel"] is True
    finally:
        paddle.set_flags(before)


def test_denormals_are_flushed_unless_turned_off():
    assert _probe()["denormal_kept"] is False
    assert _probe(PROPELLER_FLUSH_DENORMALS="0")["denormal_kept"] is True


def test_importing_propeller_then_paddle_prints_no_ccache_warning():
    # paddle warns at import on machines without ccache (irrelevant: no C++ op is compiled here)
    r = subprocess.run([sys.executable, "-c", "import propeller.paddle, ernie.modeling"], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert r.returncode == 0 and "ccache" not in r.stderr, r.stderr


FAULTS = """
import json, resource, sys
from propeller import cpu_env
import paddle
kept = cpu_env.keep_freed_memory() if sys.argv[1] == "tune" else None
x = paddle.ones([1 << 21])
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        y = x * 2.0  # an 8 MB output: from fresh pages, every page faults
        del y
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
faults()
print(json.dumps({"kept": kept, "faults": faults()}))
"""


def _faults(mode, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    base.update(PYTHONPATH=ROOT, **env)
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], env=base, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_keep_freed_memory_stops_page_faults_on_reallocation():
    if not platform.libc_ver()[0] == "glibc":
        pytest.skip("mallopt is glibc's")
    pages = (1 << 23) // resource.getpagesize()
    assert _faults("plain")["faults"] > pages / 2  # glibc's default under Paddle's allocator
    tuned = _faults("tune")
    assert tuned["kept"] is True and tuned["faults"] < pages / 20
    # the user's glibc settings stand
    assert _faults("tune", MALLOC_TRIM_THRESHOLD_="131072")["kept"] is False
