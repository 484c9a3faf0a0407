#!/usr/bin/env python
"""Offline data distillation (ERNIE Slim): train a small student on the gold training set plus
teacher-labelled augmented text (``label<TAB>probabilities<TAB>text`` lines, from
``finetune_classifier.py --do_predict``; see distill/script/distill_chnsenticorp.sh).

    python distill/distill_chnsentocorp.py --data_dir data/demo/sentiment \\
        --vocab_file output/distill/vocab.bow.txt --unsupervise_data_dir output/distill/aug_labelled \\
        --max_seqlen 128 --run_config '{"model_dir": "output/distill/bow"}' \\
        --hparam '{"student": "bow", "distill_mode": "soft", "batch_size": 32, "learning_rate": 1e-3}'

Flags and hparams: distill/README.md (or --help).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from distill.run import main  # noqa: E402

if __name__ == "__main__":
    main()
