#!/usr/bin/env bash
# CMRC2018 reading comprehension (EM, F1); ERNIE 2.0 large: the original large-model scripts' hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_large/run_cmrc2018.sh
# (data in $TASK_DATA_PATH/cmrc2018/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=cmrc2018_large DATA_SUBDIR=cmrc2018 EXAMPLE=mrc
: "${BATCH_SIZE:=64}" "${EPOCH:=2}" "${MAX_SEQLEN:=512}" "${LR:=3e-5}"
: "${DOC_STRIDE:=128}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
