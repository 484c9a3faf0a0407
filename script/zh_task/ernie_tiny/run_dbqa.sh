#!/usr/bin/env bash
# NLPCC-DBQA answer ranking (MRR, F1); ERNIE tiny (SentencePiece + word dict from $MODEL_PATH/subword/): the base hyper-parameters.
# Usage: TASK_DATA_PATH=/home/task_data MODEL_PATH=/home/model sh script/zh_task/ernie_tiny/run_dbqa.sh
# (data in $TASK_DATA_PATH/nlpcc-dbqa/; overrides: see script/zh_task/_finetune_common.sh)
[ -n "$BASH_VERSION" ] || exec bash "$0" "$@"  # also when started with sh
TASK=dbqa_tiny DATA_SUBDIR=nlpcc-dbqa EXAMPLE=ranker
: "${BATCH_SIZE:=8}" "${EPOCH:=3}" "${MAX_SEQLEN:=512}" "${LR:=2e-5}"
: "${EVAL_STEPS:=1000}" "${ERNIE_TINY:=1}"
source "$(dirname "${BASH_SOURCE[0]}")/../_finetune_common.sh"
