"""Two CPU processes under ``paddle.distributed.launch`` (gloo) end with the same parameters as
one process on the same global batches: each rank takes half the rows of every batch, and
only rank 0 logs, evaluates and saves. The two ranks also prepare their batches in DataLoader
workers (the single process does not), which must not change anything."""
import json
import subprocess
import sys

import numpy as np

import _propeller_train_script as S

# dropout off: masks cannot match between one process and two
ARGS = ["--max_steps", "12", "--save_steps", "4", "--eval_steps", "6", "--dropout", "0", "--batch_size", "8"]


def test_two_processes_match_one(tmp_path):
    one = subprocess.Popen([sys.executable, S.SCRIPT, "--model_dir", str(tmp_path / "one"),
                            "--record_dir", str(tmp_path / "rec1")] + ARGS,
                           env=S.subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    two = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
                          "--log_dir", str(tmp_path / "logs"), S.SCRIPT, "--model_dir", str(tmp_path / "two"),
                          "--record_dir", str(tmp_path / "rec2"), "--num_workers", "2"] + ARGS,
                         env=S.subprocess_env(), capture_output=True, text=True)
    _, err = one.communicate()
    logs = [(tmp_path / "logs" / f"workerlog.{r}").read_text() for r in (0, 1)]
    assert two.returncode == 0, two.stdout[-3000:] + logs[0][-3000:] + logs[1][-3000:]
    assert one.returncode == 0, err

    want, got = np.load(tmp_path / "one" / "final_params.npz"), np.load(tmp_path / "two" / "final_params.npz")
    assert sorted(want.files) == sorted(got.files)
    for name in want.files:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=0, err_msg=name)

    ref = json.loads((tmp_path / "rec1" / "rank0.json").read_text())
    ranks = [json.loads((tmp_path / "rec2" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ref["world"] == 1 and all(r["world"] == 2 and r["gstep"] == 12 for r in ranks)
    # the ranks' rows of each step are disjoint halves of the one-process batch
    assert len(ref["batches"]) == len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 12
    for full, a, b in zip(ref["batches"], ranks[0]["batches"], ranks[1]["batches"]):
        assert len(a) == len(b) == len(full) // 2 == 4
        assert not set(a) & set(b) and set(a) | set(b) == set(full)
    # rank 0 alone evaluates, saves and logs
    assert ranks[0]["saves"] == [4, 8, 12] and ranks[1]["saves"] == []
    assert ranks[0]["evals"] == 2 and ranks[1]["evals"] == 0
    assert (tmp_path / "two" / "ckpt_info").read_text() == "model_4\nmodel_8\nmodel_12\n"
    assert "step: 12, loss:" in logs[0] and "[dev evaluation]" in logs[0]
    assert "step: " not in logs[1] and "evaluation]" not in logs[1] and "saved checkpoint" not in logs[1]
    assert not any("orderly distributed shutdown failed" in log for log in logs)


def test_a_rank_that_fails_ends_the_job_instead_of_hanging(tmp_path):
    """A rank raising mid-training must not leave its peer (or itself, at exit) waiting for a
    collective that never comes: the launcher reports the failure, promptly."""
    two = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
                          "--log_dir", str(tmp_path / "logs"), S.SCRIPT, "--model_dir", str(tmp_path / "two")] + ARGS,
                         env=S.subprocess_env(PROPELLER_TEST_FAIL_AT="3"), capture_output=True, text=True, timeout=240)
    assert two.returncode != 0
    assert "test failure at step 3" in (tmp_path / "logs" / "workerlog.1").read_text()
