#!/usr/bin/env bash
# BQ Corpus question matching (sentence pairs); ERNIE 1.0 base: the original hyper-parameters (DESIGN.md section 7).
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_base/run_bq.sh
# (data in $TASK_DATA_PATH/bq/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=bq_base DATA_SUBDIR=bq EXAMPLE=classifier
: "${BATCH_SIZE:=64}" "${EPOCH:=3}" "${MAX_SEQLEN:=128}" "${LR:=3e-5}"
: "${NUM_LABELS:=2}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
