#!/usr/bin/env python
"""Online data distillation: the student asks a teacher server (``python -m
propeller.tools.start_server -m TEACHER/best_inference/inference -p PORT``) for soft labels of
every training batch while it trains (see distill/script/distill_chnsenticorp_with_propeller_server.sh).

    python distill/distill_chnsentocorp_with_propeller_server.py --data_dir data/demo/sentiment \\
        --vocab_file output/distill/vocab.bow.txt --unsupervise_data_dir output/distill/aug \\
        --teacher_host tcp://localhost:8113 --teacher_vocab_file data/demo/vocab.txt \\
        --teacher_max_seqlen 128 --server_batch_size 64 --num_coroutine 10 \\
        --run_config '{"model_dir": "output/distill/bow_online"}' --hparam '{"student": "bow"}'

A teacher whose outputs do not match the student's label space is refused before training; a
restarting or slow teacher is retried (--teacher_timeout, --teacher_retries).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from distill.run import main  # noqa: E402

if __name__ == "__main__":
    main(online=True)
