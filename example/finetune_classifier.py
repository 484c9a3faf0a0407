#!/usr/bin/env python
"""Fine-tune ERNIE on sentence or sentence-pair classification (accuracy), or regression with
``--num_labels 1`` (STS-B: MSE, Pearson, Spearman).

    python example/finetune_classifier.py --data_dir data/demo/sentiment --vocab_file VOCAB \\
        --warm_start_from MODEL_DIR --max_seqlen 128 \\
        --run_config '{"model_dir": "output/sentiment", "eval_steps": 200, "seed": 1}' \\
        --hparam config/ernie_config.json --hparam '{"batch_size": 32, "epoch": 3, "learning_rate": 5e-5}'

    echo "这本书写得很好" | python example/finetune_classifier.py --do_predict \\
        --run_config '{"model_dir": "output/sentiment"}'      # -> label<TAB>probabilities

Data: ``--data_dir`` holds ``train``/``dev``/``test`` as directories of TSV files or as
``.tsv`` files; lines ``text_a[<TAB>text_b]<TAB>label`` or columns named by a header
(``label<TAB>text_a``). ``--do_predict`` reads ``text_a[<TAB>text_b]`` lines (or a TSV with a
header) from stdin and prints ``label<TAB>p_0 p_1 ...`` a line.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from ernie.finetune.classifier import ClassificationTask  # noqa: E402
from ernie.finetune.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(ClassificationTask))
