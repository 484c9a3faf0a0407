#!/usr/bin/env bash
# XNLI natural language inference (batch = 8192 tokens); ERNIE tiny (SentencePiece + word dict from $MODEL_PATH/subword/): the base hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_tiny/run_xnli.sh
# (data in $TASK_DATA_PATH/xnli/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=xnli_tiny DATA_SUBDIR=xnli EXAMPLE=classifier
: "${BATCH_SIZE:=8192}" "${EPOCH:=3}" "${MAX_SEQLEN:=512}" "${LR:=1e-4}"
: "${NUM_LABELS:=3}" "${IN_TOKENS:=true}" "${EVAL_STEPS:=25}" "${ERNIE_TINY:=1}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
