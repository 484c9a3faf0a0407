#!/usr/bin/env bash
# DRCD reading comprehension (EM, F1); ERNIE 1.0 base: the original hyper-parameters (DESIGN.md section 7).
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_base/run_drcd.sh
# (data in $TASK_DATA_PATH/drcd/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=drcd_base DATA_SUBDIR=drcd EXAMPLE=mrc
: "${BATCH_SIZE:=16}" "${EPOCH:=2}" "${MAX_SEQLEN:=512}" "${LR:=5e-5}"
: "${DOC_STRIDE:=128}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
