"""The continual multi-task schedule: stages of tasks with iteration budgets.

    "mix": "task_per_batch",            # or "mixed"
    "stages": [
      {"name": "1", "budgets": {"km": 20000}},
      {"name": "2", "budgets": {"km": 10000, "cp": 30000}},
      {"name": "3", "budgets": {"km": 10000, "cp": 10000, "tdr": 40000}},
      {"name": "4", "budgets": {"km": 10000, "cp": 10000, "tdr": 10000, "sr": 50000}}
    ]

A budget counts batches (optimisation steps without gradient accumulation); a stage lasts
the sum of its budgets. ``task_per_batch``: each batch is one task, drawn with probability
proportional to what is left of each budget in the stage. Drawing so until every budget is
spent is the same as a uniformly random order of the stage's multiset of batches, which is
what is built here, from (seed, stage) alone. ``mixed``: the same for examples (a budget of
b batches is b*batch_size examples), and each batch takes the next batch_size of them, so a
batch mixes tasks in proportion to what they have left.

Everything is a function of (seed, position), so a run restarted at position p (the batches
it had consumed) sees exactly the batches it would have seen.
"""
import logging

import numpy as np

log = logging.getLogger("ernie")

MIX_MODES = ("task_per_batch", "mixed")


class Schedule:
    def __init__(self, stages, task_names, batch_size, mix="task_per_batch", seed=0):
        if mix not in MIX_MODES:
            raise ValueError(f"mix must be one of {MIX_MODES}, got {mix!r}")
        if not stages:
            raise ValueError("the schedule has no stages")
        self.task_names = list(task_names)
        self.mix, self.batch_size, self.seed = mix, int(batch_size), int(seed)
        self.stages = []
        seen = set()
        for k, st in enumerate(stages):
            budgets = {t: int(n) for t, n in st["budgets"].items() if int(n) > 0}
            unknown = set(budgets) - set(self.task_names)
            if unknown:
                raise ValueError(f"stage {k}: tasks {sorted(unknown)} are not configured (tasks: {self.task_names})")
            if not budgets:
                raise ValueError(f"stage {k} has no task with a positive budget")
            dropped = seen - set(budgets)
            if dropped:
                log.warning("stage %d drops tasks %s trained earlier: continual pre-training keeps earlier "
                            "tasks to avoid forgetting them", k, sorted(dropped))
            seen |= set(budgets)
            self.stages.append({"name": str(st.get("name", k + 1)), "budgets": budgets})
        self.lengths = np.array([sum(s["budgets"].values()) for s in self.stages], dtype="int64")
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])
        self._seq = {}

    @classmethod
    def from_config(cls, cfg, task_names):
        return cls(cfg["stages"], task_names, cfg.get("batch_size", 32), cfg.get("mix", "task_per_batch"),
                   cfg.get("seed", 0))

    @property
    def total(self):
        return int(self.starts[-1])

    def stage_of(self, pos):
        if not 0 <= pos < self.total:
            raise IndexError(f"position {pos} outside the schedule (0..{self.total - 1})")
        return int(np.searchsorted(self.starts, pos, side="right")) - 1

    def stage_tasks(self, k):
        return [t for t in self.task_names if t in self.stages[k]["budgets"]]

    def _stage_seq(self, k):
        """Task indices of stage k: [length] (task_per_batch) or [length, batch_size] (mixed)."""
        seq = self._seq.get(k)
        if seq is None:
            budgets = self.stages[k]["budgets"]
            per = 1 if self.mix == "task_per_batch" else self.batch_size
            items = np.concatenate([np.full(budgets[t] * per, self.task_names.index(t), dtype="int16")
                                    for t in self.task_names if t in budgets])
            seq = np.random.default_rng([self.seed, k]).permutation(items)
            if self.mix == "mixed":
                seq = seq.reshape(-1, self.batch_size)
            self._seq = {k: seq}  # keep only the current stage: memory stays O(stage)
        return seq

    def tasks_at(self, pos):
        """Task index of each of the batch_size examples of the batch at ``pos``."""
        k = self.stage_of(pos)
        row = self._stage_seq(k)[pos - self.starts[k]]
        return np.full(self.batch_size, row, dtype="int64") if self.mix == "task_per_batch" else row.astype("int64")

    def counts_before(self, pos, worker=0, num_workers=1):
        """Examples of each task in the batches before ``pos`` that one of ``num_workers``
        round-robin producers (the one making positions = worker mod num_workers) made."""
        counts = np.zeros(len(self.task_names), dtype="int64")
        for k in range(len(self.stages)):
            lo, hi = int(self.starts[k]), min(int(self.starts[k + 1]), pos)
            if hi <= lo:
                break
            seq = self._stage_seq(k)[:hi - lo]
            mine = (np.arange(lo, hi) % num_workers) == worker
            rows = seq[mine]
            counts += np.bincount(rows.reshape(-1), minlength=len(self.task_names)) * \
                (self.batch_size if self.mix == "task_per_batch" else 1)
        return counts

    def describe(self):
        lines = [f"schedule: {len(self.stages)} stages, {self.total} batches (batch {self.batch_size} per process), "
                 f"mix={self.mix}, seed={self.seed}"]
        for k, st in enumerate(self.stages):
            lines.append(f"  stage {st['name']}: steps {self.starts[k]}..{self.starts[k + 1] - 1}, budgets "
                         + ", ".join(f"{t} {n}" for t, n in st["budgets"].items()))
        return "\n".join(lines)
