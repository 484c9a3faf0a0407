#!/usr/bin/env bash
# DRCD reading comprehension (EM, F1); ERNIE 2.0 large: the original large-model scripts' hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_large/run_drcd.sh
# (data in $TASK_DATA_PATH/drcd/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=drcd_large DATA_SUBDIR=drcd EXAMPLE=mrc
: "${BATCH_SIZE:=64}" "${EPOCH:=2}" "${MAX_SEQLEN:=512}" "${LR:=3e-5}"
: "${DOC_STRIDE:=128}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
