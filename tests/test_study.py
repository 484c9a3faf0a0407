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


def test_every_variant_pretrains_as_the_demo_does(tmp_path):
    import argparse
    import json
    args = argparse.Namespace(pretrain_steps=100, pretrain_batch_size=32, max_seqlen=128,
                              ernie_config="config/ernie_demo_config.json", bigram_buckets=32768, pretrain_lr=3e-3)
    with open(os.path.join(study.ROOT, study.DEMO_SCHEDULE), encoding="utf-8") as f:
        demo = json.load(f)["model"]["pretraining_overrides"]
    assert demo  # the demo pre-trains with its own overrides (no dropout)
    from ernie.modeling import ErnieConfig
    from ernie.pretraining.pretrain import MODEL_KEYS, pretraining_config
    for v in ("ernie1", "km", "continual", "all_at_once"):
        cfg = study.schedule_config(v, args, str(tmp_path))
        assert cfg["model"]["pretraining_overrides"] == demo and set(cfg["model"]) <= MODEL_KEYS
        assert pretraining_config(cfg, ErnieConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=32)).hidden_dropout_prob == 0
