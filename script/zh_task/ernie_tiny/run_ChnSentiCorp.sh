#!/usr/bin/env bash
# ChnSentiCorp sentiment classification; ERNIE tiny (SentencePiece + word dict from $MODEL_PATH/subword/): the base hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_tiny/run_ChnSentiCorp.sh
# (data in $TASK_DATA_PATH/chnsenticorp/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=ChnSentiCorp_tiny DATA_SUBDIR=chnsenticorp EXAMPLE=classifier
: "${BATCH_SIZE:=24}" "${EPOCH:=10}" "${MAX_SEQLEN:=256}" "${LR:=5e-5}"
: "${NUM_LABELS:=2}" "${ERNIE_TINY:=1}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
