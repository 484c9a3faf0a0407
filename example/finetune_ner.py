#!/usr/bin/env python
"""Fine-tune ERNIE for named-entity recognition (BIO tags, chunk F1), e.g. MSRA-NER.

    python example/finetune_ner.py --data_dir data/demo/msra_ner --vocab_file VOCAB \\
        --warm_start_from MODEL_DIR --max_seqlen 256 \\
        --run_config '{"model_dir": "output/ner", "eval_steps": 500}' \\
        --hparam '{"batch_size": 16, "epoch": 6, "learning_rate": 5e-5, "warmup_proportion": 0.0}'

    echo "张 三 在 北 京 工 作" | python example/finetune_ner.py --do_predict \\
        --run_config '{"model_dir": "output/ner"}'     # -> one tag per character

Data: ``train``/``dev``/``test`` directories or ``.tsv`` files of ``chars<TAB>tags`` lines
(characters and tags separated by spaces or \\x02; header ``text_a<TAB>label`` optional).
Tags: the 7 MSRA tags, or ``--label_map``. ERNIE-tiny: ``--use_sentence_piece_vocab`` (its
vocab with one token per character). ``--do_predict`` reads character lines from stdin.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from ernie.finetune.ner import NerTask  # noqa: E402
from ernie.finetune.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(NerTask))
