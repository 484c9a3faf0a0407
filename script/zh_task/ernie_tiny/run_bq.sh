#!/usr/bin/env bash
# BQ Corpus question matching (sentence pairs); ERNIE tiny (SentencePiece + word dict from $MODEL_PATH/subword/): the base hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_tiny/run_bq.sh
# (data in $TASK_DATA_PATH/bq/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=bq_tiny DATA_SUBDIR=bq EXAMPLE=classifier
: "${BATCH_SIZE:=64}" "${EPOCH:=3}" "${MAX_SEQLEN:=128}" "${LR:=3e-5}"
: "${NUM_LABELS:=2}" "${ERNIE_TINY:=1}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
