#!/usr/bin/env bash
# THUCNews document classification; ERNIE tiny (SentencePiece + word dict from $MODEL_PATH/subword/): the base hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_tiny/run_thuc.sh
# (data in $TASK_DATA_PATH/thuc/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=thuc_tiny DATA_SUBDIR=thuc EXAMPLE=classifier
: "${BATCH_SIZE:=8}" "${EPOCH:=3}" "${MAX_SEQLEN:=512}" "${LR:=3e-5}"
: "${NUM_LABELS:=10}" "${ERNIE_TINY:=1}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
