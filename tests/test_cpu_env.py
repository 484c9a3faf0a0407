"""propeller.cpu_env: what importing propeller does to the process before paddle loads (thread
count, denormal flushing), checked in fresh interpreters since it happens once, on import."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = """
import json, os
import numpy as np
import propeller
import paddle
tiny = np.array([1e-39], np.float32)  # a denormal float32
print(json.dumps({"omp": os.environ.get("OMP_NUM_THREADS"),
                  "denormal_kept": bool((tiny + np.float32(0))[0] != 0)}))
"""


def _probe(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "PROPELLER_FLUSH_DENORMALS")}
    base.update(PYTHONPATH=ROOT, **env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=base, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_training_uses_every_allowed_core_unless_the_user_chose():
    # paddle's import alone would set OMP_NUM_THREADS=1 and train on one core
    assert _probe()["omp"] == str(len(os.sched_getaffinity(0)))
    assert _probe(OMP_NUM_THREADS="1")["omp"] == "1"


def test_denormals_are_flushed_unless_turned_off():
    assert _probe()["denormal_kept"] is False
    assert _probe(PROPELLER_FLUSH_DENORMALS="0")["denormal_kept"] is True
