#!/usr/bin/env bash
# XNLI natural language inference (batch = 8192 tokens); ERNIE 2.0 large: the original large-model scripts' hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_large/run_xnli.sh
# (data in $TASK_DATA_PATH/xnli/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=xnli_large DATA_SUBDIR=xnli EXAMPLE=classifier
: "${BATCH_SIZE:=8192}" "${EPOCH:=3}" "${MAX_SEQLEN:=512}" "${LR:=4e-5}"
: "${NUM_LABELS:=3}" "${IN_TOKENS:=true}" "${EVAL_STEPS:=25}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
