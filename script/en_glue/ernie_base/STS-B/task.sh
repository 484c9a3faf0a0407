#!/usr/bin/env bash
# GLUE STS-B: semantic similarity, regression (Pearson, Spearman); ERNIE 2.0 base. Batch size from the original README, learning
# rate / epochs / max_seq_len from the original base task script.
# Usage: TASK_DATA_PATH=/home/glue_data_processed MODEL_PATH=/home/model sh script/en_glue/ernie_base/STS-B/task.sh
# (data: python script/en_glue/preprocess/glue_to_tsv.py GLUE_DIR OUT -> $TASK_DATA_PATH/STS-B/)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=STS-B_base DATA_SUBDIR=STS-B EXAMPLE=classifier
: "${BATCH_SIZE:=128}" "${EPOCH:=3}" "${MAX_SEQLEN:=128}" "${LR:=5e-5}"
: "${NUM_LABELS:=1}" "${WEIGHT_DECAY:=0.0}" "${WARMUP:=0.1}" "${EVAL_STEPS:=1000}"
source "$(dirname "${BASH_SOURCE[0]}")/../../../zh_task/_finetune_common.sh"
