#!/usr/bin/env bash
# ChnSentiCorp sentiment classification; ERNIE 2.0 large: the original large-model scripts' hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_large/run_ChnSentiCorp.sh
# (data in $TASK_DATA_PATH/chnsenticorp/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=ChnSentiCorp_large DATA_SUBDIR=chnsenticorp EXAMPLE=classifier
: "${BATCH_SIZE:=24}" "${EPOCH:=10}" "${MAX_SEQLEN:=256}" "${LR:=1e-5}"
: "${NUM_LABELS:=2}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
