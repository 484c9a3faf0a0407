#!/usr/bin/env bash
# LCQMC question matching (sentence pairs); ERNIE tiny (SentencePiece + word dict from $MODEL_PATH/subword/): the base hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_tiny/run_lcqmc.sh
# (data in $TASK_DATA_PATH/lcqmc/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=lcqmc_tiny DATA_SUBDIR=lcqmc EXAMPLE=classifier
: "${BATCH_SIZE:=32}" "${EPOCH:=3}" "${MAX_SEQLEN:=128}" "${LR:=2e-5}"
: "${NUM_LABELS:=2}" "${WEIGHT_DECAY:=0.0}" "${ERNIE_TINY:=1}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
