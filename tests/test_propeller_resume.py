"""Kill and resume: a run SIGKILLed between checkpoints and restarted with the same command ends
with exactly the parameters of an uninterrupted run (dropout on, shuffled repeated data, CPU).

Resumes happen in fresh processes, as they do in real life (and see FEASIBILITY §6)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np

import _propeller_train_script as S

ARGS = ["--max_steps", "12", "--save_steps", "4", "--dropout", "0.1"]


def _cmd(model_dir):
    return [sys.executable, S.SCRIPT, "--model_dir", str(model_dir)] + ARGS


def _wait_for(path, proc, limit=180.0):
    """Poll until ``path`` exists; fail at once if the process ended first (the limit only guards a hang)."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        code = proc.poll()
        assert code is None, f"run ended with exit code {code} before {path} appeared:\n{proc.stderr.read()}"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref = subprocess.Popen(_cmd(ref_dir), env=S.subprocess_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    # pauses after step 6 (checkpoint at step 4 written, steps 5-6 not saved), then is killed
    victim = subprocess.Popen(_cmd(run_dir), env=S.subprocess_env(PROPELLER_TEST_PAUSE_AT="6"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(run_dir / "ckpt_info", victim)
        _wait_for(run_dir / "paused", victim)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert (run_dir / "ckpt_info").read_text() == "model_4\n"
    assert not (run_dir / "final_params.npz").exists()

    again = subprocess.run(_cmd(run_dir), env=S.subprocess_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    assert again.returncode == 0, again.stderr
    assert f"resumed from {run_dir / 'model_4'} (step 4)" in again.stderr
    assert ref.wait() == 0, ref.stderr.read()
    ref.stderr.close()
    victim.stderr.close()

    want, got = np.load(ref_dir / "final_params.npz"), np.load(run_dir / "final_params.npz")
    assert sorted(want.files) == sorted(got.files) and len(want.files) > 10
    for name in want.files:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert (run_dir / "ckpt_info").read_text() == "model_4\nmodel_8\nmodel_12\n"
