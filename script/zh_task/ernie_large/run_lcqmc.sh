#!/usr/bin/env bash
# LCQMC question matching (sentence pairs); ERNIE 2.0 large: the original large-model scripts' hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_large/run_lcqmc.sh
# (data in $TASK_DATA_PATH/lcqmc/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=lcqmc_large DATA_SUBDIR=lcqmc EXAMPLE=classifier
: "${BATCH_SIZE:=32}" "${EPOCH:=3}" "${MAX_SEQLEN:=128}" "${LR:=5e-6}"
: "${NUM_LABELS:=2}" "${WEIGHT_DECAY:=0.0}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
