#!/usr/bin/env python
"""Fine-tune ERNIE for extractive reading comprehension (DRCD, CMRC2018): EM and F1.

    python example/finetune_mrc.py --data_dir DATA --vocab_file VOCAB --warm_start_from MODEL_DIR \\
        --max_seqlen 512 --doc_stride 128 --max_query_len 64 \\
        --run_config '{"model_dir": "output/drcd"}' \\
        --hparam '{"batch_size": 16, "epoch": 2, "learning_rate": 5e-5, "warmup_proportion": 0.0}'

    python example/finetune_mrc.py --do_predict --run_config '{"model_dir": "output/drcd"}' < dev.json
        # -> {"question id": "answer", ...}

Data: ``train``/``dev``/``test`` directories or ``.json`` files in SQuAD format
(``data[].paragraphs[].{context, qas[].{id, question, answers[].{text, answer_start}}}``).
Decoding pairs the ``--n_best`` best starts and ends, answers up to ``--max_answer_len`` tokens.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from ernie.finetune.mrc import MrcTask  # noqa: E402
from ernie.finetune.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(MrcTask))
