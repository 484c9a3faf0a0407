#!/usr/bin/env bash
# The miniature ERNIE 2.0 study (bench/study.py): the same small model pre-trained five ways
# (none, ERNIE 1.0 char masking + NSP, knowledge masking alone, continual multi-task, all tasks at
# once) with the same budget, each fine-tuned on demo sentiment and demo NER with several seeds,
# next to the cheap baselines. About 2 hours on 2 cores (estimated from its parts: NER is fine-tuned 2,400 steps); --quick about 20 min.
#   bash script/study.sh [--quick] [--seeds 1,2,3] [--pretrain_steps N] [--variants ...] [--out DIR]
# Results: output/study/results.md (table), results.png (bars with error bars), results.json.
# Rerunning skips the runs that finished (an interrupted study resumes).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
set -eo pipefail
cd "$ERNIE_ROOT"
python bench/study.py "$@"
