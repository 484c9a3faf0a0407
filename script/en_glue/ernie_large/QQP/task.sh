#!/usr/bin/env bash
# GLUE QQP: question paraphrase (accuracy, F1); ERNIE 2.0 large. Batch size from the original README, learning
# rate / epochs / max_seq_len from the original large task script.
# Usage: TASK_DATA_PATH=/home/glue_data_processed MODEL_PATH=/home/model sh script/en_glue/ernie_large/QQP/task.sh
# (data: python script/en_glue/preprocess/glue_to_tsv.py GLUE_DIR OUT -> $TASK_DATA_PATH/QQP/)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=QQP_large DATA_SUBDIR=QQP EXAMPLE=classifier
: "${BATCH_SIZE:=256}" "${EPOCH:=3}" "${MAX_SEQLEN:=128}" "${LR:=5e-5}"
: "${NUM_LABELS:=2}" "${WEIGHT_DECAY:=0.0}" "${WARMUP:=0.1}" "${EVAL_STEPS:=1000}"
source "$(dirname "${BASH_SOURCE[0]}")/../../../zh_task/_finetune_common.sh"
