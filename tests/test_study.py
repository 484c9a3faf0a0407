"""The study's pre-training variants (bench/study.py): the same budget for every variant, the
continual schedule adding one task a stage, all-at-once training the same tasks as much."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
study = pytest.importorskip("study")


@pytest.mark.parametrize("total", [400, 1500, 1501])
def test_every_variant_has_the_same_budget(total):
    for v in ("ernie1", "km", "continual", "all_at_once"):
        tasks, stages, _ = study.variant_schedule(v, total)
        assert sum(sum(st["budgets"].values()) for st in stages) == total, v
        assert all(t in tasks for st in stages for t in st["budgets"])


def test_continual_adds_one_task_a_stage_and_all_at_once_matches_its_totals():
    _, stages, mix = study.variant_schedule("continual", 1500)
    assert mix == "task_per_batch"
    assert [sorted(st["budgets"]) for st in stages] == [sorted(study.CONTINUAL[:k + 1]) for k in range(5)]
    for k, st in enumerate(stages[1:], 1):  # the new task gets half of its stage
        assert st["budgets"][study.CONTINUAL[k]] == sum(st["budgets"].values()) // 2
    _, (one,), _ = study.variant_schedule("all_at_once", 1500)
    assert one["budgets"] == {t: sum(st["budgets"].get(t, 0) for st in stages) for t in study.CONTINUAL}


def test_ernie1_is_character_masking_and_next_sentence_mixed():
    tasks, (stage,), mix = study.variant_schedule("ernie1", 1000)
    assert mix == "mixed" and tasks["mlm"]["levels"] == {"ernie1_char": 1.0}
    assert tasks["nsp"]["type"] == "next_sentence" and stage["budgets"] == {"mlm": 500, "nsp": 500}
