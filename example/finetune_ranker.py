#!/usr/bin/env python
"""Fine-tune ERNIE to rank candidates for a query (NLPCC-DBQA style): MRR and F1.

    python example/finetune_ranker.py --data_dir DATA --vocab_file VOCAB --warm_start_from MODEL_DIR \\
        --max_seqlen 512 --run_config '{"model_dir": "output/dbqa"}' \\
        --hparam '{"batch_size": 8, "epoch": 3, "learning_rate": 2e-5, "warmup_proportion": 0.0}'

    printf 'q1\\t问题\\t候选答案\\n' | python example/finetune_ranker.py --do_predict \\
        --run_config '{"model_dir": "output/dbqa"}'      # -> qid<TAB>argmax<TAB>p_0 p_1

Data: ``train``/``dev``/``test`` directories or ``.tsv`` files of
``qid<TAB>text_a<TAB>text_b<TAB>label`` lines (label 1 = relevant), or those columns under a
header. ``--do_predict`` reads ``qid<TAB>text_a<TAB>text_b`` lines from stdin.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from ernie.finetune.ranker import RankingTask  # noqa: E402
from ernie.finetune.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(RankingTask))
